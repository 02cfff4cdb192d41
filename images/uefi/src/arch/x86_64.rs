//! x86-64: the time stamp counter and the jump into the kernel.

use crate::{LoadError, PAGE_SIZE, load_error};
use core::arch::asm;
use uefi::boot::{self, AllocateType, MemoryType};

/// The kernel's first stack, in bytes (`LOADER_DATA`, so the kernel's
/// memory map keeps it until the kernel has its own).
const STACK_SIZE: u64 = 64 * 1024;

/// The time stamp counter.
pub fn counter() -> u64 {
    let (lo, hi): (u32, u32);
    // SAFETY: rdtsc only reads the counter (UEFI leaves CR4.TSD clear).
    unsafe { asm!("rdtsc", out("eax") lo, out("edx") hi, options(nomem, nostack)) };
    (u64::from(hi) << 32) | u64::from(lo)
}

/// Stops this CPU for good.
pub fn halt() -> ! {
    loop {
        // SAFETY: cli; hlt only stops the CPU.
        unsafe { asm!("cli", "hlt", options(nomem, nostack)) };
    }
}

/// Allocates the stack the kernel starts on; returns its top.
pub fn allocate_stack() -> Result<u64, LoadError> {
    let pages = (STACK_SIZE / PAGE_SIZE) as usize;
    let base = boot::allocate_pages(
        AllocateType::MaxAddress(0xffff_ffff),
        MemoryType::LOADER_DATA,
        pages,
    )
    .or_else(|_| boot::allocate_pages(AllocateType::AnyPages, MemoryType::LOADER_DATA, pages))
    .map_err(|e| load_error!("out of memory for the kernel's stack: {:?}", e.status()))?;
    Ok(base.as_ptr() as u64 + STACK_SIZE)
}

/// Jumps to `entry` with interrupts off, `rdi` = the handoff, on the stack
/// below `stack_top` as if called (a zero return address pushed onto a
/// 16-byte-aligned stack). Caches need no care on x86-64.
pub fn enter(entry: u64, handoff: u64, stack_top: u64, _ranges: &[(u64, u64)]) -> ! {
    // SAFETY: boot services are gone; the kernel is loaded at its physical
    // addresses under UEFI's identity paging, `stack_top` is the top of a
    // LOADER_DATA stack and `handoff` a filled record. The kernel never
    // returns.
    unsafe {
        asm!(
            "cli",
            "mov rsp, {stack}",
            "and rsp, -16",
            "push 0",
            "xor ebp, ebp",
            "jmp {entry}",
            stack = in(reg) stack_top,
            entry = in(reg) entry,
            in("rdi") handoff,
            options(noreturn)
        )
    }
}
