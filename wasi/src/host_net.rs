//! The hosted network backend: [`Network`] over the host's sockets, for
//! `basalt run --hosted`: the `--tcplisten` listeners of preview1 and the
//! TCP and UDP sockets WASI 0.2 programs make (through rustix), with names
//! resolved by the host's resolver. Every socket is non-blocking;
//! [`Network::wait`] is one `poll(2)` over the sockets a caller waits for.

use std::collections::HashMap;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown as NetShutdown, TcpListener, TcpStream, ToSocketAddrs};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use rustix::event::{PollFd, PollFlags, Timespec};

use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType, sockopt};

use crate::services::{
    Interest, IpAddr, NetError, Network, Readiness, Shutdown, SocketAddr, SocketId, SocketOption,
    Transport,
};

/// A host socket.
enum HostSocket {
    Listener(TcpListener),
    Stream(TcpStream),
    /// a socket a WASI 0.2 program made, of IPv6 or not
    Raw(OwnedFd, bool),
}

impl HostSocket {
    fn fd(&self) -> BorrowedFd<'_> {
        match self {
            HostSocket::Listener(l) => l.as_fd(),
            HostSocket::Stream(t) => t.as_fd(),
            HostSocket::Raw(fd, _) => fd.as_fd(),
        }
    }
}

/// The [`NetError`] of a failed socket call.
fn errno(e: rustix::io::Errno) -> NetError {
    use rustix::io::Errno as E;
    match e {
        E::AGAIN | E::INPROGRESS | E::ALREADY => NetError::WouldBlock,
        E::CONNRESET => NetError::ConnectionReset,
        E::CONNREFUSED => NetError::ConnectionRefused,
        E::CONNABORTED => NetError::ConnectionAborted,
        E::NOTCONN => NetError::NotConnected,
        E::PIPE => NetError::BrokenPipe,
        E::ADDRINUSE => NetError::AddressInUse,
        E::ADDRNOTAVAIL => NetError::AddressNotAvailable,
        E::HOSTUNREACH | E::NETUNREACH | E::HOSTDOWN | E::NETDOWN => NetError::Unreachable,
        E::TIMEDOUT => NetError::Timeout,
        E::ACCESS | E::PERM => NetError::AccessDenied,
        E::MSGSIZE => NetError::MessageTooLarge,
        E::NOBUFS | E::NOMEM | E::MFILE | E::NFILE => NetError::NoBuffers,
        E::OPNOTSUPP | E::AFNOSUPPORT | E::PROTONOSUPPORT => NetError::NotSupported,
        E::BADF => NetError::Stale,
        _ => NetError::InvalidArgument,
    }
}

/// The host's TCP/IP stack.
pub struct HostNetwork {
    /// shared with `wait`, which polls them without holding the lock
    sockets: Mutex<HashMap<SocketId, Arc<HostSocket>>>,
    next: Mutex<SocketId>,
    /// the monotonic clock `wait` deadlines are measured on (the same
    /// origin as [`crate::host::HostClocks`] of the same run is not
    /// needed: deadlines come from `Clocks::monotonic_ns`, whose origin is
    /// given here)
    origin: Instant,
}

fn net_error(e: &io::Error) -> NetError {
    match e.kind() {
        ErrorKind::WouldBlock => NetError::WouldBlock,
        ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted => NetError::ConnectionReset,
        ErrorKind::NotConnected => NetError::NotConnected,
        ErrorKind::BrokenPipe => NetError::BrokenPipe,
        ErrorKind::OutOfMemory => NetError::NoBuffers,
        _ => NetError::InvalidArgument,
    }
}

impl HostNetwork {
    /// A network with no sockets; `origin` is the instant the program's
    /// monotonic clock counts from ([`crate::host::HostClocks::origin`]).
    pub fn new(origin: Instant) -> HostNetwork {
        HostNetwork {
            sockets: Mutex::new(HashMap::new()),
            next: Mutex::new(1),
            origin,
        }
    }

    /// Listens on `addr` (`0.0.0.0:8080`, `[::1]:0`, `localhost:8080`);
    /// returns the listener and the address it is bound to.
    pub fn listen(&self, addr: &str) -> io::Result<(SocketId, SocketAddr)> {
        let addrs: Vec<_> = addr.to_socket_addrs()?.collect();
        let listener = TcpListener::bind(&addrs[..])?;
        listener.set_nonblocking(true)?;
        let local = listener.local_addr()?;
        Ok((self.insert(HostSocket::Listener(listener)), local))
    }

