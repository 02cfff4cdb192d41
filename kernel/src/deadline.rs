//! The program's deadline (`--timeout`, the manifest's `deadline-ms`).
//!
//! Running code meets it at its next interrupt check (the timer raises the
//! request; `run.rs` answers it with [`passed`]) and its run ends as an
//! interrupted trap. A program blocked in a host call — a sleep, a wait on
//! sockets, a read of stdin — runs no code, so those waits end at the
//! deadline too ([`cap`]) and end the run themselves ([`stop_if_passed`]):
//! either way the kernel prints the same message and exits with 124.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::exit::{Status, finish};

/// The deadline on the monotonic clock (ns); 0: none.
static DEADLINE_NS: AtomicU64 = AtomicU64::new(0);
/// The limit as the user gave it (ms), for the message; 0: none.
static LIMIT_MS: AtomicU64 = AtomicU64::new(0);

/// Starts the program's clock: it must end within `ms` milliseconds from
/// now.
pub fn start(ms: u64) {
    let at = crate::time::monotonic_ns().saturating_add(ms.saturating_mul(1_000_000));
    LIMIT_MS.store(ms, Ordering::Relaxed);
    DEADLINE_NS.store(at.max(1), Ordering::Relaxed);
}

/// Whether the program has a deadline.
pub fn is_set() -> bool {
    DEADLINE_NS.load(Ordering::Relaxed) != 0
}

/// Whether the deadline has passed.
pub fn passed() -> bool {
    let d = DEADLINE_NS.load(Ordering::Relaxed);
    d != 0 && crate::time::monotonic_ns() >= d
}

/// `until` (ns on the monotonic clock), or the deadline if that comes
/// first: how long a host call may block.
pub fn cap(until: u64) -> u64 {
    match DEADLINE_NS.load(Ordering::Relaxed) {
        0 => until,
        d => until.min(d),
    }
}

/// Ends the run as stopped at its deadline, if it has passed: for host
/// calls that block.
pub fn stop_if_passed() {
    if passed() {
        stop();
    }
}

/// Ends the run as stopped at its deadline: the message on stderr, exit
/// code 124.
pub fn stop() -> ! {
    crate::run::stamp("program stopped at its deadline");
    let ms = LIMIT_MS.load(Ordering::Relaxed);
    let message = alloc::format!(
        "basalt: the program was stopped after {}.{:03}s (--timeout)\n",
        ms / 1000,
        ms % 1000
    );
    crate::log::write_stderr(message.as_bytes());
    finish(Status::Exit, format_args!("124"))
}
