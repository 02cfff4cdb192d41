//! The exception vector table and its entry code.
//!
//! The kernel runs at EL1 on `SP_EL0`; every exception switches to
//! `SP_EL1`, a stack of its own, saves all general registers and the
//! syndrome (ESR), fault address (FAR), return address (ELR) and saved
//! state (SPSR) into a [`Registers`] frame, and calls
//! [`basalt_trap_dispatch`]. Synchronous exceptions compiled wasm code can
//! raise (`udf`, data aborts) are first offered to the kernel's fault hook;
//! when it returns a [`Resume`] the frame's ELR and `SP_EL0` are rewritten
//! and the code continues at the runtime's trap landing pad. Everything
//! else goes to the fatal hook, which reports and stops the machine.

use core::fmt;
use core::sync::atomic::{AtomicUsize, Ordering};

use crate::Resume;

/// What the entry code saves at an exception.
#[repr(C)]
#[derive(Debug, Clone)]
pub struct Registers {
    /// x0..x30 (x29 is the frame pointer, x30 the link register)
    pub x: [u64; 31],
    /// the interrupted stack pointer
    pub sp: u64,
    /// exception link register: where the exception was taken
    pub elr: u64,
    /// saved program status
    pub spsr: u64,
    /// exception syndrome
    pub esr: u64,
    /// fault address
    pub far: u64,
    /// vector table entry (0..16): 0-3 from EL1 on SP_EL0, 4-7 from EL1
    /// on SP_EL1 (inside a handler), 8-15 from a lower level
    pub kind: u64,
    _pad: u64,
}

/// The frame's size, which the entry code uses.
const FRAME_SIZE: usize = 304;
const _: () = assert!(size_of::<Registers>() == FRAME_SIZE);

impl fmt::Display for Registers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for row in 0..11 {
            for col in 0..3 {
                let i = row * 3 + col;
                if col > 0 {
                    f.write_str("  ")?;
                }
                match i {
                    0..=30 => write!(f, "x{i:<2}={:016x}", self.x[i])?,
                    31 => write!(f, "sp ={:016x}", self.sp)?,
                    _ => write!(f, "elr={:016x}", self.elr)?,
                }
            }
            f.write_str("\n")?;
        }
        write!(
            f,
            "spsr={:x} esr={:x} far={:x}",
            self.spsr, self.esr, self.far
        )
    }
}

/// An exception, described for the kernel's hooks.
pub struct Fault<'a> {
    /// the vector table entry (0..16)
    pub vector: u8,
    /// what happened, by exception class, e.g. "data abort"
    pub name: &'static str,
    /// the exception syndrome register
    pub error_code: Option<u64>,
    /// the faulting program counter
    pub pc: usize,
    /// the stack pointer at the fault
    pub sp: usize,
    /// the frame pointer at the fault (start of the backtrace)
    pub frame_pointer: usize,
    /// the accessed address, for aborts with a valid FAR
    pub fault_addr: Option<usize>,
    /// whether the runtime may turn this fault into a wasm trap
    pub recoverable: bool,
    /// all saved registers
    pub registers: &'a Registers,
}

/// How reports name the faulting program counter.
pub const PC_NAME: &str = "ELR";
/// How reports name the error code.
pub const ERROR_CODE_NAME: &str = "ESR";
/// How reports name the fault address register.
pub const FAULT_ADDRESS_NAME: &str = "FAR (address)";

