//! CPU setup and facts: features for the code generator, the generic
//! timer as the cycle counter, RNDR, instruction-cache maintenance.

use core::arch::asm;
use core::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, AtomicUsize, Ordering};

macro_rules! read_sysreg {
    ($name:literal) => {{
        let v: u64;
        // SAFETY: reading an identification or counter register at EL1
        // has no side effects.
        unsafe { asm!(concat!("mrs {}, ", $name), out(reg) v, options(nomem, nostack, preserves_flags)) };
        v
    }};
}

/// Sets what compiled wasm code relies on beyond the boot stub's setup
/// (which turned FP/SIMD and the MMU on): the floating-point control
/// register cleared — round to nearest, no flush-to-zero, no default NaN,
/// no trapped exceptions — as its reset value is not architecturally
/// defined. Called once by the boot path.
pub fn init() {
    // SAFETY: FPCR only controls floating-point behaviour; nothing has
    // used floating point yet.
    unsafe { asm!("msr fpcr, xzr", "isb", options(nomem, nostack)) };
}

/// Whether page-table entries may forbid execution (always on AArch64).
pub fn has_no_execute() -> bool {
    true
}

/// Whether the CPU maps 1 GiB blocks (always with a 4 KiB granule).
pub fn has_huge_pages() -> bool {
    true
}

fn field(reg: u64, shift: u32) -> u64 {
    (reg >> shift) & 0xf
}

/// The CPU features Cranelift may use here, by Cranelift's flag names
/// (`has_lse`, …), from the ID registers.
pub fn codegen_features() -> impl Iterator<Item = &'static str> {
    let isar0 = read_sysreg!("id_aa64isar0_el1");
    let isar1 = read_sysreg!("id_aa64isar1_el1");
    let pfr0 = read_sysreg!("id_aa64pfr0_el1");
    let table = [
        ("has_lse", field(isar0, 20) >= 2),
        ("has_fp16", field(pfr0, 16) == 1 && field(pfr0, 20) == 1),
        ("has_dotprod", field(isar0, 44) >= 1),
        ("has_i8mm", field(isar1, 52) >= 1),
    ];
    table.into_iter().filter(|(_, on)| *on).map(|(n, _)| n)
}

/// Describes the CPU by its main ID register (e.g. "AArch64 CPU, MIDR
/// 0x000f0510"), ASCII.
pub fn brand(buf: &mut [u8; 48]) -> &str {
    let midr = read_sysreg!("midr_el1") as u32;
    let prefix = b"AArch64 CPU, MIDR 0x";
    buf[..prefix.len()].copy_from_slice(prefix);
    for i in 0..8 {
        let nibble = (midr >> (28 - 4 * i)) & 0xf;
        buf[prefix.len() + i] = b"0123456789abcdef"[nibble as usize];
    }
    core::str::from_utf8(&buf[..prefix.len() + 8]).unwrap_or("AArch64 CPU")
}

/// How logs name the cycle counter (the generic timer's virtual count).
pub const CYCLE_COUNTER_NAME: &str = "cnt";

/// The generic timer's virtual count (CNTVCT_EL0), the monotonic clock.
#[inline]
pub fn cycles() -> u64 {
    // SAFETY: the ISB orders the read after earlier instructions; the
    // counter is readable at EL1.
    unsafe { asm!("isb", options(nomem, nostack, preserves_flags)) };
    read_sysreg!("cntvct_el0")
}

/// The counter's frequency in Hz, from CNTFRQ_EL0 (firmware or the
/// hypervisor sets it).
pub fn cycle_frequency() -> Option<u64> {
    Some(read_sysreg!("cntfrq_el0") & 0xffff_ffff).filter(|f| *f != 0)
}

/// Which hardware random-number source the CPU offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HardwareRng {
    /// a true-entropy source (RNDRRS, reseeded on every read)
    Seed,
    /// a DRBG reseeded by hardware (RNDR)
    Rand,
    /// neither (no FEAT_RNG)
    None,
}

