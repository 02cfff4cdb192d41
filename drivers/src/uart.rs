//! ISA 16550 UARTs through port I/O (wrapping `uart_16550`).

use uart_16550::backend::PioBackend;
use uart_16550::{Config, Uart16550};

use crate::SerialPort;

/// Standard I/O base of COM1.
pub const COM1: u16 = 0x3f8;
/// Standard I/O base of COM2.
pub const COM2: u16 = 0x2f8;
/// Standard I/O base of COM3.
pub const COM3: u16 = 0x3e8;

/// An initialised 16550 at an I/O port base.
pub struct PortUart {
    uart: Uart16550<PioBackend>,
}

impl PortUart {
    /// Probes and initialises the UART at `base` (115200 8N1, FIFOs on,
    /// interrupts off); `None` if no UART answers there.
    pub fn probe(base: u16) -> Option<PortUart> {
        // SAFETY: the standard COM bases are 8 I/O ports reserved for UARTs
        // on PC-compatible machines; nothing else drives them.
        let mut uart = unsafe { Uart16550::new_port(base) }.ok()?;
        let config = Config {
            baud_rate: uart_16550::BaudRate::Baud115200,
            ..Config::DEFAULT
        };
        uart.init(config).ok()?;
        Some(PortUart { uart })
    }
}

impl SerialPort for PortUart {
    fn write_bytes(&mut self, bytes: &[u8]) {
        self.uart.send_bytes_exact(bytes);
    }

    fn try_read_byte(&mut self) -> Option<u8> {
        self.uart.try_receive_byte().ok()
    }
}

/// Writes `bytes` to the UART at `base` without any state or locking, for
/// last-resort reports (exceptions, panics) when the normal driver may be
/// in use by the interrupted code.
pub fn emergency_write(base: u16, bytes: &[u8]) {
    use x86_64::instructions::port::Port;
    let mut data: Port<u8> = Port::new(base);
    let mut lsr: Port<u8> = Port::new(base + 5);
    for &b in bytes {
        let mut spins = 0u32;
        // SAFETY: reading the line status register has no side effects.
        while unsafe { lsr.read() } & 0x20 == 0 && spins < 100_000 {
            spins += 1;
            core::hint::spin_loop();
        }
        // SAFETY: writing the transmit register sends one byte.
        unsafe { data.write(b) };
    }
}
