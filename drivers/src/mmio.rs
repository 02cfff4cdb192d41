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
