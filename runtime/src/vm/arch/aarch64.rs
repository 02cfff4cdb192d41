//! Wasm entry and trap landing for AArch64 (AAPCS64).
//!
//! Same contract as the x86-64 version: `basalt_enter_wasm` saves x19–x30 and
//! d8–d15, records `sp` in `ctx.saved_sp` and calls the trampoline; the
//! landing pad restores them and returns 1.
//!
//! `basalt_raise(vmctx, tag, arg)` is called with Cranelift's tail
//! convention, whose arguments start at `x2` (`x0` and `x1` are reserved):
//! it moves them to `x0`–`x2`, adds the thrower's return address (`x30`)
//! and frame pointer (`x29`) as `x3` and `x4` and branches to the unwinder;
//! `basalt_resume(pc, sp, fp, payload)` enters a handler with the exception
//! in `x0`.

core::arch::global_asm!(
    ".text",
    ".p2align 4",
    ".globl basalt_enter_wasm",
    "basalt_enter_wasm:",
    "stp x29, x30, [sp, #-16]!",
    "mov x29, sp",
    "stp x19, x20, [sp, #-16]!",
    "stp x21, x22, [sp, #-16]!",
    "stp x23, x24, [sp, #-16]!",
    "stp x25, x26, [sp, #-16]!",
    "stp x27, x28, [sp, #-16]!",
    "stp d8, d9, [sp, #-16]!",
    "stp d10, d11, [sp, #-16]!",
    "stp d12, d13, [sp, #-16]!",
    "stp d14, d15, [sp, #-16]!",
    "mov x9, sp",
    "str x9, [x0]",
    "mov x9, x1",
    "mov x0, x2",
    "mov x1, x3",
    "mov x2, x4",
    "mov x3, x5",
    "blr x9",
    "mov w0, #0",
    "2:",
    "ldp d14, d15, [sp], #16",
    "ldp d12, d13, [sp], #16",
    "ldp d10, d11, [sp], #16",
    "ldp d8, d9, [sp], #16",
    "ldp x27, x28, [sp], #16",
    "ldp x25, x26, [sp], #16",
    "ldp x23, x24, [sp], #16",
    "ldp x21, x22, [sp], #16",
    "ldp x19, x20, [sp], #16",
    "ldp x29, x30, [sp], #16",
    "ret",
    ".p2align 4",
    ".globl basalt_trap_landing",
    "basalt_trap_landing:",
    "mov w0, #1",
    "b 2b",
    ".p2align 4",
    ".globl basalt_raise",
    "basalt_raise:",
    "mov x0, x2",
    "mov x1, x3",
    "mov x2, x4",
    "mov x3, x30",
    "mov x4, x29",
    "b {raise}",
    ".p2align 4",
    ".globl basalt_resume",
    "basalt_resume:",
    "mov sp, x1",
    "mov x29, x2",
    "mov x9, x0",
    "mov x0, x3",
    "br x9",
    raise = sym super::raise_exception,
);
