//! Time: the cycle counter as the monotonic clock, the RTC for the wall
//! clock at boot.

use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use basalt_arch::cpu;

static BOOT_CYCLES: AtomicU64 = AtomicU64::new(0);
static HZ: AtomicU64 = AtomicU64::new(1_000_000_000);
static BOOT_UNIX_NS: AtomicU64 = AtomicU64::new(0);
static TIMER: AtomicBool = AtomicBool::new(false);
/// Counter cycles spent sleeping or halted since boot.
static IDLE_CYCLES: AtomicU64 = AtomicU64::new(0);

/// Whether sleeps halt the CPU (a deadline timer exists) or spin.
pub fn sleeps_halt() -> bool {
    TIMER.load(Ordering::Relaxed)
}

/// Where the counter frequency came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrequencySource {
    /// the CPU or hypervisor stated it
    Cpuid,
    /// measured against a platform timer (the PIT)
    Calibrated,
    /// nothing worked; 1 GHz assumed
    Assumed,
}

/// Records the boot cycle count (call first thing).
pub fn mark_boot(cycles: u64) {
    BOOT_CYCLES.store(cycles, Ordering::Relaxed);
}

/// The cycle counter's value at kernel entry.
pub fn boot_counter() -> u64 {
    BOOT_CYCLES.load(Ordering::Relaxed)
}

/// Finds the counter frequency and reads the wall clock.
pub fn init() -> FrequencySource {
    let (hz, source) = match cpu::cycle_frequency() {
        Some(hz) => (hz, FrequencySource::Cpuid),
        None => match calibrate() {
            Some(hz) => (hz, FrequencySource::Calibrated),
            None => (1_000_000_000, FrequencySource::Assumed),
        },
    };
    HZ.store(hz.max(1), Ordering::Relaxed);
    crate::platform::init_timer_wakeup();
    TIMER.store(cpu::init_timer(hz), Ordering::Relaxed);
    let unix = crate::platform::wall_clock_seconds()
        .or_else(firmware_wall_clock)
        .unwrap_or(0);
    let now = monotonic_ns();
    BOOT_UNIX_NS.store(
        unix.saturating_mul(1_000_000_000).saturating_sub(now),
        Ordering::Relaxed,
    );
    source
}

/// The wall clock the loader read from the firmware (UEFI `GetTime`),
/// carried forward by the cycle counter: for machines whose RTC the kernel
/// does not drive.
fn firmware_wall_clock() -> Option<u64> {
    let sample = crate::BOOT_INFO.get()?.wall_clock?;
    let elapsed = cpu::cycles().saturating_sub(sample.counter) / frequency();
    u64::try_from(sample.unix_seconds)
        .ok()?
        .checked_add(elapsed)
}

fn calibrate() -> Option<u64> {
    crate::platform::calibrate_cycles()
}

/// Cycle-counter frequency in Hz.
pub fn frequency() -> u64 {
    HZ.load(Ordering::Relaxed)
}

/// Converts a cycle count since boot into nanoseconds.
pub fn cycles_to_ns(cycles: u64) -> u64 {
    (u128::from(cycles) * 1_000_000_000 / u128::from(frequency())) as u64
}

/// Cycles since boot.
pub fn cycles_since_boot() -> u64 {
    cpu::cycles().wrapping_sub(BOOT_CYCLES.load(Ordering::Relaxed))
}

/// Nanoseconds since boot.
pub fn monotonic_ns() -> u64 {
    cycles_to_ns(cycles_since_boot())
}

/// Nanoseconds since the Unix epoch (0-based if the RTC was unreadable).
pub fn realtime_ns() -> u64 {
    BOOT_UNIX_NS.load(Ordering::Relaxed) + monotonic_ns()
}

/// The clocks' resolution in nanoseconds.
pub fn resolution_ns() -> u64 {
    (1_000_000_000 / frequency()).max(1)
}

/// Waits (halted where the CPU has a deadline timer) until the monotonic
/// clock reaches `deadline` ns.
pub fn sleep_until(deadline: u64) {
    let cycles = (u128::from(deadline) * u128::from(frequency()) / 1_000_000_000) as u64;
    let target = BOOT_CYCLES.load(Ordering::Relaxed).saturating_add(cycles);
    idle(|| cpu::wait_until_cycles(target));
}

/// Runs `wait` (a sleep or a halt) and counts its cycles as idle.
fn idle(wait: impl FnOnce()) {
    let start = cpu::cycles();
    wait();
    IDLE_CYCLES.fetch_add(cpu::cycles().saturating_sub(start), Ordering::Relaxed);
}

/// Nanoseconds since boot the CPU did not spend sleeping or halted in
/// the kernel's waits: the CPU time of everything that ran.
pub fn busy_ns() -> u64 {
    let elapsed = cpu::cycles().saturating_sub(BOOT_CYCLES.load(Ordering::Relaxed));
    let busy = elapsed.saturating_sub(IDLE_CYCLES.load(Ordering::Relaxed));
    (u128::from(busy) * 1_000_000_000 / u128::from(frequency().max(1))) as u64
}

/// Halts once until an interrupt (a routed device's, or the timer's at
/// `deadline` ns) where the CPU can, else waits a moment; may return
/// early. For waits that also end on device activity.
pub fn halt_until(deadline: u64) {
    let cycles = (u128::from(deadline) * u128::from(frequency()) / 1_000_000_000) as u64;
    let target = BOOT_CYCLES.load(Ordering::Relaxed).saturating_add(cycles);
    idle(|| cpu::halt_until_cycles(target));
}
