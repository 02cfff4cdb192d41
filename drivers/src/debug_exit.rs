//! QEMU's `isa-debug-exit` device: writing `v` makes QEMU exit with
//! status `(v << 1) | 1`.

use x86_64::instructions::port::Port;

/// The I/O base Basalt expects the device at (`iobase=0xf4,iosize=4`).
pub const PORT: u16 = 0xf4;

/// Asks QEMU to exit with status `(value << 1) | 1`. Returns if no such
/// device is present.
pub fn exit(value: u32) {
    let mut port: Port<u32> = Port::new(PORT);
    // SAFETY: port 0xf4 is the debug-exit device or unassigned; writing an
    // unassigned port does nothing.
    unsafe { port.write(value) };
}
