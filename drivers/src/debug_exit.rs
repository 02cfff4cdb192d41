//! QEMU's `isa-debug-exit` device: writing `v` makes QEMU exit with
//! status `(v << 1) | 1`.

/// The I/O base Basalt expects the device at (`iobase=0xf4,iosize=4`).
pub const PORT: u16 = 0xf4;

/// Asks QEMU to exit with status `(value << 1) | 1`. Returns if no such
/// device is present.
pub fn exit(value: u32) {
    // Port 0xf4 is the debug-exit device or unassigned; writing an
    // unassigned port does nothing.
    crate::portio::outl(PORT, value);
}
