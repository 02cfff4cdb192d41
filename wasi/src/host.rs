//! The hosted backend: WASI services on the host OS, for
//! `basalt run --hosted` and tests.
//!
//! Directories shared with the program (`--dir`) are live
//! ([`crate::host_fs::HostFs`]), or with `--dir-mode copy` copied into an
//! in-memory file system ([`load_dir`]) whose changes stay there.

use alloc::boxed::Box;
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::memfs::MemFs;
use crate::services::{
    Clocks, Entropy, FileSystem, FsError, Inode, Services, Stdio, StdioError, TimeChange,
};

/// The process's own standard streams.
pub struct HostStdio;

impl Stdio for HostStdio {
    fn write_stdout(&self, bytes: &[u8]) -> Result<(), StdioError> {
        let mut out = io::stdout().lock();
        out.write_all(bytes)
            .and_then(|()| out.flush())
            .map_err(stdio_error)
    }
    fn write_stderr(&self, bytes: &[u8]) -> Result<(), StdioError> {
        io::stderr().lock().write_all(bytes).map_err(stdio_error)
    }
    fn read_stdin(&self, buf: &mut [u8]) -> Result<usize, StdioError> {
        io::stdin().lock().read(buf).map_err(stdio_error)
    }
}

/// What a failed standard stream of the host means to WASI: a pipe whose
/// reader is gone (`EPIPE`; Rust ignores `SIGPIPE`) is closed, stdin
/// redirected from a directory is a directory (`EISDIR`), as wasmtime
/// reports them.
fn stdio_error(e: io::Error) -> StdioError {
    match e.kind() {
        io::ErrorKind::BrokenPipe => StdioError::Closed,
        io::ErrorKind::IsADirectory => StdioError::IsDirectory,
        _ => StdioError::Io,
    }
}

/// `SystemTime` and `Instant`; the CPU time of the thread that creates
/// them (the one that runs the program) from their creation on.
pub struct HostClocks {
    origin: Instant,
    cpu_origin: u64,
}

/// This thread's CPU time, nanoseconds.
fn thread_cpu_ns() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    (t.tv_sec as u64)
        .saturating_mul(1_000_000_000)
        .saturating_add(t.tv_nsec as u64)
}

impl Default for HostClocks {
    fn default() -> Self {
        HostClocks {
            origin: Instant::now(),
            cpu_origin: thread_cpu_ns(),
        }
    }
}

impl HostClocks {
    /// Clocks whose monotonic clock counts from `origin` (one program of
    /// several sharing a network), CPU time from now.
    pub fn from_origin(origin: Instant) -> HostClocks {
        HostClocks {
            origin,
            cpu_origin: thread_cpu_ns(),
        }
    }

    /// The instant the monotonic clock counts from (a
    /// [`crate::host_net::HostNetwork`] measures its deadlines from it).
    pub fn origin(&self) -> Instant {
        self.origin
    }
}

impl Clocks for HostClocks {
    fn realtime_ns(&self) -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0)
    }
    fn monotonic_ns(&self) -> u64 {
        self.origin.elapsed().as_nanos() as u64
    }
    fn resolution_ns(&self) -> u64 {
        1
    }
    fn sleep_until_monotonic_ns(&self, deadline: u64) {
        let now = self.monotonic_ns();
        if deadline > now {
            std::thread::sleep(std::time::Duration::from_nanos(deadline - now));
        }
    }
    fn cpu_time_ns(&self) -> Option<u64> {
        Some(thread_cpu_ns().saturating_sub(self.cpu_origin))
    }
}

/// The kernel's random source (`getrandom(2)`).
pub struct HostEntropy;

impl Entropy for HostEntropy {
    fn fill(&self, buf: &mut [u8]) {
        let mut done = 0;
        while done < buf.len() {
            let rest = &mut buf[done..];
            // getrandom(2) through libc's safe-to-call wrapper in std: read /dev/urandom.
            match std::fs::File::open("/dev/urandom").and_then(|mut f| f.read(rest)) {
                Ok(n) if n > 0 => done += n,
                _ => panic!("the host has no working /dev/urandom"),
            }
        }
    }
}

/// All three host services.
pub fn services() -> Services {
    services_with_clocks(HostClocks::default())
}

/// All three host services, with `clocks` (whose origin a
/// [`crate::host_net::HostNetwork`] shares).
pub fn services_with_clocks(clocks: HostClocks) -> Services {
    Services {
        stdio: Box::new(HostStdio),
        clocks: Box::new(clocks),
        entropy: Box::new(HostEntropy),
    }
}

// ---- directories shared with the host ------------------------------------

/// How many bytes a hosted in-memory file system may hold.
pub const HOSTED_FS_CAPACITY: u64 = 4 << 30;

/// An empty in-memory file system with the host's wall clock.
pub fn memfs(dev: u64) -> MemFs {
    MemFs::new(
        dev,
        HOSTED_FS_CAPACITY,
        Box::new(|| HostClocks::default().realtime_ns()),
    )
}

fn fs_err(e: FsError) -> io::Error {
    io::Error::other(format!("in-memory file system: {e:?}"))
}

fn nanos(t: io::Result<SystemTime>) -> TimeChange {
    match t.ok().and_then(|t| t.duration_since(UNIX_EPOCH).ok()) {
        Some(d) => TimeChange::At(d.as_nanos() as u64),
        None => TimeChange::Keep,
    }
}

/// Copies host directory `host` (files, directories, symbolic links, hard
/// links among its files, modification times) into directory `at` of `fs`.
pub fn load_dir(fs: &MemFs, at: Inode, host: &Path) -> io::Result<()> {
    let mut seen = HashMap::new();
    load_into(fs, at, host, &mut seen)
}

fn load_into(
    fs: &MemFs,
    at: Inode,
    host: &Path,
    seen: &mut HashMap<(u64, u64), Inode>,
) -> io::Result<()> {
    for entry in std::fs::read_dir(host)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.as_bytes();
        let meta = entry.path().symlink_metadata()?;
        let kind = meta.file_type();
        let ino = if kind.is_dir() {
            let ino = fs.create_directory(at, name).map_err(fs_err)?;
            load_into(fs, ino, &entry.path(), seen)?;
            ino
        } else if kind.is_symlink() {
            let target = std::fs::read_link(entry.path())?;
            fs.symlink(at, name, target.as_os_str().as_bytes())
                .map_err(fs_err)?
        } else if kind.is_file() {
            if let Some(&ino) = seen.get(&(meta.dev(), meta.ino())) {
                fs.link(ino, at, name).map_err(fs_err)?;
                continue;
            }
            let ino = fs.create_file(at, name).map_err(fs_err)?;
            fs.write(ino, 0, &std::fs::read(entry.path())?)
                .map_err(fs_err)?;
            if meta.nlink() > 1 {
                seen.insert((meta.dev(), meta.ino()), ino);
            }
            ino
        } else {
            // devices, sockets, FIFOs: not shared
            continue;
        };
        fs.set_times(ino, nanos(meta.accessed()), nanos(meta.modified()))
            .map_err(fs_err)?;
    }
    Ok(())
}
