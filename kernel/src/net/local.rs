//! The network of the sockets a program makes itself (`wasi:sockets`
//! 0.2) in a VM: smoltcp over its loopback device, at `127.0.0.1` and
//! `::1`.
//!
//! smoltcp's interfaces do not loop packets to their own addresses back,
//! so the loopback is an interface of its own, with its own sockets; it
//! needs no network card. What it serves: TCP (bind, listen with a
//! backlog of listening sockets, connect, accept, shutdown) and UDP, on
//! `127.0.0.1` and `::1`, between sockets of the program. Not served,
//! with the error the program sees: other addresses than the loopback's
//! and the unspecified ones (`address-not-bindable` to bind,
//! `remote-unreachable` to reach: the card's interface is not connected
//! to these sockets) and name lookup beyond `localhost`
//! (`permanent-resolver-failure`: no resolver). smoltcp gives UDP
//! sockets no ICMP errors; a connected UDP socket that sends to a port
//! no socket is bound to gets `connection-refused` on its next receive
//! instead, as ICMP port-unreachable gives it on Linux.

use alloc::collections::BTreeMap;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use basalt_wasi::services::{
    Interest, NetError, Network, Readiness, Shutdown, SocketId, SocketOption, Transport,
};
use smoltcp::iface::{Config, Interface, PollResult, SocketHandle, SocketSet};
use smoltcp::phy::{Loopback, Medium};
use smoltcp::socket::{tcp, udp};
use smoltcp::time::Duration;
use smoltcp::wire::{HardwareAddress, IpAddress, IpCidr, IpEndpoint, IpListenEndpoint};
use spin::Mutex;

use super::now;

/// The loopback's IPv4 address.
const LOOPBACK: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 1);

/// The loopback's address of a family.
fn loopback(v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::LOCALHOST)
    } else {
        IpAddr::V4(LOOPBACK)
    }
}

/// The unspecified address of a family.
fn unspecified(v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    }
}
/// The first port handed out when the program binds port 0.
const EPHEMERAL_FIRST: u16 = 49152;
/// Sockets kept listening per listener (smoltcp has no backlog).
const LISTENING: usize = 4;
/// Connections a listener holds before the program accepts them.
const MAX_PENDING: usize = 64;
/// Bytes of each TCP buffer and of each UDP socket's packet buffers.
const BUFFER: usize = 64 * 1024;
/// Datagrams queued per UDP direction.
const DATAGRAMS: usize = 64;
/// The longest halt in a wait (only timers can wake the loopback).
const HALT_NS: u64 = 10_000_000;

/// What a socket of the program is.
enum Kind {
    /// a TCP socket neither listening nor connected yet
    TcpNew,
    /// listening: its listening sockets and those that left listening
    TcpListener(Vec<SocketHandle>),
    /// connecting or connected
    TcpConn(SocketHandle),
    /// a UDP socket
    Udp(SocketHandle),
}

/// A socket of the program.
struct Sock {
    kind: Kind,
    /// IPv6 (else IPv4)
    v6: bool,
    /// the local port and address (`None`: unspecified) it is bound to
    bound: Option<(Option<IpAddr>, u16)>,
    /// accepted from a listener (it shares the listener's port)
    accepted: bool,
    /// a UDP socket's peer
    peer: Option<SocketAddr>,
    /// a connected UDP socket sent to a port nobody listens on: its next
    /// receive fails (what ICMP port-unreachable does on other stacks)
    refused: bool,
    /// the options the program set
    keep_alive: bool,
    keep_interval: Option<u64>,
    hop_limit: Option<u8>,
}

impl Sock {
    fn new(kind: Kind, v6: bool) -> Sock {
        Sock {
            kind,
            v6,
            bound: None,
            accepted: false,
            peer: None,
            refused: false,
            keep_alive: false,
            keep_interval: None,
            hop_limit: None,
        }
    }

    fn udp(&self) -> bool {
        matches!(self.kind, Kind::Udp(_))
    }
}

/// Everything behind the lock.
struct Stack {
    iface: Interface,
    dev: Loopback,
    set: SocketSet<'static>,
    socks: BTreeMap<SocketId, Sock>,
    /// closed connections finishing their goodbyes
    closing: Vec<SocketHandle>,
    next_id: SocketId,
    next_port: u16,
}

