//! Running a function on another stack, and switching between stacks.

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

// Switching between stacks (the kernel's request tasks): the callee-saved
// registers of AAPCS64 (x19-x30, d8-d15) are stored on the stack being
// left, its stack pointer is stored, and the other stack's are loaded.
core::arch::global_asm!(
    ".pushsection .text.basalt_stack, \"ax\"",
    ".globl basalt_switch_stack",
    ".p2align 4",
    "basalt_switch_stack:",
    // x0 = where to store this stack's pointer, x1 = the stack to resume
    "sub sp, sp, #160",
    "stp x19, x20, [sp, #0]",
    "stp x21, x22, [sp, #16]",
    "stp x23, x24, [sp, #32]",
    "stp x25, x26, [sp, #48]",
    "stp x27, x28, [sp, #64]",
    "stp x29, x30, [sp, #80]",
    "stp d8, d9, [sp, #96]",
    "stp d10, d11, [sp, #112]",
    "stp d12, d13, [sp, #128]",
    "stp d14, d15, [sp, #144]",
    "mov x2, sp",
    "str x2, [x0]",
    "mov sp, x1",
    "ldp x19, x20, [sp, #0]",
    "ldp x21, x22, [sp, #16]",
    "ldp x23, x24, [sp, #32]",
    "ldp x25, x26, [sp, #48]",
    "ldp x27, x28, [sp, #64]",
    "ldp x29, x30, [sp, #80]",
    "ldp d8, d9, [sp, #96]",
    "ldp d10, d11, [sp, #112]",
    "ldp d12, d13, [sp, #128]",
    "ldp d14, d15, [sp, #144]",
    "add sp, sp, #160",
    "ret",
    ".globl basalt_task_start",
    ".p2align 4",
    "basalt_task_start:",
    // First resumed: x19 = the argument, x20 = the function (which never
    // returns: it switches away for good).
    "mov x0, x19",
    "blr x20",
    "brk #0",
    ".popsection",
);

unsafe extern "C" {
    fn basalt_switch_stack(save: *mut usize, resume: usize);
    fn basalt_task_start();
}

/// Saves the current stack's state at `*save` and resumes the stack
/// whose state is `resume`; returns when something switches back to
/// `*save`'s value.
///
/// # Safety
/// `resume` must come from [`prepare_stack`] or from an earlier switch
/// away from a stack that is still alive and not running.
pub unsafe fn switch_stack(save: *mut usize, resume: usize) {
    // SAFETY: forwarded contract; the stub keeps the ABI's callee-saved
    // registers.
    unsafe { basalt_switch_stack(save, resume) }
}

/// Prepares the fresh stack whose top is `top` so that switching to the
/// returned state calls `f(arg)` there; `f` must never return.
///
/// # Safety
/// `[top - 160, top)` must be mapped, writable memory of that stack.
pub unsafe fn prepare_stack(top: usize, f: extern "C" fn(usize) -> !, arg: usize) -> usize {
    let top = top & !15;
    let sp = top - 160;
    let p = sp as *mut usize;
    // x19 = arg, x20 = f, x29 = 0 (the end of the frame chain), x30 = the
    // start stub; the rest zero.
    let mut frame = [0usize; 20];
    frame[0] = arg;
    frame[1] = f as *const () as usize;
    frame[11] = basalt_task_start as *const () as usize;
    for (i, v) in frame.iter().enumerate() {
        // SAFETY: within the stack's top 160 bytes (caller's contract).
        let slot = unsafe { p.add(i) };
        // SAFETY: as above.
        unsafe { slot.write(*v) };
    }
    sp
}
