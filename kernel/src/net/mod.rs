//! The network stack: smoltcp over the virtio-net driver, as the
//! [`Network`] service preview1 sockets run on.
//!
//! The interface comes up on the first [`listen`]: the kernel claims the
//! first virtio-net transport, routes its interrupt to the CPU (so waits
//! halt), and gets an address by DHCPv4 — or takes the static one of the
//! kernel command line (`basalt.ip=10.0.2.15/24 basalt.gateway=10.0.2.2`,
//! see `docs/guest-protocol.md`). smoltcp answers ARP and ICMP echo
//! itself.
//!
//! smoltcp has no listen backlog: a listening socket becomes the
//! connection it accepts. Each listener therefore keeps [`BACKLOG`]
//! sockets listening on its port, and every received frame is followed
//! by a check that turns those which left the listening state into
//! pending connections and puts fresh listening sockets in their place, so
//! a burst of connection requests finds a listener each. At most
//! [`MAX_PENDING`] connections wait for the program to accept them: a
//! half-open one (its handshake unfinished) is dropped after 5 s or when
//! a newer request needs its place, so a flood of requests that never
//! complete cannot lock clients out; socket buffers are allocated
//! fallibly, and at most [`INGRESS_BUDGET`] frames are taken in per poll.
//!
//! The stack is driven (frames in, timers, frames out) in every
//! [`Network`] call and in [`Network::wait`], which halts the CPU between
//! polls until the card's interrupt, the next smoltcp timer or the
//! caller's deadline.

mod card;
mod driven;
mod netcheck;
mod phy;
pub mod program;

use alloc::collections::{BTreeMap, VecDeque};
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::net::Ipv4Addr;

use basalt_drivers::virtio::VirtioError;
use basalt_wasi::services::{Interest, NetError, Network, Readiness, Shutdown, SocketId};
use smoltcp::iface::{PollIngressSingleResult, PollResult, SocketHandle, SocketSet};
use smoltcp::socket::tcp;
use smoltcp::time::Instant;
use smoltcp::wire::{IpListenEndpoint, Ipv4Cidr};
use spin::Mutex;

use card::Card;

pub use netcheck::run as netcheck;

/// Sockets kept listening per listener.
pub const BACKLOG: usize = 8;
/// Connections a listener holds that the program has not accepted yet
/// (being set up or established): past this, new connection requests are
/// refused until the program accepts some — a real listen backlog.
pub const MAX_PENDING: usize = 128;
/// How long a connection may stay half-open (its handshake unfinished)
/// before it is dropped: a flood of connection requests that never
/// complete ties up nothing for long.
const HALF_OPEN_NS: u64 = 5_000_000_000;
/// An accepted connection with unacknowledged data and no progress for
/// this long is aborted (smoltcp's timeout); idle ones are probed.
const CONNECTION_TIMEOUT_S: u64 = 60;
/// How often an idle connection is probed (TCP keep-alive), so a peer
/// that vanished is noticed and its connection times out.
const KEEP_ALIVE_S: u64 = 30;
/// Frames taken in per poll: a flood is worked through a budget at a time,
/// and the program runs in between.
const INGRESS_BUDGET: usize = 256;
/// Bytes of each connection's receive and of its send buffer.
pub const SOCKET_BUFFER: usize = 64 * 1024;
/// The most TCP sockets (listening, pending, accepted, closing) at once.
pub const MAX_SOCKETS: usize = 1024;
/// How long the first DHCP lease may take.
pub const DHCP_DEADLINE_NS: u64 = 5_000_000_000;
/// How long a closed connection may take to finish its goodbyes before
/// it is aborted.
const LINGER_NS: u64 = 30_000_000_000;
/// Why the network could not be had, or a listener not made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NetSetupError {
    /// the listen address is not `IPV4:PORT` (what was given)
    BadAddress(String),
    /// the machine has no virtio-net device
    NoDevice,
    /// the virtio-net device could not be brought up
    Device(VirtioError),
    /// a `basalt.ip=` or `basalt.gateway=` word of the command line is
    /// malformed (the word)
    BadConfig(String),
    /// no DHCP lease within the deadline (seconds)
    DhcpTimeout(u64),
    /// something already listens on the port
    PortInUse(u16),
    /// no socket slots left
    NoSockets,
}

