//! Physical and virtual memory: frames, the kernel heap, address-space
//! reservations for linear memories, code and stacks, and the runtime's
//! [`basalt_runtime::platform::Platform`] over them.
#![allow(unsafe_code)]

pub mod frames;
pub mod heap;
pub mod platform;

use basalt_arch::BootInfo;
use basalt_arch::paging::{self, Access, MapError, PAGE_SIZE};
use basalt_drivers::virtio::pci::PciRegion;
use basalt_drivers::virtio::{Dma, DmaError, DmaRegion};
use spin::Mutex;

use frames::{FrameAllocator, Pool};

/// The frame allocator; also guards page-table changes (take it before
/// touching page tables).
pub static FRAMES: Mutex<Option<FrameAllocator>> = Mutex::new(None);

/// Why memory could not be set up or provided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemError {
    /// the boot memory map holds no usable RAM
    NoMemoryMap,
    /// physical memory is exhausted
    OutOfMemory,
    /// a page-table change failed
    Map(MapError),
    /// an address outside the kernel-managed area
    BadRange,
}

impl core::fmt::Display for MemError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            MemError::NoMemoryMap => f.write_str("the loader passed no usable memory map"),
            MemError::OutOfMemory => f.write_str("out of physical memory"),
            MemError::Map(e) => write!(f, "page tables: {e}"),
            MemError::BadRange => f.write_str("address range outside the kernel's area"),
        }
    }
}

/// Sets up frames, final page tables and the heap.
pub fn init(info: &BootInfo) -> Result<(), MemError> {
    let mut fa = FrameAllocator::new(info);
    if fa.total == 0 {
        return Err(MemError::NoMemoryMap);
    }
    // SAFETY: early boot, only the boot tables exist and page 0 is unused.
    #[cfg(target_arch = "aarch64")]
    unsafe { paging::finish_boot_tables(info, &mut fa) }.map_err(MemError::Map)?;
    // SAFETY: as above.
    #[cfg(not(target_arch = "aarch64"))]
    unsafe { paging::finish_boot_tables(info.top_of_ram(), &mut fa) }.map_err(MemError::Map)?;
    *FRAMES.lock() = Some(fa);
    heap::init()
}

/// Frames in use and in total.
pub fn frame_stats() -> (u64, u64) {
    FRAMES
        .lock()
        .as_ref()
        .map_or((0, 0), |f| (f.in_use, f.total))
}

/// Maps fresh zeroed frames at `[addr, addr + len)` with `access`; on
/// failure unmaps what it mapped. Pages already mapped are zeroed and
/// given `access`.
///
/// # Safety
/// The range must be in the dynamic area and not referenced by Rust code.
pub unsafe fn map_zeroed(addr: usize, len: usize, access: Access) -> Result<(), MemError> {
    // SAFETY: forwarded contract.
    unsafe { map_zeroed_for(addr, len, access, Pool::Kernel) }
}

/// [`map_zeroed`] with frames from `pool`: a program's pages never take
/// the kernel's reserve ([`frames::FrameAllocator::reserve`]).
///
/// # Safety
/// As for [`map_zeroed`].
pub unsafe fn map_zeroed_for(
    addr: usize,
    len: usize,
    access: Access,
    pool: Pool,
) -> Result<(), MemError> {
    check_range(addr, len)?;
    let mut guard = FRAMES.lock();
    let fa = guard.as_mut().ok_or(MemError::OutOfMemory)?;
    // One window for all the table changes below, not one per page.
    let _window = paging::TableWindow::open();
    let mut done = 0;
    while done < len {
        let va = addr + done;
        if paging::translate(va).is_some() {
            // SAFETY: caller's contract; the page is ours.
            unsafe { protect_page(va, Access::DATA, fa) }?;
            // SAFETY: now mapped writable, and ours (caller's contract).
            unsafe { core::ptr::write_bytes(va as *mut u8, 0, PAGE_SIZE) };
            // SAFETY: as above.
            unsafe { protect_page(va, access, fa) }?;
            done += PAGE_SIZE;
            continue;
        }
        let result = match fa.allocate_for(pool) {
            None => Err(MemError::OutOfMemory),
            Some(frame) => {
                // SAFETY: a fresh frame, identity-mapped, ours alone.
                unsafe { core::ptr::write_bytes(frame as *mut u8, 0, PAGE_SIZE) };
                // SAFETY: caller's contract for `va`.
                let mapped = unsafe { paging::map(va, frame, access, fa) };
                match mapped {
                    Ok(()) => Ok(()),
                    Err(e) => {
                        // SAFETY: never mapped.
                        unsafe { fa.free(frame) };
                        Err(MemError::Map(e))
                    }
                }
            }
        };
        if let Err(e) = result {
            // SAFETY: the pages we just mapped, unreferenced.
            unsafe { paging::unmap_range(addr, addr + done, &mut |f| free_frame(fa, f)) };
            return Err(e);
        }
        done += PAGE_SIZE;
    }
    Ok(())
}

