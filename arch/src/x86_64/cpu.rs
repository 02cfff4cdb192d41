//! CPU setup and facts: SIMD state, no-execute, features for the code
//! generator, the time-stamp counter, the hardware random number generator.

use core::arch::x86_64::{__cpuid, __cpuid_count, _rdtsc};
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use x86_64::registers::control::{Cr0, Cr0Flags, Cr4, Cr4Flags};
use x86_64::registers::model_specific::{Efer, EferFlags};
use x86_64::registers::xcontrol::{XCr0, XCr0Flags};

static AVX_ENABLED: AtomicBool = AtomicBool::new(false);

fn cpuid(leaf: u32) -> core::arch::x86_64::CpuidResult {
    __cpuid(leaf)
}

fn max_leaf() -> u32 {
    cpuid(0).eax
}

fn max_ext_leaf() -> u32 {
    cpuid(0x8000_0000).eax
}

/// Enables what compiled wasm code and the kernel rely on: SSE (with
/// exceptions masked), XSAVE and AVX state when present, no-execute pages
/// and supervisor write protection. Called once by the boot path.
pub fn init() {
    let leaf1 = cpuid(1);
    // SAFETY: setting MP/NE and clearing EM/TS is the architectural way to
    // enable SSE; nothing relies on x87 emulation.
    unsafe {
        Cr0::update(|f| {
            f.remove(Cr0Flags::EMULATE_COPROCESSOR | Cr0Flags::TASK_SWITCHED);
            f.insert(
                Cr0Flags::MONITOR_COPROCESSOR | Cr0Flags::NUMERIC_ERROR | Cr0Flags::WRITE_PROTECT,
            );
        });
    }
    let has_xsave = leaf1.ecx & (1 << 26) != 0;
    let has_avx = leaf1.ecx & (1 << 28) != 0;
    // SAFETY: OSFXSR/OSXMMEXCPT announce that we handle SSE state and #XM;
    // OSXSAVE only when the CPU has XSAVE.
    unsafe {
        Cr4::update(|f| {
            f.insert(Cr4Flags::OSFXSR | Cr4Flags::OSXMMEXCPT_ENABLE);
            if has_xsave {
                f.insert(Cr4Flags::OSXSAVE);
            }
        });
    }
    if has_xsave && max_leaf() >= 0xd {
        let supported = __cpuid_count(0xd, 0).eax;
        let mut xcr0 = XCr0Flags::X87 | XCr0Flags::SSE;
        if has_avx && supported & 0b100 != 0 {
            xcr0 |= XCr0Flags::AVX;
        }
        // SAFETY: only state components the CPU reports as supported.
        unsafe { XCr0::write_raw(xcr0.bits()) };
        AVX_ENABLED.store(xcr0.contains(XCr0Flags::AVX), Ordering::Relaxed);
    }
    // SAFETY: x86-64 compilers never emit SSE denormal flags we depend on;
    // the default MXCSR (all exceptions masked, round to nearest) is what
    // wasm semantics need.
    unsafe { core::arch::asm!("ldmxcsr [{}]", in(reg) &0x1f80u32, options(nostack)) };
    if max_ext_leaf() >= 0x8000_0001 && cpuid(0x8000_0001).edx & (1 << 20) != 0 {
        // SAFETY: the CPU supports NX; enabling it only adds protection.
        unsafe { Efer::update(|f| f.insert(EferFlags::NO_EXECUTE_ENABLE)) };
    }
}

/// Whether page-table entries may carry the no-execute bit.
pub fn has_no_execute() -> bool {
    Efer::read().contains(EferFlags::NO_EXECUTE_ENABLE)
}

/// Whether the CPU maps 1 GiB pages.
pub fn has_huge_pages() -> bool {
    max_ext_leaf() >= 0x8000_0001 && cpuid(0x8000_0001).edx & (1 << 26) != 0
}

