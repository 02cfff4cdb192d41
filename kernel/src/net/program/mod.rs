//! The network of the sockets a program makes itself (`wasi:sockets`
//! 0.2) in a VM: smoltcp over its loopback (`127.0.0.1`, `::1`) and, when
//! the VM has a network card, over the card (its IPv4 address by DHCP,
//! outbound connections and datagrams through its gateway, names looked
//! up through the DNS servers its lease names).
//!
//! What is served: TCP (bind, listen with a backlog of listening
//! sockets, connect, accept, shutdown) and UDP, on the loopback and the
//! card; name lookup of `localhost` and, with a card, of any name (IPv4
//! addresses). A listener on the loopback also listens on the card and is
//! reported on the kernel log as `BASALT-LISTEN tcp PORT` (see
//! `docs/guest-protocol.md`): the CLI forwards the host's loopback port
//! `PORT` to it, so a client on the host reaches the address the program
//! printed. Not served, with the error the program sees: addresses that
//! are neither the loopback's nor the card's (`address-not-bindable`),
//! peers no network reaches, and IPv6 beyond `::1` (`remote-unreachable`:
//! the card has IPv4 only); without a card, names other than `localhost`
//! (`permanent-resolver-failure`). smoltcp gives UDP sockets no ICMP
//! errors; a connected UDP socket that sends to a loopback port no socket
//! is bound to gets `connection-refused` on its next receive instead, as
//! ICMP port-unreachable gives it on Linux.

mod planes;
mod stack;

use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::net::{IpAddr, SocketAddr};

use basalt_wasi::services::{
    Interest, NetError, Network, Readiness, Shutdown, SocketId, SocketOption, Transport,
};
use spin::Mutex;

use planes::LOOPBACK;
use stack::Stack;

/// The program's network, shared by its sockets.
pub struct ProgramNetwork {
    stack: Mutex<Stack>,
}

/// The program's network of this run (for driving it in the background).
static PROGRAM_NETWORK: spin::Once<Arc<ProgramNetwork>> = spin::Once::new();

/// The program's network, with no sockets yet (the card is brought up
/// when a socket first needs it).
pub fn network() -> Arc<dyn Network> {
    PROGRAM_NETWORK
        .call_once(|| {
            Arc::new(ProgramNetwork {
                stack: Mutex::new(Stack::new()),
            })
        })
        .clone()
}

/// Whether `interest` in program socket `socket` is met now (or the
/// socket is gone).
pub fn ready(socket: SocketId, interest: Interest) -> bool {
    match PROGRAM_NETWORK.get() {
        Some(net) => {
            let mut st = net.stack.lock();
            super::driven::Driven::ready(&mut *st, socket, interest)
        }
        None => true,
    }
}

/// Drives the program's network if it is not in use: connections on the
/// card progress (retransmissions, keep-alives) while the program
/// computes.
pub fn poll_in_background() {
    if let Some(net) = PROGRAM_NETWORK.get()
        && let Some(mut st) = net.stack.try_lock()
    {
        st.poll();
    }
}

impl super::driven::Driven for Stack {
    fn poll(&mut self) {
        Stack::poll(self);
    }
    fn ready(&mut self, socket: SocketId, interest: Interest) -> bool {
        Stack::ready(self, socket, interest)
    }
    fn next_wake(&mut self, deadline: Option<u64>) -> u64 {
        self.planes().next_wake(deadline)
    }
}

impl ProgramNetwork {
    /// Runs `f` on the stack between two polls (what `f` queued goes out
    /// at once; the loopback delivers it at once).
    fn with<R>(&self, f: impl FnOnce(&mut Stack) -> R) -> R {
        super::driven::with(&self.stack, f)
    }
}

impl Network for ProgramNetwork {
    fn accept(&self, listener: SocketId) -> Result<SocketId, NetError> {
        self.with(|s| s.accept(listener))
    }

    fn recv(&self, socket: SocketId, buf: &mut [u8], peek: bool) -> Result<usize, NetError> {
        self.with(|s| s.recv(socket, buf, peek))
    }

    fn send(&self, socket: SocketId, data: &[u8]) -> Result<usize, NetError> {
        self.with(|s| s.send(socket, data))
    }

    fn shutdown(&self, socket: SocketId, how: Shutdown) -> Result<(), NetError> {
        self.with(|s| {
            let t = s.conn_socket(socket)?;
            if how != Shutdown::Read {
                t.close();
            }
            Ok(())
        })
    }

    fn readiness(&self, socket: SocketId) -> Result<Readiness, NetError> {
        self.with(|s| s.readiness(socket))
    }

    fn wait(&self, interests: &[(SocketId, Interest)], deadline_ns: Option<u64>) {
        if crate::tasks::in_task() {
            // A request task: the server's loop waits for everyone.
            crate::tasks::park(crate::tasks::Wait {
                interests: interests.to_vec(),
                deadline: deadline_ns,
            });
            return;
        }
        super::driven::wait(&self.stack, interests, deadline_ns);
    }

    fn close(&self, socket: SocketId) {
        self.with(|s| s.close(socket));
    }

    fn create(&self, transport: Transport, ipv6: bool) -> Result<SocketId, NetError> {
        self.with(|s| Ok(s.create(transport == Transport::Udp, ipv6)))
    }

    fn bind(&self, socket: SocketId, addr: SocketAddr) -> Result<(), NetError> {
        self.with(|s| s.bind(socket, addr))
    }

    fn listen(&self, socket: SocketId, _backlog: u32) -> Result<(), NetError> {
        let reported = self.with(|s| s.listen(socket))?;
        if let Some(port) = reported {
            // Before the program can print its address: the host forwards
            // the port when it reads this line, ahead of the program's
            // output that follows it.
            kprintln!("BASALT-LISTEN tcp {port}");
        }
        Ok(())
    }

    fn connect(&self, socket: SocketId, addr: SocketAddr) -> Result<(), NetError> {
        self.with(|s| s.connect(socket, addr))
    }

    fn connect_status(&self, socket: SocketId) -> Result<bool, NetError> {
        self.with(|s| s.connect_status(socket))
    }

    fn disconnect(&self, socket: SocketId) -> Result<(), NetError> {
        self.with(|s| s.disconnect(socket))
    }

    fn local_addr(&self, socket: SocketId) -> Result<SocketAddr, NetError> {
        self.with(|s| s.local_addr(socket))
    }

    fn peer_addr(&self, socket: SocketId) -> Result<SocketAddr, NetError> {
        self.with(|s| s.peer_addr(socket))
    }

    fn set_option(&self, socket: SocketId, option: SocketOption) -> Result<(), NetError> {
        self.with(|s| s.set_option(socket, option))
    }

    fn send_to(
        &self,
        socket: SocketId,
        data: &[u8],
        to: Option<SocketAddr>,
    ) -> Result<(), NetError> {
        self.with(|s| s.send_to(socket, data, to))
    }

    fn recv_from(&self, socket: SocketId, buf: &mut [u8]) -> Result<(usize, SocketAddr), NetError> {
        self.with(|s| s.recv_from(socket, buf))
    }

    fn resolve(&self, name: &str) -> Result<Vec<IpAddr>, NetError> {
        if name.eq_ignore_ascii_case("localhost") {
            return Ok(vec![IpAddr::V4(LOOPBACK)]);
        }
        self.stack.lock().planes().resolve(name)
    }
}