/// Maps the device registers at physical `[phys, phys + len)` as device
/// memory (uncached on x86-64, Device-nGnRnE on AArch64) at a fresh
/// address in the dynamic area, and returns the address `phys` has there.
/// The mapping stays for good (devices are probed once); on failure the
/// pages mapped so far stay too, unused.
///
/// # Safety
/// The range must hold device registers, not RAM the kernel uses, and
/// whoever gets the address must be their only user.
pub unsafe fn map_device(phys: u64, len: u64) -> Result<usize, MemError> {
    let page = PAGE_SIZE as u64;
    let first = phys & !(page - 1);
    let end = phys
        .checked_add(len)
        .and_then(|e| e.checked_next_multiple_of(page))
        .filter(|_| len > 0)
        .ok_or(MemError::BadRange)?;
    let size = usize::try_from(end - first).map_err(|_| MemError::BadRange)?;
    let base = platform::reserve_area(size).ok_or(MemError::BadRange)?;
    let mut guard = FRAMES.lock();
    let fa = guard.as_mut().ok_or(MemError::OutOfMemory)?;
    let _window = paging::TableWindow::open();
    for done in (0..size).step_by(PAGE_SIZE) {
        // SAFETY: a fresh reservation nobody references; the frames are
        // the caller's device registers (contract).
        unsafe { paging::map_device(base + done, first + done as u64, fa) }
            .map_err(MemError::Map)?;
    }
    Ok(base + (phys - first) as usize)
}

/// The largest part of a BAR mapped for one virtio structure; longer
/// regions are cut to it (the transport checks every access against what
/// is mapped).
const MAX_PCI_REGION: u64 = 1 << 20;

/// Maps the BAR region a virtio-PCI capability names, at CPU physical
/// address `phys`, `len` bytes (at most 1 MiB of it), as device memory.
///
/// # Safety
/// The range must be inside a memory BAR of a function the caller drives,
/// mapped once and used only through the returned region.
pub unsafe fn map_pci_region(phys: u64, len: u64) -> Result<PciRegion, MemError> {
    let len = len.min(MAX_PCI_REGION);
    // SAFETY: the caller's registers (contract).
    let virt = unsafe { map_device(phys, len) }?;
    // SAFETY: just mapped as device memory, `len` bytes, for this region
    // alone.
    Ok(unsafe { PciRegion::new(virt, len as usize) })
}

/// Unmaps `[addr, addr + len)` and frees its frames.
///
/// # Safety
/// No Rust reference may point into the range.
pub unsafe fn unmap(addr: usize, len: usize) -> Result<(), MemError> {
    check_range(addr, len)?;
    let mut guard = FRAMES.lock();
    let fa = guard.as_mut().ok_or(MemError::OutOfMemory)?;
    // SAFETY: caller's contract.
    unsafe { paging::unmap_range(addr, addr + len, &mut |f| free_frame(fa, f)) };
    Ok(())
}

/// Changes the access of the mapped pages `[addr, addr + len)`.
///
/// # Safety
/// As [`paging::protect`].
pub unsafe fn protect(addr: usize, len: usize, access: Access) -> Result<(), MemError> {
    check_range(addr, len)?;
    let mut guard = FRAMES.lock();
    let fa = guard.as_mut().ok_or(MemError::OutOfMemory)?;
    let _window = paging::TableWindow::open();
    for va in (addr..addr + len).step_by(PAGE_SIZE) {
        // SAFETY: caller's contract.
        unsafe { protect_page(va, access, fa) }?;
    }
    Ok(())
}

/// Changes what the mapped page at `va` allows, and makes the identity
/// map's view of its frame writable exactly when the page is: a frame
/// that holds code is writable nowhere.
///
/// # Safety
/// As [`paging::protect`]; nothing may write the frame through the
/// identity map while it is read-only.
unsafe fn protect_page(va: usize, access: Access, fa: &mut FrameAllocator) -> Result<(), MemError> {
    // SAFETY: caller's contract.
    unsafe { paging::protect(va, access) }.map_err(MemError::Map)?;
    if let Some(frame) = paging::translate(va) {
        // SAFETY: the page's frame is ours (caller's contract), written
        // only through `va` while read-only in the identity map.
        unsafe { paging::set_identity_writable(frame, access.write, Some(fa)) }
            .map_err(MemError::Map)?;
    }
    Ok(())
}

