//! The runtime's unsafe layer: the memory compiled code reads and writes
//! (VM contexts, memories, tables, globals, function references), entering
//! compiled code, and the builtins it calls back. Everything above this
//! module is safe code.
#![allow(unsafe_code)]

pub mod enter;
pub mod exception;
pub mod gc;
pub mod offsets;
pub mod store;

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::alloc::Layout;
use core::ptr::NonNull;
use core::sync::atomic::AtomicU32;

use crate::error::Error;
use crate::exact::ExactType;
use crate::platform::Platform;
use crate::types::{GlobalType, MemoryType, RefType, TableType, Val, ValType};

/// Per-store state compiled code reads (`vmctx → store context`), and
/// what builtins called with a VM context need of the store.
#[repr(C)]
pub struct VMStoreContext {
    /// lowest stack address wasm may use; 0 when no wasm is running
    pub stack_limit: usize,
    /// the store's interrupt request (`interrupt_request`'s address),
    /// read by interruptible code at every function entry and loop
    /// header: non-zero calls the `interrupt` builtin
    pub interrupt_flag: *const AtomicU32,
    /// fuel left (`Store::set_fuel`): metered code subtracts what it
    /// runs and traps with `OutOfFuel` once it is negative
    pub fuel: i64,
    /// the word [`crate::vm::store::InterruptHandle`]s raise; kept alive
    /// here for `interrupt_flag`
    pub interrupt_request: Arc<AtomicU32>,
    /// what the `interrupt` builtin asks once the request was raised:
    /// whether the program must stop (`true`) or go on (after work of the
    /// embedder's, such as polling a network); `None`: always stop
    pub interrupt_check: Option<Box<dyn FnMut() -> bool + Send>>,
    /// the exceptions thrown in this store and not yet freed
    pub exceptions: exception::ExceptionHeap,
    /// the store's GC objects (structs and arrays)
    pub gc: gc::GcHeap,
}

/// The store context of the instance whose VM context is `vmctx`.
///
/// # Safety
/// `vmctx` must be a live VM context, and nothing else may borrow its
/// store's context while the result is used (wasm is suspended in a
/// builtin or the unwinder).
pub(crate) unsafe fn store_context_of<'a>(vmctx: usize) -> &'a mut VMStoreContext {
    // SAFETY: the caller's contract: the slot holds the store context's address.
    let ctx = unsafe { *((vmctx + offsets::VMOffsets::STORE_CTX as usize) as *const usize) };
    // SAFETY: as above; the store context outlives its instances.
    unsafe { &mut *(ctx as *mut VMStoreContext) }
}

/// A function reference: what `ref.func`, tables and imports hold.
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct VMFuncRef {
    /// native code, wasm calling convention
    pub code: usize,
    /// callee VM context (or host function context)
    pub vmctx: usize,
    /// engine-wide type id
    pub type_id: u32,
}

/// Size of the reserved address space of a 32-bit linear memory: any
/// 32-bit index plus any 32-bit static offset plus the widest access stays
/// inside it, so compiled code needs no bounds checks. A memory64 gets the
/// same reservation (it never grows past it) but compiled code checks every
/// access against its length explicitly.
pub const MEMORY_RESERVATION: usize = (8 << 30) + (64 << 10);

/// A linear memory. The first two fields are read by compiled code.
#[repr(C)]
pub struct VMMemory {
    base: *mut u8,
    length: usize,
    reserved: usize,
    maximum_bytes: usize,
    page_log2: u8,
    memory64: bool,
    platform: &'static dyn Platform,
}