/// The CPU features Cranelift may use here, by Cranelift's flag names
/// (`has_sse41`, …), each only if both the CPU and the enabled OS state
/// support it.
pub fn codegen_features() -> impl Iterator<Item = &'static str> {
    let l1 = cpuid(1);
    let l7 = if max_leaf() >= 7 {
        __cpuid_count(7, 0)
    } else {
        __cpuid_count(0, 0)
    };
    let has7 = max_leaf() >= 7;
    let e1 = if max_ext_leaf() >= 0x8000_0001 {
        cpuid(0x8000_0001).ecx
    } else {
        0
    };
    let avx = AVX_ENABLED.load(Ordering::Relaxed) && l1.ecx & (1 << 28) != 0;
    let table = [
        ("has_sse3", l1.ecx & 1 != 0),
        ("has_ssse3", l1.ecx & (1 << 9) != 0),
        ("has_sse41", l1.ecx & (1 << 19) != 0),
        ("has_sse42", l1.ecx & (1 << 20) != 0),
        ("has_popcnt", l1.ecx & (1 << 23) != 0),
        ("has_avx", avx),
        ("has_avx2", avx && has7 && l7.ebx & (1 << 5) != 0),
        ("has_fma", avx && l1.ecx & (1 << 12) != 0),
        ("has_bmi1", has7 && l7.ebx & (1 << 3) != 0),
        ("has_bmi2", has7 && l7.ebx & (1 << 8) != 0),
        ("has_lzcnt", e1 & (1 << 5) != 0),
    ];
    table.into_iter().filter(|(_, on)| *on).map(|(n, _)| n)
}

/// The CPU's brand string (e.g. "QEMU TCG CPU version 2.5+"), ASCII.
pub fn brand(buf: &mut [u8; 48]) -> &str {
    if max_ext_leaf() < 0x8000_0004 {
        return "unknown CPU";
    }
    for (i, leaf) in (0x8000_0002u32..=0x8000_0004).enumerate() {
        let r = cpuid(leaf);
        for (j, reg) in [r.eax, r.ebx, r.ecx, r.edx].into_iter().enumerate() {
            buf[i * 16 + j * 4..i * 16 + j * 4 + 4].copy_from_slice(&reg.to_le_bytes());
        }
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(48);
    core::str::from_utf8(&buf[..end]).map_or("unknown CPU", str::trim)
}

/// How logs name the cycle counter.
pub const CYCLE_COUNTER_NAME: &str = "tsc";

/// The free-running cycle counter (TSC).
#[inline]
pub fn cycles() -> u64 {
    // SAFETY: rdtsc has no preconditions in ring 0.
    unsafe { _rdtsc() }
}

/// The cycle counter's frequency in Hz when the CPU or hypervisor states
/// it (CPUID 0x15, 0x16, or the hypervisor timing leaf 0x40000010).
pub fn cycle_frequency() -> Option<u64> {
    let max = max_leaf();
    if max >= 0x15 {
        let r = cpuid(0x15);
        if r.eax != 0 && r.ebx != 0 && r.ecx != 0 {
            return Some(u64::from(r.ecx) * u64::from(r.ebx) / u64::from(r.eax));
        }
    }
    let hv = cpuid(1).ecx & (1 << 31) != 0;
    if hv && cpuid(0x4000_0000).eax >= 0x4000_0010 {
        let khz = cpuid(0x4000_0010).eax;
        if khz != 0 {
            return Some(u64::from(khz) * 1000);
        }
    }
    if max >= 0x16 && !hv {
        let mhz = cpuid(0x16).eax & 0xffff;
        if mhz != 0 {
            return Some(u64::from(mhz) * 1_000_000);
        }
    }
    None
}

/// Which hardware random-number instruction the CPU offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HardwareRng {
    /// a true-entropy source (RDSEED)
    Seed,
    /// a DRBG reseeded by hardware (RDRAND)
    Rand,
    /// neither
    None,
}

/// Detects RDSEED / RDRAND.
pub fn hardware_rng() -> HardwareRng {
    if max_leaf() >= 7 && __cpuid_count(7, 0).ebx & (1 << 18) != 0 {
        HardwareRng::Seed
    } else if cpuid(1).ecx & (1 << 30) != 0 {
        HardwareRng::Rand
    } else {
        HardwareRng::None
    }
}