fn tcp_socket() -> tcp::Socket<'static> {
    let buf = || tcp::SocketBuffer::new(vec![0u8; BUFFER]);
    let mut s = tcp::Socket::new(buf(), buf());
    s.set_nagle_enabled(false);
    s
}

fn udp_socket() -> udp::Socket<'static> {
    let buf = || {
        udp::PacketBuffer::new(
            vec![udp::PacketMetadata::EMPTY; DATAGRAMS],
            vec![0u8; BUFFER],
        )
    };
    udp::Socket::new(buf(), buf())
}

/// Whether a socket that left listening has a connection to hand out.
fn acceptable(state: tcp::State) -> bool {
    !matches!(
        state,
        tcp::State::Listen | tcp::State::SynReceived | tcp::State::Closed
    )
}

/// `addr`, if it is of family `v6`.
fn of_family(addr: SocketAddr, v6: bool) -> Result<SocketAddr, NetError> {
    if addr.is_ipv6() == v6 {
        Ok(addr)
    } else {
        Err(NetError::InvalidArgument)
    }
}

fn endpoint_addr(e: IpEndpoint) -> SocketAddr {
    match e.addr {
        IpAddress::Ipv4(a) => SocketAddr::V4(SocketAddrV4::new(a, e.port)),
        IpAddress::Ipv6(a) => SocketAddr::V6(SocketAddrV6::new(a, e.port, 0, 0)),
    }
}

/// Where smoltcp listens for a socket of family `v6` bound to `ip`: the
/// loopback's address (the only one there is), so the two families'
/// sockets never take each other's packets.
fn listen_endpoint(ip: Option<IpAddr>, v6: bool, port: u16) -> IpListenEndpoint {
    IpListenEndpoint {
        addr: Some(IpAddress::from(ip.unwrap_or(loopback(v6)))),
        port,
    }
}

impl Stack {
    /// Runs the loopback until nothing moves, then tops up listeners and
    /// lets finished connections go.
    fn poll(&mut self) {
        for _ in 0..64 {
            if self.iface.poll(now(), &mut self.dev, &mut self.set) == PollResult::None {
                break;
            }
        }
        let mut listeners: Vec<SocketId> = Vec::new();
        for (id, s) in &self.socks {
            if matches!(s.kind, Kind::TcpListener(_)) {
                listeners.push(*id);
            }
        }
        for id in listeners {
            self.replenish(id);
        }
        let set = &mut self.set;
        self.closing.retain(|h| {
            let done = matches!(
                set.get::<tcp::Socket<'_>>(*h).state(),
                tcp::State::Closed | tcp::State::TimeWait
            );
            if done {
                set.remove(*h);
            }
            !done
        });
    }

    /// Keeps [`LISTENING`] sockets of listener `id` listening (while
    /// fewer than [`MAX_PENDING`] connections wait).
    fn replenish(&mut self, id: SocketId) {
        let Some(Sock {
            kind: Kind::TcpListener(hs),
            bound: Some((addr, port)),
            v6,
            ..
        }) = self.socks.get(&id)
        else {
            return;
        };
        let endpoint = listen_endpoint(*addr, *v6, *port);
        let listening = hs
            .iter()
            .filter(|h| self.set.get::<tcp::Socket<'_>>(**h).state() == tcp::State::Listen)
            .count();
        let mut fresh = Vec::new();
        if hs.len() < MAX_PENDING + LISTENING {
            for _ in listening..LISTENING {
                let mut s = tcp_socket();
                if s.listen(endpoint).is_ok() {
                    fresh.push(self.set.add(s));
                }
            }
        }
        if let Some(Sock {
            kind: Kind::TcpListener(hs),
            ..
        }) = self.socks.get_mut(&id)
        {
            hs.extend(fresh);
        }
    }

    fn sock(&mut self, id: SocketId) -> Result<&mut Sock, NetError> {
        self.socks.get_mut(&id).ok_or(NetError::Stale)
    }

    fn insert(&mut self, s: Sock) -> SocketId {
        let id = self.next_id;
        self.next_id += 1;
        self.socks.insert(id, s);
        id
    }

    /// Whether `port` is taken, for sockets of the protocol and family of
    /// `id`, by another.
    fn port_taken(&self, port: u16, id: SocketId) -> bool {
        let Some(me) = self.socks.get(&id) else {
            return false;
        };
        self.socks.iter().any(|(other, s)| {
            *other != id
                && !s.accepted
                && s.udp() == me.udp()
                && s.v6 == me.v6
                && s.bound.is_some_and(|b| b.1 == port)
        })
    }

    fn ephemeral(&mut self, id: SocketId) -> Result<u16, NetError> {
        for _ in 0..=(u16::MAX - EPHEMERAL_FIRST) {
            let p = self.next_port.max(EPHEMERAL_FIRST);
            self.next_port = if p == u16::MAX {
                EPHEMERAL_FIRST
            } else {
                p + 1
            };
            if !self.port_taken(p, id) {
                return Ok(p);
            }
        }
        Err(NetError::AddressInUse)
    }

    fn tcp(&mut self, h: SocketHandle) -> &mut tcp::Socket<'static> {
        self.set.get_mut::<tcp::Socket<'static>>(h)
    }