impl core::fmt::Display for NetSetupError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            NetSetupError::BadAddress(a) => {
                write!(
                    f,
                    "cannot listen on `{a}`: want IPV4:PORT, e.g. 0.0.0.0:8080"
                )
            }
            NetSetupError::NoDevice => {
                f.write_str("no network device (the VM needs a virtio-net device on virtio-mmio)")
            }
            NetSetupError::Device(e) => write!(f, "network device: {e}"),
            NetSetupError::BadConfig(w) => write!(
                f,
                "malformed `{w}` on the kernel command line (want basalt.ip=A.B.C.D/N, basalt.gateway=A.B.C.D)"
            ),
            NetSetupError::DhcpTimeout(s) => write!(
                f,
                "no DHCP lease within {s} s (give basalt.ip= and basalt.gateway= on the kernel command line for a static address)"
            ),
            NetSetupError::PortInUse(p) => write!(f, "port {p} is already listened on"),
            NetSetupError::NoSockets => f.write_str("no socket slots left"),
        }
    }
}

/// The static address the command line asks for, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StaticConfig {
    /// address and prefix (`basalt.ip=`)
    pub address: Ipv4Cidr,
    /// default gateway (`basalt.gateway=`)
    pub gateway: Option<Ipv4Addr>,
}

/// Reads `basalt.ip=A.B.C.D/N` and `basalt.gateway=A.B.C.D` from the
/// kernel command line: `Ok(None)` when there is no `basalt.ip=` (DHCP).
pub fn static_config(cmdline: &[u8]) -> Result<Option<StaticConfig>, NetSetupError> {
    let mut address = None;
    let mut gateway = None;
    for word in cmdline.split(|b| b.is_ascii_whitespace()) {
        let bad = || NetSetupError::BadConfig(String::from_utf8_lossy(word).into_owned());
        fn text(v: &[u8]) -> Option<&str> {
            core::str::from_utf8(v).ok()
        }
        if let Some(v) = word.strip_prefix(b"basalt.ip=") {
            let (ip, prefix) = text(v).and_then(|t| t.split_once('/')).ok_or_else(bad)?;
            let ip: Ipv4Addr = ip.parse().map_err(|_| bad())?;
            let prefix: u8 = prefix.parse().map_err(|_| bad())?;
            if prefix > 32 {
                return Err(bad());
            }
            address = Some(Ipv4Cidr::new(ip, prefix));
        } else if let Some(v) = word.strip_prefix(b"basalt.gateway=") {
            gateway = Some(
                text(v)
                    .and_then(|t| t.parse::<Ipv4Addr>().ok())
                    .ok_or_else(bad)?,
            );
        }
    }
    Ok(address.map(|address| StaticConfig { address, gateway }))
}

/// Parses a listen address `IPV4:PORT` (`0.0.0.0`: any address).
fn listen_endpoint(addr: &str) -> Result<IpListenEndpoint, NetSetupError> {
    let bad = || NetSetupError::BadAddress(String::from(addr));
    let (ip, port) = addr.rsplit_once(':').ok_or_else(bad)?;
    let ip: Ipv4Addr = ip.parse().map_err(|_| bad())?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    if port == 0 {
        return Err(bad());
    }
    Ok(IpListenEndpoint {
        addr: (!ip.is_unspecified()).then_some(ip.into()),
        port,
    })
}

static NETWORK: spin::Once<Result<Arc<KernelNetwork>, NetSetupError>> = spin::Once::new();

/// Drives the network stack if it is up and not in use: called from the
/// program's interrupt check, so connections progress (handshakes,
/// retransmissions, keep-alives) while a program computes without making
/// socket calls.
pub fn poll_in_background() {
    if let Some(Ok(net)) = NETWORK.get()
        && let Some(mut st) = net.stack.try_lock()
    {
        st.poll();
    }
    program::poll_in_background();
}

