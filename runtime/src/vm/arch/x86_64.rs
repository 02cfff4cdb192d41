//! Wasm entry and trap landing for x86-64 (System V).
//!
//! `basalt_enter_wasm(ctx, trampoline, callee_vmctx, caller_vmctx, code, values) -> u32`
//! saves the callee-saved registers on the stack, records the stack pointer
//! in `ctx.saved_sp` (offset 0), and calls `trampoline(callee_vmctx,
//! caller_vmctx, code, values)`; it returns 0. When compiled code faults at
//! a trap site, the fault handler resumes at `basalt_trap_landing` with the
//! stack pointer set to `ctx.saved_sp`: the landing pad restores the same
//! registers and returns 1 from `basalt_enter_wasm`.
//!
//! `basalt_raise(vmctx, tag, arg)` is what compiled code calls to throw,
//! with Cranelift's tail convention (on x86-64 its arguments are in the
//! System V registers, `rdi`, `rsi`, `rdx`): it adds the thrower's return address (at `[rsp]`) and frame pointer (`rbp`,
//! which the stub leaves alone) as the fourth and fifth arguments and
//! tail-jumps to the unwinder. `basalt_resume(pc, sp, fp, payload)` enters a
//! handler: stack and frame pointers set, the exception in `rax`.

core::arch::global_asm!(
    ".text",
    ".p2align 4",
    ".globl basalt_enter_wasm",
    "basalt_enter_wasm:",
    "push rbp",
    "mov rbp, rsp",
    "push rbx",
    "push r12",
    "push r13",
    "push r14",
    "push r15",
    "sub rsp, 8",
    "mov [rdi], rsp",
    "mov rax, rsi",
    "mov rdi, rdx",
    "mov rsi, rcx",
    "mov rdx, r8",
    "mov rcx, r9",
    "call rax",
    "xor eax, eax",
    "2:",
    "add rsp, 8",
    "pop r15",
    "pop r14",
    "pop r13",
    "pop r12",
    "pop rbx",
    "pop rbp",
    "ret",
    ".p2align 4",
    ".globl basalt_trap_landing",
    "basalt_trap_landing:",
    "mov eax, 1",
    "jmp 2b",
    ".p2align 4",
    ".globl basalt_raise",
    "basalt_raise:",
    "mov rcx, [rsp]",
    "mov r8, rbp",
    "jmp {raise}",
    ".p2align 4",
    ".globl basalt_resume",
    "basalt_resume:",
    "mov rsp, rsi",
    "mov rbp, rdx",
    "mov rax, rcx",
    "jmp rdi",
    raise = sym super::raise_exception,
);
