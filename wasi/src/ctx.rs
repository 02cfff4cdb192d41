//! The state of one WASI program: arguments, environment, descriptors.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use crate::errno::Errno;
use crate::services::{FileSystem, Inode, Network, Services, SocketId};

/// The most descriptors one program may have open at once.
pub const MAX_FDS: usize = 4096;

/// An inode held open by a descriptor: it stays alive (even unlinked)
/// until the descriptor is closed.
pub struct Node {
    /// the file system it lives in
    pub(crate) fs: Arc<dyn FileSystem>,
    /// its number there
    pub(crate) ino: Inode,
}

impl Node {
    /// Opens `ino` of `fs` for a descriptor.
    pub(crate) fn open(fs: Arc<dyn FileSystem>, ino: Inode) -> Node {
        fs.retain(ino);
        Node { fs, ino }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.fs.release(self.ino);
    }
}

impl core::fmt::Debug for Node {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Node({})", self.ino)
    }
}

/// A socket held open by a descriptor: closed in its network when the
/// descriptor is.
pub struct Socket {
    /// the network it lives in
    pub(crate) net: Arc<dyn Network>,
    /// its number there
    pub(crate) id: SocketId,
    /// whether it listens (else it is a connection)
    pub(crate) listener: bool,
}

impl Drop for Socket {
    fn drop(&mut self) {
        self.net.close(self.id);
    }
}

impl core::fmt::Debug for Socket {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "Socket({}, listener: {})", self.id, self.listener)
    }
}

/// What a file descriptor refers to.
#[derive(Debug)]
pub enum Descriptor {
    /// The program's standard input.
    Stdin,
    /// The program's standard output.
    Stdout,
    /// The program's standard error.
    Stderr,
    /// A regular file (or, opened without following, a symbolic link).
    File(Node),
    /// A directory.
    Directory(Node),
    /// A TCP socket: a preopened listener or a connection accepted from one.
    Socket(Socket),
}

impl Descriptor {
    /// Whether it is a stream: one of the three standard streams or a
    /// socket (no offsets, no size, no timestamps, nothing to sync).
    pub fn is_stream(&self) -> bool {
        matches!(
            self,
            Descriptor::Stdin | Descriptor::Stdout | Descriptor::Stderr | Descriptor::Socket(_)
        )
    }
}

/// Everything a WASI program sees of the world.
pub struct WasiCtx {
    pub(crate) args: Vec<Vec<u8>>,
    pub(crate) env: Vec<Vec<u8>>,
    pub(crate) services: Services,
    pub(crate) fds: BTreeMap<u32, OpenFd>,
    /// which of stdin, stdout and stderr are terminals
    pub(crate) terminals: [bool; 3],
    /// the host's WASI 0.2 resources (streams, descriptors, pollables)
    pub(crate) resources: crate::preview2::Table,
    /// the network `wasi:sockets` makes sockets in, if any
    pub(crate) net: Option<Arc<dyn Network>>,
    /// what `wasi:sockets` may do
    pub(crate) grants: crate::preview2::SocketGrants,
    /// the most bytes one request for random bytes may ask for
    /// (`-S max-random-size`); more traps
    pub(crate) max_random_size: u64,
    /// `wasi:random/insecure-seed`, drawn on first use and the same ever after
    pub(crate) insecure_seed: Option<(u64, u64)>,
    /// what `wasi:cli/environment.initial-cwd` answers (`-S cwd`)
    pub(crate) initial_cwd: Option<String>,
    /// the most bytes of guest memory one preview1 call may read or write
    /// (`-S hostcall-fuel`); `None`: no budget
    pub(crate) hostcall_fuel: Option<u64>,
    /// the monotonic time (ns) past which a WASI 0.2 wait (`poll`,
    /// `block`, a blocking read) stops the program (`basalt serve`'s
    /// per-request deadline); `None`: none
    pub(crate) deadline_ns: Option<u64>,
}

/// The most random bytes one request may ask for unless
/// [`WasiCtx::set_max_random_size`] says otherwise: wasmtime's default
/// (64 MiB), so a guest cannot make the host allocate without bound.
pub const DEFAULT_MAX_RANDOM_SIZE: u64 = 64 << 20;

