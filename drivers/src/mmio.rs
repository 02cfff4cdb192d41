//! The MMIO-access layer: the only place drivers touch memory-mapped
//! registers.

/// A device's register window, identity-mapped as device memory.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mmio {
    base: usize,
}

impl Mmio {
    /// The window at physical address `base`.
    ///
    /// # Safety
    /// `base` must be the register window of the device the driver drives
    /// (from the device tree), mapped as device memory, and used by no one
    /// else; it must be at least a page long, or the driver must read and
    /// write only offsets inside the shorter window (virtio-mmio's are
    /// 0x200 bytes).
    pub(crate) unsafe fn new(base: u64) -> Mmio {
        Mmio {
            base: base as usize,
        }
    }

    /// Reads the 32-bit register at `offset` (below 4 KiB, aligned).
    pub(crate) fn read32(&self, offset: usize) -> u32 {
        debug_assert!(offset < 0x1000 && offset.is_multiple_of(4));
        // SAFETY: inside the device's window (constructor contract).
        unsafe { core::ptr::read_volatile((self.base + (offset & 0xffc)) as *const u32) }
    }

    /// Reads the 8-bit register at `offset` (below 4 KiB).
    pub(crate) fn read8(&self, offset: usize) -> u8 {
        debug_assert!(offset < 0x1000);
        // SAFETY: inside the device's window (constructor contract).
        unsafe { core::ptr::read_volatile((self.base + (offset & 0xfff)) as *const u8) }
    }

    /// Writes the 32-bit register at `offset` (below 4 KiB, aligned).
    pub(crate) fn write32(&self, offset: usize, value: u32) {
        debug_assert!(offset < 0x1000 && offset.is_multiple_of(4));
        // SAFETY: inside the device's window (constructor contract).
        unsafe { core::ptr::write_volatile((self.base + (offset & 0xffc)) as *mut u32, value) }
    }

    /// Whether the window carries the PrimeCell identification (0xb105f00d
    /// in the low bytes of the four registers at 0xff0).
    #[cfg(target_arch = "aarch64")]
    pub(crate) fn is_primecell(&self) -> bool {
        let id = [0xff0, 0xff4, 0xff8, 0xffc].map(|o| self.read32(o) & 0xff);
        id == [0x0d, 0xf0, 0x05, 0xb1]
    }

    /// The PrimeCell part number (peripheral ID 0 and the low bits of 1).
    #[cfg(target_arch = "aarch64")]
    pub(crate) fn part_number(&self) -> u32 {
        (self.read32(0xfe0) & 0xff) | (self.read32(0xfe4) & 0xf) << 8
    }
}

/// Orders every earlier store to memory a device reads by DMA (queue
/// descriptors, ring indices) before every later store to a device
/// register (a doorbell such as virtio's `QueueNotify`).
///
/// The device is outside the CPUs' inner-shareable domain as far as the
/// architecture is concerned, so on AArch64 this is `dmb oshst` (what Linux
/// calls `dma_wmb`), not the `dmb ishst` a Rust fence gives. x86-64 keeps
/// stores in order, also towards uncached MMIO; a compiler fence suffices
/// there, but the full fence costs nothing that matters.
pub(crate) fn barrier_before_doorbell() {
    #[cfg(target_arch = "aarch64")]
    // SAFETY: a barrier instruction; it touches no memory and no registers.
    unsafe {
        core::arch::asm!("dmb oshst", options(nostack, preserves_flags))
    };
    #[cfg(not(target_arch = "aarch64"))]
    core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
}

/// A register window of any length (a PCI BAR's region, an ECAM window),
/// mapped as device memory at a CPU address, with accesses of every width
/// checked against its length: an access outside the window reads as all
/// ones (as a PCI master abort does) and writes nothing, so a device that
/// lies about its layout cannot make a driver touch memory that is not
/// its own.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Window {
    base: usize,
    len: usize,
}

impl Window {
    /// The window of `len` bytes at CPU (virtual) address `base`.
    ///
    /// # Safety
    /// `[base, base + len)` must be mapped as device memory and hold the
    /// registers of a device the caller drives, used by no one else for
    /// as long as the window lives.
    pub(crate) unsafe fn new(base: usize, len: usize) -> Window {
        Window { base, len }
    }

    /// The window's length in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// The CPU address of the naturally aligned `size`-byte register at
    /// `offset`, if it lies inside the window.
    fn at(&self, offset: usize, size: usize) -> Option<usize> {
        (offset.is_multiple_of(size) && offset.checked_add(size).is_some_and(|e| e <= self.len))
            .then(|| self.base + offset)
    }

    /// Reads the byte at `offset`.
    pub(crate) fn read8(&self, offset: usize) -> u8 {
        match self.at(offset, 1) {
            // SAFETY: inside the window (checked; constructor contract).
            Some(p) => unsafe { core::ptr::read_volatile(p as *const u8) },
            None => u8::MAX,
        }
    }

    /// Reads the little-endian 16-bit register at `offset`.
    pub(crate) fn read16(&self, offset: usize) -> u16 {
        match self.at(offset, 2) {
            // SAFETY: inside the window and aligned (checked).
            Some(p) => u16::from_le(unsafe { core::ptr::read_volatile(p as *const u16) }),
            None => u16::MAX,
        }
    }

    /// Reads the little-endian 32-bit register at `offset`.
    pub(crate) fn read32(&self, offset: usize) -> u32 {
        match self.at(offset, 4) {
            // SAFETY: inside the window and aligned (checked).
            Some(p) => u32::from_le(unsafe { core::ptr::read_volatile(p as *const u32) }),
            None => u32::MAX,
        }
    }

    /// Writes the byte at `offset`.
    pub(crate) fn write8(&self, offset: usize, value: u8) {
        if let Some(p) = self.at(offset, 1) {
            // SAFETY: inside the window (checked; constructor contract).
            unsafe { core::ptr::write_volatile(p as *mut u8, value) }
        }
    }

    /// Writes the little-endian 16-bit register at `offset`.
    pub(crate) fn write16(&self, offset: usize, value: u16) {
        if let Some(p) = self.at(offset, 2) {
            // SAFETY: inside the window and aligned (checked).
            unsafe { core::ptr::write_volatile(p as *mut u16, value.to_le()) }
        }
    }

    /// Writes the little-endian 32-bit register at `offset`.
    pub(crate) fn write32(&self, offset: usize, value: u32) {
        if let Some(p) = self.at(offset, 4) {
            // SAFETY: inside the window and aligned (checked).
            unsafe { core::ptr::write_volatile(p as *mut u32, value.to_le()) }
        }
    }
}
