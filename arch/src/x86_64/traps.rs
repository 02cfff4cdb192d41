//! GDT, TSS (with separate stacks for double faults and NMIs), the IDT and
//! the exception entry stubs.
//!
//! Every exception saves all general registers into a [`Registers`] frame
//! and calls [`basalt_trap_dispatch`]. Synchronous faults that compiled
//! wasm code can cause are first offered to the kernel's fault hook (which
//! asks the wasm runtime); when it returns a [`Resume`] the frame's program
//! counter and stack pointer are rewritten and the faulting code continues
//! at the runtime's trap landing pad. Everything else goes to the fatal
//! hook, which reports and stops the machine.

use core::fmt;
use core::sync::atomic::{AtomicUsize, Ordering};

use x86_64::VirtAddr;
use x86_64::instructions::segmentation::{CS, DS, ES, SS, Segment};
use x86_64::instructions::tables::load_tss;
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable, SegmentSelector};
use x86_64::structures::tss::TaskStateSegment;

use crate::Resume;

/// The registers saved at an exception, in the order the entry stub pushes
/// them, followed by what the CPU pushed.
#[repr(C)]
#[derive(Debug, Clone)]
pub struct Registers {
    /// rax
    pub rax: u64,
    /// rbx
    pub rbx: u64,
    /// rcx
    pub rcx: u64,
    /// rdx
    pub rdx: u64,
    /// rsi
    pub rsi: u64,
    /// rdi
    pub rdi: u64,
    /// rbp (the frame pointer)
    pub rbp: u64,
    /// r8
    pub r8: u64,
    /// r9
    pub r9: u64,
    /// r10
    pub r10: u64,
    /// r11
    pub r11: u64,
    /// r12
    pub r12: u64,
    /// r13
    pub r13: u64,
    /// r14
    pub r14: u64,
    /// r15
    pub r15: u64,
    /// exception vector
    pub vector: u64,
    /// error code (0 for vectors without one)
    pub error_code: u64,
    /// faulting instruction
    pub rip: u64,
    /// code segment
    pub cs: u64,
    /// flags
    pub rflags: u64,
    /// stack pointer at the fault
    pub rsp: u64,
    /// stack segment
    pub ss: u64,
}

impl fmt::Display for Registers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rows = [
            [("rax", self.rax), ("rbx", self.rbx), ("rcx", self.rcx)],
            [("rdx", self.rdx), ("rsi", self.rsi), ("rdi", self.rdi)],
            [("rbp", self.rbp), ("rsp", self.rsp), ("r8 ", self.r8)],
            [("r9 ", self.r9), ("r10", self.r10), ("r11", self.r11)],
            [("r12", self.r12), ("r13", self.r13), ("r14", self.r14)],
            [("r15", self.r15), ("rip", self.rip), ("flg", self.rflags)],
        ];
        for row in rows {
            for (i, (n, v)) in row.iter().enumerate() {
                if i > 0 {
                    f.write_str("  ")?;
                }
                write!(f, "{n}={v:016x}")?;
            }
            f.write_str("\n")?;
        }
        write!(f, "cs={:x} ss={:x}", self.cs, self.ss)
    }
}

/// An exception, described for the kernel's hooks.
pub struct Fault<'a> {
    /// the vector number
    pub vector: u8,
    /// its name, e.g. "page fault (#PF)"
    pub name: &'static str,
    /// the error code, for vectors that push one
    pub error_code: Option<u64>,
    /// the faulting program counter
    pub pc: usize,
    /// the stack pointer at the fault
    pub sp: usize,
    /// the frame pointer at the fault (start of the backtrace)
    pub frame_pointer: usize,
    /// the accessed address, for page faults (and CR2 at a double fault)
    pub fault_addr: Option<usize>,
    /// whether the runtime may turn this fault into a wasm trap
    pub recoverable: bool,
    /// all saved registers
    pub registers: &'a Registers,
}