impl VMMemory {
    /// A memory of type `ty`, at most `limit_bytes` large whatever its type says.
    pub fn new(
        ty: &MemoryType,
        platform: &'static dyn Platform,
        limit_bytes: usize,
    ) -> Result<Box<VMMemory>, Error> {
        if ty.shared {
            return Err(Error::Unsupported {
                feature: "threads (shared memory)",
                offset: 0,
            });
        }
        let page_log2 = ty.page_size_log2;
        // The index space bounds the size: 2^32 bytes for a 32-bit memory,
        // 2^64 for a memory64; the reservation and `limit_bytes` bound it
        // further. Shifts saturate, as the bounds do not fit a u64.
        let bytes = |pages: u64| -> u64 {
            if pages == 0 {
                0
            } else if u64::from(pages.leading_zeros()) < u64::from(page_log2) {
                u64::MAX
            } else {
                pages << page_log2
            }
        };
        let space = if ty.memory64 { u64::MAX } else { 1 << 32 };
        let declared_max = ty.maximum.map_or(space, bytes).min(space);
        let maximum_bytes = usize::try_from(declared_max)
            .unwrap_or(usize::MAX)
            .min(limit_bytes)
            .min(MEMORY_RESERVATION);
        let initial = usize::try_from(bytes(ty.minimum)).unwrap_or(usize::MAX);
        if initial > maximum_bytes {
            return Err(Error::Instantiate(format!(
                "memory needs {} MiB at start, more than the {} MiB allowed",
                initial >> 20,
                maximum_bytes >> 20
            )));
        }
        let base = platform
            .reserve(MEMORY_RESERVATION)
            .map_err(|e| Error::OutOfMemory(format!("reserving a linear memory: {e}")))?;
        let mut m = Box::new(VMMemory {
            base: base as *mut u8,
            length: 0,
            reserved: MEMORY_RESERVATION,
            maximum_bytes,
            page_log2,
            memory64: ty.memory64,
            platform,
        });
        enter::register_reservation(base, MEMORY_RESERVATION);
        if initial > 0 {
            m.platform
                .commit(base, initial.next_multiple_of(platform.page_size()))
                .map_err(|e| {
                    Error::OutOfMemory(format!(
                        "committing {} KiB of linear memory: {e}",
                        initial >> 10
                    ))
                })?;
            m.length = initial;
        }
        Ok(m)
    }

    /// Current size in pages.
    pub fn pages(&self) -> u64 {
        (self.length >> self.page_log2) as u64
    }

    /// Grows by `delta` pages; returns the old size in pages, or `None`.
    pub fn grow(&mut self, delta: u64) -> Option<u64> {
        let old = self.pages();
        let add = usize::try_from(delta)
            .ok()?
            .checked_shl(u32::from(self.page_log2))?;
        if delta > 0 && add >> self.page_log2 != delta as usize {
            return None;
        }
        let new_len = self.length.checked_add(add)?;
        if new_len > self.maximum_bytes || new_len > self.reserved {
            return None;
        }
        let ps = self.platform.page_size();
        let from = self.length.next_multiple_of(ps);
        let to = new_len.next_multiple_of(ps);
        if to > from {
            self.platform
                .commit(self.base as usize + from, to - from)
                .ok()?;
        }
        self.length = new_len;
        Some(old)
    }

    /// The accessible bytes.
    pub fn data(&self) -> &[u8] {
        if self.length == 0 {
            return &[];
        }
        // SAFETY: [base, base+length) is committed, readable memory owned by this object.
        unsafe { core::slice::from_raw_parts(self.base, self.length) }
    }

    /// The accessible bytes, writable.
    pub fn data_mut(&mut self) -> &mut [u8] {
        if self.length == 0 {
            return &mut [];
        }
        // SAFETY: as for `data`; `&mut self` makes this the only live view.
        unsafe { core::slice::from_raw_parts_mut(self.base, self.length) }
    }

    /// The start of the accessible bytes and their length, for copies
    /// between two memories that may be one (imported twice): no Rust
    /// reference is made.
    pub(crate) fn raw_parts(&self) -> (*mut u8, usize) {
        (self.base, self.length)
    }

    /// The type this memory now satisfies as an import (current size as minimum).
    pub fn current_type(&self) -> MemoryType {
        MemoryType {
            minimum: self.pages(),
            maximum: Some((self.maximum_bytes >> self.page_log2) as u64),
            memory64: self.memory64,
            shared: false,
            page_size_log2: self.page_log2,
        }
    }
}

impl Drop for VMMemory {
    fn drop(&mut self) {
        enter::unregister_reservation(self.base as usize);
        self.platform.release(self.base as usize, self.reserved);
    }
}

