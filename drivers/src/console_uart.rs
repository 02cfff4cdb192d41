//! The UARTs an Arm machine's firmware tables can name as its console,
//! behind one type: a PL011 (QEMU `virt`, most boards, SBSA servers) or a
//! 16550 in memory (Firecracker's `ns16550a`, AWS Graviton's SPCR).

use crate::SerialPort;
use crate::ns16550::{Ns16550, Ns16550Error, Ns16550Layout};
use crate::pl011::{Pl011, Pl011Error};

/// Which programming model a console UART has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UartModel {
    /// an Arm PL011
    Pl011,
    /// a 16550 with this register layout
    Ns16550(Ns16550Layout),
}

impl UartModel {
    /// The bytes of registers to map as device memory.
    pub fn window_len(&self) -> u64 {
        match self {
            UartModel::Pl011 => 0x1000,
            UartModel::Ns16550(layout) => layout.window_len(),
        }
    }
}

impl core::fmt::Display for UartModel {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            UartModel::Pl011 => f.write_str("PL011"),
            UartModel::Ns16550(l) if *l == Ns16550Layout::BYTES => f.write_str("16550"),
            UartModel::Ns16550(l) => write!(
                f,
                "16550 (reg-shift {}, {}-byte accesses)",
                l.reg_shift, l.access_bytes
            ),
        }
    }
}

/// Why a console UART was not taken into use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsoleUartError {
    /// the PL011 did not identify itself
    Pl011(Pl011Error),
    /// the 16550 did not answer or has a layout not handled
    Ns16550(Ns16550Error),
}

/// A console UART in memory, initialised.
pub enum ConsoleUart {
    /// a PL011
    Pl011(Pl011),
    /// a 16550
    Ns16550(Ns16550),
}

impl ConsoleUart {
    /// Takes the UART of `model` at physical address `base` into use.
    ///
    /// # Safety
    /// `base` must be the register window of a UART the firmware tables
    /// name, [`UartModel::window_len`] bytes identity-mapped as device
    /// memory, and driven by nothing else (emergency writers aside).
    #[allow(unsafe_code)]
    pub unsafe fn new(model: UartModel, base: u64) -> Result<ConsoleUart, ConsoleUartError> {
        match model {
            // SAFETY: forwarded contract.
            UartModel::Pl011 => unsafe { Pl011::new(base) }
                .map(ConsoleUart::Pl011)
                .map_err(ConsoleUartError::Pl011),
            // SAFETY: forwarded contract.
            UartModel::Ns16550(layout) => unsafe { Ns16550::new(base, layout) }
                .map(ConsoleUart::Ns16550)
                .map_err(ConsoleUartError::Ns16550),
        }
    }

    /// Writes `bytes` without waiting forever for a stuck transmitter, for
    /// last-resort reports.
    pub fn emergency_write(&self, bytes: &[u8]) {
        match self {
            ConsoleUart::Pl011(u) => u.emergency_write(bytes),
            ConsoleUart::Ns16550(u) => u.emergency_write(bytes),
        }
    }
}

impl SerialPort for ConsoleUart {
    fn write_bytes(&mut self, bytes: &[u8]) {
        match self {
            ConsoleUart::Pl011(u) => u.write_bytes(bytes),
            ConsoleUart::Ns16550(u) => u.write_bytes(bytes),
        }
    }

    fn try_read_byte(&mut self) -> Option<u8> {
        match self {
            ConsoleUart::Pl011(u) => u.try_read_byte(),
            ConsoleUart::Ns16550(u) => u.try_read_byte(),
        }
    }
}
