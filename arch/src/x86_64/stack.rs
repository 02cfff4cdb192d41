//! Running a function on another stack.

core::arch::global_asm!(
    ".pushsection .text.basalt_stack, \"ax\"",
    ".globl basalt_call_on_stack",
    ".p2align 4",
    "basalt_call_on_stack:",
    // rdi = argument, rsi = function, rdx = stack top
    "push rbp",
    "mov rbp, rsp",
    "and rdx, -16",
    "mov rsp, rdx",
    "call rsi",
    "mov rsp, rbp",
    "pop rbp",
    "ret",
    ".popsection",
);

unsafe extern "C" {
    fn basalt_call_on_stack(arg: usize, f: extern "C" fn(usize), top: usize);
}

/// Calls `f(arg)` with the stack pointer at `top`, and returns when it
/// does. Frame pointers chain back to the caller's stack, so backtraces
/// continue across the switch.
///
/// # Safety
/// `[top - size, top)` must be mapped, writable memory used by nothing
/// else, large enough for `f`.
pub unsafe fn call_on_stack(top: usize, f: extern "C" fn(usize), arg: usize) {
    // SAFETY: forwarded contract; the stub restores rsp and rbp.
    unsafe { basalt_call_on_stack(arg, f, top) }
}