/// A table. The first two fields are read by compiled code.
#[repr(C)]
pub struct VMTable {
    elements: *mut usize,
    length: u64,
    storage: Vec<usize>,
    /// element type and limits
    pub ty: TableType,
    /// the exact element type imports are matched against
    pub exact_element: ExactType,
}

/// Largest table Basalt creates (elements).
pub const MAX_TABLE_ELEMENTS: u64 = 10_000_000;

impl VMTable {
    /// A table of type `ty` filled with `init` (a raw reference).
    pub fn new(ty: &TableType, init: usize) -> Result<Box<VMTable>, Error> {
        if ty.minimum > MAX_TABLE_ELEMENTS {
            return Err(Error::Instantiate(format!(
                "table of {} elements is too large",
                ty.minimum
            )));
        }
        // The module sizes this: an allocation that fails is an error the
        // caller reports, never an abort.
        let mut storage = Vec::new();
        storage
            .try_reserve_exact(ty.minimum as usize)
            .map_err(|_| {
                Error::Instantiate(format!(
                    "cannot allocate a table of {} elements: out of memory",
                    ty.minimum
                ))
            })?;
        storage.resize(ty.minimum as usize, init);
        let elements = storage.as_mut_ptr();
        Ok(Box::new(VMTable {
            elements,
            length: ty.minimum,
            storage,
            ty: *ty,
            exact_element: ExactType::of(ValType::Ref(ty.element)),
        }))
    }

    /// The raw elements.
    pub fn elements(&self) -> &[usize] {
        &self.storage
    }

    /// The raw elements, writable.
    pub fn elements_mut(&mut self) -> &mut [usize] {
        &mut self.storage
    }

    /// Grows by `delta` elements of `init`; returns the old size or `None`.
    pub fn grow(&mut self, delta: u64, init: usize) -> Option<u64> {
        let old = self.length;
        let new = old.checked_add(delta)?;
        if new > self.ty.maximum.unwrap_or(u64::MAX) || new > MAX_TABLE_ELEMENTS {
            return None;
        }
        self.storage.try_reserve(delta as usize).ok()?;
        self.storage.resize(new as usize, init);
        self.elements = self.storage.as_mut_ptr();
        self.length = new;
        Some(old)
    }

    /// The type this table now satisfies as an import.
    pub fn current_type(&self) -> TableType {
        TableType {
            minimum: self.length,
            ..self.ty
        }
    }
}

/// A global's storage cell; compiled code reads and writes its first bytes.
#[repr(C, align(16))]
pub struct VMGlobal {
    bits: u128,
    /// its type
    pub ty: GlobalType,
    /// its exact content type, which imports are matched against
    pub exact: ExactType,
}

impl VMGlobal {
    /// A global of type `ty` holding `raw`.
    pub fn new(ty: GlobalType, raw: u128) -> Box<VMGlobal> {
        Box::new(VMGlobal {
            bits: raw,
            ty,
            exact: ExactType::of(ty.content),
        })
    }

    /// The raw value.
    pub fn raw(&self) -> u128 {
        self.bits
    }

    /// Sets the raw value.
    pub fn set_raw(&mut self, raw: u128) {
        self.bits = raw;
    }
}

/// The representation of `externref` and `anyref` values compiled code
/// sees (pointer-sized): 0 is null, an odd value an `i31ref` (the 31 bits
/// above bit 0), a value ending in binary `10` a host value (the bits above
/// bit 1), any other value (16-byte aligned) a GC object's address.
pub mod any_ref {
    /// low bit of an `i31ref`
    pub const I31_TAG: u64 = 1;
    /// low two bits of a host value
    pub const HOST_TAG: u64 = 2;
}

fn any_ref_to_raw(r: crate::types::AnyRef) -> u64 {
    match r {
        crate::types::AnyRef::Host(n) => (u64::from(n) << 2) | any_ref::HOST_TAG,
        crate::types::AnyRef::I31(v) => (u64::from(v & 0x7fff_ffff) << 1) | any_ref::I31_TAG,
        crate::types::AnyRef::Struct(o) | crate::types::AnyRef::Array(o) => o.0.get() as u64,
    }
}

