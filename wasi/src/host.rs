//! The hosted backend: WASI services on the host OS, for
//! `basalt run --hosted` and tests.
//!
//! Directories shared with the program (`--dir`) are copied into an
//! in-memory file system ([`load_dir`]) and the result is written back when
//! the program ends ([`write_back`]): the program runs on exactly the file
//! system code the kernel runs, and its writes are visible on the host
//! afterwards, as under wasmtime.

use alloc::boxed::Box;
use alloc::vec::Vec;
use std::collections::HashMap;
use std::ffi::OsStr;
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::memfs::MemFs;
use crate::services::{
    Clocks, Entropy, FileKind, FileSystem, FsError, Inode, Services, Stdio, TimeChange,
};

/// The process's own standard streams.
pub struct HostStdio;

impl Stdio for HostStdio {
    fn write_stdout(&self, bytes: &[u8]) {
        let mut out = io::stdout().lock();
        // A closed stdout (EPIPE) drops the data, as a write to a closed pipe would.
        let _ = out.write_all(bytes).and_then(|()| out.flush());
    }
    fn write_stderr(&self, bytes: &[u8]) {
        let _ = io::stderr().lock().write_all(bytes);
    }
    fn read_stdin(&self, buf: &mut [u8]) -> usize {
        io::stdin().lock().read(buf).unwrap_or(0)
    }
}

/// `SystemTime` and `Instant`.
pub struct HostClocks {
    origin: Instant,
}

impl Default for HostClocks {
    fn default() -> Self {
        HostClocks {
            origin: Instant::now(),
        }
    }
}

impl HostClocks {
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

/// Makes host directory `host` hold what directory `at` of `fs` holds:
/// entries gone from `fs` are removed, changed files rewritten (and given
/// their modification time), new ones created; hard links stay links.
/// Files that did not change are not touched.
pub fn write_back(fs: &dyn FileSystem, at: Inode, host: &Path) -> io::Result<()> {
    let mut written = HashMap::new();
    write_into(fs, at, host, &mut written)
}

fn entries(fs: &dyn FileSystem, dir: Inode) -> io::Result<Vec<crate::services::DirEntry>> {
    let mut out = Vec::new();
    let mut cookie = 0;
    loop {
        let batch = fs.read_dir(dir, cookie, 256).map_err(fs_err)?;
        let Some(last) = batch.last() else {
            return Ok(out);
        };
        cookie = last.next;
        out.extend(
            batch
                .into_iter()
                .filter(|e| e.name != b"." && e.name != b".."),
        );
    }
}

fn same_kind(kind: FileKind, t: std::fs::FileType) -> bool {
    match kind {
        FileKind::Directory => t.is_dir(),
        FileKind::RegularFile => t.is_file(),
        FileKind::SymbolicLink => t.is_symlink(),
        // The memory file systems the hosted runner writes back never
        // hold these.
        FileKind::CharacterDevice | FileKind::BlockDevice | FileKind::Socket | FileKind::Other => {
            false
        }
    }
}

fn write_into(
    fs: &dyn FileSystem,
    at: Inode,
    host: &Path,
    written: &mut HashMap<Inode, PathBuf>,
) -> io::Result<()> {
    let wanted = entries(fs, at)?;
    for entry in std::fs::read_dir(host)? {
        let entry = entry?;
        let name = entry.file_name();
        let keep = wanted.iter().find(|e| e.name == name.as_bytes());
        let t = entry.file_type()?;
        if keep.is_none_or(|e| !same_kind(e.kind, t)) {
            if t.is_dir() {
                std::fs::remove_dir_all(entry.path())?;
            } else {
                std::fs::remove_file(entry.path())?;
            }
        }
    }
    for e in wanted {
        let path = host.join(OsStr::from_bytes(&e.name));
        match e.kind {
            FileKind::Directory => {
                if !path.is_dir() {
                    std::fs::create_dir(&path)?;
                }
                write_into(fs, e.ino, &path, written)?;
            }
            FileKind::SymbolicLink => {
                let target = fs.readlink(e.ino).map_err(fs_err)?;
                let target = OsStr::from_bytes(&target);
                if std::fs::read_link(&path).ok().as_deref() != Some(Path::new(target)) {
                    if path.symlink_metadata().is_ok() {
                        std::fs::remove_file(&path)?;
                    }
                    std::os::unix::fs::symlink(target, &path)?;
                }
            }
            FileKind::RegularFile => {
                if let Some(first) = written.get(&e.ino) {
                    let same = match (std::fs::metadata(first), path.symlink_metadata()) {
                        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
                        _ => false,
                    };
                    if !same {
                        if path.symlink_metadata().is_ok() {
                            std::fs::remove_file(&path)?;
                        }
                        std::fs::hard_link(first, &path)?;
                    }
                    continue;
                }
                let st = fs.stat(e.ino).map_err(fs_err)?;
                let size = usize::try_from(st.size).map_err(io::Error::other)?;
                let mut data = vec![0; size];
                let n = fs.read(e.ino, 0, &mut data).map_err(fs_err)?;
                data.truncate(n);
                let linked = path
                    .symlink_metadata()
                    .is_ok_and(|m| m.nlink() > 1 && !written.values().any(|p| p == &path));
                if linked || std::fs::read(&path).ok().as_deref() != Some(&data[..]) {
                    if linked {
                        // a host hard link the guest broke: do not write through it
                        std::fs::remove_file(&path)?;
                    }
                    std::fs::write(&path, &data)?;
                    let mtime = UNIX_EPOCH + std::time::Duration::from_nanos(st.mtim);
                    std::fs::File::options()
                        .write(true)
                        .open(&path)?
                        .set_times(std::fs::FileTimes::new().set_modified(mtime))?;
                }
                if st.nlink > 1 {
                    written.insert(e.ino, path);
                }
            }
            FileKind::CharacterDevice
            | FileKind::BlockDevice
            | FileKind::Socket
            | FileKind::Other => {}
        }
    }
    Ok(())
}
