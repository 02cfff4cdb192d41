//! AArch64: the virtual counter and the jump into the kernel with the MMU
//! and caches off.

use crate::{LoadError, PAGE_SIZE, load_error};
use core::arch::asm;
use uefi::boot::{self, AllocateType, MemoryType};

/// The kernel's first stack, in bytes (`LOADER_DATA`).
const STACK_SIZE: u64 = 64 * 1024;

/// The virtual counter (`cntvct_el0`).
pub fn counter() -> u64 {
    let v: u64;
    // SAFETY: reads a counter EL0 and up may read; isb orders it.
    unsafe { asm!("isb", "mrs {}, cntvct_el0", out(reg) v, options(nomem, nostack)) };
    v
}

/// Stops this CPU for good.
pub fn halt() -> ! {
    loop {
        // SAFETY: masks interrupts and waits; touches no memory.
        unsafe { asm!("msr daifset, #0xf", "wfi", options(nomem, nostack)) };
    }
}

/// Allocates the stack the kernel starts on; returns its top.
pub fn allocate_stack() -> Result<u64, LoadError> {
    let pages = (STACK_SIZE / PAGE_SIZE) as usize;
    let base = boot::allocate_pages(AllocateType::AnyPages, MemoryType::LOADER_DATA, pages)
        .map_err(|e| load_error!("out of memory for the kernel's stack: {:?}", e.status()))?;
    Ok(base.as_ptr() as u64 + STACK_SIZE)
}

/// Cleans and invalidates the data cache over `[start, start + len)` to
/// the point of coherency.
fn clean_to_poc(start: u64, len: u64) {
    let ctr: u64;
    // SAFETY: reads the cache type register.
    unsafe { asm!("mrs {}, ctr_el0", out(reg) ctr, options(nomem, nostack)) };
    let line = 4u64 << ((ctr >> 16) & 0xf);
    let mut addr = start & !(line - 1);
    while addr < start + len {
        // SAFETY: cleaning a line by VA does not change memory's contents;
        // `addr` is mapped (identity) RAM the loader wrote.
        unsafe { asm!("dc civac, {}", in(reg) addr, options(nostack)) };
        addr += line;
    }
}

/// Cleans `ranges` to the point of coherency, then turns the MMU and the
/// caches off at the current exception level and branches to `entry` with
/// `x0` = the handoff, interrupts masked.
pub fn enter(entry: u64, handoff: u64, stack_top: u64, ranges: &[(u64, u64)]) -> ! {
    // SAFETY: masks interrupts; nothing else.
    unsafe { asm!("msr daifset, #0xf", options(nomem, nostack)) };
    for &(start, len) in ranges {
        clean_to_poc(start, len);
    }
    // SAFETY: orders the cleaning before what follows.
    unsafe { asm!("dsb sy", options(nostack)) };
    // SAFETY: boot services are gone and the kernel, bundle and handoff
    // are cleaned to the point of coherency; this block touches no memory
    // after the MMU goes off (its code runs identity-mapped, so fetching
    // goes on at the same addresses), and the kernel never returns.
    unsafe {
        asm!(
            "mrs x9, CurrentEL",
            "lsr x9, x9, #2",
            "cmp x9, #2",
            "b.ne 1f",
            "mrs x10, sctlr_el2",
            "bic x10, x10, #1",
            "bic x10, x10, #(1 << 2)",
            "bic x10, x10, #(1 << 12)",
            "msr sctlr_el2, x10",
            "b 2f",
            "1:",
            "mrs x10, sctlr_el1",
            "bic x10, x10, #1",
            "bic x10, x10, #(1 << 2)",
            "bic x10, x10, #(1 << 12)",
            "msr sctlr_el1, x10",
            "2:",
            "isb",
            "ic iallu",
            "dsb sy",
            "isb",
            "mov sp, x11",
            "mov x0, x12",
            "mov x29, xzr",
            "mov x30, xzr",
            "br x13",
            in("x11") stack_top & !15,
            in("x12") handoff,
            in("x13") entry,
            options(noreturn)
        )
    }
}
