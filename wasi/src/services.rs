//! What WASI needs of the machine, as traits.
//!
//! The kernel implements these over its drivers (serial ports, TSC, RTC,
//! RDRAND); the hosted backend ([`crate::host`]) over the host OS. Files
//! come through [`FileSystem`], which [`crate::memfs::MemFs`] implements
//! for both. WASI never sees a device: only these calls.

use alloc::boxed::Box;
use alloc::vec::Vec;

/// Why a standard stream failed. Each variant is one preview1 errno (see
/// `From<StdioError> for Errno`); WASI 0.2 reports [`StdioError::Closed`]
/// as `stream-error::closed` and the others as `last-operation-failed`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StdioError {
    /// nobody reads the stream any more, e.g. the reader of a pipe closed
    /// it (`EPIPE` on the host; preview1 says `EIO`, as wasmtime and its
    /// preview1 adapter report a closed stream)
    Closed,
    /// the stream is a directory, e.g. stdin redirected from one (`EISDIR`)
    IsDirectory,
    /// the host's stream failed otherwise (`EIO`)
    Io,
}

impl From<StdioError> for crate::errno::Errno {
    fn from(e: StdioError) -> Self {
        use crate::errno::Errno;
        match e {
            StdioError::Closed | StdioError::Io => Errno::Io,
            StdioError::IsDirectory => Errno::Isdir,
        }
    }
}

/// The program's three standard streams. A backend whose streams cannot
/// fail (a serial console) always answers `Ok`.
pub trait Stdio: Send + Sync {
    /// Writes all of `bytes` to standard output (and flushes them).
    fn write_stdout(&self, bytes: &[u8]) -> Result<(), StdioError>;
    /// Writes all of `bytes` to standard error.
    fn write_stderr(&self, bytes: &[u8]) -> Result<(), StdioError>;
    /// Reads standard input into `buf`, blocking until at least one byte is
    /// available; returns `0` at end of file.
    fn read_stdin(&self, buf: &mut [u8]) -> Result<usize, StdioError>;
}

/// Time.
pub trait Clocks: Send + Sync {
    /// Wall-clock time: nanoseconds since 1970-01-01T00:00:00Z.
    fn realtime_ns(&self) -> u64;
    /// A clock that never goes backwards, in nanoseconds from an arbitrary
    /// origin (boot).
    fn monotonic_ns(&self) -> u64;
    /// The resolution of both clocks, in nanoseconds (at least 1).
    fn resolution_ns(&self) -> u64;
    /// Blocks until [`Clocks::monotonic_ns`] reaches `deadline`.
    fn sleep_until_monotonic_ns(&self, deadline: u64);
    /// The CPU time the program has used since it started, in
    /// nanoseconds (time it spent sleeping or waiting does not count), or
    /// `None` where the platform cannot tell. The program has one thread,
    /// so this is its process and its thread CPU-time clock.
    fn cpu_time_ns(&self) -> Option<u64> {
        None
    }
}

/// Cryptographically secure random bytes.
pub trait Entropy: Send + Sync {
    /// Fills `buf` with random bytes.
    fn fill(&self, buf: &mut [u8]);
}

/// The services one WASI program runs on.
pub struct Services {
    /// standard streams
    pub stdio: Box<dyn Stdio>,
    /// clocks and sleeping
    pub clocks: Box<dyn Clocks>,
    /// random bytes
    pub entropy: Box<dyn Entropy>,
}

// ---- file systems ---------------------------------------------------------

/// The number of a file (an inode) in one [`FileSystem`].
pub type Inode = u64;

/// What kind of file an inode is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// A regular file of bytes.
    RegularFile,
    /// A directory of named entries.
    Directory,
    /// A symbolic link: a path, resolved by the WASI layer.
    SymbolicLink,
    /// A character device (only host-backed file systems have them).
    CharacterDevice,
    /// A block device (only host-backed file systems have them).
    BlockDevice,
    /// A Unix-domain socket (preview1's `socket_stream`, as wasmtime says).
    Socket,
    /// Anything else, e.g. a named pipe (preview1's `unknown`).
    Other,
}

