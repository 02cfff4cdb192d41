//! x86-64: PVH boot, 4-level paging, GDT/TSS/IDT, TSC, CPUID features.

pub mod boot;
pub mod cpu;
pub mod paging;
pub mod stack;
pub mod traps;