/// Listens for TCP connections on `addr` (`IPV4:PORT`, e.g.
/// `0.0.0.0:8080`), bringing the network up first if this is the first
/// listener: returns the network and the listener's socket.
pub fn listen(addr: &str) -> Result<(Arc<dyn Network>, SocketId), NetSetupError> {
    let endpoint = listen_endpoint(addr)?;
    let net = NETWORK.call_once(bring_up).clone()?;
    let id = net.stack.lock().listen(endpoint)?;
    Ok((net, id))
}

/// The monotonic clock as smoltcp's time.
fn now() -> Instant {
    Instant::from_micros((crate::time::monotonic_ns() / 1000) as i64)
}

fn bring_up() -> Result<Arc<KernelNetwork>, NetSetupError> {
    let mut sockets = SocketSet::new(Vec::new());
    let card = Card::open(&mut sockets)?;
    let stack = Stack {
        card,
        sockets,
        listeners: BTreeMap::new(),
        conns: BTreeMap::new(),
        closing: Vec::new(),
        next_id: 1,
    };
    let net = KernelNetwork {
        stack: Mutex::new(stack),
    };
    let deadline = crate::time::monotonic_ns().saturating_add(DHCP_DEADLINE_NS);
    loop {
        let mut st = net.stack.lock();
        st.poll();
        if st.card.configured() {
            break;
        }
        if crate::time::monotonic_ns() >= deadline {
            return Err(NetSetupError::DhcpTimeout(DHCP_DEADLINE_NS / 1_000_000_000));
        }
        let until = st.next_wake(Some(deadline));
        drop(st);
        crate::time::halt_until(until);
    }
    Ok(Arc::new(net))
}

/// A listener: its sockets listening, and those that left listening
/// (being or done connecting) in arrival order.
struct Listener {
    endpoint: IpListenEndpoint,
    listening: Vec<SocketHandle>,
    /// with the time (monotonic ns) each left listening
    pending: VecDeque<(SocketHandle, u64)>,
}

/// An accepted connection.
struct Conn {
    handle: SocketHandle,
    /// the peer's end of stream was seen (so a later `Closed` is not a
    /// reset)
    saw_fin: bool,
    /// this side shut down receiving
    read_shut: bool,
    /// this side shut down sending
    write_shut: bool,
}

/// Everything behind the lock.
struct Stack {
    card: Card,
    sockets: SocketSet<'static>,
    listeners: BTreeMap<SocketId, Listener>,
    conns: BTreeMap<SocketId, Conn>,
    /// closed connections finishing their goodbyes, since when (ns)
    closing: Vec<(SocketHandle, u64)>,
    next_id: SocketId,
}

/// A fresh socket with its buffers, or `None` when the heap has no room
/// for them (a peer's connection requests must not end in a kernel panic).
fn new_tcp_socket() -> Option<tcp::Socket<'static>> {
    let buffer = || {
        let mut b = Vec::new();
        b.try_reserve_exact(SOCKET_BUFFER).ok()?;
        b.resize(SOCKET_BUFFER, 0u8);
        Some(tcp::SocketBuffer::new(b))
    };
    let mut s = tcp::Socket::new(buffer()?, buffer()?);
    s.set_nagle_enabled(false);
    s.set_timeout(Some(smoltcp::time::Duration::from_secs(
        CONNECTION_TIMEOUT_S,
    )));
    s.set_keep_alive(Some(smoltcp::time::Duration::from_secs(KEEP_ALIVE_S)));
    Some(s)
}

/// Whether a socket no longer listening has a connection to hand out.
fn acceptable(state: tcp::State) -> bool {
    !matches!(
        state,
        tcp::State::Listen | tcp::State::SynReceived | tcp::State::Closed
    )
}

