//! Memory shared with devices: physically contiguous, DMA-visible pages
//! the kernel hands out through [`Dma`], and the volatile accessors the
//! queues read and write them with. The only `unsafe` of the virtio code
//! besides the register window.

/// The granule of [`Dma::allocate`].
pub const DMA_PAGE_SIZE: usize = 4096;

/// Why DMA memory could not be had.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DmaError {
    /// no free physical memory (of that many contiguous pages)
    OutOfMemory,
    /// the allocator does not hand out runs of this many pages
    Unsupported(usize),
}

impl core::fmt::Display for DmaError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            DmaError::OutOfMemory => f.write_str("out of DMA memory"),
            DmaError::Unsupported(n) => write!(f, "cannot allocate {n} contiguous DMA pages"),
        }
    }
}

/// The kernel's side of DMA: who gives drivers memory a device can reach.
/// The drivers crate knows nothing of the kernel's allocators; the kernel
/// implements this for its frame allocator and passes it in.
///
/// Drivers never give pages back: a device that failed half-way through
/// setup may still write into memory it was shown.
pub trait Dma {
    /// `pages` zeroed, physically contiguous pages of
    /// [`DMA_PAGE_SIZE`] bytes, page-aligned, mapped cache-coherently with
    /// the devices (on QEMU, and on machines whose device tree says
    /// `dma-coherent`, ordinary write-back memory).
    fn allocate(&mut self, pages: usize) -> Result<DmaRegion, DmaError>;
}

/// A run of memory shared with a device: where the device sees it
/// (`phys`) and where the CPU does (`virt`). Owned: one region, one user.
#[derive(Debug)]
pub struct DmaRegion {
    phys: u64,
    virt: usize,
    len: usize,
}

impl DmaRegion {
    /// The region of `len` bytes at CPU address `virt`, which devices
    /// reach at bus address `phys`.
    ///
    /// # Safety
    /// `[virt, virt + len)` must be mapped, writable, page-aligned memory
    /// that nothing else uses for as long as the region (and any device
    /// it is shown to) lives, and devices must reach the same bytes at
    /// `phys` coherently.
    #[allow(unsafe_code)]
    pub unsafe fn new(phys: u64, virt: *mut u8, len: usize) -> DmaRegion {
        DmaRegion {
            phys,
            virt: virt as usize,
            len,
        }
    }

    /// The bus (physical) address devices use.
    pub fn phys(&self) -> u64 {
        self.phys
    }

    /// The length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the region has no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The CPU address of the `size`-byte, naturally aligned field at
    /// `offset`. Offsets come from the queue code, never from a device:
    /// one outside the region is a driver bug, and stops here rather than
    /// touching memory that is not ours.
    fn at(&self, offset: usize, size: usize) -> usize {
        assert!(
            offset.is_multiple_of(size) && offset.checked_add(size).is_some_and(|e| e <= self.len),
            "DMA access at {offset:#x}+{size} outside a {:#x}-byte region",
            self.len
        );
        self.virt + offset
    }

    /// Reads the little-endian 16-bit field at `offset`.
    pub(crate) fn read_u16(&self, offset: usize) -> u16 {
        let p = self.at(offset, 2) as *const u16;
        // SAFETY: inside the region and aligned (checked by `at`); the
        // region is ours (constructor contract). Volatile: a device may
        // change it at any time.
        u16::from_le(unsafe { p.read_volatile() })
    }

    /// Reads the little-endian 32-bit field at `offset`.
    pub(crate) fn read_u32(&self, offset: usize) -> u32 {
        let p = self.at(offset, 4) as *const u32;
        // SAFETY: as in `read_u16`.
        u32::from_le(unsafe { p.read_volatile() })
    }

    /// Reads the little-endian 64-bit field at `offset`.
    #[cfg(any(test, feature = "simulated"))]
    pub(crate) fn read_u64(&self, offset: usize) -> u64 {
        let p = self.at(offset, 8) as *const u64;
        // SAFETY: as in `read_u16`.
        u64::from_le(unsafe { p.read_volatile() })
    }

    /// Writes the little-endian 16-bit field at `offset`.
    pub(crate) fn write_u16(&self, offset: usize, value: u16) {
        let p = self.at(offset, 2) as *mut u16;
        // SAFETY: as in `read_u16`; the region is writable.
        unsafe { p.write_volatile(value.to_le()) }
    }

    /// Writes the little-endian 32-bit field at `offset`.
    pub(crate) fn write_u32(&self, offset: usize, value: u32) {
        let p = self.at(offset, 4) as *mut u32;
        // SAFETY: as in `write_u16`.
        unsafe { p.write_volatile(value.to_le()) }
    }

