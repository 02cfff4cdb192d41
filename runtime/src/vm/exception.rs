//! Exception handling's objects: tags, the exceptions thrown with them, and
//! the per-store heap that owns the exceptions.
//!
//! A tag's identity is the address of its [`VMTag`]: a module that imports a
//! tag gets the exporter's pointer, so `catch` compares pointers. An
//! exception ([`VMException`]) is created by `throw` and lives in its store's
//! [`ExceptionHeap`]. Without a garbage collector, an exception's lifetime
//! follows what wasm can observe of it:
//!
//! - a handler without `_ref` (`catch`, `catch_all`) copies the payload out
//!   and releases the exception, which frees it: nothing can name it again;
//! - a handler with `_ref` hands wasm an `exnref`, which may be stored in
//!   locals, globals and tables: the exception is *pinned* and lives until
//!   its store is dropped (as wasmtime without a GC heap would keep it);
//! - an exception that escapes to the host ends the call and is freed there.
//!
//! So a program that throws and catches in a loop uses constant memory; one
//! that keeps `exnref`s grows by one small object per kept exception.

use alloc::boxed::Box;
use alloc::vec::Vec;

use crate::exact::CanonType;
use crate::types::ValType;

/// An exception tag: its (function) type, whose parameters are the payload.
pub struct VMTag {
    /// the exact type, which imports are matched against
    pub ty: CanonType,
    /// the payload's value types
    pub params: Box<[ValType]>,
}

/// A thrown exception. The first fields are read by compiled code (see
/// [`super::offsets::exception`]).
#[repr(C)]
pub struct VMException {
    tag: *const VMTag,
    values: *const u128,
    pinned: u8,
    slot: usize,
    payload: Box<[u128]>,
}

impl VMException {
    /// The tag it was thrown with.
    pub fn tag(&self) -> *const VMTag {
        self.tag
    }

    /// The payload, one 16-byte slot per tag parameter.
    pub fn payload(&self) -> &[u128] {
        &self.payload
    }

    /// Whether an `exnref` to it was handed to wasm.
    pub fn is_pinned(&self) -> bool {
        self.pinned != 0
    }
}

/// The exceptions of one store, in slots reused after release.
#[derive(Default)]
// Boxed: compiled code holds raw pointers to the exceptions.
#[allow(clippy::vec_box)]
pub struct ExceptionHeap {
    slots: Vec<Option<Box<VMException>>>,
    free: Vec<usize>,
}

impl ExceptionHeap {
    /// A new exception of `tag` with `payload`; returns its address.
    pub fn allocate(&mut self, tag: *const VMTag, payload: Box<[u128]>) -> *mut VMException {
        let slot = self.free.pop().unwrap_or(self.slots.len());
        let mut exn = Box::new(VMException {
            tag,
            values: payload.as_ptr(),
            pinned: 0,
            slot,
            payload,
        });
        let ptr: *mut VMException = &mut *exn;
        if slot == self.slots.len() {
            self.slots.push(Some(exn));
        } else {
            self.slots[slot] = Some(exn);
        }
        ptr
    }

    /// Frees `exn` unless it is pinned (an `exnref` to it may exist).
    ///
    /// # Safety
    /// `exn` must point to a live exception of this heap.
    pub unsafe fn release(&mut self, exn: *const VMException) {
        // SAFETY: the caller's contract.
        let slot = unsafe { (*exn).slot };
        let releasable = self
            .slots
            .get(slot)
            .and_then(|s| s.as_deref())
            .is_some_and(|e| core::ptr::eq(e, exn) && !e.is_pinned());
        if releasable {
            self.slots[slot] = None;
            self.free.push(slot);
        }
    }

    /// How many exceptions are alive (for tests and diagnostics).
    pub fn live(&self) -> usize {
        self.slots.len() - self.free.len()
    }
}
