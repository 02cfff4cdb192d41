//! The GC heap of a store: where structs and arrays live (layout in
//! [`crate::gc`]).
//!
//! There is no collector yet. Objects are bump-allocated from zeroed
//! chunks and live until their store is dropped, like the "null" collector
//! some engines offer: programs that allocate a bounded amount (most
//! compiled from languages with their own allocators, and the spec suite)
//! run unchanged, and one that allocates without bound traps with
//! `allocation failure: the GC heap is full` once it reaches the store's
//! limit, instead of exhausting the machine.

use alloc::boxed::Box;
use alloc::vec::Vec;

use crate::gc::{HEADER, KIND, LENGTH, TYPE_ID};

/// Bytes of one ordinary chunk; larger objects get a chunk of their own.
const CHUNK: usize = 256 << 10;

/// A store's GC heap.
// Boxed slices: objects never move.
#[allow(clippy::vec_box)]
pub struct GcHeap {
    /// full or large chunks
    chunks: Vec<Box<[u128]>>,
    /// the chunk being filled, and how many bytes of it are used
    current: Option<(Box<[u128]>, usize)>,
    /// bytes handed out
    allocated: usize,
    /// most bytes this heap may hand out
    limit: usize,
}

impl GcHeap {
    /// An empty heap that hands out at most `limit` bytes.
    pub fn new(limit: usize) -> GcHeap {
        GcHeap {
            chunks: Vec::new(),
            current: None,
            allocated: 0,
            limit,
        }
    }

    /// Bytes handed out so far.
    pub fn allocated(&self) -> usize {
        self.allocated
    }

    fn zeroed(words: usize) -> Option<Box<[u128]>> {
        let mut v: Vec<u128> = Vec::new();
        v.try_reserve_exact(words).ok()?;
        v.resize(words, 0);
        Some(v.into_boxed_slice())
    }

    /// `bytes` of zeroed, 16-byte aligned memory, or `None` when the heap
    /// is at its limit (or the machine out of memory).
    fn allocate(&mut self, bytes: usize) -> Option<*mut u8> {
        let bytes = bytes.checked_next_multiple_of(16)?;
        if self.allocated.checked_add(bytes)? > self.limit {
            return None;
        }
        if bytes > CHUNK / 4 {
            let mut big = Self::zeroed(bytes / 16)?;
            let p = big.as_mut_ptr().cast::<u8>();
            self.chunks.push(big);
            self.allocated += bytes;
            return Some(p);
        }
        if self
            .current
            .as_ref()
            .is_none_or(|(_, used)| used + bytes > CHUNK)
        {
            let fresh = Self::zeroed(CHUNK / 16)?;
            if let Some((old, _)) = self.current.replace((fresh, 0)) {
                self.chunks.push(old);
            }
        }
        let (chunk, used) = self.current.as_mut()?;
        // SAFETY: `used + bytes <= CHUNK`, the chunk's length in bytes.
        let p = unsafe { chunk.as_mut_ptr().cast::<u8>().add(*used) };
        *used += bytes;
        self.allocated += bytes;
        Some(p)
    }

    /// A new object with its header written and its body zeroed: a struct
    /// (`count` 1, `unit` its body size) or an array (`count` elements of
    /// `unit` bytes). `None` when it does not fit the heap.
    pub fn new_object(&mut self, type_id: u32, kind: u8, count: u32, unit: u32) -> Option<usize> {
        let body = u64::from(count) * u64::from(unit);
        let bytes = usize::try_from(body.checked_add(u64::from(HEADER))?).ok()?;
        let p = self.allocate(bytes)?;
        let length = if kind == crate::gc::KIND_ARRAY {
            count
        } else {
            0
        };
        let header = [
            (TYPE_ID as usize, type_id.to_le_bytes()),
            (LENGTH as usize, length.to_le_bytes()),
            (KIND as usize, u32::from(kind).to_le_bytes()),
        ];
        for (offset, bytes) in header {
            // SAFETY: `p` is a fresh allocation of at least HEADER bytes
            // owned by this heap; every header field lies inside it.
            unsafe { write_bytes(p as usize, offset, &bytes) };
        }
        Some(p as usize)
    }
}

/// The kind byte of the object at `obj`.
///
/// # Safety
/// `obj` must be a live object of a GC heap.
pub unsafe fn kind_of(obj: usize) -> u8 {
    // SAFETY: the caller's contract; the header is at the object's start.
    unsafe { *((obj + KIND as usize) as *const u8) }
}

/// The length of the array at `obj`.
///
/// # Safety
/// `obj` must be a live array of a GC heap.
pub unsafe fn array_len(obj: usize) -> u32 {
    // SAFETY: the caller's contract.
    unsafe { *((obj + LENGTH as usize) as *const u32) }
}

/// The elements of the array at `obj`, `unit` bytes each, as bytes.
///
/// # Safety
/// `obj` must be a live array of a GC heap whose elements are `unit` bytes,
/// and no other reference to its elements may be used meanwhile.
pub unsafe fn array_bytes<'a>(obj: usize, unit: u32) -> &'a mut [u8] {
    // SAFETY: the caller's contract.
    let len = unsafe { array_len(obj) } as usize * unit as usize;
    // SAFETY: the body follows the header and holds `len` bytes.
    unsafe { core::slice::from_raw_parts_mut((obj + HEADER as usize) as *mut u8, len) }
}

/// Writes `bytes` at `offset` of the object at `obj`.
///
/// # Safety
/// `obj` must be a live object with at least `offset + bytes.len()` bytes.
pub unsafe fn write_bytes(obj: usize, offset: usize, bytes: &[u8]) {
    // SAFETY: the caller's contract.
    unsafe {
        core::ptr::copy_nonoverlapping(bytes.as_ptr(), (obj + offset) as *mut u8, bytes.len())
    }
}
