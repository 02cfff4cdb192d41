//! Preview1 `poll_oneoff`: clocks, the standard streams, files and
//! sockets.

use alloc::sync::Arc;
use alloc::vec::Vec;

use super::{Args, Outcome, check_clock, now};
use crate::abi::*;
use crate::ctx::{Descriptor, WasiCtx};
use crate::errno::Errno;
use crate::memory::GuestMemory;
use crate::services::Interest;

/// One event of a `poll_oneoff` answer.
struct Ready {
    userdata: u64,
    error: u16,
    kind: u8,
    /// `fd_readwrite.nbytes`
    nbytes: u64,
    /// `fd_readwrite.flags`
    flags: u16,
}

/// A socket subscription: (userdata, event type, network, socket, interest).
type SocketWatch = (
    u64,
    u8,
    Arc<dyn crate::services::Network>,
    crate::services::SocketId,
    Interest,
);

/// Waits for clocks, stream and socket readiness. Output streams and
/// files are always ready; standard input is reported ready (a read then
/// blocks until data or end of file arrives); sockets are asked their
/// network. When nothing is ready, it waits in the network (sockets
/// subscribed) or sleeps (clocks only) until the earliest deadline.
pub(super) fn poll_oneoff(cx: &mut WasiCtx, mem: &mut GuestMemory<'_>, a: &Args<'_>) -> Outcome {
    let (subs, events, count, nevents_ptr) = (a.u32(0), a.u32(1), a.u32(2), a.u32(3));
    if count == 0 {
        return Err(Errno::Inval.into());
    }
    mem.slice(
        subs,
        count.checked_mul(SUBSCRIPTION_SIZE).ok_or(Errno::Fault)?,
    )?;
    mem.slice(events, count.checked_mul(EVENT_SIZE).ok_or(Errno::Fault)?)?;
    mem.read_u32(nevents_ptr)?;

    let event = |userdata, error: u16, kind| Ready {
        userdata,
        error,
        kind,
        nbytes: 0,
        flags: 0,
    };
    let mut ready = Vec::new();
    // (userdata, monotonic deadline) of each valid clock subscription
    let mut clocks = Vec::new();
    let mut watched: Vec<SocketWatch> = Vec::new();
    for i in 0..count {
        let at = subs + i * SUBSCRIPTION_SIZE;
        let userdata = mem.read_u64(at)?;
        let tag = mem.read_u8(at + 8)?;
        match tag {
            EVENTTYPE_CLOCK => {
                let id = mem.read_u32(at + 16)?;
                let timeout = mem.read_u64(at + 24)?;
                let flags = mem.read_u16(at + 40)?;
                match check_clock(id) {
                    Err(e) => ready.push(event(userdata, e.raw(), tag)),
                    Ok(clock) => {
                        let mono = cx.services.clocks.monotonic_ns();
                        let deadline = if flags & SUBCLOCK_ABSTIME != 0 {
                            let remaining = timeout.saturating_sub(now(cx, clock));
                            mono.saturating_add(remaining)
                        } else {
                            mono.saturating_add(timeout)
                        };
                        clocks.push((userdata, deadline));
                    }
                }
            }
            EVENTTYPE_FD_READ | EVENTTYPE_FD_WRITE => {
                let fd = mem.read_u32(at + 16)?;
                let read = tag == EVENTTYPE_FD_READ;
                // A descriptor that is not open, or that cannot be read or
                // written this way (a directory, stdin for writing), fails
                // the whole call with `EBADF`, as under wasmtime.
                let f = cx.fd(fd)?;
                let right = if read { RIGHT_FD_READ } else { RIGHT_FD_WRITE };
                let usable = match (&f.desc, read) {
                    (Descriptor::Socket(s), _) => {
                        if f.rights_base & RIGHT_POLL_FD_READWRITE != 0 {
                            let interest = if read {
                                Interest::Read
                            } else {
                                Interest::Write
                            };
                            watched.push((userdata, tag, s.net.clone(), s.id, interest));
                            continue;
                        }
                        false
                    }
                    (Descriptor::Stdin | Descriptor::File(_), true)
                    | (Descriptor::Stdout | Descriptor::Stderr | Descriptor::File(_), false) => {
                        f.rights_base & right != 0
                    }
                    _ => return Err(Errno::Badf.into()),
                };
                let error = if usable { 0 } else { Errno::Badf.raw() };
                ready.push(event(userdata, error, tag));
            }
            _ => return Err(Errno::Inval.into()),
        }
    }
    let earliest = clocks.iter().map(|(_, d)| *d).min();
    loop {
        let mut sockets_ready = Vec::new();
        for (userdata, tag, net, id, interest) in &watched {
            let r = match net.readiness(*id) {
                Ok(r) => r,
                Err(e) => {
                    sockets_ready.push(event(*userdata, Errno::from(e).raw(), *tag));
                    continue;
                }
            };
            let (is_ready, nbytes) = match interest {
                Interest::Read => (r.readable || r.hangup, r.pending as u64),
                Interest::Write => (
                    r.writable.is_some() || r.hangup,
                    r.writable.unwrap_or(0) as u64,
                ),
            };
            if is_ready {
                sockets_ready.push(Ready {
                    nbytes,
                    flags: if r.hangup { EVENTRWFLAGS_HANGUP } else { 0 },
                    ..event(*userdata, 0, *tag)
                });
            }
        }
        ready.extend(sockets_ready);
        let mono = cx.services.clocks.monotonic_ns();
        let clock_fired = earliest.is_some_and(|d| d <= mono);
        if !ready.is_empty() || clock_fired {
            break;
        }
        match watched.first() {
            // Wait in the network for its sockets (all sockets share one
            // network in practice; others are asked again after 1 ms).
            Some((_, _, net, _, _)) => {
                let interests: Vec<_> = watched
                    .iter()
                    .filter(|w| Arc::ptr_eq(&w.2, net))
                    .map(|w| (w.3, w.4))
                    .collect();
                let others = interests.len() < watched.len();
                let deadline = match (earliest, others) {
                    (d, false) => d,
                    (d, true) => Some(d.unwrap_or(u64::MAX).min(mono.saturating_add(1_000_000))),
                };
                net.wait(&interests, deadline);
            }
            None => {
                if let Some(d) = earliest {
                    cx.services.clocks.sleep_until_monotonic_ns(d);
                }
                break;
            }
        }
    }
    let mono = cx.services.clocks.monotonic_ns();
    for (userdata, deadline) in clocks {
        if deadline <= mono {
            ready.push(event(userdata, 0, EVENTTYPE_CLOCK));
        }
    }
    for (i, r) in ready.iter().enumerate() {
        let at = events + (i as u32) * EVENT_SIZE;
        mem.slice_mut(at, EVENT_SIZE)?.fill(0);
        mem.write_u64(at, r.userdata)?;
        mem.write_u16(at + 8, r.error)?;
        mem.write_u8(at + 10, r.kind)?;
        mem.write_u64(at + 16, r.nbytes)?;
        mem.write_u16(at + 24, r.flags)?;
    }
    mem.write_u32(nevents_ptr, ready.len() as u32)?;
    Ok(())
}
