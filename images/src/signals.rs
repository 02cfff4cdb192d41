//! What `basalt` does when it is told to stop (SIGTERM, SIGINT, SIGHUP):
//! a VM it runs is killed and its run directory removed before `basalt`
//! exits with 128 + the signal's number, as a shell reports it; with no VM
//! running (a hosted program, a compile) it exits at once.
//!
//! The signals are received on a thread of their own (`signal-hook`'s
//! iterator); the loop that waits for QEMU ([`crate::vm::wait_for_vm`])
//! polls [`received`] and stops its VM itself, since it owns the child.

use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::time::Duration;

/// The signal received, or 0.
static RECEIVED: AtomicI32 = AtomicI32::new(0);
/// How many VMs are being waited for.
static VMS: AtomicUsize = AtomicUsize::new(0);
/// How long the VM waiters have to stop their VMs before the process
/// exits anyway.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// Starts listening for SIGTERM, SIGINT and SIGHUP. Called once by the
/// command-line entry point; a failure leaves the default actions.
pub fn install() {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP]) else {
        return;
    };
    std::thread::spawn(move || {
        if let Some(sig) = signals.forever().next() {
            RECEIVED.store(sig, Ordering::SeqCst);
            if VMS.load(Ordering::SeqCst) > 0 {
                // The waiters stop their VMs, clean up and return; this
                // is the backstop should one be stuck.
                std::thread::sleep(STOP_GRACE);
            }
            std::process::exit(128 + sig);
        }
    });
}

/// The stop signal received, if any.
pub fn received() -> Option<i32> {
    match RECEIVED.load(Ordering::SeqCst) {
        0 => None,
        sig => Some(sig),
    }
}

/// The name of a stop signal, for messages.
pub fn name(sig: i32) -> &'static str {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    match sig {
        SIGTERM => "SIGTERM",
        SIGINT => "SIGINT",
        SIGHUP => "SIGHUP",
        _ => "a signal",
    }
}

/// Held while a VM is waited for: the signal thread then leaves the
/// stopping to the waiter.
pub struct VmWait(());

impl VmWait {
    /// Notes that a VM is being waited for.
    pub fn begin() -> VmWait {
        VMS.fetch_add(1, Ordering::SeqCst);
        VmWait(())
    }
}

impl Drop for VmWait {
    fn drop(&mut self) {
        VMS.fetch_sub(1, Ordering::SeqCst);
    }
}