/// Detects FEAT_RNG (ID_AA64ISAR0_EL1.RNDR).
pub fn hardware_rng() -> HardwareRng {
    if field(read_sysreg!("id_aa64isar0_el1"), 60) >= 1 {
        HardwareRng::Seed
    } else {
        HardwareRng::None
    }
}

/// 64 random bits from RNDRRS, retrying a few times as the source may be
/// momentarily exhausted.
pub fn hardware_random() -> Option<u64> {
    if hardware_rng() == HardwareRng::None {
        return None;
    }
    for _ in 0..64 {
        let v: u64;
        let ok: u64;
        // SAFETY: the CPU has FEAT_RNG (checked above); RNDRRS (encoded
        // by number for assemblers without the feature) sets Z on failure.
        unsafe {
            asm!("mrs {v}, s3_3_c2_c4_1", "cset {ok}, ne", v = out(reg) v, ok = out(reg) ok, options(nomem, nostack));
        }
        if ok != 0 {
            return Some(v);
        }
        core::hint::spin_loop();
    }
    None
}

/// The current frame pointer (x29), for stack walks.
#[inline(always)]
pub fn frame_pointer() -> usize {
    let fp: usize;
    // SAFETY: reads a register.
    unsafe { asm!("mov {}, x29", out(reg) fp, options(nomem, nostack, preserves_flags)) };
    fp
}

/// Waits politely in a busy loop.
#[inline]
pub fn spin_hint() {
    core::hint::spin_loop();
}

/// Stops this CPU for good (interrupts masked, `wfi` forever).
pub fn halt_forever() -> ! {
    loop {
        // SAFETY: with every interrupt masked, `wfi` parks the CPU.
        unsafe { asm!("msr daifset, #0xf", "wfi", options(nomem, nostack)) };
    }
}

/// Executes a permanently undefined instruction (`udf`), raising an
/// undefined-instruction exception; for tests of the fault reports.
pub fn invalid_instruction() {
    // SAFETY: `udf` only raises an exception, which the kernel reports.
    unsafe { asm!("udf #0", options(nomem, nostack)) };
}

/// How [`wait_until_cycles`] waits.
static WAIT_MODE: AtomicU8 = AtomicU8::new(WAIT_SPIN);
const WAIT_SPIN: u8 = 0;
const WAIT_EVENT_STREAM: u8 = 1;
const WAIT_TIMER_INTERRUPT: u8 = 2;
/// Set by [`timer_interrupt_routed`].
static TIMER_ROUTED: AtomicBool = AtomicBool::new(false);

/// The interrupt ID the architecture recommends for the EL1 virtual timer
/// (PPI 11), which the device tree's timer node normally confirms.
pub const VIRTUAL_TIMER_INTERRUPT: u32 = 27;

/// Tells the timer code that the interrupt controller routes the virtual
/// timer's interrupt to this CPU (masked by PSTATE, so never taken), so
/// `wfi` wakes at a deadline. Call before [`init_timer`].
pub fn timer_interrupt_routed() {
    TIMER_ROUTED.store(true, Ordering::SeqCst);
}

/// Whether the CPU has the GICv3 system-register interface
/// (ID_AA64PFR0_EL1.GIC).
pub fn has_gicv3_cpu_interface() -> bool {
    field(read_sysreg!("id_aa64pfr0_el1"), 24) != 0
}

/// Turns on the GICv3 CPU interface for group 1 with every priority
/// unmasked, so a routed interrupt wakes `wfi` (interrupts stay masked in
/// PSTATE, so none is ever taken). Returns false when the CPU has no such
/// interface.
pub fn enable_gicv3_cpu_interface() -> bool {
    if !has_gicv3_cpu_interface() {
        return false;
    }
    // SAFETY: ICC_SRE_EL1.SRE selects the system-register interface (the
    // boot stub allowed it at EL2); the priority mask and group enable
    // only decide which interrupts reach this CPU, and all are masked.
    unsafe {
        asm!(
            "mrs {t}, s3_0_c12_c12_5",
            "orr {t}, {t}, #1",
            "msr s3_0_c12_c12_5, {t}",
            "isb",
            "mov {t}, #0xff",
            "msr s3_0_c4_c6_0, {t}",
            "mov {t}, #1",
            "msr s3_0_c12_c12_7, {t}",
            "isb",
            t = out(reg) _,
            options(nomem, nostack)
        )
    };
    true
}