/// The attributes of one inode (preview1's `filestat`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileStat {
    /// the device (file system) number
    pub dev: u64,
    /// the inode number
    pub ino: Inode,
    /// the kind of file
    pub kind: FileKind,
    /// the number of hard links (directory entries) naming it
    pub nlink: u64,
    /// bytes of data (a symbolic link: bytes of its target)
    pub size: u64,
    /// last access, nanoseconds since the Unix epoch
    pub atim: u64,
    /// last data modification, nanoseconds since the Unix epoch
    pub mtim: u64,
    /// last status change, nanoseconds since the Unix epoch
    pub ctim: u64,
}

/// How [`FileSystem::set_times`] changes one timestamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeChange {
    /// leave it
    Keep,
    /// set it to the file system's clock
    Now,
    /// set it to these nanoseconds since the Unix epoch
    At(u64),
}

/// One entry of a directory listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirEntry {
    /// the cookie that resumes a listing after this entry
    pub next: u64,
    /// the inode it names
    pub ino: Inode,
    /// the kind of that inode
    pub kind: FileKind,
    /// the entry's name (`.` and `..` included)
    pub name: Vec<u8>,
}

/// Why a file-system call failed. Each variant is one WASI errno (see
/// `From<FsError> for Errno`), so backends cannot blur them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FsError {
    /// no entry of that name (`ENOENT`)
    NotFound,
    /// the name is taken (`EEXIST`)
    Exists,
    /// a directory was needed (`ENOTDIR`)
    NotDirectory,
    /// the operation does not apply to directories (`EISDIR`)
    IsDirectory,
    /// the directory still has entries (`ENOTEMPTY`)
    NotEmpty,
    /// a name longer than the file system allows (`ENAMETOOLONG`)
    NameTooLong,
    /// the file system is full (`ENOSPC`)
    NoSpace,
    /// a size or offset beyond what a file may hold (`EFBIG`)
    FileTooBig,
    /// a bad argument, e.g. a directory moved into itself (`EINVAL`)
    InvalidArgument,
    /// the operation is not permitted, e.g. a hard link to a directory (`EPERM`)
    NotPermitted,
    /// the inode is in use (`EBUSY`)
    Busy,
    /// the two places are on different file systems (`EXDEV`)
    CrossDevice,
    /// too many hard links (`EMLINK`)
    TooManyLinks,
    /// the file system cannot be changed (`EROFS`)
    ReadOnly,
    /// the inode no longer exists (`EBADF`)
    Stale,
    /// the backing store refuses access to it (`EACCES`)
    AccessDenied,
    /// the backing store failed (`EIO`)
    Io,
}

impl From<FsError> for crate::errno::Errno {
    fn from(e: FsError) -> Self {
        use crate::errno::Errno;
        match e {
            FsError::NotFound => Errno::Noent,
            FsError::Exists => Errno::Exist,
            FsError::NotDirectory => Errno::Notdir,
            FsError::IsDirectory => Errno::Isdir,
            FsError::NotEmpty => Errno::Notempty,
            FsError::NameTooLong => Errno::Nametoolong,
            FsError::NoSpace => Errno::Nospc,
            FsError::FileTooBig => Errno::Fbig,
            FsError::InvalidArgument => Errno::Inval,
            FsError::NotPermitted => Errno::Perm,
            FsError::Busy => Errno::Busy,
            FsError::CrossDevice => Errno::Xdev,
            FsError::TooManyLinks => Errno::Mlink,
            FsError::ReadOnly => Errno::Rofs,
            FsError::Stale => Errno::Badf,
            FsError::AccessDenied => Errno::Acces,
            FsError::Io => Errno::Io,
        }
    }
}