impl Stack {
    /// Drives the stack: frames in (keeping every listener's backlog
    /// full after each), DHCP, timers, frames out, and the reaping of
    /// finished connections.
    fn poll(&mut self) {
        let now = now();
        self.card.phy.nic().ack_interrupt();
        self.card.iface.poll_maintenance(now);
        for _ in 0..INGRESS_BUDGET {
            match self
                .card
                .iface
                .poll_ingress_single(now, &mut self.card.phy, &mut self.sockets)
            {
                PollIngressSingleResult::None => break,
                // A listening socket may have taken a connection request
                // (smoltcp need not call that a state change).
                _ => self.replenish(),
            }
        }
        while self
            .card
            .iface
            .poll_egress(now, &mut self.card.phy, &mut self.sockets)
            == PollResult::SocketStateChanged
        {}
        self.card.lease_events(&mut self.sockets);
        self.drop_half_open();
        self.reap();
    }

    /// Drops connections whose handshake has not finished within
    /// [`HALF_OPEN_NS`], and lets their listeners listen again.
    fn drop_half_open(&mut self) {
        let now_ns = crate::time::monotonic_ns();
        let mut dropped = false;
        for l in self.listeners.values_mut() {
            let sockets = &mut self.sockets;
            l.pending.retain(|&(h, since)| {
                let s = sockets.get_mut::<tcp::Socket<'_>>(h);
                let stale = s.state() == tcp::State::SynReceived
                    && now_ns.saturating_sub(since) > HALF_OPEN_NS;
                if stale {
                    s.abort();
                    sockets.remove(h);
                    dropped = true;
                }
                !stale
            });
        }
        if dropped {
            self.replenish();
        }
    }

