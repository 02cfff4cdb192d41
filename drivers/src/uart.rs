//! ISA 16550 UARTs through port I/O, polled (interrupts off).
//!
//! Initialisation never resets the receiver: with QEMU, a host may write
//! the program's stdin before the kernel runs, and enabling or clearing
//! the FIFOs (as generic 16550 drivers, including `uart_16550`'s `init`,
//! do) would drop those bytes. The FIFOs stay disabled; transmission waits
//! for the holding register before each byte.

use crate::SerialPort;
use crate::portio::{inb, outb};

/// Standard I/O base of COM1.
pub const COM1: u16 = 0x3f8;
/// Standard I/O base of COM2.
pub const COM2: u16 = 0x2f8;
/// Standard I/O base of COM3.
pub const COM3: u16 = 0x3e8;

const DATA: u16 = 0;
const IER: u16 = 1;
const LCR: u16 = 3;
const MCR: u16 = 4;
const LSR: u16 = 5;
const SCRATCH: u16 = 7;

const LSR_DATA_READY: u8 = 0x01;
const LSR_THR_EMPTY: u8 = 0x20;

/// An initialised 16550 at an I/O port base.
pub struct PortUart {
    base: u16,
}

impl PortUart {
    /// Probes the UART at `base` (scratch-register test) and sets it up for
    /// 115200 8N1 with interrupts off; `None` if no UART answers there.
    pub fn probe(base: u16) -> Option<PortUart> {
        let present = [0x5a, 0xa5].iter().all(|&p| {
            outb(base + SCRATCH, p);
            inb(base + SCRATCH) == p
        });
        if !present {
            return None;
        }
        outb(base + IER, 0x00); // no interrupts
        outb(base + LCR, 0x80); // DLAB: divisor latch
        outb(base + DATA, 0x01); // divisor 1: 115200 baud
        outb(base + IER, 0x00);
        outb(base + LCR, 0x03); // 8 data bits, no parity, 1 stop bit
        outb(base + MCR, 0x03); // DTR, RTS
        Some(PortUart { base })
    }
}

impl SerialPort for PortUart {
    fn write_bytes(&mut self, bytes: &[u8]) {
        for &b in bytes {
            while inb(self.base + LSR) & LSR_THR_EMPTY == 0 {
                core::hint::spin_loop();
            }
            outb(self.base + DATA, b);
        }
    }

    fn try_read_byte(&mut self) -> Option<u8> {
        (inb(self.base + LSR) & LSR_DATA_READY != 0).then(|| inb(self.base + DATA))
    }
}

/// Writes `bytes` to the UART at `base` without any state or locking, for
/// last-resort reports (exceptions, panics) when the normal driver may be
/// in use by the interrupted code.
pub fn emergency_write(base: u16, bytes: &[u8]) {
    for &b in bytes {
        let mut spins = 0u32;
        // Wait for the transmit holding register, but not forever.
        while inb(base + LSR) & LSR_THR_EMPTY == 0 && spins < 100_000 {
            spins += 1;
            core::hint::spin_loop();
        }
        outb(base + DATA, b);
    }
}
