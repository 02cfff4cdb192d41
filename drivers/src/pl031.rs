//! The Arm PL031 real-time clock: a counter of seconds since the Unix
//! epoch (QEMU starts it at the host's time).

use crate::WallClock;
use crate::mmio::Mmio;

const DR: usize = 0x00;
/// The PrimeCell part number of a PL031.
const PART: u32 = 0x031;

/// A PL031.
pub struct Pl031 {
    regs: Mmio,
}

impl Pl031 {
    /// The PL031 at physical address `base` (from the device tree), if its
    /// registers identify one.
    ///
    /// # Safety
    /// `base` must be the register window of the RTC the device tree names,
    /// identity-mapped as device memory.
    #[allow(unsafe_code)]
    pub unsafe fn new(base: u64) -> Option<Pl031> {
        // SAFETY: forwarded contract.
        let regs = unsafe { Mmio::new(base) };
        (regs.is_primecell() && regs.part_number() == PART).then_some(Pl031 { regs })
    }
}

impl WallClock for Pl031 {
    fn unix_seconds(&mut self) -> Option<u64> {
        Some(u64::from(self.regs.read32(DR))).filter(|s| *s != 0)
    }
}