    fn conn(&mut self, id: SocketId) -> Result<SocketHandle, NetError> {
        match self.sock(id)?.kind {
            Kind::TcpConn(h) => Ok(h),
            _ => Err(NetError::NotConnected),
        }
    }

    fn udp_handle(&mut self, id: SocketId) -> Result<SocketHandle, NetError> {
        match self.sock(id)?.kind {
            Kind::Udp(h) => Ok(h),
            _ => Err(NetError::InvalidArgument),
        }
    }

    fn bind(&mut self, id: SocketId, addr: SocketAddr) -> Result<(), NetError> {
        let v6 = self.sock(id)?.v6;
        let a = of_family(addr, v6)?;
        let ip = match a.ip() {
            ip if ip.is_unspecified() => None,
            ip if ip == loopback(v6) => Some(ip),
            _ => return Err(NetError::AddressNotAvailable),
        };
        if self.sock(id)?.bound.is_some() {
            return Err(NetError::InvalidArgument);
        }
        let port = match a.port() {
            0 => self.ephemeral(id)?,
            p if self.port_taken(p, id) => return Err(NetError::AddressInUse),
            p => p,
        };
        if let Kind::Udp(h) = self.sock(id)?.kind {
            self.set
                .get_mut::<udp::Socket<'static>>(h)
                .bind(listen_endpoint(ip, v6, port))
                .map_err(|_| NetError::InvalidArgument)?;
        }
        self.sock(id)?.bound = Some((ip, port));
        Ok(())
    }

    fn listen(&mut self, id: SocketId) -> Result<(), NetError> {
        let s = self.sock(id)?;
        match (&s.kind, s.bound) {
            (Kind::TcpNew, Some(_)) => s.kind = Kind::TcpListener(Vec::new()),
            // Listening again changes only the backlog.
            (Kind::TcpListener(_), _) => return Ok(()),
            _ => return Err(NetError::InvalidArgument),
        }
        self.replenish(id);
        Ok(())
    }

    fn apply(&mut self, h: SocketHandle, keep_alive: bool, interval: Option<u64>, hop: Option<u8>) {
        let s = self.tcp(h);
        let every = Duration::from_micros(interval.unwrap_or(75_000_000_000) / 1000);
        s.set_keep_alive(keep_alive.then_some(every));
        s.set_hop_limit(hop);
    }

    fn connect(&mut self, id: SocketId, addr: SocketAddr) -> Result<(), NetError> {
        let v6 = self.sock(id)?.v6;
        let a = of_family(addr, v6)?;
        if self.sock(id)?.udp() {
            self.sock(id)?.peer = Some(a);
            return Ok(());
        }
        if !matches!(self.sock(id)?.kind, Kind::TcpNew) {
            return Err(NetError::InvalidArgument);
        }
        if a.ip() != loopback(v6) {
            return Err(NetError::Unreachable);
        }
        let port = match self.sock(id)?.bound {
            Some((_, p)) => p,
            None => {
                let p = self.ephemeral(id)?;
                self.sock(id)?.bound = Some((None, p));
                p
            }
        };
        let mut s = tcp_socket();
        let remote = (IpAddress::from(a.ip()), a.port());
        s.connect(
            self.iface.context(),
            remote,
            listen_endpoint(None, v6, port),
        )
        .map_err(|_| NetError::InvalidArgument)?;
        let h = self.set.add(s);
        let sock = self.sock(id)?;
        sock.kind = Kind::TcpConn(h);
        let (k, i, hop) = (sock.keep_alive, sock.keep_interval, sock.hop_limit);
        self.apply(h, k, i, hop);
        Ok(())
    }