/// Asks whether a fault is a wasm trap, and where to resume if so.
pub type FaultHook = fn(&Fault<'_>) -> Option<Resume>;
/// Reports an unexpected exception; never returns.
pub type FatalHook = fn(&Fault<'_>) -> !;

static FAULT_HOOK: AtomicUsize = AtomicUsize::new(0);
static FATAL_HOOK: AtomicUsize = AtomicUsize::new(0);
static IRQ_HOOK: AtomicUsize = AtomicUsize::new(0);

/// Handles an interrupt (IRQ) taken while interrupts are unmasked
/// (`cpu::start_ticks`): acknowledges it at the interrupt controller,
/// does what it asks, ends it.
pub type IrqHook = fn();

/// Installs the kernel's interrupt handler; until then an IRQ is fatal.
pub fn set_irq_hook(hook: IrqHook) {
    IRQ_HOOK.store(hook as usize, Ordering::SeqCst);
}

/// Whether [`set_irq_hook`] installed a handler.
pub fn irq_hook_installed() -> bool {
    IRQ_HOOK.load(Ordering::SeqCst) != 0
}

/// Installs the kernel's hooks (before or after [`init`]).
pub fn set_hooks(fault: FaultHook, fatal: FatalHook) {
    FAULT_HOOK.store(fault as usize, Ordering::SeqCst);
    FATAL_HOOK.store(fatal as usize, Ordering::SeqCst);
}

/// The exception class of a syndrome, named.
fn class_name(ec: u64) -> &'static str {
    match ec {
        0x00 => "undefined instruction",
        0x01 => "trapped WFI/WFE",
        0x07 => "trapped FP/SIMD access",
        0x0e => "illegal execution state",
        0x15 => "SVC",
        0x18 => "trapped system register access",
        0x20 | 0x21 => "instruction abort",
        0x22 => "PC alignment fault",
        0x24 | 0x25 => "data abort",
        0x26 => "SP alignment fault",
        0x2c => "floating-point exception",
        0x2f => "SError",
        0x30..=0x35 => "debug exception",
        0x3c => "breakpoint (BRK)",
        _ => "unexpected exception class",
    }
}

/// Exception classes compiled code can raise at a trap site: `udf`,
/// `brk`, data aborts.
fn recoverable(ec: u64) -> bool {
    matches!(ec, 0x00 | 0x25 | 0x3c)
}

core::arch::global_asm!(
    ".pushsection .text.basalt_vectors, \"ax\"",
    ".p2align 11",
    ".globl basalt_vectors",
    "basalt_vectors:",
    ".irp kind, 0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15",
    ".p2align 7",
    "sub sp, sp, #304",
    "stp x0, x1, [sp]",
    "mov x0, #\\kind",
    "b basalt_vector_common",
    ".endr",
    "basalt_vector_common:",
    "stp x2, x3, [sp, #16]",
    "stp x4, x5, [sp, #32]",
    "stp x6, x7, [sp, #48]",
    "stp x8, x9, [sp, #64]",
    "stp x10, x11, [sp, #80]",
    "stp x12, x13, [sp, #96]",
    "stp x14, x15, [sp, #112]",
    "stp x16, x17, [sp, #128]",
    "stp x18, x19, [sp, #144]",
    "stp x20, x21, [sp, #160]",
    "stp x22, x23, [sp, #176]",
    "stp x24, x25, [sp, #192]",
    "stp x26, x27, [sp, #208]",
    "stp x28, x29, [sp, #224]",
    "str x30, [sp, #240]",
    "mrs x1, sp_el0",
    "cmp x0, #4",
    "b.lo 1f",
    "add x1, sp, #304",
    "1:",
    "str x1, [sp, #248]",
    "mrs x1, elr_el1",
    "str x1, [sp, #256]",
    "mrs x1, spsr_el1",
    "str x1, [sp, #264]",
    "mrs x1, esr_el1",
    "str x1, [sp, #272]",
    "mrs x1, far_el1",
    "str x1, [sp, #280]",
    "str x0, [sp, #288]",
    "mov x0, sp",
    "bl basalt_trap_dispatch",
    "ldr x0, [sp, #288]",
    "cmp x0, #4",
    "b.hs 2f",
    "ldr x1, [sp, #248]",
    "msr sp_el0, x1",
    "2:",
    "ldr x1, [sp, #256]",
    "msr elr_el1, x1",
    "ldr x1, [sp, #264]",
    "msr spsr_el1, x1",
    "ldp x2, x3, [sp, #16]",
    "ldp x4, x5, [sp, #32]",
    "ldp x6, x7, [sp, #48]",
    "ldp x8, x9, [sp, #64]",
    "ldp x10, x11, [sp, #80]",
    "ldp x12, x13, [sp, #96]",
    "ldp x14, x15, [sp, #112]",
    "ldp x16, x17, [sp, #128]",
    "ldp x18, x19, [sp, #144]",
    "ldp x20, x21, [sp, #160]",
    "ldp x22, x23, [sp, #176]",
    "ldp x24, x25, [sp, #192]",
    "ldp x26, x27, [sp, #208]",
    "ldp x28, x29, [sp, #224]",
    "ldr x30, [sp, #240]",
    "ldp x0, x1, [sp]",
    "add sp, sp, #304",
    "eret",
    ".popsection",
);

unsafe extern "C" {
    static basalt_vectors: u8;
}

/// The common Rust half of every exception.
#[unsafe(no_mangle)]
extern "C" fn basalt_trap_dispatch(regs: &mut Registers) {
    // IRQ entries: from EL1 on SP_EL0 (the kernel and wasm) or on SP_EL1.
    if regs.kind == 1 || regs.kind == 5 {
        let hook = IRQ_HOOK.load(Ordering::SeqCst);
        if hook != 0 {
            // SAFETY: only `set_irq_hook` stores here, always an `IrqHook`.
            let hook: IrqHook = unsafe { core::mem::transmute::<usize, IrqHook>(hook) };
            hook();
            return;
        }
    }
    let ec = (regs.esr >> 26) & 0x3f;
    if ec == 0 && super::power::skip_absent_semihosting(regs) {
        return;
    }
    let far_valid = match ec {
        // aborts: FAR is valid unless ISS.FnV (bit 10) says otherwise
        0x20 | 0x21 | 0x24 | 0x25 => regs.esr & (1 << 10) == 0,
        0x22 => true,
        _ => false,
    };
    let fault = Fault {
        vector: regs.kind as u8,
        name: class_name(ec),
        error_code: Some(regs.esr),
        pc: regs.elr as usize,
        sp: regs.sp as usize,
        frame_pointer: regs.x[29] as usize,
        fault_addr: far_valid.then_some(regs.far as usize),
        // only from code running on the kernel's normal stack
        recoverable: regs.kind == 0 && recoverable(ec),
        registers: regs,
    };
    if fault.recoverable {
        let hook = FAULT_HOOK.load(Ordering::SeqCst);
        if hook != 0 {
            // SAFETY: only `set_hooks` stores here, always a `FaultHook`.
            let hook: FaultHook = unsafe { core::mem::transmute::<usize, FaultHook>(hook) };
            if let Some(resume) = hook(&fault) {
                regs.elr = resume.pc as u64;
                regs.sp = resume.sp as u64;
                return;
            }
        }
    }
    let fatal = FATAL_HOOK.load(Ordering::SeqCst);
    if fatal != 0 {
        // SAFETY: only `set_hooks` stores here, always a `FatalHook`.
        let fatal: FatalHook = unsafe { core::mem::transmute::<usize, FatalHook>(fatal) };
        fatal(&fault);
    }
    super::cpu::halt_forever();
}

/// The exception stack's range (`SP_EL1`), so the kernel can tell stacks
/// apart.
pub fn exception_stacks() -> [(usize, usize); 1] {
    unsafe extern "C" {
        static basalt_exception_stack_bottom: u8;
        static basalt_exception_stack_top: u8;
    }
    [(
        (&raw const basalt_exception_stack_bottom) as usize,
        (&raw const basalt_exception_stack_top) as usize,
    )]
}

/// Points VBAR_EL1 at the vector table (the boot stub did already; this
/// keeps the x86-64 call sequence meaningful and is idempotent).
pub fn init() {
    let vbar = (&raw const basalt_vectors) as u64;
    // SAFETY: the table is 2 KiB aligned and holds valid entry code.
    unsafe { core::arch::asm!("msr vbar_el1, {}", "isb", in(reg) vbar, options(nostack)) };
}
