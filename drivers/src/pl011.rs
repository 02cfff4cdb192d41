//! Arm PL011 UARTs, polled (interrupts masked).
//!
//! As with the 16550 driver, initialisation never resets or re-enables
//! the FIFOs (writing the line-control register's FIFO bit flushes them
//! and would drop stdin bytes the host sent before the kernel ran): it
//! only makes sure the UART, its transmitter and receiver are on.

use crate::SerialPort;
use crate::mmio::Mmio;

const DR: usize = 0x00;
const FR: usize = 0x18;
const CR: usize = 0x30;
const IMSC: usize = 0x38;

const FR_RXFE: u32 = 1 << 4;
const FR_TXFF: u32 = 1 << 5;
const CR_ENABLE: u32 = 1 | 1 << 8 | 1 << 9;

/// The PrimeCell part number of a PL011.
const PART: u32 = 0x011;

/// An initialised PL011.
pub struct Pl011 {
    regs: Mmio,
}

/// Why a UART was not taken into use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pl011Error {
    /// the registers do not identify a PL011
    NotPl011,
}

impl Pl011 {
    /// Takes the PL011 at physical address `base` (from the device tree)
    /// into use: checks its identification, masks its interrupts and turns
    /// it on.
    ///
    /// # Safety
    /// `base` must be the register window of a UART the device tree names,
    /// identity-mapped as device memory, and driven by nothing else.
    #[allow(unsafe_code)]
    pub unsafe fn new(base: u64) -> Result<Pl011, Pl011Error> {
        // SAFETY: forwarded contract.
        let regs = unsafe { Mmio::new(base) };
        if !regs.is_primecell() || regs.part_number() != PART {
            return Err(Pl011Error::NotPl011);
        }
        regs.write32(IMSC, 0);
        let cr = regs.read32(CR);
        if cr & CR_ENABLE != CR_ENABLE {
            regs.write32(CR, cr | CR_ENABLE);
        }
        Ok(Pl011 { regs })
    }

    /// Writes `bytes` without waiting forever for a stuck transmitter, for
    /// last-resort reports.
    pub fn emergency_write(&self, bytes: &[u8]) {
        for &b in bytes {
            let mut spins = 0u32;
            while self.regs.read32(FR) & FR_TXFF != 0 && spins < 100_000 {
                spins += 1;
                core::hint::spin_loop();
            }
            self.regs.write32(DR, u32::from(b));
        }
    }
}

impl SerialPort for Pl011 {
    fn write_bytes(&mut self, bytes: &[u8]) {
        for &b in bytes {
            while self.regs.read32(FR) & FR_TXFF != 0 {
                core::hint::spin_loop();
            }
            self.regs.write32(DR, u32::from(b));
        }
    }

    fn try_read_byte(&mut self) -> Option<u8> {
        (self.regs.read32(FR) & FR_RXFE == 0).then(|| self.regs.read32(DR) as u8)
    }
}