/// 64 random bits from RDSEED (preferred) or RDRAND, retrying a few
/// times as the instructions may be momentarily exhausted.
pub fn hardware_random() -> Option<u64> {
    let kind = hardware_rng();
    for _ in 0..64 {
        let mut v: u64;
        let ok: u8;
        match kind {
            // SAFETY: the CPU has RDSEED (checked by `hardware_rng`).
            HardwareRng::Seed => unsafe {
                core::arch::asm!("rdseed {v}", "setc {ok}", v = out(reg) v, ok = out(reg_byte) ok, options(nomem, nostack));
            },
            // SAFETY: the CPU has RDRAND (checked by `hardware_rng`).
            HardwareRng::Rand => unsafe {
                core::arch::asm!("rdrand {v}", "setc {ok}", v = out(reg) v, ok = out(reg_byte) ok, options(nomem, nostack));
            },
            HardwareRng::None => return None,
        }
        if ok != 0 {
            return Some(v);
        }
        core::hint::spin_loop();
    }
    None
}

/// The current frame pointer (rbp), for stack walks.
#[inline(always)]
pub fn frame_pointer() -> usize {
    let fp: usize;
    // SAFETY: reads a register.
    unsafe {
        core::arch::asm!("mov {}, rbp", out(reg) fp, options(nomem, nostack, preserves_flags))
    };
    fp
}

/// Waits politely in a busy loop.
#[inline]
pub fn spin_hint() {
    core::hint::spin_loop();
}

/// Stops this CPU for good (interrupts off, `hlt` forever).
pub fn halt_forever() -> ! {
    loop {
        // SAFETY: with interrupts disabled, `hlt` parks the CPU.
        unsafe { core::arch::asm!("cli", "hlt", options(nomem, nostack)) };
    }
}

/// Executes an undefined instruction (`ud2`), raising an invalid-opcode
/// exception; for tests of the fault reports.
pub fn invalid_instruction() {
    // SAFETY: `ud2` only raises #UD, which the kernel reports.
    unsafe { core::arch::asm!("ud2", options(nomem, nostack)) };
}

/// Makes instructions just written to `[addr, addr + len)` visible to
/// instruction fetch: nothing to do, x86 keeps them coherent.
pub fn sync_instruction_cache(addr: usize, len: usize) {
    let _ = (addr, len);
}

/// The interrupt vector of the local APIC timer.
pub const TIMER_VECTOR: u8 = 0x40;
/// The interrupt vector devices' interrupts are routed to (through the
/// I/O APIC, edge-triggered); its handler only signals end of interrupt,
/// like the timer's: the interrupt just wakes a halted CPU.
pub const DEVICE_VECTOR: u8 = 0x41;
/// The local APIC's spurious-interrupt vector.
pub const SPURIOUS_VECTOR: u8 = 0xff;

static TIMER_READY: AtomicBool = AtomicBool::new(false);
/// Local APIC timer ticks per millisecond (divide-by-1).
static APIC_TICKS_PER_MS: AtomicU64 = AtomicU64::new(0);
/// Cycle-counter ticks per millisecond.
static CYCLES_PER_MS: AtomicU64 = AtomicU64::new(0);
/// Where the local APIC's registers are mapped.
static APIC_MMIO: AtomicU64 = AtomicU64::new(0);

unsafe extern "C" {
    /// Address of the local APIC's end-of-interrupt register, read by the
    /// timer's interrupt stub (see `traps.rs`).
    static mut basalt_apic_eoi: u64;
    /// Address of the local APIC timer's initial-count register, which the
    /// timer's stub writes to start the next tick period.
    static mut basalt_apic_timer_initial: u64;
    /// The word the timer's stub sets to 1 at every tick; 0: no ticks.
    static mut basalt_tick_target: u64;
    /// The tick period in APIC timer counts (low 32 bits).
    static mut basalt_tick_period: u64;
}

/// Whether ticks run ([`start_ticks`]).
static TICKING: AtomicBool = AtomicBool::new(false);