    /// Moves sockets that left the listening state to their listener's
    /// pending queue and listens with fresh ones in their place.
    fn replenish(&mut self) {
        let now_ns = crate::time::monotonic_ns();
        let mut total = None;
        for l in self.listeners.values_mut() {
            let mut i = 0;
            while i < l.listening.len() {
                let h = l.listening[i];
                if self.sockets.get::<tcp::Socket<'_>>(h).is_listening() {
                    i += 1;
                } else {
                    l.listening.swap_remove(i);
                    l.pending.push_back((h, now_ns));
                }
            }
            // A backlog full of half-open connections gives up its oldest
            // for new requests (a flood of requests that never complete
            // must not lock real clients out until they time out); one full
            // of established connections the program has not accepted
            // listens no more, and smoltcp refuses (resets) requests no
            // socket listens for.
            while l.listening.len() < BACKLOG && l.pending.len() + l.listening.len() >= MAX_PENDING
            {
                let sockets = &mut self.sockets;
                let oldest_half_open = l.pending.iter().position(|&(h, _)| {
                    sockets.get::<tcp::Socket<'_>>(h).state() == tcp::State::SynReceived
                });
                let Some(i) = oldest_half_open else { break };
                if let Some((h, _)) = l.pending.remove(i) {
                    sockets.get_mut::<tcp::Socket<'_>>(h).abort();
                    sockets.remove(h);
                    total = None;
                }
            }
            while l.listening.len() < BACKLOG && l.pending.len() + l.listening.len() < MAX_PENDING {
                let n = total.get_or_insert_with(|| self.sockets.iter().count());
                if *n >= MAX_SOCKETS {
                    break;
                }
                let Some(mut s) = new_tcp_socket() else { break };
                if s.listen(l.endpoint).is_err() {
                    break;
                }
                l.listening.push(self.sockets.add(s));
                *n += 1;
            }
        }
    }

    /// Removes closed connections that finished (or took too long).
    fn reap(&mut self) {
        let now_ns = crate::time::monotonic_ns();
        let sockets = &mut self.sockets;
        self.closing.retain(|&(h, since)| {
            let s = sockets.get_mut::<tcp::Socket<'_>>(h);
            let done = matches!(s.state(), tcp::State::Closed | tcp::State::TimeWait);
            if done || now_ns.saturating_sub(since) > LINGER_NS {
                s.abort();
                sockets.remove(h);
                false
            } else {
                true
            }
        });
    }

    fn listen(&mut self, endpoint: IpListenEndpoint) -> Result<SocketId, NetSetupError> {
        if self
            .listeners
            .values()
            .any(|l| l.endpoint.port == endpoint.port)
        {
            return Err(NetSetupError::PortInUse(endpoint.port));
        }
        let id = self.next_id;
        self.next_id += 1;
        self.listeners.insert(
            id,
            Listener {
                endpoint,
                listening: Vec::new(),
                pending: VecDeque::new(),
            },
        );
        self.replenish();
        if self
            .listeners
            .get(&id)
            .is_some_and(|l| l.listening.is_empty())
        {
            self.listeners.remove(&id);
            return Err(NetSetupError::NoSockets);
        }
        Ok(id)
    }

    fn tcp(&mut self, h: SocketHandle) -> &mut tcp::Socket<'static> {
        self.sockets.get_mut::<tcp::Socket<'static>>(h)
    }

    /// The connection `id`, its peer's end of stream noted.
    fn conn(&mut self, id: SocketId) -> Result<&mut Conn, NetError> {
        let Some(c) = self.conns.get_mut(&id) else {
            return Err(if self.listeners.contains_key(&id) {
                NetError::InvalidArgument
            } else {
                NetError::Stale
            });
        };
        let s = self.sockets.get::<tcp::Socket<'_>>(c.handle);
        if matches!(
            s.state(),
            tcp::State::CloseWait
                | tcp::State::LastAck
                | tcp::State::Closing
                | tcp::State::TimeWait
        ) {
            c.saw_fin = true;
        }
        Ok(c)
    }

    fn accept(&mut self, id: SocketId) -> Result<SocketId, NetError> {
        if self.conns.contains_key(&id) {
            return Err(NetError::InvalidArgument);
        }
        let l = self.listeners.get_mut(&id).ok_or(NetError::Stale)?;
        let mut found = None;
        let mut i = 0;
        while i < l.pending.len() {
            let (h, _) = l.pending[i];
            let state = self.sockets.get::<tcp::Socket<'_>>(h).state();
            if acceptable(state) {
                found = l.pending.remove(i).map(|(h, _)| h);
                break;
            } else if matches!(state, tcp::State::Closed | tcp::State::Listen) {
                // The handshake failed (reset): nothing to accept.
                l.pending.remove(i);
                self.sockets.remove(h);
            } else {
                i += 1;
            }
        }
        let handle = found.ok_or(NetError::WouldBlock)?;
        // Room in the backlog again.
        self.replenish();
        let conn_id = self.next_id;
        self.next_id += 1;
        self.conns.insert(
            conn_id,
            Conn {
                handle,
                saw_fin: false,
                read_shut: false,
                write_shut: false,
            },
        );
        Ok(conn_id)
    }

    fn recv(&mut self, id: SocketId, buf: &mut [u8], peek: bool) -> Result<usize, NetError> {
        let c = self.conn(id)?;
        let (h, saw_fin, read_shut) = (c.handle, c.saw_fin, c.read_shut);
        if read_shut {
            return Ok(0);
        }
        let s = self.tcp(h);
        if s.can_recv() {
            let r = if peek {
                s.peek_slice(buf)
            } else {
                s.recv_slice(buf)
            };
            return r.map_err(|_| NetError::NotConnected);
        }
        if s.may_recv() {
            return Err(NetError::WouldBlock);
        }
        match s.state() {
            tcp::State::Closed if !saw_fin => Err(NetError::ConnectionReset),
            _ => Ok(0),
        }
    }

    fn send(&mut self, id: SocketId, data: &[u8]) -> Result<usize, NetError> {
        let c = self.conn(id)?;
        let (h, saw_fin, write_shut) = (c.handle, c.saw_fin, c.write_shut);
        if write_shut {
            return Err(NetError::BrokenPipe);
        }
        let s = self.tcp(h);
        if !s.may_send() {
            return Err(match s.state() {
                tcp::State::Closed if !saw_fin => NetError::ConnectionReset,
                tcp::State::SynReceived | tcp::State::Listen => NetError::NotConnected,
                _ => NetError::BrokenPipe,
            });
        }
        if data.is_empty() {
            return Ok(0);
        }
        match s.send_slice(data) {
            Ok(0) => Err(NetError::WouldBlock),
            Ok(n) => Ok(n),
            Err(_) => Err(NetError::BrokenPipe),
        }
    }

    fn shutdown(&mut self, id: SocketId, how: Shutdown) -> Result<(), NetError> {
        let c = self.conn(id)?;
        let h = c.handle;
        if matches!(how, Shutdown::Read | Shutdown::Both) {
            c.read_shut = true;
        }
        if matches!(how, Shutdown::Write | Shutdown::Both) {
            c.write_shut = true;
            self.tcp(h).close();
        }
        Ok(())
    }

    fn readiness(&mut self, id: SocketId) -> Result<Readiness, NetError> {
        if let Some(l) = self.listeners.get(&id) {
            let readable = l
                .pending
                .iter()
                .any(|(h, _)| acceptable(self.sockets.get::<tcp::Socket<'_>>(*h).state()));
            return Ok(Readiness {
                readable,
                ..Readiness::default()
            });
        }
        let c = self.conn(id)?;
        let (h, read_shut, write_shut) = (c.handle, c.read_shut, c.write_shut);
        let s = self.tcp(h);
        let hangup = !s.may_recv() && !s.can_recv();
        let room = s.send_capacity() - s.send_queue();
        Ok(Readiness {
            readable: s.can_recv() || hangup || read_shut,
            writable: (s.may_send() && !write_shut && room > 0).then_some(room),
            hangup,
            pending: s.recv_queue(),
        })
    }

    /// Whether `interest` in `id` is met (or the socket is gone, which the
    /// caller finds out by asking).
    fn ready(&mut self, id: SocketId, interest: Interest) -> bool {
        match self.readiness(id) {
            Ok(r) => match interest {
                Interest::Read => r.readable || r.hangup,
                Interest::Write => r.writable.is_some() || r.hangup,
            },
            Err(_) => true,
        }
    }

    fn close(&mut self, id: SocketId) {
        if let Some(l) = self.listeners.remove(&id) {
            for h in l
                .listening
                .into_iter()
                .chain(l.pending.into_iter().map(|(h, _)| h))
            {
                self.tcp(h).abort();
                self.closing.push((h, 0));
            }
        } else if let Some(c) = self.conns.remove(&id) {
            self.tcp(c.handle).close();
            self.closing.push((c.handle, crate::time::monotonic_ns()));
        }
    }

    /// When a waiter should wake at the latest (monotonic ns).
    fn next_wake(&mut self, deadline: Option<u64>) -> u64 {
        self.card.next_wake(&self.sockets, deadline)
    }
}

impl driven::Driven for Stack {
    fn poll(&mut self) {
        Stack::poll(self);
    }
    fn ready(&mut self, socket: SocketId, interest: Interest) -> bool {
        Stack::ready(self, socket, interest)
    }
    fn next_wake(&mut self, deadline: Option<u64>) -> u64 {
        Stack::next_wake(self, deadline)
    }
}

/// The kernel's network, shared by every socket descriptor.
pub struct KernelNetwork {
    stack: Mutex<Stack>,
}

impl KernelNetwork {
    /// Runs `f` on the stack after driving it, and drives it again after
    /// (so what `f` queued goes out at once).
    fn with<R>(&self, f: impl FnOnce(&mut Stack) -> R) -> R {
        driven::with(&self.stack, f)
    }
}

impl Network for KernelNetwork {
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
        self.with(|s| s.shutdown(socket, how))
    }

    fn readiness(&self, socket: SocketId) -> Result<Readiness, NetError> {
        let mut st = self.stack.lock();
        st.poll();
        st.readiness(socket)
    }

    fn wait(&self, interests: &[(SocketId, Interest)], deadline_ns: Option<u64>) {
        driven::wait(&self.stack, interests, deadline_ns);
    }

    fn close(&self, socket: SocketId) {
        self.with(|s| s.close(socket))
    }
}
