//! x86-64: PVH boot, 4-level paging, GDT/TSS/IDT, TSC, CPUID features,
//! ACPI power-off.

pub mod boot;
pub mod cpu;
pub mod paging;
pub mod power;
pub mod stack;
pub mod traps;