/// A file system as preview1 needs it: inodes addressed by number, names
/// looked up one component at a time in a directory.
///
/// Paths never reach a backend: the WASI layer splits them, follows
/// symbolic links and keeps them inside their preopened directory, so a
/// backend only ever sees one directory and one name (never empty, `.`,
/// `..` or containing `/`). Offsets and seeking are the WASI layer's too.
/// Every method answers with a typed [`FsError`]; none may panic on any
/// argument. Directory inodes given to a method that wants a directory
/// but get another kind answer [`FsError::NotDirectory`].
pub trait FileSystem: Send + Sync {
    /// The root directory.
    fn root(&self) -> Inode;
    /// The inode `name` names in directory `dir`.
    fn lookup(&self, dir: Inode, name: &[u8]) -> Result<Inode, FsError>;
    /// The attributes of `node`.
    fn stat(&self, node: Inode) -> Result<FileStat, FsError>;
    /// Creates an empty regular file `name` in `dir` ([`FsError::Exists`] if taken).
    fn create_file(&self, dir: Inode, name: &[u8]) -> Result<Inode, FsError>;
    /// Creates an empty directory `name` in `dir`.
    fn create_directory(&self, dir: Inode, name: &[u8]) -> Result<Inode, FsError>;
    /// Creates a symbolic link `name` in `dir` whose contents are `target`.
    fn symlink(&self, dir: Inode, name: &[u8], target: &[u8]) -> Result<Inode, FsError>;
    /// The contents of symbolic link `node` ([`FsError::InvalidArgument`] for another kind).
    fn readlink(&self, node: Inode) -> Result<Vec<u8>, FsError>;
    /// Adds a hard link `name` in `dir` to `node` (not a directory: [`FsError::NotPermitted`]).
    fn link(&self, node: Inode, dir: Inode, name: &[u8]) -> Result<(), FsError>;
    /// Removes the non-directory entry `name` from `dir` ([`FsError::IsDirectory`] for a directory).
    fn unlink(&self, dir: Inode, name: &[u8]) -> Result<(), FsError>;
    /// Removes the empty directory `name` from `dir`.
    fn remove_directory(&self, dir: Inode, name: &[u8]) -> Result<(), FsError>;
    /// Moves entry `name` of `dir` to `to_name` in `to_dir`, replacing what
    /// is there as POSIX `rename` does.
    fn rename(&self, dir: Inode, name: &[u8], to_dir: Inode, to_name: &[u8])
    -> Result<(), FsError>;
    /// Reads from regular file `node` at `offset`; returns the bytes read (0 at or past the end).
    fn read(&self, node: Inode, offset: u64, buf: &mut [u8]) -> Result<usize, FsError>;
    /// Writes `data` to regular file `node` at `offset`, growing it as needed.
    fn write(&self, node: Inode, offset: u64, data: &[u8]) -> Result<usize, FsError>;
    /// Truncates or extends (with zeros) regular file `node` to `size` bytes.
    fn set_size(&self, node: Inode, size: u64) -> Result<(), FsError>;
    /// Changes the access and modification times of `node`.
    fn set_times(&self, node: Inode, atim: TimeChange, mtim: TimeChange) -> Result<(), FsError>;
    /// Up to `max` entries of directory `dir` starting at `cookie` (0: the
    /// start; then a [`DirEntry::next`]), `.` and `..` first. Cookies stay
    /// valid while the directory changes.
    fn read_dir(&self, dir: Inode, cookie: u64, max: usize) -> Result<Vec<DirEntry>, FsError>;
    /// Makes `node`'s data durable (a no-op for memory).
    fn sync(&self, node: Inode) -> Result<(), FsError>;
    /// A descriptor now refers to `node`: it stays readable after its last
    /// link is removed, until [`FileSystem::release`].
    fn retain(&self, node: Inode);
    /// A descriptor of `node` was closed.
    fn release(&self, node: Inode);
    /// Whether nothing in it may be changed (a read-only preopen,
    /// [`crate::read_only::ReadOnly`]): the WASI layer then refuses every
    /// change with `EPERM` before looking further.
    fn read_only(&self) -> bool {
        false
    }
}

// ---- networks -------------------------------------------------------------

/// A socket in one [`Network`]: a listener or a connection.
pub type SocketId = u64;

/// Why a socket call failed. Each variant is one WASI errno (see
/// `From<NetError> for Errno`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NetError {
    /// nothing to accept, receive or send without waiting (`EAGAIN`)
    WouldBlock,
    /// the peer reset the connection (`ECONNRESET`)
    ConnectionReset,
    /// the connection is not (or no longer) established (`ENOTCONN`)
    NotConnected,
    /// sending after this side shut down writing (`EPIPE`)
    BrokenPipe,
    /// the operation does not apply to this socket, e.g. accept on a
    /// connection (`EINVAL`)
    InvalidArgument,
    /// no memory or no socket slots left (`ENOBUFS`)
    NoBuffers,
    /// the socket no longer exists (`EBADF`)
    Stale,
    /// the local address is taken (`EADDRINUSE`)
    AddressInUse,
    /// the local address is not one of this machine's (`EADDRNOTAVAIL`)
    AddressNotAvailable,
    /// the peer refused the connection or a datagram (`ECONNREFUSED`)
    ConnectionRefused,
    /// the connection was aborted locally (`ECONNABORTED`)
    ConnectionAborted,
    /// no route to the remote host or network
    Unreachable,
    /// the operation timed out
    Timeout,
    /// the operation or option is not supported by this backend
    NotSupported,
    /// a datagram too large to send
    MessageTooLarge,
    /// the operation was refused (privileged port, firewall)
    AccessDenied,
    /// the name does not exist
    NameUnresolvable,
    /// the resolver failed for now; trying again may work
    ResolverTemporary,
    /// the resolver failed for good
    ResolverPermanent,
}

