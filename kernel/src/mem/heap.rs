//! The kernel heap: `linked_list_allocator` over a virtual window that
//! grows on demand (frames are mapped at its top when an allocation does
//! not fit), so the heap can use most of RAM without being sized at boot.
//!
//! Small allocations (up to 2 KiB) come from power-of-two size classes
//! carved out of 64 KiB chunks: the compiler makes millions of them, and a
//! first-fit list walk per allocation made in-guest compilation several
//! times slower.
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

const CLASSES: usize = 8;
const MIN_CLASS_LOG2: u32 = 4;
const CHUNK: usize = 64 << 10;

struct State {
    heap: Heap,
    /// free blocks of each size class (16 << i bytes), linked through
    /// their first word
    free: [usize; CLASSES],
}

/// The global allocator.
pub struct KernelHeap(Mutex<State>);

#[global_allocator]
static HEAP: KernelHeap = KernelHeap(Mutex::new(State {
    heap: Heap::empty(),
    free: [0; CLASSES],
}));

/// The size class of `layout`, if it is small.
fn class_of(layout: Layout) -> Option<usize> {
    let size = layout.size().max(layout.align()).max(1 << MIN_CLASS_LOG2);
    let log2 = size.next_power_of_two().trailing_zeros();
    let class = (log2 - MIN_CLASS_LOG2) as usize;
    (class < CLASSES).then_some(class)
}

fn large_alloc(heap: &mut Heap, layout: Layout) -> *mut u8 {
    loop {
        if let Ok(p) = heap.allocate_first_fit(layout) {
            return p.as_ptr();
        }
        if !grow(heap, layout) {
            return ptr::null_mut();
        }
    }
}

/// Splits a fresh chunk into blocks of `class`; false when out of memory.
fn refill(st: &mut State, class: usize) -> bool {
    let Ok(layout) = Layout::from_size_align(CHUNK, PAGE_SIZE) else {
        return false;
    };
    let chunk = large_alloc(&mut st.heap, layout);
    if chunk.is_null() {
        return false;
    }
    let size = 1usize << (class as u32 + MIN_CLASS_LOG2);
    for off in (0..CHUNK).step_by(size).rev() {
        let block = chunk.wrapping_add(off);
        // SAFETY: `block` lies in the chunk just allocated for this class,
        // aligned to at least 16 bytes.
        unsafe { block.cast::<usize>().write(st.free[class]) };
        st.free[class] = block as usize;
    }
    true
}

/// Maps the first part of the heap window.
pub fn init() -> Result<(), MemError> {
    // SAFETY: the heap window is reserved for the heap alone.
    unsafe { super::map_zeroed(HEAP_BASE, INITIAL, Access::DATA) }?;
    // SAFETY: just mapped, unused.
    unsafe { HEAP.0.lock().heap.init(HEAP_BASE as *mut u8, INITIAL) };
    Ok(())
}

/// Bytes in use (small blocks count by whole chunks) and the heap's
/// current size.
pub fn stats() -> (usize, usize) {
    let st = HEAP.0.lock();
    (st.heap.used(), st.heap.size())
}

static EXHAUSTED: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// Whether the heap ever failed to grow (physical memory ran out).
pub fn exhausted() -> bool {
    EXHAUSTED.load(core::sync::atomic::Ordering::Relaxed)
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
    let fits = top + by <= HEAP_BASE + HEAP_MAX;
    // SAFETY: above the heap's top lies only unused heap window.
    if !fits || unsafe { super::map_zeroed(top, by, Access::DATA) }.is_err() {
        EXHAUSTED.store(true, core::sync::atomic::Ordering::Relaxed);
        return false;
    }
    // SAFETY: [top, top + by) is now mapped and directly follows the heap.
    unsafe { heap.extend(by) };
    true
}

// SAFETY: large allocations come from linked_list_allocator under a lock,
// small ones from chunks it handed out; memory is mapped before use.
unsafe impl GlobalAlloc for KernelHeap {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let mut st = self.0.lock();
        let Some(class) = class_of(layout) else {
            return large_alloc(&mut st.heap, layout);
        };
        if st.free[class] == 0 && !refill(&mut st, class) {
            return ptr::null_mut();
        }
        let block = st.free[class] as *mut u8;
        // SAFETY: a free block of this class holds the next free block.
        st.free[class] = unsafe { block.cast::<usize>().read() };
        block
    }

    unsafe fn dealloc(&self, p: *mut u8, layout: Layout) {
        let Some(p) = NonNull::new(p) else {
            return;
        };
        let mut st = self.0.lock();
        match class_of(layout) {
            Some(class) => {
                // SAFETY: `p` is a block of this class (same layout as at
                // allocation, GlobalAlloc contract), now free.
                unsafe { p.as_ptr().cast::<usize>().write(st.free[class]) };
                st.free[class] = p.as_ptr() as usize;
            }
            // SAFETY: `p` came from `large_alloc` with this layout.
            None => unsafe { st.heap.deallocate(p, layout) },
        }
    }
}
