//! The program's sockets over the two networks ([`Planes`]): what each
//! socket is, and every socket operation.
//!
//! Ports are one space for both networks. A socket bound to the loopback
//! lives there; one bound to the card's address, on the card; one bound
//! to the unspecified address, on both (a listener listens on both, a
//! UDP socket receives on both and sends on the one its destination is
//! reached through). A connection goes out on the network that reaches
//! its peer. A TCP listener bound to the loopback also listens on the
//! card, and the kernel reports it on its log (`BASALT-LISTEN tcp PORT`),
//! so the host can forward its own loopback's port to it: a client on
//! the host reaches the address the program printed, as when the program
//! runs on the host itself.

use alloc::collections::BTreeMap;
use alloc::vec;
use alloc::vec::Vec;
use core::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

use basalt_wasi::services::{Interest, NetError, Readiness, SocketId, SocketOption};
use smoltcp::socket::{tcp, udp};
use smoltcp::time::Duration;
use smoltcp::wire::{IpAddress, IpEndpoint, IpListenEndpoint};

use super::planes::{Handle, Plane, Planes, loopback, plane_of};

/// The first port handed out when the program binds port 0 (the start
/// within the range is random).
const EPHEMERAL_FIRST: u16 = 49152;
/// Sockets kept listening per listener and network (smoltcp has no
/// backlog).
const LISTENING: usize = 4;
/// Connections a listener holds before the program accepts them.
const MAX_PENDING: usize = 64;
/// Bytes of each TCP buffer and of each UDP socket's packet buffers.
const BUFFER: usize = 64 * 1024;
/// Datagrams queued per UDP direction.
const DATAGRAMS: usize = 64;

/// What a socket of the program is.
enum Kind {
    /// a TCP socket neither listening nor connected yet
    TcpNew,
    /// listening: its listening sockets and those that left listening
    TcpListener(Vec<Handle>),
    /// connecting or connected
    TcpConn(Handle),
    /// a UDP socket: one smoltcp socket per network it is bound on (none
    /// before it is bound)
    Udp(Vec<Handle>),
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
    /// a connected UDP socket sent to a loopback port nobody listens on:
    /// its next receive fails (what ICMP port-unreachable does on other
    /// stacks)
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

/// Everything behind the network's lock.
pub struct Stack {
    planes: Planes,
    socks: BTreeMap<SocketId, Sock>,
    /// closed connections finishing their goodbyes
    closing: Vec<Handle>,
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

fn unspecified(v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    }
}

/// Where smoltcp listens for a socket of family `v6` bound to `ip` on
/// `plane`: on the loopback, its address of the family (so the two
/// families' sockets never take each other's packets); on the card, its
/// one (IPv4) address.
fn plane_endpoint(plane: Plane, ip: Option<IpAddr>, v6: bool, port: u16) -> IpListenEndpoint {
    let addr = match plane {
        Plane::Loopback => IpAddress::from(ip.filter(|i| i.is_loopback()).unwrap_or(loopback(v6))),
        Plane::Card => {
            return IpListenEndpoint {
                addr: ip
                    .filter(|i| !i.is_loopback() && !i.is_unspecified())
                    .map(IpAddress::from),
                port,
            };
        }
    };
    IpListenEndpoint {
        addr: Some(addr),
        port,
    }
}

impl Stack {
    /// No sockets yet; the loopback up.
    pub fn new() -> Stack {
        let mut seed = [0u8; 2];
        crate::entropy::fill(&mut seed);
        let span = u16::MAX - EPHEMERAL_FIRST;
        Stack {
            planes: Planes::new(),
            socks: BTreeMap::new(),
            closing: Vec::new(),
            next_id: 1,
            next_port: EPHEMERAL_FIRST + u16::from_le_bytes(seed) % span,
        }
    }

    /// The two networks.
    pub fn planes(&mut self) -> &mut Planes {
        &mut self.planes
    }