impl From<NetError> for crate::errno::Errno {
    fn from(e: NetError) -> Self {
        use crate::errno::Errno;
        match e {
            NetError::WouldBlock => Errno::Again,
            NetError::ConnectionReset => Errno::Connreset,
            NetError::NotConnected => Errno::Notconn,
            NetError::BrokenPipe => Errno::Pipe,
            NetError::InvalidArgument => Errno::Inval,
            NetError::NoBuffers => Errno::Nobufs,
            NetError::Stale => Errno::Badf,
            NetError::ConnectionRefused | NetError::ConnectionAborted => Errno::Connreset,
            NetError::NotSupported => Errno::Notsup,
            NetError::AccessDenied => Errno::Acces,
            NetError::AddressInUse
            | NetError::AddressNotAvailable
            | NetError::Unreachable
            | NetError::Timeout
            | NetError::MessageTooLarge
            | NetError::NameUnresolvable
            | NetError::ResolverTemporary
            | NetError::ResolverPermanent => Errno::Io,
        }
    }
}

/// Which directions [`Network::shutdown`] closes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shutdown {
    /// no more receiving
    Read,
    /// no more sending (the peer sees end of stream)
    Write,
    /// both
    Both,
}

/// What a socket can do now without waiting.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Readiness {
    /// a listener: a connection waits to be accepted; a connection: bytes
    /// (or end of stream) wait to be received
    pub readable: bool,
    /// a connection: sending would take at least one byte; bytes the
    /// number of bytes that would be taken
    pub writable: Option<usize>,
    /// the peer closed or reset the connection (receiving gives end of
    /// stream or an error)
    pub hangup: bool,
    /// bytes waiting to be received (0 for a listener)
    pub pending: usize,
}

/// What a waiter wants to hear about a socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interest {
    /// readability (or hangup)
    Read,
    /// writability (or hangup)
    Write,
}

/// A TCP/IP stack as preview1 sockets need it: listeners made before the
/// program starts (`--tcplisten`), the connections accepted from them,
/// non-blocking calls, and one way to wait.
///
/// Every call but [`Network::wait`] returns at once: "would block" is
/// [`NetError::WouldBlock`], and the WASI layer decides whether to wait
/// (a blocking descriptor) or to return `EAGAIN`. Backends drive their
/// stack (receive packets, run timers) in every call, so progress never
/// depends on the program calling `wait`.
pub trait Network: Send + Sync {
    /// A connection waiting on `listener`, accepted; [`NetError::WouldBlock`]
    /// if none is waiting.
    fn accept(&self, listener: SocketId) -> Result<SocketId, NetError>;
    /// Receives into `buf`: the number of bytes, 0 at end of stream.
    /// `peek` leaves them queued.
    fn recv(&self, socket: SocketId, buf: &mut [u8], peek: bool) -> Result<usize, NetError>;
    /// Queues bytes of `data` for sending; returns how many were taken.
    fn send(&self, socket: SocketId, data: &[u8]) -> Result<usize, NetError>;
    /// Closes one or both directions of a connection.
    fn shutdown(&self, socket: SocketId, how: Shutdown) -> Result<(), NetError>;
    /// What `socket` can do now.
    fn readiness(&self, socket: SocketId) -> Result<Readiness, NetError>;
    /// Waits until one of `interests` is ready or the monotonic clock
    /// reaches `deadline_ns` (`None`: no deadline), driving the stack
    /// meanwhile, idle (halted until an interrupt) where it can be. May
    /// return early; callers check readiness again.
    fn wait(&self, interests: &[(SocketId, Interest)], deadline_ns: Option<u64>);
    /// The descriptor of `socket` was closed: the connection is closed
    /// gracefully (the stack finishes sending what is queued), a listener
    /// stops listening.
    fn close(&self, socket: SocketId);

