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
    /// (from the device tree), at least a page long, mapped as device memory,
    /// and used by no one else.
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

    /// Writes the 32-bit register at `offset` (below 4 KiB, aligned).
    pub(crate) fn write32(&self, offset: usize, value: u32) {
        debug_assert!(offset < 0x1000 && offset.is_multiple_of(4));
        // SAFETY: inside the device's window (constructor contract).
        unsafe { core::ptr::write_volatile((self.base + (offset & 0xffc)) as *mut u32, value) }
    }

    /// Whether the window carries the PrimeCell identification (0xb105f00d
    /// in the low bytes of the four registers at 0xff0).
    pub(crate) fn is_primecell(&self) -> bool {
        let id = [0xff0, 0xff4, 0xff8, 0xffc].map(|o| self.read32(o) & 0xff);
        id == [0x0d, 0xf0, 0x05, 0xb1]
    }

    /// The PrimeCell part number (peripheral ID 0 and the low bits of 1).
    pub(crate) fn part_number(&self) -> u32 {
        (self.read32(0xfe0) & 0xff) | (self.read32(0xfe4) & 0xf) << 8
    }
}