/// Decodes an `externref`/`anyref` (see [`any_ref`]).
fn any_ref_from_raw(raw: u64) -> Option<crate::types::AnyRef> {
    use crate::types::{AnyRef, ObjectRef};
    match raw {
        0 => None,
        r if r & any_ref::I31_TAG != 0 => Some(AnyRef::I31((r >> 1) as u32)),
        r if r & 3 == any_ref::HOST_TAG => Some(AnyRef::Host((r >> 2) as u32)),
        r => {
            let obj = ObjectRef(core::num::NonZeroUsize::new(r as usize)?);
            // SAFETY: a reference value that is neither null, i31 nor host
            // is a live object of the store it came from.
            match unsafe { gc::kind_of(r as usize) } {
                crate::gc::KIND_ARRAY => Some(AnyRef::Array(obj)),
                _ => Some(AnyRef::Struct(obj)),
            }
        }
    }
}

/// Encodes a value in the 16-byte slot format shared with compiled code.
pub fn val_to_raw(v: &Val) -> u128 {
    match *v {
        Val::I32(x) => u128::from(x as u32),
        Val::I64(x) => u128::from(x as u64),
        Val::F32(x) => u128::from(x),
        Val::F64(x) => u128::from(x),
        Val::V128(x) => x,
        Val::FuncRef(None) | Val::ExternRef(None) | Val::ExnRef(None) | Val::AnyRef(None) => 0,
        Val::FuncRef(Some(h)) => h.0.get() as u128,
        Val::ExnRef(Some(h)) => h.0.get() as u128,
        Val::ExternRef(Some(r)) | Val::AnyRef(Some(r)) => u128::from(any_ref_to_raw(r)),
    }
}

/// Decodes a slot as a value of type `ty`.
pub fn raw_to_val(raw: u128, ty: ValType) -> Val {
    match ty {
        ValType::I32 => Val::I32(raw as u32 as i32),
        ValType::I64 => Val::I64(raw as u64 as i64),
        ValType::F32 => Val::F32(raw as u32),
        ValType::F64 => Val::F64(raw as u64),
        ValType::V128 => Val::V128(raw),
        ValType::Ref(RefType::FuncRef) => Val::FuncRef(
            core::num::NonZeroUsize::new(raw as usize).map(crate::types::FuncRefHandle),
        ),
        ValType::Ref(RefType::ExternRef) => Val::ExternRef(any_ref_from_raw(raw as u64)),
        ValType::Ref(RefType::AnyRef) => Val::AnyRef(any_ref_from_raw(raw as u64)),
        ValType::Ref(RefType::ExnRef) => {
            Val::ExnRef(core::num::NonZeroUsize::new(raw as usize).map(crate::types::ExnRefHandle))
        }
    }
}

/// An instance's VM context allocation.
pub struct VMContextBox {
    ptr: NonNull<u8>,
    layout: Layout,
}

impl VMContextBox {
    /// A zeroed VM context of `size` bytes.
    pub fn new(size: usize) -> VMContextBox {
        let layout = Layout::from_size_align(size.max(16), 16).expect("VM context layout");
        // SAFETY: layout has non-zero size.
        let ptr = unsafe { alloc::alloc::alloc_zeroed(layout) };
        let ptr = NonNull::new(ptr).unwrap_or_else(|| alloc::alloc::handle_alloc_error(layout));
        VMContextBox { ptr, layout }
    }

    /// The address compiled code gets as `vmctx`.
    pub fn addr(&self) -> usize {
        self.ptr.as_ptr() as usize
    }

    /// Writes a pointer-sized value at `offset`.
    pub fn write_usize(&mut self, offset: i32, v: usize) {
        assert!(offset >= 0 && offset as usize + 8 <= self.layout.size());
        // SAFETY: in bounds (checked above) and 8-aligned by the layout's construction.
        let p = unsafe { self.ptr.as_ptr().add(offset as usize) };
        // SAFETY: as above: `p` is in bounds and aligned for the write.
        unsafe { p.cast::<usize>().write(v) }
    }