    /// Drives both networks, tops up listeners and lets finished
    /// connections go.
    pub fn poll(&mut self) {
        self.planes.poll();
        let listeners: Vec<SocketId> = (self.socks.iter())
            .filter(|(_, s)| matches!(s.kind, Kind::TcpListener(_)))
            .map(|(id, _)| *id)
            .collect();
        for id in listeners {
            self.replenish(id);
        }
        self.planes.reap(&mut self.closing);
    }

    /// The networks a socket of family `v6` bound to `ip` lives on
    /// (`mirror`: a listener on the loopback listens on the card too).
    fn planes_for(&mut self, ip: Option<IpAddr>, v6: bool, mirror: bool) -> Vec<Plane> {
        let mut planes = Vec::new();
        if ip.is_none_or(|i| i.is_loopback()) {
            planes.push(Plane::Loopback);
        }
        let on_card = match ip {
            None => true,
            Some(i) if i.is_loopback() => mirror,
            Some(_) => true,
        };
        if !v6 && on_card && self.planes.want_card() {
            planes.push(Plane::Card);
        }
        planes
    }

    /// Keeps [`LISTENING`] sockets of listener `id` listening on each of
    /// its networks (while fewer than [`MAX_PENDING`] connections wait).
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
        let (addr, port, v6) = (*addr, *port, *v6);
        let hs = hs.clone();
        let planes: Vec<Plane> = [Plane::Loopback, Plane::Card]
            .into_iter()
            .filter(|p| hs.iter().any(|h| h.plane == *p))
            .collect();
        let mut fresh = Vec::new();
        if hs.len() < MAX_PENDING + 2 * LISTENING {
            for plane in planes {
                let listening = hs
                    .iter()
                    .filter(|h| {
                        h.plane == plane && self.planes.tcp_ref(**h).state() == tcp::State::Listen
                    })
                    .count();
                for _ in listening..LISTENING {
                    let mut s = tcp_socket();
                    if s.listen(plane_endpoint(plane, addr, v6, port)).is_ok() {
                        fresh.push(self.planes.add(plane, s));
                    }
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

    /// Makes a socket.
    pub fn create(&mut self, udp: bool, v6: bool) -> SocketId {
        let kind = if udp {
            Kind::Udp(Vec::new())
        } else {
            Kind::TcpNew
        };
        self.insert(Sock::new(kind, v6))
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

    fn conn(&mut self, id: SocketId) -> Result<Handle, NetError> {
        match self.sock(id)?.kind {
            Kind::TcpConn(h) => Ok(h),
            _ => Err(NetError::NotConnected),
        }
    }

    /// The TCP connection `id`'s smoltcp socket.
    pub fn conn_socket(&mut self, id: SocketId) -> Result<&mut tcp::Socket<'static>, NetError> {
        let h = self.conn(id)?;
        Ok(self.planes.tcp(h))
    }

    fn udp_handles(&mut self, id: SocketId) -> Result<Vec<Handle>, NetError> {
        match &self.sock(id)?.kind {
            Kind::Udp(hs) => Ok(hs.clone()),
            _ => Err(NetError::InvalidArgument),
        }
    }

    /// Binds `id` to `addr` (port 0: one of the ephemeral ports).
    pub fn bind(&mut self, id: SocketId, addr: SocketAddr) -> Result<(), NetError> {
        let v6 = self.sock(id)?.v6;
        let a = of_family(addr, v6)?;
        let ip = match a.ip() {
            ip if ip.is_unspecified() => None,
            ip if ip == loopback(v6) => Some(ip),
            IpAddr::V4(ip) if self.planes.want_card() && self.planes.card_address() == Some(ip) => {
                Some(IpAddr::V4(ip))
            }
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
        if self.sock(id)?.udp() {
            let mut hs = Vec::new();
            for plane in self.planes_for(ip, v6, false) {
                let h = self.planes.add(plane, udp_socket());
                let bound = self.planes.udp(h).bind(plane_endpoint(plane, ip, v6, port));
                if bound.is_err() {
                    self.planes.remove(h);
                    for h in hs {
                        self.planes.remove(h);
                    }
                    return Err(NetError::InvalidArgument);
                }
                hs.push(h);
            }
            let hop = self.sock(id)?.hop_limit;
            for h in &hs {
                self.planes.udp(*h).set_hop_limit(hop);
            }
            self.sock(id)?.kind = Kind::Udp(hs);
        }
        self.sock(id)?.bound = Some((ip, port));
        Ok(())
    }

    /// Makes the bound TCP socket `id` a listener; returns the port to
    /// report when it also listens on the card for the loopback.
    pub fn listen(&mut self, id: SocketId) -> Result<Option<u16>, NetError> {
        let s = self.sock(id)?;
        let (ip, port) = match (&s.kind, s.bound) {
            (Kind::TcpNew, Some(b)) => b,
            // Listening again changes only the backlog.
            (Kind::TcpListener(_), _) => return Ok(None),
            _ => return Err(NetError::InvalidArgument),
        };
        let v6 = s.v6;
        let planes = self.planes_for(ip, v6, true);
        // One socket per network first, so `replenish` knows the
        // networks; it makes the rest.
        let mut hs = Vec::new();
        for plane in &planes {
            let mut t = tcp_socket();
            t.listen(plane_endpoint(*plane, ip, v6, port))
                .map_err(|_| NetError::InvalidArgument)?;
            hs.push(self.planes.add(*plane, t));
        }
        self.sock(id)?.kind = Kind::TcpListener(hs);
        self.replenish(id);
        Ok(planes.contains(&Plane::Card).then_some(port))
    }

    fn apply(&mut self, h: Handle, keep_alive: bool, interval: Option<u64>, hop: Option<u8>) {
        let s = self.planes.tcp(h);
        let every = Duration::from_micros(interval.unwrap_or(75_000_000_000) / 1000);
        s.set_keep_alive(keep_alive.then_some(every));
        s.set_hop_limit(hop);
    }

    /// Connects `id` to `addr` (TCP: starts the handshake; UDP: sets the
    /// peer).
    pub fn connect(&mut self, id: SocketId, addr: SocketAddr) -> Result<(), NetError> {
        let v6 = self.sock(id)?.v6;
        let a = of_family(addr, v6)?;
        if self.sock(id)?.udp() {
            self.sock(id)?.peer = Some(a);
            return Ok(());
        }
        if !matches!(self.sock(id)?.kind, Kind::TcpNew) {
            return Err(NetError::InvalidArgument);
        }
        let plane = plane_of(a.ip());
        let bound_ip = self.sock(id)?.bound.and_then(|b| b.0);
        let reachable = match plane {
            Plane::Loopback => bound_ip.is_none_or(|i| i.is_loopback()),
            Plane::Card => {
                !v6 && bound_ip.is_none_or(|i| !i.is_loopback()) && self.planes.want_card()
            }
        };
        if !reachable {
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
        let local = plane_endpoint(plane, bound_ip, v6, port);
        s.connect(self.planes.context(plane), remote, local)
            .map_err(|e| match e {
                tcp::ConnectError::Unaddressable => NetError::Unreachable,
                tcp::ConnectError::InvalidState => NetError::InvalidArgument,
            })?;
        let h = self.planes.add(plane, s);
        let sock = self.sock(id)?;
        sock.kind = Kind::TcpConn(h);
        let (k, i, hop) = (sock.keep_alive, sock.keep_interval, sock.hop_limit);
        self.apply(h, k, i, hop);
        Ok(())
    }

    /// Whether `id`'s handshake finished (an error if it failed).
    pub fn connect_status(&mut self, id: SocketId) -> Result<bool, NetError> {
        let h = self.conn(id)?;
        match self.planes.tcp_ref(h).state() {
            tcp::State::SynSent | tcp::State::SynReceived => Ok(false),
            tcp::State::Closed => Err(NetError::ConnectionRefused),
            _ => Ok(true),
        }
    }

    /// Takes a connection from listener `id`.
    pub fn accept(&mut self, id: SocketId) -> Result<SocketId, NetError> {
        let s = self.socks.get_mut(&id).ok_or(NetError::Stale)?;
        let Kind::TcpListener(hs) = &mut s.kind else {
            return Err(NetError::InvalidArgument);
        };
        let planes = &self.planes;
        let i = hs
            .iter()
            .position(|h| acceptable(planes.tcp_ref(*h).state()))
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

    /// Reads from connection `id`.
    pub fn recv(&mut self, id: SocketId, buf: &mut [u8], peek: bool) -> Result<usize, NetError> {
        let s = self.conn_socket(id)?;
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

    /// Writes to connection `id`.
    pub fn send(&mut self, id: SocketId, data: &[u8]) -> Result<usize, NetError> {
        let s = self.conn_socket(id)?;
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

    /// What `id` is ready for.
    pub fn readiness(&mut self, id: SocketId) -> Result<Readiness, NetError> {
        let planes = &self.planes;
        let sock = self.socks.get(&id).ok_or(NetError::Stale)?;
        Ok(match &sock.kind {
            Kind::TcpNew => Readiness::default(),
            Kind::TcpListener(hs) => Readiness {
                readable: hs.iter().any(|h| acceptable(planes.tcp_ref(*h).state())),
                ..Readiness::default()
            },
            Kind::TcpConn(h) => {
                let s = planes.tcp_ref(*h);
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
            Kind::Udp(hs) => Readiness {
                readable: hs.iter().any(|h| planes.udp_ref(*h).can_recv()) || sock.refused,
                // An unbound socket binds on its first send.
                writable: (hs.is_empty() || hs.iter().any(|h| planes.udp_ref(*h).can_send()))
                    .then_some(1),
                hangup: false,
                pending: 0,
            },
        })
    }

    /// Whether `interest` in `id` is met (or the socket is gone, which the
    /// caller finds out by asking).
    pub fn ready(&mut self, id: SocketId, interest: Interest) -> bool {
        if let Ok(h) = self.conn(id)
            && interest == Interest::Write
            && matches!(self.planes.tcp_ref(h).state(), tcp::State::Closed)
        {
            return true;
        }
        match (self.readiness(id), interest) {
            (Ok(r), Interest::Read) => r.readable || r.hangup,
            (Ok(r), Interest::Write) => r.writable.is_some() || r.hangup,
            (Err(_), _) => true,
        }
    }

    /// Closes `id`: a connection says goodbye first.
    pub fn close(&mut self, id: SocketId) {
        let Some(s) = self.socks.remove(&id) else {
            return;
        };
        match s.kind {
            Kind::TcpNew => {}
            Kind::TcpConn(h) => {
                self.planes.tcp(h).close();
                self.closing.push(h);
            }
            Kind::TcpListener(hs) => {
                for h in hs {
                    self.planes.tcp(h).abort();
                    self.closing.push(h);
                }
            }
            Kind::Udp(hs) => {
                for h in hs {
                    self.planes.remove(h);
                }
            }
        }
    }

    /// Sends a datagram from `id` to `to` (or its peer).
    pub fn send_to(
        &mut self,
        id: SocketId,
        data: &[u8],
        to: Option<SocketAddr>,
    ) -> Result<(), NetError> {
        self.udp_handles(id)?;
        let to = to.or(self.sock(id)?.peer).ok_or(NetError::NotConnected)?;
        let v6 = self.sock(id)?.v6;
        let a = of_family(to, v6)?;
        let plane = plane_of(a.ip());
        if plane == Plane::Card && (v6 || !self.planes.want_card()) {
            return Err(NetError::Unreachable);
        }
        if self.sock(id)?.bound.is_none() {
            self.bind(id, SocketAddr::new(unspecified(v6), 0))?;
        }
        let h = (self.udp_handles(id)?.into_iter())
            .find(|h| h.plane == plane)
            .ok_or(NetError::Unreachable)?;
        let endpoint = IpEndpoint::new(IpAddress::from(a.ip()), a.port());
        self.planes
            .udp(h)
            .send_slice(data, endpoint)
            .map_err(|e| match e {
                udp::SendError::BufferFull => NetError::WouldBlock,
                udp::SendError::Unaddressable => NetError::InvalidArgument,
            })?;
        if plane == Plane::Loopback {
            let listened = self
                .socks
                .values()
                .any(|s| s.udp() && s.v6 == v6 && s.bound.is_some_and(|(_, p)| p == a.port()));
            let s = self.sock(id)?;
            if !listened && s.peer == Some(to) {
                s.refused = true;
            }
        }
        Ok(())
    }

    /// Receives a datagram on `id`: its length and sender.
    pub fn recv_from(
        &mut self,
        id: SocketId,
        buf: &mut [u8],
    ) -> Result<(usize, SocketAddr), NetError> {
        for h in self.udp_handles(id)? {
            let s = self.planes.udp(h);
            match s.recv_slice(buf) {
                Ok((n, meta)) => return Ok((n, endpoint_addr(meta.endpoint))),
                Err(udp::RecvError::Truncated) => return Err(NetError::MessageTooLarge),
                Err(udp::RecvError::Exhausted) => {}
            }
        }
        let s = self.sock(id)?;
        if core::mem::take(&mut s.refused) {
            Err(NetError::ConnectionRefused)
        } else {
            Err(NetError::WouldBlock)
        }
    }

    /// `id`'s local address.
    pub fn local_addr(&mut self, id: SocketId) -> Result<SocketAddr, NetError> {
        if let Ok(h) = self.conn(id)
            && let Some(e) = self.planes.tcp_ref(h).local_endpoint()
        {
            return Ok(endpoint_addr(e));
        }
        let card = self.planes.card_address();
        let s = self.sock(id)?;
        let (ip, port) = s.bound.ok_or(NetError::InvalidArgument)?;
        // A connected socket bound to any address sends from the one
        // its peer is reached through, as POSIX stacks report.
        let any = match s.peer.map(|p| plane_of(p.ip())) {
            Some(Plane::Loopback) => loopback(s.v6),
            Some(Plane::Card) => card.map_or(unspecified(s.v6), IpAddr::V4),
            None => unspecified(s.v6),
        };
        Ok(SocketAddr::new(ip.unwrap_or(any), port))
    }

    /// `id`'s peer.
    pub fn peer_addr(&mut self, id: SocketId) -> Result<SocketAddr, NetError> {
        if let Ok(h) = self.conn(id) {
            return self
                .planes
                .tcp_ref(h)
                .remote_endpoint()
                .map(endpoint_addr)
                .ok_or(NetError::NotConnected);
        }
        self.sock(id)?.peer.ok_or(NetError::NotConnected)
    }

    /// Forgets a UDP socket's peer.
    pub fn disconnect(&mut self, id: SocketId) -> Result<(), NetError> {
        self.sock(id)?.peer = None;
        Ok(())
    }

    /// Sets an option of `id`.
    pub fn set_option(&mut self, id: SocketId, option: SocketOption) -> Result<(), NetError> {
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
        match &s.kind {
            Kind::TcpConn(h) => {
                let h = *h;
                self.apply(h, k, i, hop);
            }
            Kind::Udp(hs) => {
                for h in hs.clone() {
                    self.planes.udp(h).set_hop_limit(hop);
                }
            }
            _ => {}
        }
        Ok(())
    }
}