    fn connect_status(&mut self, id: SocketId) -> Result<bool, NetError> {
        let h = self.conn(id)?;
        match self.tcp(h).state() {
            tcp::State::SynSent | tcp::State::SynReceived => Ok(false),
            tcp::State::Closed => Err(NetError::ConnectionRefused),
            _ => Ok(true),
        }
    }

    fn accept(&mut self, id: SocketId) -> Result<SocketId, NetError> {
        let s = self.socks.get_mut(&id).ok_or(NetError::Stale)?;
        let Kind::TcpListener(hs) = &mut s.kind else {
            return Err(NetError::InvalidArgument);
        };
        let set = &self.set;
        let i = hs
            .iter()
            .position(|h| acceptable(set.get::<tcp::Socket<'_>>(*h).state()))
            .ok_or(NetError::WouldBlock)?;
        let h = hs.remove(i);
        let mut conn = Sock::new(Kind::TcpConn(h), s.v6);
        conn.accepted = true;
        conn.bound = s.bound;
        conn.keep_alive = s.keep_alive;
        conn.keep_interval = s.keep_interval;
        conn.hop_limit = s.hop_limit;
        self.apply(h, conn.keep_alive, conn.keep_interval, conn.hop_limit);
        let new = self.insert(conn);
        self.replenish(id);
        Ok(new)
    }

    fn recv(&mut self, id: SocketId, buf: &mut [u8], peek: bool) -> Result<usize, NetError> {
        let h = self.conn(id)?;
        let s = self.tcp(h);
        if s.can_recv() {
            let r = if peek {
                s.peek_slice(buf)
            } else {
                s.recv_slice(buf)
            };
            return r.map_err(|_| NetError::ConnectionReset);
        }
        if !s.may_recv() {
            return Ok(0);
        }
        Err(NetError::WouldBlock)
    }

    fn send(&mut self, id: SocketId, data: &[u8]) -> Result<usize, NetError> {
        let h = self.conn(id)?;
        let s = self.tcp(h);
        if !s.may_send() {
            return Err(match s.state() {
                tcp::State::SynSent | tcp::State::SynReceived => NetError::WouldBlock,
                _ => NetError::BrokenPipe,
            });
        }
        match s.send_slice(data) {
            Ok(0) => Err(NetError::WouldBlock),
            Ok(n) => Ok(n),
            Err(_) => Err(NetError::BrokenPipe),
        }
    }

    fn readiness(&mut self, id: SocketId) -> Result<Readiness, NetError> {
        let set = &self.set;
        let sock = self.socks.get(&id).ok_or(NetError::Stale)?;
        Ok(match sock.kind {
            Kind::TcpNew => Readiness::default(),
            Kind::TcpListener(ref hs) => Readiness {
                readable: hs
                    .iter()
                    .any(|h| acceptable(set.get::<tcp::Socket<'_>>(*h).state())),
                ..Readiness::default()
            },
            Kind::TcpConn(h) => {
                let s = set.get::<tcp::Socket<'_>>(h);
                let room = s.send_capacity() - s.send_queue();
                let hangup = !s.may_recv()
                    && !matches!(s.state(), tcp::State::SynSent | tcp::State::SynReceived);
                Readiness {
                    readable: s.can_recv() || hangup,
                    writable: (s.may_send() && room > 0).then_some(room),
                    hangup,
                    pending: s.recv_queue(),
                }
            }
            Kind::Udp(h) => {
                let s = set.get::<udp::Socket<'_>>(h);
                Readiness {
                    readable: s.can_recv() || sock.refused,
                    writable: s.can_send().then_some(1),
                    hangup: false,
                    pending: 0,
                }
            }
        })
    }

    fn ready(&mut self, id: SocketId, interest: Interest) -> bool {
        if let Ok(h) = self.conn(id)
            && interest == Interest::Write
            && matches!(self.tcp(h).state(), tcp::State::Closed)
        {
            return true;
        }
        match (self.readiness(id), interest) {
            (Ok(r), Interest::Read) => r.readable || r.hangup,
            (Ok(r), Interest::Write) => r.writable.is_some() || r.hangup,
            (Err(_), _) => true,
        }
    }

    fn close(&mut self, id: SocketId) {
        let Some(s) = self.socks.remove(&id) else {
            return;
        };
        match s.kind {
            Kind::TcpNew => {}
            Kind::TcpConn(h) => {
                self.tcp(h).close();
                self.closing.push(h);
            }
            Kind::TcpListener(hs) => {
                for h in hs {
                    self.tcp(h).abort();
                    self.closing.push(h);
                }
            }
            Kind::Udp(h) => {
                self.set.remove(h);
            }
        }
    }

    fn send_to(
        &mut self,
        id: SocketId,
        data: &[u8],
        to: Option<SocketAddr>,
    ) -> Result<(), NetError> {
        let h = self.udp_handle(id)?;
        let to = to.or(self.sock(id)?.peer).ok_or(NetError::NotConnected)?;
        let v6 = self.sock(id)?.v6;
        let a = of_family(to, v6)?;
        if a.ip() != loopback(v6) {
            return Err(NetError::Unreachable);
        }
        if self.sock(id)?.bound.is_none() {
            self.bind(id, SocketAddr::new(unspecified(v6), 0))?;
        }
        let endpoint = IpEndpoint::new(IpAddress::from(a.ip()), a.port());
        self.set
            .get_mut::<udp::Socket<'static>>(h)
            .send_slice(data, endpoint)
            .map_err(|e| match e {
                udp::SendError::BufferFull => NetError::WouldBlock,
                udp::SendError::Unaddressable => NetError::InvalidArgument,
            })?;
        let listened = self
            .socks
            .values()
            .any(|s| s.udp() && s.v6 == v6 && s.bound.is_some_and(|(_, p)| p == a.port()));
        let s = self.sock(id)?;
        if !listened && s.peer == Some(to) {
            s.refused = true;
        }
        Ok(())
    }

    fn recv_from(&mut self, id: SocketId, buf: &mut [u8]) -> Result<(usize, SocketAddr), NetError> {
        let h = self.udp_handle(id)?;
        let s = self.set.get_mut::<udp::Socket<'static>>(h);
        match s.recv_slice(buf) {
            Ok((n, meta)) => Ok((n, endpoint_addr(meta.endpoint))),
            Err(udp::RecvError::Truncated) => Err(NetError::MessageTooLarge),
            Err(udp::RecvError::Exhausted) => {
                let s = self.sock(id)?;
                if core::mem::take(&mut s.refused) {
                    Err(NetError::ConnectionRefused)
                } else {
                    Err(NetError::WouldBlock)
                }
            }
        }
    }

    fn local_addr(&mut self, id: SocketId) -> Result<SocketAddr, NetError> {
        if let Ok(h) = self.conn(id)
            && let Some(e) = self.tcp(h).local_endpoint()
        {
            return Ok(endpoint_addr(e));
        }
        let s = self.sock(id)?;
        let (ip, port) = s.bound.ok_or(NetError::InvalidArgument)?;
        // A connected socket bound to any address sends from the one
        // its peer is reached through, as POSIX stacks report.
        let any = if s.peer.is_some() {
            loopback(s.v6)
        } else {
            unspecified(s.v6)
        };
        Ok(SocketAddr::new(ip.unwrap_or(any), port))
    }

    fn peer_addr(&mut self, id: SocketId) -> Result<SocketAddr, NetError> {
        if let Ok(h) = self.conn(id) {
            return self
                .tcp(h)
                .remote_endpoint()
                .map(endpoint_addr)
                .ok_or(NetError::NotConnected);
        }
        self.sock(id)?.peer.ok_or(NetError::NotConnected)
    }

    fn set_option(&mut self, id: SocketId, option: SocketOption) -> Result<(), NetError> {
        let s = self.sock(id)?;
        match option {
            SocketOption::KeepAlive(on) => s.keep_alive = on,
            SocketOption::KeepAliveInterval(ns) => s.keep_interval = Some(ns.max(1_000_000)),
            SocketOption::HopLimit(h) => s.hop_limit = Some(h),
            // smoltcp has no probe count or idle time, and its buffers are
            // fixed when a socket is made.
            _ => return Ok(()),
        }
        let (k, i, hop) = (s.keep_alive, s.keep_interval, s.hop_limit);
        match s.kind {
            Kind::TcpConn(h) => self.apply(h, k, i, hop),
            Kind::Udp(h) => self
                .set
                .get_mut::<udp::Socket<'static>>(h)
                .set_hop_limit(hop),
            _ => {}
        }
        Ok(())
    }
}

/// The loopback network of the program's own sockets.
pub struct LocalNetwork {
    stack: Mutex<Stack>,
}

/// A loopback network, with no sockets yet.
pub fn network() -> Arc<dyn Network> {
    let mut dev = Loopback::new(Medium::Ip);
    let mut config = Config::new(HardwareAddress::Ip);
    let mut seed = [0u8; 8];
    crate::entropy::fill(&mut seed);
    config.random_seed = u64::from_le_bytes(seed);
    let mut iface = Interface::new(config, &mut dev, now());
    iface.update_ip_addrs(|addrs| {
        let _ = addrs.push(IpCidr::new(IpAddress::Ipv4(LOOPBACK), 8));
        let _ = addrs.push(IpCidr::new(IpAddress::Ipv6(Ipv6Addr::LOCALHOST), 128));
    });
    Arc::new(LocalNetwork {
        stack: Mutex::new(Stack {
            iface,
            dev,
            set: SocketSet::new(Vec::new()),
            socks: BTreeMap::new(),
            closing: Vec::new(),
            next_id: 1,
            next_port: EPHEMERAL_FIRST,
        }),
    })
}

impl LocalNetwork {
    /// Runs `f` on the stack between two polls (what `f` queued is
    /// delivered at once: the loopback has no latency).
    fn with<R>(&self, f: impl FnOnce(&mut Stack) -> R) -> R {
        let mut st = self.stack.lock();
        st.poll();
        let r = f(&mut st);
        st.poll();
        r
    }
}

impl Network for LocalNetwork {
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
            let h = s.conn(socket)?;
            if how != Shutdown::Read {
                s.tcp(h).close();
            }
            Ok(())
        })
    }

    fn readiness(&self, socket: SocketId) -> Result<Readiness, NetError> {
        self.with(|s| s.readiness(socket))
    }

    fn wait(&self, interests: &[(SocketId, Interest)], deadline_ns: Option<u64>) {
        loop {
            let mut guard = self.stack.lock();
            let st = &mut *guard;
            st.poll();
            if interests.iter().any(|&(id, i)| st.ready(id, i)) {
                return;
            }
            let now_ns = crate::time::monotonic_ns();
            if deadline_ns.is_some_and(|d| now_ns >= d) {
                return;
            }
            let mut until = now_ns.saturating_add(HALT_NS);
            if let Some(d) = deadline_ns {
                until = until.min(d);
            }
            if let Some(delay) = st.iface.poll_delay(now(), &st.set) {
                until = until.min(now_ns.saturating_add(delay.total_micros() * 1000));
            }
            drop(guard);
            crate::time::halt_until(crate::deadline::cap(until));
            crate::deadline::stop_if_passed();
        }
    }

    fn close(&self, socket: SocketId) {
        self.with(|s| s.close(socket));
    }

    fn create(&self, transport: Transport, ipv6: bool) -> Result<SocketId, NetError> {
        self.with(|s| {
            let kind = match transport {
                Transport::Tcp => Kind::TcpNew,
                Transport::Udp => Kind::Udp(s.set.add(udp_socket())),
            };
            Ok(s.insert(Sock::new(kind, ipv6)))
        })
    }

    fn bind(&self, socket: SocketId, addr: SocketAddr) -> Result<(), NetError> {
        self.with(|s| s.bind(socket, addr))
    }

    fn listen(&self, socket: SocketId, _backlog: u32) -> Result<(), NetError> {
        self.with(|s| s.listen(socket))
    }

    fn connect(&self, socket: SocketId, addr: SocketAddr) -> Result<(), NetError> {
        self.with(|s| s.connect(socket, addr))
    }

    fn connect_status(&self, socket: SocketId) -> Result<bool, NetError> {
        self.with(|s| s.connect_status(socket))
    }

    fn disconnect(&self, socket: SocketId) -> Result<(), NetError> {
        self.with(|s| {
            s.sock(socket)?.peer = None;
            Ok(())
        })
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
            Ok(vec![IpAddr::V4(LOOPBACK)])
        } else {
            Err(NetError::ResolverPermanent)
        }
    }
}
