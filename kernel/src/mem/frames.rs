//! The physical frame allocator: bump allocation through the usable RAM of
//! the boot memory map (above 1 MiB, minus the kernel image and the
//! bundle), plus a free list threaded through freed frames.

use basalt_arch::paging::{FrameSource, PAGE_SIZE};
use basalt_arch::{BootInfo, MemoryKind, PhysRange};

const MAX_RANGES: usize = 64;
const FRAME: u64 = PAGE_SIZE as u64;

/// Free physical memory.
pub struct FrameAllocator {
    ranges: [PhysRange; MAX_RANGES],
    count: usize,
    current: usize,
    next: u64,
    free_list: u64,
    /// frames handed out and not returned
    pub in_use: u64,
    /// frames managed in all
    pub total: u64,
    /// frames only the kernel may take ([`Pool::Kernel`]): programs'
    /// memories stop short of them, so a program that takes every frame
    /// it can still leaves the kernel room for its heap and page tables
    pub reserve: u64,
}

/// Who a frame is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pool {
    /// the kernel itself (heap, page tables, stacks, DMA): may use the
    /// reserve
    Kernel,
    /// a program's memory, code or tables: never the reserve
    Program,
}

/// The reserve: 1/32 of RAM, at least 4 MiB and at most 64 MiB, and never
/// more than a quarter of RAM.
fn reserve_for(total: u64) -> u64 {
    let frames = |mib: u64| (mib << 20) / FRAME;
    (total / 32).clamp(frames(4), frames(64)).min(total / 4)
}

fn subtract(ranges: &mut [PhysRange; MAX_RANGES], count: &mut usize, hole: PhysRange) {
    if hole.len == 0 {
        return;
    }
    let mut i = 0;
    while i < *count {
        let r = ranges[i];
        if hole.end() <= r.start || hole.start >= r.end() {
            i += 1;
            continue;
        }
        let left = PhysRange {
            start: r.start,
            len: hole.start.saturating_sub(r.start),
        };
        let right_start = hole.end().max(r.start);
        let right = PhysRange {
            start: right_start,
            len: r.end().saturating_sub(right_start),
        };
        ranges[i] = left;
        if right.len > 0 && *count < MAX_RANGES {
            ranges[*count] = right;
            *count += 1;
        }
        i += 1;
    }
}

impl FrameAllocator {
    /// An allocator over the usable RAM of `info`, excluding memory below
    /// 1 MiB (firmware and loader data), the kernel image and the bundle.
    pub fn new(info: &BootInfo) -> FrameAllocator {
        let mut ranges = [PhysRange::default(); MAX_RANGES];
        let mut count = 0;
        for r in info.regions() {
            if r.kind != MemoryKind::Usable || count == MAX_RANGES {
                continue;
            }
            let start = r.range.start.max(1 << 20).next_multiple_of(FRAME);
            let end = r.range.end() & !(FRAME - 1);
            if end > start {
                ranges[count] = PhysRange {
                    start,
                    len: end - start,
                };
                count += 1;
            }
        }
        let kernel = info.kernel_image;
        subtract(
            &mut ranges,
            &mut count,
            PhysRange {
                start: kernel.start & !(FRAME - 1),
                len: kernel.len + FRAME,
            },
        );
        if let Some(initrd) = info.initrd {
            subtract(
                &mut ranges,
                &mut count,
                PhysRange {
                    start: initrd.start & !(FRAME - 1),
                    len: initrd.len + 2 * FRAME,
                },
            );
        }
        // Keep whole frames only.
        for r in ranges.iter_mut().take(count) {
            let s = r.start.next_multiple_of(FRAME);
            let e = r.end() & !(FRAME - 1);
            *r = PhysRange {
                start: s,
                len: e.saturating_sub(s),
            };
        }
        ranges[..count].sort_unstable_by_key(|r| r.start);
        let total = ranges[..count].iter().map(|r| r.len / FRAME).sum();
        FrameAllocator {
            ranges,
            count,
            current: 0,
            next: if count > 0 { ranges[0].start } else { 0 },
            free_list: 0,
            in_use: 0,
            total,
            reserve: reserve_for(total),
        }
    }

    /// A frame for `pool` (not zeroed): for a program only while more than
    /// the reserve is free.
    pub fn allocate_for(&mut self, pool: Pool) -> Option<u64> {
        if pool == Pool::Program && self.total.saturating_sub(self.in_use) <= self.reserve {
            return None;
        }
        self.allocate()
    }

    /// A frame (not zeroed), or `None` when RAM is exhausted.
    pub fn allocate(&mut self) -> Option<u64> {
        if self.free_list != 0 {
            let f = self.free_list;
            // SAFETY: free frames are identity-mapped RAM we own; the first
            // word holds the next free frame.
            self.free_list = unsafe { (f as *const u64).read() };
            self.in_use += 1;
            return Some(f);
        }
        while self.current < self.count {
            let r = self.ranges[self.current];
            if self.next + FRAME <= r.end() {
                let f = self.next;
                self.next += FRAME;
                self.in_use += 1;
                return Some(f);
            }
            self.current += 1;
            if self.current < self.count {
                self.next = self.ranges[self.current].start;
            }
        }
        None
    }

    /// `n` physically contiguous frames (not zeroed), for DMA. One frame
    /// may come from the free list; longer runs are cut only from the
    /// range being handed out, so they may fail while single frames
    /// still succeed.
    pub fn allocate_contiguous(&mut self, n: u64) -> Option<u64> {
        if n <= 1 {
            return self.allocate();
        }
        let r = self.ranges.get(self.current)?;
        let end = self.next.checked_add(n.checked_mul(FRAME)?)?;
        if self.current >= self.count || end > r.end() {
            return None;
        }
        let f = self.next;
        self.next = end;
        self.in_use += n;
        Some(f)
    }

    /// Returns a frame.
    ///
    /// # Safety
    /// `frame` came from [`FrameAllocator::allocate`], is no longer mapped
    /// anywhere but the identity map, and nothing uses it.
    pub unsafe fn free(&mut self, frame: u64) {
        // SAFETY: the caller gives the frame back to us.
        unsafe { (frame as *mut u64).write(self.free_list) };
        self.free_list = frame;
        self.in_use -= 1;
    }
}

impl FrameSource for FrameAllocator {
    fn allocate_frame(&mut self) -> Option<u64> {
        self.allocate()
    }
}