    // WASI 0.2 sockets: sockets the program makes. Backends without them
    // keep these defaults, and `wasi:sockets` answers `not-supported`.

    /// A new, unbound, non-blocking socket of `transport` for IPv6
    /// (`ipv6`, IPv6 only: no IPv4-mapped addresses) or IPv4. A listener
    /// bound later may rebind an address in `TIME_WAIT` (`SO_REUSEADDR`).
    fn create(&self, transport: Transport, ipv6: bool) -> Result<SocketId, NetError> {
        let _ = (transport, ipv6);
        Err(NetError::NotSupported)
    }
    /// Binds `socket` to `addr` (port 0: the stack picks one).
    fn bind(&self, socket: SocketId, addr: SocketAddr) -> Result<(), NetError> {
        let _ = (socket, addr);
        Err(NetError::NotSupported)
    }
    /// Makes bound TCP `socket` a listener with a queue of `backlog`.
    fn listen(&self, socket: SocketId, backlog: u32) -> Result<(), NetError> {
        let _ = (socket, backlog);
        Err(NetError::NotSupported)
    }
    /// Starts connecting TCP `socket` to `addr` (or, UDP, sets its peer).
    /// `Ok`: connected or under way; see [`Network::connect_status`].
    fn connect(&self, socket: SocketId, addr: SocketAddr) -> Result<(), NetError> {
        let _ = (socket, addr);
        Err(NetError::NotSupported)
    }
    /// How a TCP connect is going: `Ok(true)` connected, `Ok(false)`
    /// still under way, else why it failed.
    fn connect_status(&self, socket: SocketId) -> Result<bool, NetError> {
        let _ = socket;
        Err(NetError::NotSupported)
    }
    /// Forgets the peer of UDP `socket`.
    fn disconnect(&self, socket: SocketId) -> Result<(), NetError> {
        let _ = socket;
        Err(NetError::NotSupported)
    }
    /// The address `socket` is bound to.
    fn local_addr(&self, socket: SocketId) -> Result<SocketAddr, NetError> {
        let _ = socket;
        Err(NetError::NotSupported)
    }
    /// The address of `socket`'s peer.
    fn peer_addr(&self, socket: SocketId) -> Result<SocketAddr, NetError> {
        let _ = socket;
        Err(NetError::NotSupported)
    }
    /// Sets an option of `socket`; the backend may clamp the value.
    fn set_option(&self, socket: SocketId, option: SocketOption) -> Result<(), NetError> {
        let _ = (socket, option);
        Err(NetError::NotSupported)
    }
    /// Sends one datagram from UDP `socket` to `to` (`None`: its peer).
    fn send_to(
        &self,
        socket: SocketId,
        data: &[u8],
        to: Option<SocketAddr>,
    ) -> Result<(), NetError> {
        let _ = (socket, data, to);
        Err(NetError::NotSupported)
    }
    /// Receives one datagram on UDP `socket` into `buf`: its length
    /// (truncated to `buf`) and sender.
    fn recv_from(&self, socket: SocketId, buf: &mut [u8]) -> Result<(usize, SocketAddr), NetError> {
        let _ = (socket, buf);
        Err(NetError::NotSupported)
    }
    /// The addresses `name` (a host name, not an IP literal) resolves
    /// to. May block for as long as the resolver takes.
    fn resolve(&self, name: &str) -> Result<Vec<IpAddr>, NetError> {
        let _ = name;
        Err(NetError::NotSupported)
    }
}

pub use core::net::{IpAddr, SocketAddr};

/// The transport of a socket [`Network::create`] makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// a TCP stream
    Tcp,
    /// UDP datagrams
    Udp,
}

/// An option [`Network::set_option`] sets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SocketOption {
    /// TCP keep-alive on or off
    KeepAlive(bool),
    /// idle time before the first keep-alive probe, nanoseconds
    KeepAliveIdle(u64),
    /// time between keep-alive probes, nanoseconds
    KeepAliveInterval(u64),
    /// unanswered probes before the connection is dropped
    KeepAliveCount(u32),
    /// the TTL (IPv4) or unicast hop limit (IPv6) of packets sent
    HopLimit(u8),
    /// the receive buffer's size in bytes
    ReceiveBuffer(usize),
    /// the send buffer's size in bytes
    SendBuffer(usize),
}
