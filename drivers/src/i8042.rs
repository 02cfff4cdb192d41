//! The i8042 keyboard controller, used only for its CPU-reset line: with
//! QEMU's `-no-reboot` a reset ends the VM, and Firecracker treats it as
//! shutdown.

/// Pulses the CPU reset line. Returns if no controller acts on it.
pub fn reset() {
    let mut spins = 0u32;
    // Wait (bounded) for the controller's input buffer to drain.
    while crate::portio::inb(0x64) & 0x02 != 0 && spins < 100_000 {
        spins += 1;
        core::hint::spin_loop();
    }
    crate::portio::outb(0x64, 0xfe);
}