    /// Writes a u32 at `offset`.
    pub fn write_u32(&mut self, offset: i32, v: u32) {
        assert!(offset >= 0 && offset as usize + 4 <= self.layout.size());
        // SAFETY: in bounds (checked above), 4-aligned.
        let p = unsafe { self.ptr.as_ptr().add(offset as usize) };
        // SAFETY: as above: `p` is in bounds and aligned for the write.
        unsafe { p.cast::<u32>().write(v) }
    }

    /// Writes a function reference at `offset`.
    pub fn write_funcref(&mut self, offset: i32, f: VMFuncRef) {
        self.write_usize(offset + offsets::funcref::CODE, f.code);
        self.write_usize(offset + offsets::funcref::VMCTX, f.vmctx);
        self.write_u32(offset + offsets::funcref::TYPE_ID, f.type_id);
    }

    /// Reads the function reference at `offset`.
    pub fn read_funcref(&self, offset: i32) -> VMFuncRef {
        assert!(
            offset >= 0 && offset as usize + offsets::funcref::SIZE as usize <= self.layout.size()
        );
        // SAFETY: in bounds, VMFuncRef layout matches `offsets::funcref`.
        let p = unsafe { self.ptr.as_ptr().add(offset as usize) };
        // SAFETY: as above: `p` is in bounds and holds a VMFuncRef.
        unsafe { p.cast::<VMFuncRef>().read() }
    }
}

impl Drop for VMContextBox {
    fn drop(&mut self) {
        // SAFETY: allocated in `new` with this layout.
        unsafe { alloc::alloc::dealloc(self.ptr.as_ptr(), self.layout) }
    }
}

/// Reads a function reference through its raw pointer (a table element or
/// a `Val::FuncRef`).
///
/// # Safety
/// `raw` must point to a live `VMFuncRef` of the same store.
pub unsafe fn read_funcref(raw: usize) -> VMFuncRef {
    // SAFETY: forwarded contract.
    unsafe { (raw as *const VMFuncRef).read() }
}

/// Loaded, executable code of a module.
pub struct CodeMemory {
    base: usize,
    mapped: usize,
    platform: &'static dyn Platform,
}

impl CodeMemory {
    /// Maps `code` read-execute and registers its trap sites.
    pub fn load(
        platform: &'static dyn Platform,
        code: &[u8],
        traps: Vec<(u32, cranelift_codegen::ir::TrapCode)>,
        functions: Vec<(u32, u32, u32)>,
        call_sites: Vec<crate::compile::CallSite>,
        tags_offset: u32,
    ) -> Result<CodeMemory, Error> {
        let ps = platform.page_size();
        let mapped = code.len().max(1).next_multiple_of(ps);
        let base = platform
            .reserve(mapped)
            .map_err(|e| Error::OutOfMemory(format!("code memory: {e}")))?;
        let mem = CodeMemory {
            base,
            mapped,
            platform,
        };
        platform
            .commit(base, mapped)
            .map_err(|e| Error::OutOfMemory(format!("code memory: {e}")))?;
        // SAFETY: [base, base+mapped) was just committed read-write for us alone.
        unsafe { core::ptr::copy_nonoverlapping(code.as_ptr(), base as *mut u8, code.len()) };
        platform
            .make_executable(base, mapped)
            .map_err(|e| Error::OutOfMemory(format!("code memory: {e}")))?;
        enter::register_code(Arc::new(enter::CodeInfo {
            start: base,
            len: code.len(),
            traps,
            functions,
            call_sites,
            tags_offset,
        }));
        Ok(mem)
    }

    /// Address of the first byte of code.
    pub fn base(&self) -> usize {
        self.base
    }
}

impl Drop for CodeMemory {
    fn drop(&mut self) {
        enter::unregister_code(self.base);
        self.platform.release(self.base, self.mapped);
    }
}

/// A name for a raw pointer-sized reference, for error messages.
pub fn describe_ref(raw: usize) -> String {
    if raw == 0 {
        String::from("null")
    } else {
        format!("{raw:#x}")
    }
}