/// An entry of the descriptor table.
#[derive(Debug)]
pub(crate) struct OpenFd {
    /// what it refers to
    pub(crate) desc: Descriptor,
    /// the rights it carries (`fd_fdstat_set_rights` may only drop some)
    pub(crate) rights_base: u64,
    /// the rights of descriptors opened through it
    pub(crate) rights_inheriting: u64,
    /// `fdflags` (append, nonblock, …)
    pub(crate) flags: u16,
    /// the file offset (regular files)
    pub(crate) position: u64,
    /// the guest path of a preopened directory
    pub(crate) preopen: Option<Vec<u8>>,
}

impl OpenFd {
    /// Fails unless the descriptor has all of `rights`: with `EBADF` when
    /// it lacks reading or writing (a file opened the other way) or is a
    /// directory asked for what only files do (seek, read, …), as wasmtime
    /// and `read(2)` answer; else with `ENOTCAPABLE`.
    pub(crate) fn require(&self, rights: u64) -> Result<(), Errno> {
        use crate::abi::{DIRECTORY_RIGHTS, FILE_RIGHTS, RIGHT_FD_READ, RIGHT_FD_WRITE};
        let missing = rights & !self.rights_base;
        let file_only = FILE_RIGHTS & !DIRECTORY_RIGHTS;
        if missing == 0 {
            Ok(())
        } else if missing & (RIGHT_FD_READ | RIGHT_FD_WRITE) != 0
            || (matches!(self.desc, Descriptor::Directory(_)) && missing & file_only != 0)
        {
            Err(Errno::Badf)
        } else {
            Err(Errno::Notcapable)
        }
    }
}

impl WasiCtx {
    /// A context with arguments `args` (the first is the program name),
    /// environment entries `env` (each `NAME=VALUE`, exactly these — nothing
    /// is inherited) and standard streams on descriptors 0, 1 and 2.
    pub fn new(args: Vec<Vec<u8>>, env: Vec<Vec<u8>>, services: Services) -> WasiCtx {
        let mut fds = BTreeMap::new();
        for (fd, desc) in [
            (0, Descriptor::Stdin),
            (1, Descriptor::Stdout),
            (2, Descriptor::Stderr),
        ] {
            fds.insert(
                fd,
                OpenFd {
                    rights_base: crate::abi::stdio_rights(&desc),
                    desc,
                    rights_inheriting: 0,
                    flags: 0,
                    position: 0,
                    preopen: None,
                },
            );
        }
        WasiCtx {
            args,
            env,
            services,
            fds,
            terminals: [false; 3],
            resources: crate::preview2::Table::default(),
            net: None,
            grants: crate::preview2::SocketGrants::default(),
            max_random_size: DEFAULT_MAX_RANDOM_SIZE,
            insecure_seed: None,
            initial_cwd: None,
            hostcall_fuel: None,
            deadline_ns: None,
        }
    }

    /// Caps the bytes one request for random bytes may ask for (preview1
    /// `random_get`, `get-random-bytes`, `get-insecure-random-bytes`; `-S
    /// max-random-size`, as wasmtime's): a larger request traps with
    /// `requested len N exceeds limit MAX`.
    pub fn set_max_random_size(&mut self, max: u64) {
        self.max_random_size = max;
    }

    /// Gives each preview1 call a budget of `bytes` of guest memory it may
    /// read or write (wasmtime's `-S hostcall-fuel`): a call whose
    /// arguments (paths, iovec and subscription arrays) or buffers need
    /// more fails with `ENOMEM`.
    pub fn set_hostcall_fuel(&mut self, bytes: u64) {
        self.hostcall_fuel = Some(bytes);
    }

    /// Traps unless a request for `len` random bytes is within
    /// [`WasiCtx::set_max_random_size`], with wasmtime's message.
    pub(crate) fn check_random_len(&self, len: u64) -> Result<(), String> {
        if len > self.max_random_size {
            Err(alloc::format!(
                "requested len {len} exceeds limit {}",
                self.max_random_size
            ))
        } else {
            Ok(())
        }
    }

    /// Sets the initial working directory `wasi:cli/environment.initial-cwd`
    /// reports (`-S cwd`, as wasmtime's; until this is called, none). It is
    /// only a name the program's libc resolves relative paths against: it
    /// opens nothing and grants nothing beyond the preopens.
    pub fn set_initial_cwd(&mut self, cwd: String) {
        self.initial_cwd = Some(cwd);
    }

    /// The monotonic clock of this context's services, in nanoseconds.
    pub fn monotonic_ns(&self) -> u64 {
        self.services.clocks.monotonic_ns()
    }