    fn insert(&self, s: HostSocket) -> SocketId {
        let mut next = self.next.lock().unwrap_or_else(|p| p.into_inner());
        let id = *next;
        *next += 1;
        self.sockets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id, Arc::new(s));
        id
    }

    fn with<T>(
        &self,
        id: SocketId,
        f: impl FnOnce(&HostSocket) -> Result<T, NetError>,
    ) -> Result<T, NetError> {
        let all = self.sockets.lock().unwrap_or_else(|p| p.into_inner());
        f(all.get(&id).ok_or(NetError::Stale)?)
    }

    /// `f` over socket `id` when it is one a WASI 0.2 program made
    /// (`None` for the others).
    fn raw<T>(
        &self,
        id: SocketId,
        f: impl FnOnce(BorrowedFd<'_>, bool) -> rustix::io::Result<T>,
    ) -> Option<Result<T, NetError>> {
        let all = self.sockets.lock().unwrap_or_else(|p| p.into_inner());
        match all.get(&id).map(|s| &**s) {
            Some(HostSocket::Raw(fd, v6)) => Some(f(fd.as_fd(), *v6).map_err(errno)),
            _ => None,
        }
    }

    /// `f` over socket `id`, which must be one a WASI 0.2 program made.
    fn raw_only<T>(
        &self,
        id: SocketId,
        f: impl FnOnce(BorrowedFd<'_>, bool) -> rustix::io::Result<T>,
    ) -> Result<T, NetError> {
        self.raw(id, f).unwrap_or(Err(NetError::InvalidArgument))
    }

    fn stream<T>(
        &self,
        id: SocketId,
        f: impl FnOnce(&TcpStream) -> io::Result<T>,
    ) -> Result<T, NetError> {
        self.with(id, |s| match s {
            HostSocket::Stream(t) => f(t).map_err(|e| net_error(&e)),
            HostSocket::Listener(_) | HostSocket::Raw(..) => Err(NetError::NotConnected),
        })
    }
}

impl Network for HostNetwork {
    fn accept(&self, listener: SocketId) -> Result<SocketId, NetError> {
        let accepted = self.with(listener, |s| match s {
            HostSocket::Listener(l) => {
                let (t, _) = l.accept().map_err(|e| net_error(&e))?;
                t.set_nonblocking(true).map_err(|e| net_error(&e))?;
                // Requests and answers are small and many: send them at once.
                let _ = t.set_nodelay(true);
                Ok(HostSocket::Stream(t))
            }
            HostSocket::Raw(fd, v6) => {
                let flags = SocketFlags::NONBLOCK | SocketFlags::CLOEXEC;
                let conn = rustix::net::accept_with(fd, flags).map_err(errno)?;
                Ok(HostSocket::Raw(conn, *v6))
            }
            HostSocket::Stream(_) => Err(NetError::InvalidArgument),
        })?;
        Ok(self.insert(accepted))
    }

    fn recv(&self, socket: SocketId, buf: &mut [u8], peek: bool) -> Result<usize, NetError> {
        if let Some(r) = self.raw(socket, |fd, _| {
            let flags = if peek {
                RecvFlags::PEEK
            } else {
                RecvFlags::empty()
            };
            rustix::net::recv(fd, &mut *buf, flags).map(|(n, _)| n)
        }) {
            return r;
        }
        self.stream(socket, |mut t| if peek { t.peek(buf) } else { t.read(buf) })
    }

    fn send(&self, socket: SocketId, data: &[u8]) -> Result<usize, NetError> {
        if let Some(r) = self.raw(socket, |fd, _| {
            rustix::net::send(fd, data, SendFlags::NOSIGNAL)
        }) {
            return r;
        }
        self.stream(socket, |mut t| t.write(data))
    }

    fn shutdown(&self, socket: SocketId, how: Shutdown) -> Result<(), NetError> {
        let how = match how {
            Shutdown::Read => NetShutdown::Read,
            Shutdown::Write => NetShutdown::Write,
            Shutdown::Both => NetShutdown::Both,
        };
        if let Some(r) = self.raw(socket, |fd, _| {
            let how = match how {
                NetShutdown::Read => rustix::net::Shutdown::Read,
                NetShutdown::Write => rustix::net::Shutdown::Write,
                NetShutdown::Both => rustix::net::Shutdown::Both,
            };
            rustix::net::shutdown(fd, how)
        }) {
            return r;
        }
        self.stream(socket, |t| t.shutdown(how))
    }

    fn readiness(&self, socket: SocketId) -> Result<Readiness, NetError> {
        self.with(socket, |s| {
            let listener = matches!(s, HostSocket::Listener(_));
            let fd = s.fd();
            let mut fds = [PollFd::new(&fd, PollFlags::IN | PollFlags::OUT)];
            let zero = Timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            rustix::event::poll(&mut fds, Some(&zero)).map_err(|_| NetError::NoBuffers)?;
            let got = fds[0].revents();
            let pending = if listener {
                0
            } else {
                rustix::io::ioctl_fionread(fd).unwrap_or(0) as usize
            };
            Ok(Readiness {
                readable: got.contains(PollFlags::IN),
                // The kernel does not say how much room there is; one
                // socket buffer's worth is what a send usually takes.
                writable: (!listener && got.contains(PollFlags::OUT)).then_some(64 * 1024),
                hangup: got.intersects(PollFlags::HUP | PollFlags::ERR | PollFlags::RDHUP),
                pending,
            })
        })
    }

    fn wait(&self, interests: &[(SocketId, Interest)], deadline_ns: Option<u64>) {
        // Hold the sockets (not the table's lock) while waiting: another
        // thread may use the table meanwhile, and a socket closed then
        // stays open until the poll returns.
        let held: Vec<(Arc<HostSocket>, Interest)> = {
            let all = self.sockets.lock().unwrap_or_else(|p| p.into_inner());
            interests
                .iter()
                .filter_map(|(id, i)| Some((all.get(id)?.clone(), *i)))
                .collect()
        };
        let mut fds: Vec<PollFd<'_>> = held
            .iter()
            .map(|(s, i)| {
                let flags = match i {
                    Interest::Read => PollFlags::IN,
                    Interest::Write => PollFlags::OUT,
                };
                PollFd::from_borrowed_fd(s.fd(), flags)
            })
            .collect();
        let timeout = deadline_ns.map(|d| {
            let now = self.origin.elapsed().as_nanos() as u64;
            let left = d.saturating_sub(now);
            Timespec {
                tv_sec: (left / 1_000_000_000) as i64,
                tv_nsec: (left % 1_000_000_000) as i64,
            }
        });
        // An interrupted or failed poll returns early; callers ask again.
        let _ = rustix::event::poll(&mut fds, timeout.as_ref());
    }

    fn close(&self, socket: SocketId) {
        // Dropping the host socket closes it (a stream's queued bytes are
        // still sent by the host kernel).
        self.sockets
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&socket);
    }

    fn create(&self, transport: Transport, ipv6: bool) -> Result<SocketId, NetError> {
        let family = if ipv6 {
            AddressFamily::INET6
        } else {
            AddressFamily::INET
        };
        let ty = match transport {
            Transport::Tcp => SocketType::STREAM,
            Transport::Udp => SocketType::DGRAM,
        };
        let flags = SocketFlags::NONBLOCK | SocketFlags::CLOEXEC;
        let fd = rustix::net::socket_with(family, ty, flags, None).map_err(errno)?;
        if ipv6 {
            sockopt::set_ipv6_v6only(&fd, true).map_err(errno)?;
        }
        if transport == Transport::Tcp {
            sockopt::set_socket_reuseaddr(&fd, true).map_err(errno)?;
        }
        Ok(self.insert(HostSocket::Raw(fd, ipv6)))
    }

    fn bind(&self, socket: SocketId, addr: SocketAddr) -> Result<(), NetError> {
        self.raw_only(socket, |fd, _| rustix::net::bind(fd, &addr))
    }

    fn listen(&self, socket: SocketId, backlog: u32) -> Result<(), NetError> {
        let backlog = backlog.min(i32::MAX as u32) as i32;
        self.raw_only(socket, |fd, _| rustix::net::listen(fd, backlog))
    }

    fn connect(&self, socket: SocketId, addr: SocketAddr) -> Result<(), NetError> {
        match self.raw_only(socket, |fd, _| rustix::net::connect(fd, &addr)) {
            Err(NetError::WouldBlock) => Ok(()),
            r => r,
        }
    }

    fn connect_status(&self, socket: SocketId) -> Result<bool, NetError> {
        self.raw_only(socket, |fd, _| {
            let mut fds = [PollFd::new(&fd, PollFlags::OUT)];
            let zero = Timespec {
                tv_sec: 0,
                tv_nsec: 0,
            };
            rustix::event::poll(&mut fds, Some(&zero))?;
            if fds[0].revents().is_empty() {
                return Ok(Ok(false));
            }
            Ok(sockopt::socket_error(fd)?.map(|()| true))
        })?
        .map_err(errno)
    }

    fn disconnect(&self, socket: SocketId) -> Result<(), NetError> {
        self.raw_only(socket, |fd, _| rustix::net::connect_unspec(fd))
    }

    fn local_addr(&self, socket: SocketId) -> Result<SocketAddr, NetError> {
        let any = self.raw_only(socket, |fd, _| rustix::net::getsockname(fd))?;
        SocketAddr::try_from(any).map_err(|_| NetError::InvalidArgument)
    }

    fn peer_addr(&self, socket: SocketId) -> Result<SocketAddr, NetError> {
        let any = self.raw_only(socket, |fd, _| rustix::net::getpeername(fd))?;
        let any = any.ok_or(NetError::NotConnected)?;
        SocketAddr::try_from(any).map_err(|_| NetError::InvalidArgument)
    }

    fn set_option(&self, socket: SocketId, option: SocketOption) -> Result<(), NetError> {
        // Linux counts keep-alive times in whole seconds, 1 to 32767.
        let secs = |ns: u64| std::time::Duration::from_secs((ns / 1_000_000_000).clamp(1, 32767));
        let bytes = |n: usize| n.clamp(1, i32::MAX as usize / 2);
        self.raw_only(socket, |fd, v6| match option {
            SocketOption::KeepAlive(on) => sockopt::set_socket_keepalive(fd, on),
            SocketOption::KeepAliveIdle(ns) => sockopt::set_tcp_keepidle(fd, secs(ns)),
            SocketOption::KeepAliveInterval(ns) => sockopt::set_tcp_keepintvl(fd, secs(ns)),
            SocketOption::KeepAliveCount(n) => sockopt::set_tcp_keepcnt(fd, n.clamp(1, 127)),
            SocketOption::HopLimit(h) if v6 => sockopt::set_ipv6_unicast_hops(fd, Some(h)),
            SocketOption::HopLimit(h) => sockopt::set_ip_ttl(fd, u32::from(h)),
            SocketOption::ReceiveBuffer(n) => sockopt::set_socket_recv_buffer_size(fd, bytes(n)),
            SocketOption::SendBuffer(n) => sockopt::set_socket_send_buffer_size(fd, bytes(n)),
        })
    }

    fn send_to(
        &self,
        socket: SocketId,
        data: &[u8],
        to: Option<SocketAddr>,
    ) -> Result<(), NetError> {
        self.raw_only(socket, |fd, _| match to {
            Some(addr) => rustix::net::sendto(fd, data, SendFlags::NOSIGNAL, &addr),
            None => rustix::net::send(fd, data, SendFlags::NOSIGNAL),
        })
        .map(|_| ())
    }

    fn recv_from(&self, socket: SocketId, buf: &mut [u8]) -> Result<(usize, SocketAddr), NetError> {
        let (n, _, from) = self.raw_only(socket, |fd, _| {
            rustix::net::recvfrom(fd, &mut *buf, RecvFlags::empty())
        })?;
        let from = from.ok_or(NetError::InvalidArgument)?;
        let from = SocketAddr::try_from(from).map_err(|_| NetError::InvalidArgument)?;
        Ok((n, from))
    }

    fn resolve(&self, name: &str) -> Result<Vec<IpAddr>, NetError> {
        match (name, 0).to_socket_addrs() {
            Ok(addrs) => {
                let mut ips: Vec<IpAddr> = Vec::new();
                for a in addrs {
                    if !ips.contains(&a.ip()) {
                        ips.push(a.ip());
                    }
                }
                Ok(ips)
            }
            // getaddrinfo's EAI_AGAIN reads "Temporary failure in name
            // resolution"; the rest mean the name does not resolve.
            Err(e) if e.to_string().contains("emporary") => Err(NetError::ResolverTemporary),
            Err(_) => Err(NetError::NameUnresolvable),
        }
    }
}
