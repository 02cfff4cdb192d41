//! The port-access layer: the only place drivers touch I/O ports.
//!
//! These wrappers are crate-private: each driver uses them only for the
//! ports of its own device, which is what makes them sound to call.

use x86_64::instructions::port::Port;

/// Reads a byte from `port`.
pub(crate) fn inb(port: u16) -> u8 {
    let mut p: Port<u8> = Port::new(port);
    // SAFETY: drivers read only their own device's registers.
    unsafe { p.read() }
}

/// Writes a byte to `port`.
pub(crate) fn outb(port: u16, value: u8) {
    let mut p: Port<u8> = Port::new(port);
    // SAFETY: drivers write only their own device's registers.
    unsafe { p.write(value) }
}

/// Writes a 32-bit value to `port`.
pub(crate) fn outl(port: u16, value: u32) {
    let mut p: Port<u32> = Port::new(port);
    // SAFETY: drivers write only their own device's registers.
    unsafe { p.write(value) }
}

/// Reads a 32-bit value from `port`.
pub(crate) fn inl(port: u16) -> u32 {
    let mut p: Port<u32> = Port::new(port);
    // SAFETY: drivers read only their own device's registers.
    unsafe { p.read() }
}
