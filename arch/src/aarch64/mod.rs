//! AArch64: the Linux arm64 Image boot protocol, EL2 → EL1, 4-level
//! paging with a 4 KiB granule, exception vectors, the generic timer,
//! RNDR, PSCI and semihosting.

pub mod boot;
pub mod cpu;
pub mod paging;
pub mod power;
pub mod stack;
pub mod traps;