fn write_timer(ctl: u64, cval: u64) {
    // SAFETY: the EL1 virtual timer's compare value and control only
    // decide when its (masked) interrupt line asserts.
    unsafe {
        asm!("msr cntv_cval_el0, {}", "msr cntv_ctl_el0, {}", "isb", in(reg) cval, in(reg) ctl, options(nomem, nostack))
    };
}

/// Sets up waiting for [`wait_until_cycles`]: `wfi` woken by the virtual
/// timer when its interrupt is routed ([`timer_interrupt_routed`]), else
/// `wfe` woken by the generic timer's event stream (an event about every
/// 100 µs at `cycles_hz`; QEMU's TCG treats `wfe` as a yield, so this
/// still costs host CPU). Returns whether waits halt rather than spin.
pub fn init_timer(cycles_hz: u64) -> bool {
    write_timer(0, 0);
    if TIMER_ROUTED.load(Ordering::SeqCst) {
        WAIT_MODE.store(WAIT_TIMER_INTERRUPT, Ordering::SeqCst);
        return true;
    }
    if cycles_hz < 20_000 {
        return false;
    }
    // An event when counter bit EVNTI flips: every 2^(EVNTI + 1) ticks.
    let ticks = cycles_hz / 10_000;
    let evnti = (63 - ticks.leading_zeros()).saturating_sub(1).min(15);
    let kctl = u64::from(evnti) << 4 | 1 << 2;
    // SAFETY: CNTKCTL_EL1 only controls EL0 counter access and the event
    // stream; EL0 is never used.
    unsafe { asm!("msr cntkctl_el1, {}", "isb", in(reg) kctl, options(nomem, nostack)) };
    WAIT_MODE.store(WAIT_EVENT_STREAM, Ordering::SeqCst);
    true
}

/// Waits until the cycle counter reaches `deadline`, as [`init_timer`]
/// arranged.
pub fn wait_until_cycles(deadline: u64) {
    let mode = WAIT_MODE.load(Ordering::Relaxed);
    while cycles() < deadline {
        match mode {
            WAIT_TIMER_INTERRUPT => halt_with_timer(deadline),
            // SAFETY: `wfe` waits for the next event (the timer's event
            // stream guarantees one within about 100 µs).
            WAIT_EVENT_STREAM => unsafe { asm!("wfe", options(nomem, nostack)) },
            _ => spin_hint(),
        }
    }
    if mode == WAIT_TIMER_INTERRUPT {
        timer_after_wait();
    }
}

/// Halts once until an interrupt routed to this CPU is pending (a
/// device's, or the timer's at `deadline`), where [`init_timer`] arranged
/// for the timer to wake `wfi`; else waits for the next timer event (about
/// 100 µs) or just spins once. May return early: callers check what they
/// wait for and the clock again.
pub fn halt_until_cycles(deadline: u64) {
    match WAIT_MODE.load(Ordering::Relaxed) {
        WAIT_TIMER_INTERRUPT => {
            if cycles() >= deadline {
                return;
            }
            halt_with_timer(deadline);
            timer_after_wait();
        }
        // SAFETY: `wfe` waits for the next event (the timer's event
        // stream guarantees one within about 100 µs).
        WAIT_EVENT_STREAM => unsafe { asm!("wfe", options(nomem, nostack)) },
        _ => spin_hint(),
    }
}

