//! Everything ISA-specific: boot entry, paging, traps, timers, power-off.

#![no_std]
