//! The kernel heap: `linked_list_allocator` over a virtual window that
//! grows on demand (frames are mapped at its top when an allocation does
//! not fit), so the heap can use most of RAM without being sized at boot.
#![allow(unsafe_code)]

use core::alloc::{GlobalAlloc, Layout};
use core::ptr::{self, NonNull};

use basalt_arch::paging::{Access, PAGE_SIZE};
use linked_list_allocator::Heap;
use spin::Mutex;

use super::MemError;

/// Where the heap window starts (in the dynamic area).
pub const HEAP_BASE: usize = basalt_arch::paging::DYNAMIC_BASE;
/// The most the heap may grow to.
pub const HEAP_MAX: usize = 64 << 30;
const INITIAL: usize = 4 << 20;
const MIN_GROWTH: usize = 4 << 20;

/// The global allocator.
pub struct KernelHeap(Mutex<Heap>);

#[global_allocator]
static HEAP: KernelHeap = KernelHeap(Mutex::new(Heap::empty()));

/// Maps the first part of the heap window.
pub fn init() -> Result<(), MemError> {
    // SAFETY: the heap window is reserved for the heap alone.
    unsafe { super::map_zeroed(HEAP_BASE, INITIAL, Access::DATA) }?;
    // SAFETY: just mapped, unused.
    unsafe { HEAP.0.lock().init(HEAP_BASE as *mut u8, INITIAL) };
    Ok(())
}

/// Bytes in use and the heap's current size.
pub fn stats() -> (usize, usize) {
    let h = HEAP.0.lock();
    (h.used(), h.size())
}

fn grow(heap: &mut Heap, layout: Layout) -> bool {
    let need = layout
        .size()
        .saturating_add(layout.align())
        .saturating_add(64);
    let by = need
        .max(MIN_GROWTH)
        .max(heap.size() / 4)
        .next_multiple_of(PAGE_SIZE);
    let top = heap.top() as usize;
    if top + by > HEAP_BASE + HEAP_MAX {
        return false;
    }
    // SAFETY: above the heap's top lies only unused heap window.
    if unsafe { super::map_zeroed(top, by, Access::DATA) }.is_err() {
        return false;
    }
    // SAFETY: [top, top + by) is now mapped and directly follows the heap.
    unsafe { heap.extend(by) };
    true
}

// SAFETY: allocations come from linked_list_allocator under a lock; the
// memory it manages is mapped before it is handed to it.
unsafe impl GlobalAlloc for KernelHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let mut heap = self.0.lock();
        loop {
            if let Ok(p) = heap.allocate_first_fit(layout) {
                return p.as_ptr();
            }
            if !grow(&mut heap, layout) {
                return ptr::null_mut();
            }
        }
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        if let Some(p) = NonNull::new(p) {
            // SAFETY: `p` came from `alloc` with this layout (GlobalAlloc contract).
            unsafe { self.0.lock().deallocate(p, layout) };
        }
    }
}
