//! What both socket networks of the kernel (the preopened listeners of
//! preview1, `super`, and a WASI 0.2 program's own sockets,
//! `super::program`) do alike: every call drives the stack before and
//! after it acts, and a wait halts the CPU between polls until a socket
//! is ready, the stack's next timer, or the deadline.

use basalt_wasi::services::{Interest, SocketId};
use spin::Mutex;

/// A socket stack behind a lock, as the two networks drive it.
pub trait Driven {
    /// Drives the stack: frames in, timers, frames out.
    fn poll(&mut self);
    /// Whether `interest` in `socket` is met (or the socket is gone).
    fn ready(&mut self, socket: SocketId, interest: Interest) -> bool;
    /// When a waiter should wake at the latest (monotonic ns).
    fn next_wake(&mut self, deadline: Option<u64>) -> u64;
}

/// Runs `f` on the stack between two polls (so what `f` queued goes out
/// at once).
pub fn with<S: Driven, R>(stack: &Mutex<S>, f: impl FnOnce(&mut S) -> R) -> R {
    let mut st = stack.lock();
    st.poll();
    let r = f(&mut st);
    st.poll();
    r
}

/// Waits until one of `interests` is met or `deadline_ns` passes, the
/// CPU halted between polls; a wait past the program's own deadline
/// (`--timeout`) ends the run there.
pub fn wait<S: Driven>(
    stack: &Mutex<S>,
    interests: &[(SocketId, Interest)],
    deadline_ns: Option<u64>,
) {
    loop {
        let mut st = stack.lock();
        st.poll();
        if interests.iter().any(|&(id, i)| st.ready(id, i)) {
            return;
        }
        if deadline_ns.is_some_and(|d| crate::time::monotonic_ns() >= d) {
            return;
        }
        let until = crate::deadline::cap(st.next_wake(deadline_ns));
        drop(st);
        crate::time::halt_until(until);
        crate::deadline::stop_if_passed();
    }
}