const APIC_SVR: usize = 0xf0;
const APIC_EOI: usize = 0xb0;
const APIC_LVT_TIMER: usize = 0x320;
const APIC_TIMER_INITIAL: usize = 0x380;
const APIC_TIMER_CURRENT: usize = 0x390;
const APIC_TIMER_DIVIDE: usize = 0x3e0;
const LVT_MASKED: u32 = 1 << 16;

fn apic_write(off: usize, value: u32) {
    let reg = (APIC_MMIO.load(Ordering::Relaxed) as usize + off) as *mut u32;
    // SAFETY: the xAPIC register window (set up by `init_timer`) is
    // identity-mapped device memory; `off` is one of its registers.
    unsafe { reg.write_volatile(value) };
}

fn apic_read(off: usize) -> u32 {
    let reg = (APIC_MMIO.load(Ordering::Relaxed) as usize + off) as *const u32;
    // SAFETY: as in `apic_write`.
    unsafe { reg.read_volatile() }
}

/// Sets up the local APIC timer (one-shot, calibrated against the cycle
/// counter running at `cycles_hz`) so [`wait_until_cycles`] can halt
/// instead of spinning, and masks the legacy PICs. Returns whether the
/// timer is available.
pub fn init_timer(cycles_hz: u64) -> bool {
    if cpuid(1).edx & (1 << 9) == 0 || cycles_hz < 1000 {
        return false;
    }
    let apic_msr = x86_64::registers::model_specific::Msr::new(0x1b);
    // SAFETY: IA32_APIC_BASE exists on every CPU with a local APIC.
    let base = unsafe { apic_msr.read() };
    if base & (1 << 10) != 0 {
        // x2APIC mode: no MMIO window; keep spinning.
        return false;
    }
    if base & (1 << 11) == 0 {
        let mut m = apic_msr;
        // SAFETY: enabling the local APIC at its current base.
        unsafe { m.write(base | (1 << 11)) };
    }
    let mmio = base & 0x000f_ffff_ffff_f000;
    APIC_MMIO.store(mmio, Ordering::Relaxed);
    apic_write(APIC_SVR, 0x100 | u32::from(SPURIOUS_VECTOR));
    apic_write(APIC_TIMER_DIVIDE, 0b1011); // divide by 1
    apic_write(APIC_LVT_TIMER, LVT_MASKED | u32::from(TIMER_VECTOR));
    // Calibrate: count down for 2 ms of cycle-counter time.
    let per_ms = cycles_hz / 1000;
    apic_write(APIC_TIMER_INITIAL, u32::MAX);
    let start = cycles();
    while cycles() - start < 2 * per_ms {
        spin_hint();
    }
    let elapsed = u64::from(u32::MAX - apic_read(APIC_TIMER_CURRENT));
    apic_write(APIC_TIMER_INITIAL, 0);
    if elapsed < 2 {
        return false;
    }
    APIC_TICKS_PER_MS.store(elapsed / 2, Ordering::Relaxed);
    CYCLES_PER_MS.store(per_ms, Ordering::Relaxed);
    // SAFETY: written once here, before interrupts are ever enabled; the
    // interrupt stub only reads them.
    unsafe { basalt_apic_eoi = mmio + APIC_EOI as u64 };
    // SAFETY: as above.
    unsafe { basalt_apic_timer_initial = mmio + APIC_TIMER_INITIAL as u64 };
    for port in [0x21u16, 0xa1] {
        let mut p: x86_64::instructions::port::Port<u8> =
            x86_64::instructions::port::Port::new(port);
        // SAFETY: masking every line of the legacy PICs.
        unsafe { p.write(0xff) };
    }
    apic_write(APIC_LVT_TIMER, u32::from(TIMER_VECTOR)); // one-shot, unmasked
    TIMER_READY.store(true, Ordering::SeqCst);
    true
}