/// How reports name the faulting program counter.
pub const PC_NAME: &str = "RIP";
/// How reports name the error code.
pub const ERROR_CODE_NAME: &str = "error code";
/// How reports name the fault address register.
pub const FAULT_ADDRESS_NAME: &str = "CR2 (address)";

/// Asks whether a fault is a wasm trap, and where to resume if so.
pub type FaultHook = fn(&Fault<'_>) -> Option<Resume>;
/// Reports an unexpected exception; never returns.
pub type FatalHook = fn(&Fault<'_>) -> !;

static FAULT_HOOK: AtomicUsize = AtomicUsize::new(0);
static FATAL_HOOK: AtomicUsize = AtomicUsize::new(0);

/// Installs the kernel's hooks (before or after [`init`]).
pub fn set_hooks(fault: FaultHook, fatal: FatalHook) {
    FAULT_HOOK.store(fault as usize, Ordering::SeqCst);
    FATAL_HOOK.store(fatal as usize, Ordering::SeqCst);
}

const NAMES: [&str; 32] = [
    "divide error (#DE)",
    "debug (#DB)",
    "non-maskable interrupt (NMI)",
    "breakpoint (#BP)",
    "overflow (#OF)",
    "bound range exceeded (#BR)",
    "invalid opcode (#UD)",
    "device not available (#NM)",
    "double fault (#DF)",
    "coprocessor segment overrun",
    "invalid TSS (#TS)",
    "segment not present (#NP)",
    "stack-segment fault (#SS)",
    "general protection fault (#GP)",
    "page fault (#PF)",
    "reserved vector 15",
    "x87 floating-point exception (#MF)",
    "alignment check (#AC)",
    "machine check (#MC)",
    "SIMD floating-point exception (#XM)",
    "virtualization exception (#VE)",
    "control protection exception (#CP)",
    "reserved vector 22",
    "reserved vector 23",
    "reserved vector 24",
    "reserved vector 25",
    "reserved vector 26",
    "reserved vector 27",
    "hypervisor injection exception (#HV)",
    "VMM communication exception (#VC)",
    "security exception (#SX)",
    "reserved vector 31",
];

const HAS_ERROR_CODE: [bool; 32] = {
    let mut t = [false; 32];
    t[8] = true;
    t[10] = true;
    t[11] = true;
    t[12] = true;
    t[13] = true;
    t[14] = true;
    t[17] = true;
    t[21] = true;
    t[29] = true;
    t[30] = true;
    t
};

/// Vectors compiled code can raise at a trap site: #DE, #OF, #BR, #UD,
/// #SS, #GP, #PF, #MF, #AC, #XM.
fn recoverable(vector: u64) -> bool {
    matches!(vector, 0 | 4 | 5 | 6 | 12 | 13 | 14 | 16 | 17 | 19)
}

core::arch::global_asm!(
    ".pushsection .text.basalt_traps, \"ax\"",
    ".macro basalt_isr_noerr vec",
    ".p2align 4",
    "basalt_isr_\\vec:",
    "push 0",
    "push \\vec",
    "jmp basalt_isr_common",
    ".endm",
    ".macro basalt_isr_err vec",
    ".p2align 4",
    "basalt_isr_\\vec:",
    "push \\vec",
    "jmp basalt_isr_common",
    ".endm",
    "basalt_isr_noerr 0",
    "basalt_isr_noerr 1",
    "basalt_isr_noerr 2",
    "basalt_isr_noerr 3",
    "basalt_isr_noerr 4",
    "basalt_isr_noerr 5",
    "basalt_isr_noerr 6",
    "basalt_isr_noerr 7",
    "basalt_isr_err 8",
    "basalt_isr_noerr 9",
    "basalt_isr_err 10",
    "basalt_isr_err 11",
    "basalt_isr_err 12",
    "basalt_isr_err 13",
    "basalt_isr_err 14",
    "basalt_isr_noerr 15",
    "basalt_isr_noerr 16",
    "basalt_isr_err 17",
    "basalt_isr_noerr 18",
    "basalt_isr_noerr 19",
    "basalt_isr_noerr 20",
    "basalt_isr_err 21",
    "basalt_isr_noerr 22",
    "basalt_isr_noerr 23",
    "basalt_isr_noerr 24",
    "basalt_isr_noerr 25",
    "basalt_isr_noerr 26",
    "basalt_isr_noerr 27",
    "basalt_isr_noerr 28",
    "basalt_isr_err 29",
    "basalt_isr_err 30",
    "basalt_isr_noerr 31",
    // Anything above the exceptions (interrupts stay masked; this only
    // catches a stray one) reports as vector 255.
    "basalt_isr_noerr 255",
    // The APIC timer wakes a halted CPU and, while ticks run (see
    // `cpu::start_ticks`), raises the word `basalt_tick_target` names and
    // starts the next period; then it signals end of interrupt.
    ".p2align 4",
    "basalt_isr_timer:",
    "mov byte ptr [rip + basalt_wake_pending], 1",
    "push rax",
    "mov rax, [rip + basalt_tick_target]",
    "test rax, rax",
    "jz 2f",
    "mov dword ptr [rax], 1",
    "push rcx",
    "mov ecx, dword ptr [rip + basalt_tick_period]",
    "mov rax, [rip + basalt_apic_timer_initial]",
    "mov dword ptr [rax], ecx",
    "pop rcx",
    "2:",
    "mov rax, [rip + basalt_apic_eoi]",
    "mov dword ptr [rax], 0",
    "pop rax",
    "iretq",
    // A device's interrupt only wakes a halted CPU: end of interrupt.
    ".p2align 4",
    "basalt_isr_device:",
    "mov byte ptr [rip + basalt_wake_pending], 1",
    "push rax",
    "mov rax, [rip + basalt_apic_eoi]",
    "mov dword ptr [rax], 0",
    "pop rax",
    "iretq",
    // Spurious APIC interrupts need no EOI.
    ".p2align 4",
    "basalt_isr_spurious:",
    "iretq",
    ".p2align 4",
    "basalt_isr_common:",
    "push r15",
    "push r14",
    "push r13",
    "push r12",
    "push r11",
    "push r10",
    "push r9",
    "push r8",
    "push rbp",
    "push rdi",
    "push rsi",
    "push rdx",
    "push rcx",
    "push rbx",
    "push rax",
    "cld",
    "mov rdi, rsp",
    "call basalt_trap_dispatch",
    "pop rax",
    "pop rbx",
    "pop rcx",
    "pop rdx",
    "pop rsi",
    "pop rdi",
    "pop rbp",
    "pop r8",
    "pop r9",
    "pop r10",
    "pop r11",
    "pop r12",
    "pop r13",
    "pop r14",
    "pop r15",
    "add rsp, 16",
    "iretq",
    ".popsection",
    ".pushsection .rodata.basalt_traps, \"a\"",
    ".p2align 3",
    ".globl basalt_isr_table",
    "basalt_isr_table:",
    ".quad basalt_isr_0, basalt_isr_1, basalt_isr_2, basalt_isr_3",
    ".quad basalt_isr_4, basalt_isr_5, basalt_isr_6, basalt_isr_7",
    ".quad basalt_isr_8, basalt_isr_9, basalt_isr_10, basalt_isr_11",
    ".quad basalt_isr_12, basalt_isr_13, basalt_isr_14, basalt_isr_15",
    ".quad basalt_isr_16, basalt_isr_17, basalt_isr_18, basalt_isr_19",
    ".quad basalt_isr_20, basalt_isr_21, basalt_isr_22, basalt_isr_23",
    ".quad basalt_isr_24, basalt_isr_25, basalt_isr_26, basalt_isr_27",
    ".quad basalt_isr_28, basalt_isr_29, basalt_isr_30, basalt_isr_31",
    ".quad basalt_isr_255, basalt_isr_timer, basalt_isr_spurious, basalt_isr_device",
    ".popsection",
    ".pushsection .data.basalt_apic, \"aw\"",
    ".p2align 3",
    ".globl basalt_apic_eoi",
    "basalt_apic_eoi: .quad 0",
    ".globl basalt_apic_timer_initial",
    "basalt_apic_timer_initial: .quad 0",
    ".globl basalt_tick_target",
    "basalt_tick_target: .quad 0",
    ".globl basalt_tick_period",
    "basalt_tick_period: .quad 0",
    // Set by the timer's and devices' stubs: an interrupt came since the
    // last halt (see `cpu::halt_once`), so a wake-up taken while
    // interrupts were on is not lost.
    ".globl basalt_wake_pending",
    "basalt_wake_pending: .byte 0",
    ".popsection",
);

unsafe extern "C" {
    static basalt_isr_table: [u64; 36];
}

/// The common Rust half of every exception.
#[unsafe(no_mangle)]
extern "C" fn basalt_trap_dispatch(regs: &mut Registers) {
    let vector = regs.vector;
    let v = vector as usize;
    // CR2 also tells why a double fault happened (a page fault that could
    // not be delivered, typically a stack overflow into a guard page).
    let fault_addr = (vector == 14 || vector == 8).then(|| {
        let cr2: usize;
        // SAFETY: reads a control register.
        unsafe { core::arch::asm!("mov {}, cr2", out(reg) cr2, options(nomem, nostack)) };
        cr2
    });
    let fault = Fault {
        vector: vector as u8,
        name: NAMES.get(v).copied().unwrap_or("unexpected interrupt"),
        error_code: (v < 32 && HAS_ERROR_CODE[v]).then_some(regs.error_code),
        pc: regs.rip as usize,
        sp: regs.rsp as usize,
        frame_pointer: regs.rbp as usize,
        fault_addr,
        recoverable: recoverable(vector),
        registers: regs,
    };
    if fault.recoverable {
        let hook = FAULT_HOOK.load(Ordering::SeqCst);
        if hook != 0 {
            // SAFETY: only `set_hooks` stores here, always a `FaultHook`.
            let hook: FaultHook = unsafe { core::mem::transmute::<usize, FaultHook>(hook) };
            if let Some(resume) = hook(&fault) {
                regs.rip = resume.pc as u64;
                regs.rsp = resume.sp as u64;
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

const IST_STACK_SIZE: usize = 32 * 1024;

#[repr(C, align(16))]
struct IstStack([u8; IST_STACK_SIZE]);

static mut DOUBLE_FAULT_STACK: IstStack = IstStack([0; IST_STACK_SIZE]);
static mut NMI_STACK: IstStack = IstStack([0; IST_STACK_SIZE]);
static mut INTERRUPT_STACK: IstStack = IstStack([0; IST_STACK_SIZE]);

/// IST slot (1-based in the IDT) of the double-fault stack.
const IST_DOUBLE_FAULT: u8 = 1;
/// IST slot of the NMI / machine-check stack.
const IST_NMI: u8 = 2;
/// IST slot of the stack of the timer's and devices' interrupts (their
/// gates clear IF, so they never nest).
const IST_INTERRUPT: u8 = 3;

static TSS: spin::Once<TaskStateSegment> = spin::Once::new();
static GDT: spin::Once<(
    GlobalDescriptorTable,
    SegmentSelector,
    SegmentSelector,
    SegmentSelector,
)> = spin::Once::new();

#[repr(C, align(16))]
#[derive(Clone, Copy)]
struct IdtEntry {
    offset_low: u16,
    selector: u16,
    ist: u8,
    attributes: u8,
    offset_mid: u16,
    offset_high: u32,
    reserved: u32,
}

static IDT: spin::Once<[IdtEntry; 256]> = spin::Once::new();

/// The double-fault stack's range, so the kernel can tell stacks apart.
pub fn exception_stacks() -> [(usize, usize); 2] {
    let df = (&raw const DOUBLE_FAULT_STACK) as usize;
    let nmi = (&raw const NMI_STACK) as usize;
    [(df, df + IST_STACK_SIZE), (nmi, nmi + IST_STACK_SIZE)]
}

static LOADED: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// Loads the GDT, TSS and IDT (the boot path does this first thing; later
/// calls do nothing, as a TSS cannot be loaded twice).
pub fn init() {
    if LOADED.swap(true, Ordering::SeqCst) {
        return;
    }
    let tss = TSS.call_once(|| {
        let mut tss = TaskStateSegment::new();
        let [df, nmi] = exception_stacks();
        tss.interrupt_stack_table[usize::from(IST_DOUBLE_FAULT - 1)] = VirtAddr::new(df.1 as u64);
        tss.interrupt_stack_table[usize::from(IST_NMI - 1)] = VirtAddr::new(nmi.1 as u64);
        let interrupts = (&raw const INTERRUPT_STACK) as usize + IST_STACK_SIZE;
        tss.interrupt_stack_table[usize::from(IST_INTERRUPT - 1)] =
            VirtAddr::new(interrupts as u64);
        tss
    });
    let (gdt, code, data, tss_sel) = GDT.call_once(|| {
        let mut gdt = GlobalDescriptorTable::new();
        let code = gdt.append(Descriptor::kernel_code_segment());
        let data = gdt.append(Descriptor::kernel_data_segment());
        let tss_sel = gdt.append(Descriptor::tss_segment(tss));
        (gdt, code, data, tss_sel)
    });
    gdt.load();
    // SAFETY: the selectors index the GDT just loaded.
    unsafe { CS::set_reg(*code) };
    // SAFETY: as above.
    unsafe { DS::set_reg(*data) };
    // SAFETY: as above.
    unsafe { ES::set_reg(*data) };
    // SAFETY: as above.
    unsafe { SS::set_reg(*data) };
    // SAFETY: as above; the TSS is 'static.
    unsafe { load_tss(*tss_sel) };
    let idt = IDT.call_once(|| {
        // SAFETY: the table of stub addresses defined in the asm above.
        let stubs = unsafe { &basalt_isr_table };
        core::array::from_fn(|v| {
            let addr = match v {
                0..32 => stubs[v],
                _ if v == usize::from(super::cpu::TIMER_VECTOR) => stubs[33],
                _ if v == usize::from(super::cpu::DEVICE_VECTOR) => stubs[35],
                _ if v == usize::from(super::cpu::SPURIOUS_VECTOR) => stubs[34],
                _ => stubs[32],
            };
            let ist = match v {
                8 => IST_DOUBLE_FAULT,
                2 | 18 => IST_NMI,
                // Taken while wasm runs (ticks) or anywhere interrupts
                // are on: never on the interrupted code's stack, which
                // may be at its limit.
                _ if v == usize::from(super::cpu::TIMER_VECTOR)
                    || v == usize::from(super::cpu::DEVICE_VECTOR)
                    || v == usize::from(super::cpu::SPURIOUS_VECTOR) =>
                {
                    IST_INTERRUPT
                }
                _ => 0,
            };
            IdtEntry {
                offset_low: addr as u16,
                selector: code.0,
                ist,
                attributes: 0x8e,
                offset_mid: (addr >> 16) as u16,
                offset_high: (addr >> 32) as u32,
                reserved: 0,
            }
        })
    });
    #[repr(C, packed)]
    struct Idtr {
        limit: u16,
        base: u64,
    }
    let idtr = Idtr {
        limit: (size_of::<[IdtEntry; 256]>() - 1) as u16,
        base: idt.as_ptr() as u64,
    };
    // SAFETY: `idt` is 'static and filled with valid interrupt gates.
    unsafe { core::arch::asm!("lidt [{}]", in(reg) &idtr, options(readonly, nostack)) };
}
