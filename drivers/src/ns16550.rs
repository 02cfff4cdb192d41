//! 16550-compatible UARTs over MMIO, polled (interrupts off): the console
//! of Firecracker's AArch64 machine (`ns16550a` in its device tree) and of
//! servers whose SPCR names a 16550 in memory (AWS Graviton's sits behind
//! a PCI BAR).
//!
//! Register `n` lies at `base + (n << reg_shift)` and is accessed
//! `access_bytes` wide (the device tree's `reg-shift` and `reg-io-width`,
//! or the SPCR's generic address structure). As with the port-I/O driver
//! (`uart`), initialisation never enables or clears the FIFOs, which would
//! drop stdin bytes a host sent before the kernel ran.

use crate::SerialPort;
use crate::mmio::Window;

const DATA: usize = 0;
const IER: usize = 1;
const LCR: usize = 3;
const MCR: usize = 4;
const LSR: usize = 5;
const SCRATCH: usize = 7;

const LSR_DATA_READY: u8 = 0x01;
const LSR_THR_EMPTY: u8 = 0x20;

/// How a 16550's registers are laid out in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ns16550Layout {
    /// register `n` is at `base + (n << reg_shift)` (0 to 3)
    pub reg_shift: u8,
    /// bytes per access: 1 or 4
    pub access_bytes: u8,
}

impl Ns16550Layout {
    /// Byte-wide registers, one after the other (the device tree's
    /// defaults, and Firecracker's).
    pub const BYTES: Ns16550Layout = Ns16550Layout {
        reg_shift: 0,
        access_bytes: 1,
    };

    /// The bytes the eight registers span.
    pub fn window_len(&self) -> u64 {
        8 << self.reg_shift.min(3)
    }
}

/// Why a UART was not taken into use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ns16550Error {
    /// the layout is not one this driver handles (a shift above 3, or
    /// accesses other than 1 or 4 bytes, or 4-byte accesses to registers
    /// closer than 4 bytes)
    UnsupportedLayout(Ns16550Layout),
    /// the scratch register does not keep what is written: no 16550 there
    NoUart,
}

impl core::fmt::Display for Ns16550Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Ns16550Error::UnsupportedLayout(l) => write!(
                f,
                "unsupported 16550 layout (reg-shift {}, {}-byte accesses)",
                l.reg_shift, l.access_bytes
            ),
            Ns16550Error::NoUart => f.write_str("no 16550 answers there"),
        }
    }
}

/// An initialised 16550 in memory.
pub struct Ns16550 {
    regs: Window,
    layout: Ns16550Layout,
}

impl Ns16550 {
    /// Takes the 16550 at physical address `base` into use: checks that
    /// it answers (scratch-register test) and sets it up for 115200 8N1
    /// with interrupts off.
    ///
    /// # Safety
    /// `base` must be the register window of a UART the firmware tables
    /// name, [`Ns16550Layout::window_len`] bytes identity-mapped as device
    /// memory, and driven by nothing else (the emergency writer aside).
    #[allow(unsafe_code)]
    pub unsafe fn new(base: u64, layout: Ns16550Layout) -> Result<Ns16550, Ns16550Error> {
        let supported = layout.reg_shift <= 3
            && matches!(layout.access_bytes, 1 | 4)
            && (layout.access_bytes == 1 || layout.reg_shift >= 2);
        if !supported {
            return Err(Ns16550Error::UnsupportedLayout(layout));
        }
        // SAFETY: forwarded contract; the window is exactly the registers.
        let regs = unsafe { Window::new(base as usize, layout.window_len() as usize) };
        let uart = Ns16550 { regs, layout };
        let present = [0x5a, 0xa5].iter().all(|&p| {
            uart.write(SCRATCH, p);
            uart.read(SCRATCH) == p
        });
        if !present {
            return Err(Ns16550Error::NoUart);
        }
        uart.write(IER, 0x00); // no interrupts
        uart.write(LCR, 0x80); // DLAB: divisor latch
        uart.write(DATA, 0x01); // divisor 1: 115200 baud at 1.8432 MHz
        uart.write(IER, 0x00);
        uart.write(LCR, 0x03); // 8 data bits, no parity, 1 stop bit
        uart.write(MCR, 0x03); // DTR, RTS
        Ok(uart)
    }

    fn read(&self, reg: usize) -> u8 {
        let at = reg << self.layout.reg_shift;
        match self.layout.access_bytes {
            4 => self.regs.read32(at) as u8,
            _ => self.regs.read8(at),
        }
    }

    fn write(&self, reg: usize, value: u8) {
        let at = reg << self.layout.reg_shift;
        match self.layout.access_bytes {
            4 => self.regs.write32(at, u32::from(value)),
            _ => self.regs.write8(at, value),
        }
    }

    /// Writes `bytes` without waiting forever for a stuck transmitter, for
    /// last-resort reports.
    pub fn emergency_write(&self, bytes: &[u8]) {
        for &b in bytes {
            let mut spins = 0u32;
            while self.read(LSR) & LSR_THR_EMPTY == 0 && spins < 100_000 {
                spins += 1;
                core::hint::spin_loop();
            }
            self.write(DATA, b);
        }
    }
}

impl SerialPort for Ns16550 {
    fn write_bytes(&mut self, bytes: &[u8]) {
        for &b in bytes {
            while self.read(LSR) & LSR_THR_EMPTY == 0 {
                core::hint::spin_loop();
            }
            self.write(DATA, b);
        }
    }

    fn try_read_byte(&mut self) -> Option<u8> {
        (self.read(LSR) & LSR_DATA_READY != 0).then(|| self.read(DATA))
    }
}