/// Waits until the cycle counter reaches `deadline`: halted, woken by the
/// APIC timer, when [`init_timer`] succeeded, else spinning.
pub fn wait_until_cycles(deadline: u64) {
    if !TIMER_READY.load(Ordering::Relaxed) {
        while cycles() < deadline {
            spin_hint();
        }
        return;
    }
    let ticks = APIC_TICKS_PER_MS.load(Ordering::Relaxed);
    let per_ms = CYCLES_PER_MS.load(Ordering::Relaxed).max(1);
    loop {
        let now = cycles();
        if now >= deadline {
            break;
        }
        let count = (u128::from(deadline - now) * u128::from(ticks) / u128::from(per_ms))
            .clamp(1, u128::from(u32::MAX)) as u32;
        apic_write(APIC_TIMER_INITIAL, count);
        halt_once();
    }
    timer_after_wait();
}

/// `hlt` with interrupts on, then interrupts as they were: off, unless
/// ticks run. The `sti` shadow means an interrupt pending at the halt
/// wakes it; one taken earlier while ticks kept interrupts on (after the
/// caller last looked at what it waits for) left `basalt_wake_pending`
/// set, and the halt is skipped, so no wake-up is lost either way.
fn halt_once() {
    // SAFETY: the unmasked sources are the APIC timer and routed devices,
    // whose stubs only set the wake flag, signal end of interrupt (and
    // raise the tick word); `popfq` restores IF as it was before.
    unsafe {
        core::arch::asm!(
            "pushfq",
            "cli",
            "cmp byte ptr [rip + basalt_wake_pending], 0",
            "jne 2f",
            "sti",
            "hlt",
            "cli",
            "2:",
            "mov byte ptr [rip + basalt_wake_pending], 0",
            "popfq",
        )
    };
}

/// After a wait: the timer stops, or starts the next tick period while
/// ticks run.
fn timer_after_wait() {
    if TICKING.load(Ordering::SeqCst) {
        // SAFETY: written by `start_ticks` before TICKING was set.
        let period = unsafe { basalt_tick_period } as u32;
        apic_write(APIC_TIMER_INITIAL, period);
    } else {
        apic_write(APIC_TIMER_INITIAL, 0);
    }
}

/// Starts ticks: every `period_ms` milliseconds the APIC timer's
/// interrupt sets `*target` to 1, and interrupts stay on (also while
/// wasm runs) until [`stop_ticks`]. Returns false when there is no APIC
/// timer ([`init_timer`] failed).
pub fn start_ticks(target: &'static AtomicU32, period_ms: u32) -> bool {
    if !TIMER_READY.load(Ordering::Relaxed) {
        return false;
    }
    let per_ms = APIC_TICKS_PER_MS.load(Ordering::Relaxed);
    let period = (per_ms * u64::from(period_ms.max(1))).clamp(1, u64::from(u32::MAX));
    // SAFETY: interrupts are off, so the stub cannot read these while they
    // change; `target` lives forever.
    unsafe { basalt_tick_period = period };
    // SAFETY: as above.
    unsafe { basalt_tick_target = target.as_ptr() as u64 };
    TICKING.store(true, Ordering::SeqCst);
    apic_write(APIC_TIMER_INITIAL, period as u32);
    // SAFETY: every unmasked interrupt's stub is ready (timer, devices,
    // spurious), each on its own stack.
    unsafe { core::arch::asm!("sti", options(nomem, nostack)) };
    true
}

/// Stops ticks and turns interrupts off again.
pub fn stop_ticks() {
    // SAFETY: turning interrupts off is always sound.
    unsafe { core::arch::asm!("cli", options(nomem, nostack)) };
    TICKING.store(false, Ordering::SeqCst);
    apic_write(APIC_TIMER_INITIAL, 0);
    // SAFETY: interrupts are off: the stub does not run meanwhile.
    unsafe { basalt_tick_target = 0 };
}

