//! The machine the kernel runs on, behind one small interface: how the
//! boot information is completed, the serial consoles and the kernel log
//! channel, the wall clock, the cycle-counter calibration, and how the VM
//! is left. `pc.rs` is the x86-64 PC (QEMU `q35`, `pc`, `microvm`);
//! `virt.rs` the AArch64 QEMU `virt` board and machines like it, described
//! by a device tree. See `docs/guest-protocol.md` for the channels.
//!
//! Each provides: `Console` (a [`basalt_drivers::SerialPort`]),
//! `LogChannel` (likewise), `complete_boot_info`, `consoles`,
//! `log_channel`, `emergency_log_write`, `wall_clock_seconds`,
//! `calibrate_cycles`, `init_timer_wakeup`, `prepare_power_off`,
//! `leave`, and for `devices.rs` `virtio_mmio_windows`,
//! `virtio_register_window`, `pci_host` and `pci_root`.

#[cfg_attr(target_arch = "x86_64", path = "pc.rs")]
#[cfg_attr(target_arch = "aarch64", path = "virt.rs")]
mod imp;

pub use imp::*;
