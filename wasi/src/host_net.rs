//! The hosted network backend: [`Network`] over the host's TCP sockets,
//! for `basalt run --hosted --tcplisten ADDR`. Every socket is
//! non-blocking; [`Network::wait`] is one `poll(2)` over the sockets a
//! caller waits for.

use std::collections::HashMap;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown as NetShutdown, TcpListener, TcpStream, ToSocketAddrs};
use std::os::fd::AsFd;
use std::sync::Mutex;
use std::time::Instant;

use rustix::event::{PollFd, PollFlags, Timespec};

use crate::services::{Interest, NetError, Network, Readiness, Shutdown, SocketId};

/// A host socket.
enum HostSocket {
    Listener(TcpListener),
    Stream(TcpStream),
}

/// The host's TCP/IP stack.
pub struct HostNetwork {
    sockets: Mutex<HashMap<SocketId, HostSocket>>,
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
    pub fn listen(&self, addr: &str) -> io::Result<(SocketId, std::net::SocketAddr)> {
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
            .insert(id, s);
        id
    }

    fn with<T>(
        &self,
        id: SocketId,
        f: impl FnOnce(&mut HostSocket) -> Result<T, NetError>,
    ) -> Result<T, NetError> {
        let mut all = self.sockets.lock().unwrap_or_else(|p| p.into_inner());
        f(all.get_mut(&id).ok_or(NetError::Stale)?)
    }

    fn stream<T>(
        &self,
        id: SocketId,
        f: impl FnOnce(&mut TcpStream) -> io::Result<T>,
    ) -> Result<T, NetError> {
        self.with(id, |s| match s {
            HostSocket::Stream(t) => f(t).map_err(|e| net_error(&e)),
            HostSocket::Listener(_) => Err(NetError::NotConnected),
        })
    }
}

impl Network for HostNetwork {
    fn accept(&self, listener: SocketId) -> Result<SocketId, NetError> {
        let stream = self.with(listener, |s| match s {
            HostSocket::Listener(l) => l.accept().map(|(t, _)| t).map_err(|e| net_error(&e)),
            HostSocket::Stream(_) => Err(NetError::InvalidArgument),
        })?;
        stream.set_nonblocking(true).map_err(|e| net_error(&e))?;
        // Requests and answers are small and many: send them at once.
        let _ = stream.set_nodelay(true);
        Ok(self.insert(HostSocket::Stream(stream)))
    }

    fn recv(&self, socket: SocketId, buf: &mut [u8], peek: bool) -> Result<usize, NetError> {
        self.stream(socket, |t| if peek { t.peek(buf) } else { t.read(buf) })
    }

    fn send(&self, socket: SocketId, data: &[u8]) -> Result<usize, NetError> {
        self.stream(socket, |t| t.write(data))
    }

    fn shutdown(&self, socket: SocketId, how: Shutdown) -> Result<(), NetError> {
        let how = match how {
            Shutdown::Read => NetShutdown::Read,
            Shutdown::Write => NetShutdown::Write,
            Shutdown::Both => NetShutdown::Both,
        };
        self.stream(socket, |t| t.shutdown(how))
    }

    fn readiness(&self, socket: SocketId) -> Result<Readiness, NetError> {
        self.with(socket, |s| {
            let listener = matches!(s, HostSocket::Listener(_));
            let fd = match &*s {
                HostSocket::Listener(l) => l.as_fd(),
                HostSocket::Stream(t) => t.as_fd(),
            };
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
        // Duplicate the descriptors so the table is not locked while
        // waiting (nothing else runs meanwhile, but a poisoned lock must
        // not be held across a syscall that may take long).
        let owned: Vec<(std::os::fd::OwnedFd, Interest)> = {
            let all = self.sockets.lock().unwrap_or_else(|p| p.into_inner());
            interests
                .iter()
                .filter_map(|(id, i)| {
                    let fd = match all.get(id)? {
                        HostSocket::Listener(l) => l.as_fd().try_clone_to_owned().ok()?,
                        HostSocket::Stream(t) => t.as_fd().try_clone_to_owned().ok()?,
                    };
                    Some((fd, *i))
                })
                .collect()
        };
        let mut fds: Vec<PollFd<'_>> = owned
            .iter()
            .map(|(fd, i)| {
                let flags = match i {
                    Interest::Read => PollFlags::IN,
                    Interest::Write => PollFlags::OUT,
                };
                PollFd::new(fd, flags)
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
}