/// One `wfi` with the timer set for `deadline` (or the next tick, if
/// sooner, while ticks run). Interrupts are masked across the check and
/// the `wfi`, so a pending one wakes it; one taken earlier while ticks
/// kept interrupts unmasked left [`WAKE_PENDING`] set, and the halt is
/// skipped. Afterwards interrupts are as they were, and a pending one is
/// taken then.
fn halt_with_timer(deadline: u64) {
    let ticking = TICKING.load(Ordering::SeqCst);
    if ticking {
        // SAFETY: masking IRQs is always sound.
        unsafe { asm!("msr daifset, #2", "isb", options(nomem, nostack)) };
        if let Some(hook) = before_halt_hook() {
            hook();
        }
        if WAKE_PENDING.swap(false, Ordering::SeqCst) {
            // SAFETY: ticks run with IRQs unmasked; the kernel's handler
            // is installed (`start_ticks` checked).
            unsafe { asm!("msr daifclr, #2", "isb", options(nomem, nostack)) };
            return;
        }
    }
    let at = if ticking {
        deadline.min(NEXT_TICK.load(Ordering::SeqCst))
    } else {
        deadline
    };
    write_timer(1, at);
    // SAFETY: `wfi` returns when an interrupt routed to this CPU is
    // pending (or spuriously); IRQs are masked here, so none is taken
    // before it.
    unsafe { asm!("wfi", options(nomem, nostack)) };
    if ticking {
        // SAFETY: as above: the pending interrupt is taken now.
        unsafe { asm!("msr daifclr, #2", "isb", options(nomem, nostack)) };
    }
    WAKE_PENDING.store(false, Ordering::SeqCst);
}

/// After a wait: the timer off, or set for the next tick while ticks run.
fn timer_after_wait() {
    if TICKING.load(Ordering::SeqCst) {
        write_timer(1, NEXT_TICK.load(Ordering::SeqCst));
    } else {
        // Disabled, the timer drops its line and its interrupt is no
        // longer pending.
        write_timer(0, 0);
    }
}

/// Whether ticks run ([`start_ticks`]).
static TICKING: AtomicBool = AtomicBool::new(false);
/// The tick period in counter ticks.
static TICK_PERIOD: AtomicU64 = AtomicU64::new(0);
/// When the next tick is due (counter value).
static NEXT_TICK: AtomicU64 = AtomicU64::new(0);
/// The word each tick sets to 1 (an `&'static AtomicU32`'s address).
static TICK_TARGET: AtomicUsize = AtomicUsize::new(0);
/// An interrupt came since the last halt (see [`halt_with_timer`]).
static WAKE_PENDING: AtomicBool = AtomicBool::new(false);
/// What runs before a halt while ticks run (see
/// [`set_before_halt_hook`]).
static BEFORE_HALT: AtomicUsize = AtomicUsize::new(0);

/// Installs what runs before every halt while ticks run (with IRQs
/// masked): the kernel re-enables the device interrupts its handler
/// turned off.
pub fn set_before_halt_hook(hook: fn()) {
    BEFORE_HALT.store(hook as usize, Ordering::SeqCst);
}

fn before_halt_hook() -> Option<fn()> {
    let hook = BEFORE_HALT.load(Ordering::SeqCst);
    // SAFETY: only `set_before_halt_hook` stores here, always a `fn()`.
    (hook != 0).then(|| unsafe { core::mem::transmute::<usize, fn()>(hook) })
}

/// Starts ticks: every `period_ms` milliseconds the virtual timer's
/// interrupt, taken by the kernel's handler ([`crate::traps::set_irq_hook`],
/// which calls [`timer_tick`]), sets `*target` to 1; IRQs stay unmasked
/// (also while wasm runs) until [`stop_ticks`]. Returns false when the
/// timer's interrupt is not routed or no handler is installed.
pub fn start_ticks(target: &'static AtomicU32, period_ms: u32) -> bool {
    if WAIT_MODE.load(Ordering::Relaxed) != WAIT_TIMER_INTERRUPT
        || !crate::traps::irq_hook_installed()
    {
        return false;
    }
    let Some(hz) = cycle_frequency() else {
        return false;
    };
    let period = (hz / 1000 * u64::from(period_ms.max(1))).max(1);
    TICK_PERIOD.store(period, Ordering::SeqCst);
    TICK_TARGET.store(target.as_ptr() as usize, Ordering::SeqCst);
    NEXT_TICK.store(cycles() + period, Ordering::SeqCst);
    TICKING.store(true, Ordering::SeqCst);
    write_timer(1, NEXT_TICK.load(Ordering::SeqCst));
    // SAFETY: the kernel's IRQ handler is installed (checked above).
    unsafe { asm!("msr daifclr, #2", "isb", options(nomem, nostack)) };
    true
}