    /// Stops the program with an `Interrupted` trap when a WASI 0.2 wait
    /// would go past `monotonic_ns` (its code is stopped by the store's
    /// interrupt handle; this stops it where it waits on the host).
    pub fn set_deadline(&mut self, monotonic_ns: Option<u64>) {
        self.deadline_ns = monotonic_ns;
    }

    /// Gives `wasi:sockets` the network `net` to make sockets in
    /// (without one, what the grants allow fails with `not-supported`).
    pub fn set_network(&mut self, net: Arc<dyn Network>) {
        self.net = Some(net);
    }

    /// Says what `wasi:sockets` may do (`-S inherit-network`, `-S tcp`, …;
    /// until this is called, [`crate::preview2::SocketGrants::default`]).
    pub fn set_socket_grants(&mut self, grants: crate::preview2::SocketGrants) {
        self.grants = grants;
    }

    /// Says which of stdin, stdout and stderr (in that order) are
    /// terminals (none, until this is called). A terminal is a character
    /// device to `fd_fdstat_get` and `fd_filestat_get`; any other stream
    /// (a file, a pipe, a socket, `/dev/null`) is of unknown type, as under
    /// wasmtime, so wasi-libc's `isatty` tells the truth.
    pub fn set_terminals(&mut self, terminals: [bool; 3]) {
        self.terminals = terminals;
    }

    /// Caps how many WASI 0.2 resources (streams, descriptors, pollables,
    /// …) the program may hold at once (`-S max-resources`); more traps.
    pub fn set_max_resources(&mut self, max: usize) {
        self.resources.set_max(max);
    }

    /// Whether `desc` is a standard stream connected to a terminal.
    pub(crate) fn is_terminal(&self, desc: &Descriptor) -> bool {
        match desc {
            Descriptor::Stdin => self.terminals[0],
            Descriptor::Stdout => self.terminals[1],
            Descriptor::Stderr => self.terminals[2],
            _ => false,
        }
    }

    /// Preopens the root directory of `fs` as `guest_path` (e.g. `/` or
    /// `/data`) on the next free descriptor, which it returns.
    pub fn preopen_dir(
        &mut self,
        guest_path: Vec<u8>,
        fs: Arc<dyn FileSystem>,
    ) -> Result<u32, Errno> {
        let root = fs.root();
        self.insert(OpenFd {
            desc: Descriptor::Directory(Node::open(fs, root)),
            rights_base: crate::abi::DIRECTORY_RIGHTS,
            rights_inheriting: crate::abi::DIRECTORY_RIGHTS | crate::abi::FILE_RIGHTS,
            flags: 0,
            position: 0,
            preopen: Some(guest_path),
        })
    }

    /// Preopens listening socket `listener` of `net` (`--tcplisten`) on
    /// the next free descriptor, which it returns. Preopen directories
    /// first: C programs look for directories from descriptor 3 up and
    /// stop at the first that is not one.
    pub fn preopen_socket(
        &mut self,
        net: Arc<dyn Network>,
        listener: SocketId,
    ) -> Result<u32, Errno> {
        self.insert(OpenFd {
            desc: Descriptor::Socket(Socket {
                net,
                id: listener,
                listener: true,
            }),
            rights_base: crate::abi::SOCKET_RIGHTS,
            rights_inheriting: crate::abi::SOCKET_RIGHTS,
            flags: 0,
            position: 0,
            preopen: None,
        })
    }

    /// The services the program runs on.
    pub fn services(&self) -> &Services {
        &self.services
    }

    /// Descriptor `fd`.
    pub(crate) fn fd(&self, fd: u32) -> Result<&OpenFd, Errno> {
        self.fds.get(&fd).ok_or(Errno::Badf)
    }

    /// Descriptor `fd`, to change.
    pub(crate) fn fd_mut(&mut self, fd: u32) -> Result<&mut OpenFd, Errno> {
        self.fds.get_mut(&fd).ok_or(Errno::Badf)
    }

    /// Puts `entry` on the lowest free descriptor number.
    pub(crate) fn insert(&mut self, entry: OpenFd) -> Result<u32, Errno> {
        if self.fds.len() >= MAX_FDS {
            return Err(Errno::Mfile);
        }
        let mut n = 0u32;
        for &used in self.fds.keys() {
            if used != n {
                break;
            }
            n += 1;
        }
        self.fds.insert(n, entry);
        Ok(n)
    }
}