    /// Writes the little-endian 64-bit field at `offset`.
    pub(crate) fn write_u64(&self, offset: usize, value: u64) {
        let p = self.at(offset, 8) as *mut u64;
        // SAFETY: as in `write_u16`.
        unsafe { p.write_volatile(value.to_le()) }
    }

    /// Copies `out.len()` bytes from `offset` into `out`. Call only for
    /// bytes the device has finished with (after its used-ring entry was
    /// seen), so a plain copy reads settled memory.
    pub(crate) fn read_bytes(&self, offset: usize, out: &mut [u8]) {
        if out.is_empty() {
            return;
        }
        let base = self.at(offset, 1);
        self.at(offset + out.len() - 1, 1);
        // SAFETY: every byte of `[offset, offset + len)` is inside the
        // region (both ends checked above), which is ours; `out` is a
        // distinct Rust buffer, so the two do not overlap.
        unsafe { core::ptr::copy_nonoverlapping(base as *const u8, out.as_mut_ptr(), out.len()) };
    }

    /// Writes `data` at `offset`. Call only for bytes the device does not
    /// own (before the buffer is added to a queue).
    pub(crate) fn write_bytes(&self, offset: usize, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        let base = self.at(offset, 1);
        self.at(offset + data.len() - 1, 1);
        // SAFETY: as in `read_bytes`; the region is writable.
        unsafe { core::ptr::copy_nonoverlapping(data.as_ptr(), base as *mut u8, data.len()) };
    }
}

/// Host-side DMA for tests and fuzzing (feature `simulated`): page-aligned
/// heap memory whose "physical" address is its own address, as in the
/// kernel's identity map.
#[cfg(any(test, feature = "simulated"))]
pub mod host {
    use super::*;
    use std::alloc::{Layout, alloc_zeroed, dealloc};
    use std::vec::Vec;

    /// `pages` zeroed pages from the heap: the pointer and its layout.
    fn heap_pages(pages: usize) -> Result<(*mut u8, Layout), DmaError> {
        let len = pages
            .checked_mul(DMA_PAGE_SIZE)
            .filter(|l| *l > 0)
            .ok_or(DmaError::Unsupported(pages))?;
        let layout = Layout::from_size_align(len, DMA_PAGE_SIZE)
            .map_err(|_| DmaError::Unsupported(pages))?;
        #[allow(unsafe_code)]
        // SAFETY: `len` is not zero (checked above).
        let p = unsafe { alloc_zeroed(layout) };
        if p.is_null() {
            return Err(DmaError::OutOfMemory);
        }
        Ok((p, layout))
    }

    /// An allocator over the process's heap whose regions are never
    /// freed: for short tests.
    pub struct HostDma;

    impl Dma for HostDma {
        fn allocate(&mut self, pages: usize) -> Result<DmaRegion, DmaError> {
            let (p, layout) = heap_pages(pages)?;
            #[allow(unsafe_code)]
            // SAFETY: fresh, leaked, page-aligned memory of `layout.size()` bytes.
            Ok(unsafe { DmaRegion::new(p as u64, p, layout.size()) })
        }
    }

    /// An allocator over the process's heap that frees every region it
    /// handed out when it is dropped: for fuzzing, where leaks add up.
    /// The arena must outlive every region, queue and simulated device
    /// made from it (declare it first).
    #[derive(Default)]
    pub struct HostDmaArena {
        allocations: Vec<(*mut u8, Layout)>,
    }

    impl Dma for HostDmaArena {
        fn allocate(&mut self, pages: usize) -> Result<DmaRegion, DmaError> {
            let (p, layout) = heap_pages(pages)?;
            self.allocations.push((p, layout));
            #[allow(unsafe_code)]
            // SAFETY: fresh page-aligned memory of `layout.size()` bytes,
            // freed only when the arena drops, after its users (the
            // arena's documented contract).
            Ok(unsafe { DmaRegion::new(p as u64, p, layout.size()) })
        }
    }

    impl Drop for HostDmaArena {
        fn drop(&mut self) {
            for (p, layout) in self.allocations.drain(..) {
                #[allow(unsafe_code)]
                // SAFETY: allocated by `heap_pages` with this layout, freed once.
                unsafe {
                    dealloc(p, layout)
                };
            }
        }
    }

    /// The region at a bus address handed to a simulated device (on the
    /// host allocators above, bus address = CPU address).
    pub(crate) fn at_phys(phys: u64, len: usize) -> DmaRegion {
        DmaRegion {
            phys,
            virt: phys as usize,
            len,
        }
    }
}