/// Gives back a frame `paging::unmap_range` just unmapped.
fn free_frame(fa: &mut FrameAllocator, frame: u64) {
    // A code frame was read-only in the identity map: the allocator
    // writes free frames there. (Making it writable never fails.)
    // SAFETY: the frame is ours again, referenced by nothing.
    let _ = unsafe { paging::set_identity_writable(frame, true, None) };
    // SAFETY: `unmap_range` reports only frames it removed from the page
    // tables (data pages and emptied tables), which nothing references.
    unsafe { fa.free(frame) }
}

fn check_range(addr: usize, len: usize) -> Result<(), MemError> {
    let end = addr.checked_add(len).ok_or(MemError::BadRange)?;
    if addr < paging::DYNAMIC_BASE
        || end > paging::DYNAMIC_END
        || !addr.is_multiple_of(PAGE_SIZE)
        || !len.is_multiple_of(PAGE_SIZE)
    {
        return Err(MemError::BadRange);
    }
    Ok(())
}

/// A stack with an unmapped guard page below it.
pub struct Stack {
    /// lowest usable address
    pub bottom: usize,
    /// one past the highest usable address (initial stack pointer)
    pub top: usize,
}

/// Allocates a mapped stack of `size` bytes with a guard page below.
pub fn allocate_stack(size: usize) -> Result<Stack, MemError> {
    let size = size.next_multiple_of(PAGE_SIZE);
    let base = platform::reserve_area(size + PAGE_SIZE).ok_or(MemError::BadRange)?;
    let bottom = base + PAGE_SIZE;
    // SAFETY: a fresh reservation nobody references.
    unsafe { map_zeroed(bottom, size, Access::DATA) }?;
    Ok(Stack {
        bottom,
        top: bottom + size,
    })
}

/// Unmaps a stack [`allocate_stack`] made and gives its addresses back.
///
/// # Safety
/// Nothing may run on, or point into, the stack any more.
pub unsafe fn free_stack(stack: Stack) {
    let size = stack.top - stack.bottom;
    // SAFETY: the caller's contract; the range is this stack's mapping.
    if unsafe { unmap(stack.bottom, size) }.is_ok() {
        platform::release_area(stack.bottom - PAGE_SIZE, size + PAGE_SIZE);
    }
}

/// DMA memory for drivers: contiguous frames from the frame allocator,
/// reached through the identity map (so the CPU and devices use the same
/// address). Frames given to a device are never taken back.
pub struct FrameDma;

impl Dma for FrameDma {
    fn allocate(&mut self, pages: usize) -> Result<DmaRegion, DmaError> {
        let len = pages
            .checked_mul(PAGE_SIZE)
            .filter(|l| *l > 0)
            .ok_or(DmaError::Unsupported(pages))?;
        let start = {
            let mut guard = FRAMES.lock();
            let fa = guard.as_mut().ok_or(DmaError::OutOfMemory)?;
            fa.allocate_contiguous(pages as u64)
                .ok_or(DmaError::OutOfMemory)?
        };
        let last = start + (len - PAGE_SIZE) as u64;
        if paging::translate(start as usize) != Some(start)
            || paging::translate(last as usize) != Some(last)
        {
            // Not reachable by the identity map (RAM above what it
            // covers): unusable for DMA; the frames stay allocated.
            return Err(DmaError::OutOfMemory);
        }
        // SAFETY: fresh frames from the allocator, identity-mapped
        // read-write (checked), used by nothing else.
        unsafe { core::ptr::write_bytes(start as *mut u8, 0, len) };
        // SAFETY: as above; they stay allocated for good, and RAM is
        // coherent with devices on the machines Basalt boots (QEMU's
        // device trees say `dma-coherent`; x86 is coherent).
        Ok(unsafe { DmaRegion::new(start, start as *mut u8, len) })
    }
}

/// The physical range `[start, start + len)` as a byte slice, if it is RAM
/// the identity map covers and the frame allocator never hands out (the
/// initrd).
pub fn phys_slice(start: u64, len: u64) -> Option<&'static [u8]> {
    let end = start.checked_add(len)?;
    if start == 0 || len == 0 || paging::translate(start as usize) != Some(start) {
        return None;
    }
    if paging::translate((end - 1) as usize) != Some(end - 1) {
        return None;
    }
    // SAFETY: identity-mapped (checked) and excluded from the frame
    // allocator by `FrameAllocator::new`, so nothing else writes it.
    Some(unsafe { core::slice::from_raw_parts(start as *const u8, len as usize) })
}
