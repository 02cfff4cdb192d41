//! Request tasks: what lets the kernel's server run several requests side
//! by side on one CPU. Each task runs a closure on a stack of its own;
//! when it would wait (a poll, a sleep, a socket of the program network)
//! it parks and the server's loop (the main stack) goes on; the loop
//! resumes it once what it waits for is ready or its deadline passed. A
//! task also yields at its interrupt checks (the timer's ticks), so one
//! that computes does not hold the others up.
//!
//! One CPU, no preemption of kernel code: a switch happens only where a
//! task calls [`park`] or [`yield_now`]. The runtime's innermost wasm
//! entry travels with each stack ([`basalt_runtime::take_entry`]), so a
//! trap unwinds the task it happens in.
#![allow(unsafe_code)]

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicUsize, Ordering};

use basalt_wasi::services::{Interest, SocketId};

use crate::mem::Stack;

/// What a parked task waits for.
pub struct Wait {
    /// sockets and the readiness wanted (any one wakes it)
    pub interests: Vec<(SocketId, Interest)>,
    /// the monotonic time it wakes at whatever happens
    pub deadline: Option<u64>,
}

/// One task.
struct Task {
    stack: Option<Stack>,
    /// its stack pointer while it does not run
    sp: usize,
    /// the runtime's wasm entry while it does not run
    entry: usize,
    /// `None`: runnable
    wait: Option<Wait>,
    done: bool,
    body: Option<Box<dyn FnOnce()>>,
}

/// The tasks, and which runs.
struct Sched {
    tasks: Vec<Option<Box<Task>>>,
    current: Option<usize>,
    /// the main stack's wasm entry while a task runs
    main_entry: usize,
}

/// The scheduler's state, behind a lock never held across a switch.
struct Locked(spin::Mutex<Sched>);
// SAFETY: one CPU runs the kernel; the closures (not `Send`) are only
// called on it.
unsafe impl Sync for Locked {}

static SCHED: Locked = Locked(spin::Mutex::new(Sched {
    tasks: Vec::new(),
    current: None,
    main_entry: 0,
}));

/// The main stack's pointer while a task runs.
static MAIN_SP: AtomicUsize = AtomicUsize::new(0);

/// Each task's stack: room for [`crate::serve::SERVE_WASM_STACK`] of wasm
/// and the host code it calls.
pub const TASK_STACK: usize = 2 << 20;

/// Whether the code running is a task's.
pub fn in_task() -> bool {
    SCHED.0.lock().current.is_some()
}

/// How many tasks are alive.
pub fn count() -> usize {
    SCHED.0.lock().tasks.iter().flatten().count()
}

extern "C" fn task_main(index: usize) -> ! {
    let body = SCHED.0.lock().tasks[index]
        .as_mut()
        .and_then(|t| t.body.take());
    if let Some(body) = body {
        body();
    }
    let sp_slot = {
        let mut s = SCHED.0.lock();
        let t = s.tasks[index].as_mut().expect("the running task");
        t.done = true;
        &mut t.sp as *mut usize
    };
    leave(sp_slot);
    // A done task is never resumed.
    unreachable!("a finished task was resumed")
}

/// Starts `body` as a task (it first runs at the next [`run`]).
pub fn spawn(body: Box<dyn FnOnce()>) -> Result<(), crate::mem::MemError> {
    let stack = crate::mem::allocate_stack(TASK_STACK)?;
    let mut s = SCHED.0.lock();
    let index = match s.tasks.iter().position(Option::is_none) {
        Some(i) => i,
        None => {
            s.tasks.push(None);
            s.tasks.len() - 1
        }
    };
    // SAFETY: the stack is fresh, mapped and ours.
    let sp = unsafe { basalt_arch::stack::prepare_stack(stack.top, task_main, index) };
    s.tasks[index] = Some(Box::new(Task {
        stack: Some(stack),
        sp,
        entry: 0,
        wait: None,
        done: false,
        body: Some(body),
    }));
    Ok(())
}

