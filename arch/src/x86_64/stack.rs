//! Running a function on another stack, and switching between stacks.

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

// Switching between stacks (the kernel's request tasks): the callee-saved
// registers of the SysV ABI are pushed on the stack being left, its stack
// pointer is stored, and the other stack's are popped.
core::arch::global_asm!(
    ".pushsection .text.basalt_stack, \"ax\"",
    ".globl basalt_switch_stack",
    ".p2align 4",
    "basalt_switch_stack:",
    // rdi = where to store this stack's pointer, rsi = the stack to resume
    "push rbp",
    "push rbx",
    "push r12",
    "push r13",
    "push r14",
    "push r15",
    "mov [rdi], rsp",
    "mov rsp, rsi",
    "pop r15",
    "pop r14",
    "pop r13",
    "pop r12",
    "pop rbx",
    "pop rbp",
    "ret",
    ".globl basalt_task_start",
    ".p2align 4",
    "basalt_task_start:",
    // First resumed: r12 = the argument, r13 = the function (which never
    // returns: it switches away for good).
    "mov rdi, r12",
    "call r13",
    "ud2",
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
/// `[top - 72, top)` must be mapped, writable memory of that stack.
pub unsafe fn prepare_stack(top: usize, f: extern "C" fn(usize) -> !, arg: usize) -> usize {
    let top = top & !15;
    // r15, r14, r13, r12, rbx, rbp, then the return address: what the
    // switch pops, lowest first.
    let start = basalt_task_start as *const () as usize;
    let frame: [usize; 7] = [0, 0, f as *const () as usize, arg, 0, 0, start];
    // After the switch pops them, rsp is 16-aligned, so the stub's call
    // enters `f` as the ABI wants (rsp + 8 aligned).
    let sp = top - 8 * frame.len() - 16;
    let p = sp as *mut usize;
    for (i, v) in frame.iter().enumerate() {
        // SAFETY: within the stack's top 72 bytes (caller's contract).
        let slot = unsafe { p.add(i) };
        // SAFETY: as above.
        unsafe { slot.write(*v) };
    }
    sp
}
