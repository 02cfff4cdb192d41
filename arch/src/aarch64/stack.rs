//! Running a function on another stack.

core::arch::global_asm!(
    ".pushsection .text.basalt_stack, \"ax\"",
    ".globl basalt_call_on_stack",
    ".p2align 4",
    "basalt_call_on_stack:",
    // x0 = argument, x1 = function, x2 = stack top
    "stp x29, x30, [sp, #-16]!",
    "mov x29, sp",
    "and x2, x2, #~15",
    "mov sp, x2",
    "blr x1",
    "mov sp, x29",
    "ldp x29, x30, [sp], #16",
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
    // SAFETY: forwarded contract; the stub restores sp, x29 and x30.
    unsafe { basalt_call_on_stack(arg, f, top) }
}