/// Switches from the running task back to the main stack; returns when
/// the task is resumed. `sp_slot` is the running task's `sp`.
fn leave(sp_slot: *mut usize) {
    let main_entry = {
        let mut s = SCHED.0.lock();
        let i = s.current.take().expect("a task runs");
        let entry = basalt_runtime::take_entry();
        if let Some(t) = s.tasks[i].as_mut() {
            t.entry = entry;
        }
        s.main_entry
    };
    // SAFETY: the main stack's entry was taken when this task was resumed.
    unsafe { basalt_runtime::restore_entry(main_entry) };
    // SAFETY: `sp_slot` lives in the task's box, which lives until the
    // task is reaped (after it is done); MAIN_SP is the main stack's,
    // saved by the switch that resumed this task.
    unsafe { basalt_arch::stack::switch_stack(sp_slot, MAIN_SP.load(Ordering::Acquire)) };
}

/// Parks the running task until one of `wait`'s interests is ready or
/// its deadline passes (the caller checks again).
pub fn park(wait: Wait) {
    let slot = {
        let mut s = SCHED.0.lock();
        let Some(i) = s.current else { return };
        let t = s.tasks[i].as_mut().expect("the running task");
        t.wait = Some(wait);
        &mut t.sp as *mut usize
    };
    leave(slot);
}

/// Lets the main stack (the server's loop: new connections, new
/// requests) and the other tasks run; the running task goes on at the
/// next [`run`].
pub fn yield_now() {
    park(Wait {
        interests: Vec::new(),
        deadline: Some(0),
    });
}

/// Resumes task `i` until it parks, yields or ends.
fn resume(i: usize) {
    let (sp, entry) = {
        let mut s = SCHED.0.lock();
        let Some(t) = s.tasks[i].as_mut() else { return };
        t.wait = None;
        let sp = t.sp;
        let entry = t.entry;
        s.current = Some(i);
        s.main_entry = basalt_runtime::take_entry();
        (sp, entry)
    };
    // SAFETY: the task's entry was taken when it left.
    unsafe { basalt_runtime::restore_entry(entry) };
    // SAFETY: `sp` is the task's saved state (fresh or from `leave`); the
    // task is alive and not running.
    unsafe { basalt_arch::stack::switch_stack(MAIN_SP.as_ptr(), sp) };
}

/// Runs every task whose wait is over (`ready` tells whether a socket is
/// ready for an interest) once, and frees the finished ones. Returns
/// what the parked tasks wait for: their interests and the earliest
/// deadline (`Some(0)`: a task can run now).
pub fn run(now: u64, ready: &dyn Fn(SocketId, Interest) -> bool) -> Wait {
    let n = SCHED.0.lock().tasks.len();
    for i in 0..n {
        let go = {
            let s = SCHED.0.lock();
            match s.tasks.get(i).and_then(Option::as_ref) {
                Some(t) if t.done => false,
                Some(t) => match &t.wait {
                    None => true,
                    Some(w) => {
                        w.deadline.is_some_and(|d| now >= d)
                            || w.interests.iter().any(|(sock, what)| ready(*sock, *what))
                    }
                },
                None => false,
            }
        };
        if go {
            resume(i);
        }
        let finished = {
            let mut s = SCHED.0.lock();
            match s.tasks.get_mut(i) {
                Some(slot) if slot.as_ref().is_some_and(|t| t.done) => slot.take(),
                _ => None,
            }
        };
        if let Some(mut t) = finished
            && let Some(stack) = t.stack.take()
        {
            // SAFETY: the task is done: nothing runs on its stack, and it
            // switched away from it for good.
            unsafe { crate::mem::free_stack(stack) };
        }
    }
    let s = SCHED.0.lock();
    let mut all = Wait {
        interests: Vec::new(),
        deadline: None,
    };
    for t in s.tasks.iter().flatten() {
        match &t.wait {
            None => all.deadline = Some(0),
            Some(w) => {
                all.interests.extend_from_slice(&w.interests);
                if let Some(d) = w.deadline {
                    all.deadline = Some(all.deadline.map_or(d, |a| a.min(d)));
                }
            }
        }
    }
    all
}
