//! The `basalt.netcheck=PORT` diagnostic: instead of running the program,
//! the kernel brings the network up, listens on `PORT` and echoes what
//! every connection sends until it closes, many connections at once,
//! logging progress. A connection whose first bytes are `netcheck-quit`
//! ends the run (exit status 0). Boot tests drive it from the host
//! through QEMU's port forwarding.

use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use basalt_wasi::services::{Interest, NetError, SocketId};

use crate::exit::{Status, finish};

/// What ends the diagnostic when a connection starts with it.
const QUIT: &[u8] = b"netcheck-quit";

/// One connection: bytes received and not yet echoed.
#[derive(Default)]
struct Echo {
    backlog: Vec<u8>,
    first: bool,
    peer_done: bool,
}

/// Runs the echo server on `port`; never returns.
pub fn run(port: &[u8]) -> ! {
    let port = core::str::from_utf8(port).unwrap_or("?");
    let addr = alloc::format!("0.0.0.0:{port}");
    let (net, listener) = match super::listen(&addr) {
        Ok(v) => v,
        Err(e) => finish(Status::Error, format_args!("netcheck: {e}")),
    };
    kprintln!("netcheck: listening on port {port}");
    let mut conns: BTreeMap<SocketId, Echo> = BTreeMap::new();
    let (mut accepted, mut closed, mut echoed) = (0u64, 0u64, 0u64);
    let mut buf = alloc::vec![0u8; 16 * 1024];
    loop {
        loop {
            match net.accept(listener) {
                Ok(id) => {
                    accepted += 1;
                    conns.insert(
                        id,
                        Echo {
                            first: true,
                            ..Echo::default()
                        },
                    );
                }
                Err(NetError::WouldBlock) => break,
                Err(e) => finish(Status::Error, format_args!("netcheck: accept: {e:?}")),
            }
        }
        let mut finished = Vec::new();
        let mut quit = false;
        for (&id, c) in conns.iter_mut() {
            // Receive while there is room to hold it, echo what is held.
            while !c.peer_done && c.backlog.len() < 64 * 1024 {
                match net.recv(id, &mut buf, false) {
                    Ok(0) => c.peer_done = true,
                    Ok(n) => {
                        if c.first && buf[..n].starts_with(QUIT) {
                            quit = true;
                        }
                        c.first = false;
                        c.backlog.extend_from_slice(&buf[..n]);
                    }
                    Err(NetError::WouldBlock) => break,
                    Err(_) => {
                        c.peer_done = true;
                        c.backlog.clear();
                    }
                }
            }
            while !c.backlog.is_empty() {
                match net.send(id, &c.backlog) {
                    Ok(n) => {
                        echoed += n as u64;
                        c.backlog.drain(..n);
                    }
                    Err(NetError::WouldBlock) => break,
                    Err(_) => {
                        c.backlog.clear();
                        c.peer_done = true;
                    }
                }
            }
            if c.peer_done && c.backlog.is_empty() {
                finished.push(id);
            }
        }
        for id in finished {
            conns.remove(&id);
            net.close(id);
            closed += 1;
            if closed.is_multiple_of(25) || conns.is_empty() {
                kprintln!(
                    "netcheck: {accepted} accepted, {closed} closed, {} open, {echoed} bytes echoed",
                    conns.len()
                );
            }
        }
        if quit {
            kprintln!("netcheck: quit after {accepted} connections, {echoed} bytes echoed");
            finish(Status::Exit, format_args!("0"));
        }
        let mut interests: Vec<(SocketId, Interest)> = Vec::with_capacity(conns.len() + 1);
        interests.push((listener, Interest::Read));
        for (&id, c) in &conns {
            interests.push((
                id,
                if c.backlog.is_empty() {
                    Interest::Read
                } else {
                    Interest::Write
                },
            ));
        }
        net.wait(&interests, None);
    }
}
