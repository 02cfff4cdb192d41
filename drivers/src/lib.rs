//! Device drivers behind small traits: UARTs, RTCs, exit devices, timers,
//! the device-tree and ACPI readers, PCI configuration space and enumeration,
//! virtio (the virtio-mmio and virtio-PCI transports, split virtqueues,
//! virtio-rng, virtio-9p) and the 9P2000.L client that runs over it.
//!
//! Drivers know nothing of WASI or of the kernel's policy; they touch their
//! device and report what it says. The port- and MMIO-access layers and
//! the accessors of DMA memory (`virtio::dma`) are the only `unsafe` code
//! here.

#![no_std]
#![deny(unsafe_code)]

extern crate alloc;
#[cfg(any(test, feature = "simulated"))]
extern crate std;

pub mod acpi;
pub mod fdt;
pub mod ninep;
pub mod ns16550;
pub mod pci;
pub mod virtio;

#[allow(unsafe_code)]
mod mmio;

#[cfg(target_arch = "aarch64")]
pub mod console_uart;
#[cfg(target_arch = "aarch64")]
pub mod gic;
#[cfg(target_arch = "aarch64")]
pub mod pl011;
#[cfg(target_arch = "aarch64")]
pub mod pl031;

#[cfg(target_arch = "x86_64")]
pub mod cmos_rtc;
#[cfg(target_arch = "x86_64")]
pub mod debug_exit;
#[cfg(target_arch = "x86_64")]
pub mod i8042;
#[cfg(target_arch = "x86_64")]
pub mod pit;
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod portio;
#[cfg(target_arch = "x86_64")]
pub mod uart;

/// A byte-oriented serial port.
pub trait SerialPort: Send {
    /// Writes all of `bytes`, waiting for the transmitter as needed.
    fn write_bytes(&mut self, bytes: &[u8]);
    /// A received byte, if one is waiting.
    fn try_read_byte(&mut self) -> Option<u8>;
}

/// A battery-backed wall clock.
pub trait WallClock {
    /// Seconds since 1970-01-01 00:00:00 UTC, if the clock reads sensibly.
    fn unix_seconds(&mut self) -> Option<u64>;
}
