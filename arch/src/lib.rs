//! Everything ISA-specific: boot entry, paging, traps, timers, power-off.
//!
//! Generic code uses the modules re-exported here ([`cpu`], [`paging`],
//! [`power`], [`traps`], [`stack`]) and the ISA-neutral [`BootInfo`]; it
//! never names the ISA. Each ISA provides the same module names with the same items.
//!
//! The boot stub calls the kernel's entry point,
//! `basalt_kernel_main(&'static BootInfo) -> !`, which the kernel binary
//! defines.

#![no_std]

pub mod bootinfo;
mod handoff;
mod table_window;

#[cfg_attr(target_arch = "x86_64", path = "x86_64/mod.rs")]
#[cfg_attr(target_arch = "aarch64", path = "aarch64/mod.rs")]
mod imp;

pub use bootinfo::{BootInfo, MemoryKind, MemoryRegion, PhysRange, WallClockSample};
pub use imp::{boot, cpu, paging, power, stack, traps};

/// A place to resume execution after a fault was handled (a wasm trap).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resume {
    /// program counter to continue at
    pub pc: usize,
    /// stack pointer to continue with
    pub sp: usize,
}