/// Stops ticks and masks IRQs again.
pub fn stop_ticks() {
    // SAFETY: masking IRQs is always sound.
    unsafe { asm!("msr daifset, #2", "isb", options(nomem, nostack)) };
    TICKING.store(false, Ordering::SeqCst);
    TICK_TARGET.store(0, Ordering::SeqCst);
    write_timer(0, 0);
}

/// The virtual timer's interrupt came (called by the kernel's IRQ
/// handler): raises the tick word and sets the timer for the next tick
/// while ticks run, else turns it off; either way its line drops.
pub fn timer_tick() {
    WAKE_PENDING.store(true, Ordering::SeqCst);
    if !TICKING.load(Ordering::SeqCst) {
        write_timer(0, 0);
        return;
    }
    let target = TICK_TARGET.load(Ordering::SeqCst);
    if target != 0 {
        // SAFETY: `start_ticks` stored an `&'static AtomicU32`'s address.
        unsafe { &*(target as *const AtomicU32) }.store(1, Ordering::SeqCst);
    }
    let next = cycles() + TICK_PERIOD.load(Ordering::SeqCst);
    NEXT_TICK.store(next, Ordering::SeqCst);
    write_timer(1, next);
}

/// A device's interrupt came (called by the kernel's IRQ handler): the
/// next halt returns at once.
pub fn note_wake() {
    WAKE_PENDING.store(true, Ordering::SeqCst);
}

/// Acknowledges the highest-priority pending group-1 interrupt at the
/// GICv3 CPU interface (ICC_IAR1_EL1): its id (1020..1024: none).
pub fn gicv3_acknowledge() -> u32 {
    let iar: u64;
    // SAFETY: reading ICC_IAR1_EL1 acknowledges an interrupt; only the
    // kernel's IRQ handler calls this, once per interrupt taken.
    unsafe { asm!("mrs {}, s3_0_c12_c12_0", out(reg) iar, options(nomem, nostack)) };
    iar as u32
}

/// Ends the interrupt [`gicv3_acknowledge`] returned (ICC_EOIR1_EL1:
/// priority drop and deactivation).
pub fn gicv3_end(iar: u32) {
    // SAFETY: writing back the id just acknowledged.
    unsafe {
        asm!("msr s3_0_c12_c12_1, {}", "isb", in(reg) u64::from(iar), options(nomem, nostack))
    };
}

/// Makes instructions just written to `[addr, addr + len)` visible to
/// instruction fetch: cleans the data cache and invalidates the
/// instruction cache to the point of unification. Call after writing code
/// and before running it.
pub fn sync_instruction_cache(addr: usize, len: usize) {
    if len == 0 {
        return;
    }
    let ctr = read_sysreg!("ctr_el0");
    let dline = 4usize << ((ctr >> 16) & 0xf);
    let iline = 4usize << (ctr & 0xf);
    let end = addr.saturating_add(len);
    let mut p = addr & !(dline - 1);
    while p < end {
        // SAFETY: cache maintenance by address on mapped memory (the
        // caller just wrote it) has no effect besides the caches.
        unsafe { asm!("dc cvau, {}", in(reg) p, options(nostack, preserves_flags)) };
        p += dline;
    }
    // SAFETY: a barrier.
    unsafe { asm!("dsb ish", options(nostack, preserves_flags)) };
    let mut p = addr & !(iline - 1);
    while p < end {
        // SAFETY: as above, for the instruction cache.
        unsafe { asm!("ic ivau, {}", in(reg) p, options(nostack, preserves_flags)) };
        p += iline;
    }
    // SAFETY: barriers.
    unsafe { asm!("dsb ish", "isb", options(nostack, preserves_flags)) };
}