/// Halts once until an interrupt arrives (a routed device's, or the APIC
/// timer's at `deadline`) when [`init_timer`] succeeded, else spins once.
/// May return early: callers check what they wait for and the clock
/// again.
pub fn halt_until_cycles(deadline: u64) {
    if !TIMER_READY.load(Ordering::Relaxed) {
        spin_hint();
        return;
    }
    let now = cycles();
    if now >= deadline {
        return;
    }
    let ticks = APIC_TICKS_PER_MS.load(Ordering::Relaxed);
    let per_ms = CYCLES_PER_MS.load(Ordering::Relaxed).max(1);
    let count = (u128::from(deadline - now) * u128::from(ticks) / u128::from(per_ms))
        .clamp(1, u128::from(u32::MAX)) as u32;
    apic_write(APIC_TIMER_INITIAL, count);
    halt_once();
    timer_after_wait();
}

/// The I/O APIC's register-select and data-window registers.
const IOAPIC_REGSEL: u64 = 0x00;
const IOAPIC_WINDOW: u64 = 0x10;
/// Its version register (bits 16..24: highest redirection entry).
const IOAPIC_VERSION: u32 = 0x01;
/// Its first redirection-table register (two per pin).
const IOAPIC_REDIRECTION: u32 = 0x10;
/// The local APIC's ID register (bits 24..32).
const APIC_ID: usize = 0x20;

/// Why an I/O APIC pin could not be routed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoApicError {
    /// the local APIC is not set up ([`init_timer`] failed), so an
    /// interrupt could not wake a halt
    NoLocalApic,
    /// the I/O APIC has no such pin (the pin, how many it has)
    NoSuchPin(u32, u32),
}

impl core::fmt::Display for IoApicError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            IoApicError::NoLocalApic => f.write_str("no local APIC in use"),
            IoApicError::NoSuchPin(pin, n) => {
                write!(f, "I/O APIC pin {pin} does not exist ({n} pins)")
            }
        }
    }
}

/// The MSI message (address, data) that interrupts this CPU at
/// [`DEVICE_VECTOR`]: fixed delivery, physical destination (this local
/// APIC's ID), edge-triggered. `None` before the local APIC is set up.
pub fn msi_message() -> Option<(u64, u32)> {
    if !TIMER_READY.load(Ordering::Relaxed) {
        return None;
    }
    let apic_id = apic_read(APIC_ID) >> 24;
    Some((
        0xfee0_0000 | u64::from(apic_id) << 12,
        u32::from(DEVICE_VECTOR),
    ))
}

/// Routes pin `pin` of the I/O APIC whose registers are at `base` to
/// [`DEVICE_VECTOR`] on this CPU: fixed delivery, edge-triggered, active
/// high, unmasked. Edge-triggered, the handler needs nothing from the
/// device; the driver acknowledges the device before it looks for work,
/// so no event is lost (a line still high after that is seen then).
///
/// # Safety
/// `base` must be an I/O APIC's register window, identity-mapped, and
/// nothing else may program that I/O APIC at the same time.
pub unsafe fn route_io_apic_pin(base: u64, pin: u32) -> Result<(), IoApicError> {
    if !TIMER_READY.load(Ordering::Relaxed) {
        return Err(IoApicError::NoLocalApic);
    }
    let regsel = base.wrapping_add(IOAPIC_REGSEL) as *mut u32;
    let window = base.wrapping_add(IOAPIC_WINDOW) as *mut u32;
    let read = |reg: u32| {
        // SAFETY: the I/O APIC's select register (caller's contract); the
        // select-then-access pair is not interleaved with other users.
        unsafe { regsel.write_volatile(reg) };
        // SAFETY: its data window, now showing register `reg`.
        unsafe { window.read_volatile() }
    };
    let write = |reg: u32, value: u32| {
        // SAFETY: as in `read`.
        unsafe { regsel.write_volatile(reg) };
        // SAFETY: as in `read`.
        unsafe { window.write_volatile(value) };
    };
    let pins = ((read(IOAPIC_VERSION) >> 16) & 0xff) + 1;
    if pin >= pins {
        return Err(IoApicError::NoSuchPin(pin, pins));
    }
    let apic_id = apic_read(APIC_ID) >> 24;
    let entry = IOAPIC_REDIRECTION + 2 * pin;
    write(entry, 1 << 16); // masked while it changes
    write(entry + 1, apic_id << 24);
    write(entry, u32::from(DEVICE_VECTOR));
    Ok(())
}
