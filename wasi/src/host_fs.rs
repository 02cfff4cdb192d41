//! A live host directory as a [`FileSystem`], for `basalt run --hosted
//! --dir`: every call goes to the host as it happens, as in a VM (9P) and
//! under wasmtime. Nothing is copied in or written back, so what other
//! processes change in the directory during the run is seen by the program
//! and never undone.
//!
//! Each inode the program reaches is held as an `O_PATH | O_NOFOLLOW`
//! descriptor of the host file, opened relative to its directory's
//! descriptor with the one name the WASI layer passes (never a path: the
//! layer splits paths, follows symbolic links itself and keeps them below
//! the preopen, [`crate::path`]); names that are empty, `.`, `..` or hold
//! a `/` are refused here too. So nothing outside the shared directory can
//! be reached, whatever the program or another process does to the names
//! meanwhile. Data is read and written through a descriptor reopened from
//! `/proc/self/fd` (the same host file, even if renamed or unlinked).
//!
//! Descriptors are bounded: inodes no WASI descriptor holds are closed,
//! least recently used first, beyond [`MAX_CACHED`]; a later lookup opens
//! them again under a new inode number.

use alloc::vec::Vec;
use std::collections::HashMap;
use std::ffi::CString;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::Path;
use std::sync::Mutex;

use rustix::fs::{
    AtFlags, CWD, FileType, Mode, OFlags, RawDir, SeekFrom, Timespec, Timestamps, UTIME_NOW,
    UTIME_OMIT,
};
use rustix::io::Errno as HostErrno;

use crate::services::{DirEntry, FileKind, FileStat, FileSystem, FsError, Inode, TimeChange};

/// How many inodes no descriptor holds are kept open.
pub const MAX_CACHED: usize = 512;
/// The root's inode number.
const ROOT: Inode = 1;
/// Directory cookies: 1 is after `.`, 2 after `..`; a host entry's cookie
/// is its `d_off` plus this.
const COOKIE_BIAS: u64 = 3;

/// One host file the program reached.
struct Node {
    /// `O_PATH | O_NOFOLLOW`: names the file, reads nothing
    path: OwnedFd,
    /// (st_dev, st_ino)
    host: (u64, u64),
    kind: FileKind,
    /// where it was last seen: (directory, name); for calls that need a
    /// name (the times of a symbolic link)
    seen_at: Option<(Inode, Vec<u8>)>,
    /// reopened for reading (and writing, when `.1`)
    io: Option<(OwnedFd, bool)>,
    /// WASI descriptors holding it
    retained: u32,
    /// when last used (a counter)
    used: u64,
}

struct Table {
    nodes: HashMap<Inode, Node>,
    by_host: HashMap<(u64, u64), Inode>,
    next: Inode,
    clock: u64,
}

/// A host directory, live.
pub struct HostFs {
    table: Mutex<Table>,
}

fn fs_error(e: HostErrno) -> FsError {
    match e {
        HostErrno::NOENT => FsError::NotFound,
        HostErrno::EXIST => FsError::Exists,
        HostErrno::NOTDIR => FsError::NotDirectory,
        HostErrno::ISDIR => FsError::IsDirectory,
        HostErrno::NOTEMPTY => FsError::NotEmpty,
        HostErrno::NAMETOOLONG => FsError::NameTooLong,
        HostErrno::NOSPC | HostErrno::DQUOT => FsError::NoSpace,
        HostErrno::FBIG => FsError::FileTooBig,
        HostErrno::INVAL => FsError::InvalidArgument,
        HostErrno::PERM => FsError::NotPermitted,
        HostErrno::BUSY => FsError::Busy,
        HostErrno::XDEV => FsError::CrossDevice,
        HostErrno::MLINK => FsError::TooManyLinks,
        HostErrno::ROFS => FsError::ReadOnly,
        HostErrno::ACCESS => FsError::AccessDenied,
        HostErrno::BADF | HostErrno::STALE => FsError::Stale,
        _ => FsError::Io,
    }
}

fn kind_of(mode: u32) -> FileKind {
    match FileType::from_raw_mode(mode) {
        FileType::RegularFile => FileKind::RegularFile,
        FileType::Directory => FileKind::Directory,
        FileType::Symlink => FileKind::SymbolicLink,
        FileType::CharacterDevice => FileKind::CharacterDevice,
        FileType::BlockDevice => FileKind::BlockDevice,
        FileType::Socket => FileKind::Socket,
        _ => FileKind::Other,
    }
}

/// One name of a directory, as the WASI layer passes it.
fn component(name: &[u8]) -> Result<CString, FsError> {
    if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') {
        return Err(FsError::InvalidArgument);
    }
    CString::new(name).map_err(|_| FsError::InvalidArgument)
}

/// `/proc/self/fd/N` for `fd`: the host file itself, whatever its name now.
fn proc_path(fd: &OwnedFd) -> String {
    format!("/proc/self/fd/{}", fd.as_raw_fd())
}

fn nanos(sec: i64, nsec: i64) -> u64 {
    u64::try_from(sec)
        .unwrap_or(0)
        .saturating_mul(1_000_000_000)
        .saturating_add(u64::try_from(nsec).unwrap_or(0))
}

fn timespec(change: TimeChange) -> Timespec {
    match change {
        TimeChange::Keep => Timespec {
            tv_sec: 0,
            tv_nsec: UTIME_OMIT,
        },
        TimeChange::Now => Timespec {
            tv_sec: 0,
            tv_nsec: UTIME_NOW,
        },
        TimeChange::At(ns) => Timespec {
            tv_sec: i64::try_from(ns / 1_000_000_000).unwrap_or(i64::MAX),
            tv_nsec: (ns % 1_000_000_000) as _,
        },
    }
}

impl HostFs {
    /// The host directory `root` (symbolic links in the path itself are
    /// followed, as the user named it), live.
    pub fn open(root: &Path) -> std::io::Result<HostFs> {
        let fd = rustix::fs::open(
            root,
            OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let st = rustix::fs::fstat(&fd)?;
        let mut nodes = HashMap::new();
        let host = (st.st_dev, st.st_ino);
        nodes.insert(
            ROOT,
            Node {
                path: fd,
                host,
                kind: FileKind::Directory,
                seen_at: None,
                io: None,
                // the preopen: never closed
                retained: 1,
                used: 0,
            },
        );
        let mut by_host = HashMap::new();
        by_host.insert(host, ROOT);
        Ok(HostFs {
            table: Mutex::new(Table {
                nodes,
                by_host,
                next: ROOT + 1,
                clock: 0,
            }),
        })
    }

    fn table(&self) -> Result<std::sync::MutexGuard<'_, Table>, FsError> {
        self.table.lock().map_err(|_| FsError::Io)
    }
}

impl Table {
    fn node(&mut self, ino: Inode) -> Result<&mut Node, FsError> {
        self.clock += 1;
        let now = self.clock;
        let node = self.nodes.get_mut(&ino).ok_or(FsError::Stale)?;
        node.used = now;
        Ok(node)
    }

    fn dir(&mut self, ino: Inode) -> Result<&mut Node, FsError> {
        let node = self.node(ino)?;
        if node.kind != FileKind::Directory {
            return Err(FsError::NotDirectory);
        }
        Ok(node)
    }

    /// Adds (or finds) the host file `fd` names, seen as `name` in `dir`.
    fn insert(&mut self, fd: OwnedFd, dir: Inode, name: &[u8]) -> Result<Inode, FsError> {
        let st = rustix::fs::fstat(&fd).map_err(fs_error)?;
        let host = (st.st_dev, st.st_ino);
        self.clock += 1;
        let now = self.clock;
        if let Some(&ino) = self.by_host.get(&host)
            && let Some(node) = self.nodes.get_mut(&ino)
        {
            node.used = now;
            node.seen_at = Some((dir, name.to_vec()));
            return Ok(ino);
        }
        let ino = self.next;
        self.next += 1;
        self.nodes.insert(
            ino,
            Node {
                path: fd,
                host,
                kind: kind_of(st.st_mode),
                seen_at: Some((dir, name.to_vec())),
                io: None,
                retained: 0,
                used: now,
            },
        );
        self.by_host.insert(host, ino);
        self.evict();
        Ok(ino)
    }

    /// Closes the least recently used inodes no descriptor holds, down to
    /// three quarters of [`MAX_CACHED`], once there are more.
    fn evict(&mut self) {
        let idle = self.nodes.values().filter(|n| n.retained == 0).count();
        if idle <= MAX_CACHED {
            return;
        }
        let mut order: Vec<(u64, Inode)> = self
            .nodes
            .iter()
            .filter(|(_, n)| n.retained == 0)
            .map(|(i, n)| (n.used, *i))
            .collect();
        order.sort_unstable();
        for (_, ino) in order.into_iter().take(idle - MAX_CACHED * 3 / 4) {
            if let Some(node) = self.nodes.remove(&ino)
                && self.by_host.get(&node.host) == Some(&ino)
            {
                self.by_host.remove(&node.host);
            }
        }
    }

    /// The descriptor for reading (and, with `write`, writing) regular
    /// file `ino`.
    fn io(&mut self, ino: Inode, write: bool) -> Result<&OwnedFd, FsError> {
        let node = self.node(ino)?;
        match node.kind {
            FileKind::RegularFile => {}
            FileKind::Directory => return Err(FsError::IsDirectory),
            _ => return Err(FsError::NotPermitted),
        }
        let usable = matches!(node.io, Some((_, w)) if w || !write);
        if !usable {
            let path = proc_path(&node.path);
            let rw = rustix::fs::open(path.as_str(), OFlags::RDWR | OFlags::CLOEXEC, Mode::empty());
            node.io = Some(match rw {
                Ok(fd) => (fd, true),
                Err(e) if write => return Err(fs_error(e)),
                Err(_) => (
                    rustix::fs::open(
                        path.as_str(),
                        OFlags::RDONLY | OFlags::CLOEXEC,
                        Mode::empty(),
                    )
                    .map_err(fs_error)?,
                    false,
                ),
            });
        }
        match &node.io {
            Some((fd, _)) => Ok(fd),
            None => Err(FsError::Io),
        }
    }
}

impl FileSystem for HostFs {
    fn root(&self) -> Inode {
        ROOT
    }

    fn lookup(&self, dir: Inode, name: &[u8]) -> Result<Inode, FsError> {
        let c = component(name)?;
        let mut t = self.table()?;
        let fd = rustix::fs::openat(
            &t.dir(dir)?.path,
            c.as_c_str(),
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(fs_error)?;
        t.insert(fd, dir, name)
    }

    fn stat(&self, node: Inode) -> Result<FileStat, FsError> {
        let mut t = self.table()?;
        let n = t.node(node)?;
        let st = rustix::fs::fstat(&n.path).map_err(fs_error)?;
        Ok(FileStat {
            dev: st.st_dev,
            ino: st.st_ino,
            kind: kind_of(st.st_mode),
            // u64 on x86-64, u32 on AArch64
            #[allow(clippy::useless_conversion)]
            nlink: u64::from(st.st_nlink),
            size: u64::try_from(st.st_size).unwrap_or(0),
            atim: nanos(st.st_atime, st.st_atime_nsec as i64),
            mtim: nanos(st.st_mtime, st.st_mtime_nsec as i64),
            ctim: nanos(st.st_ctime, st.st_ctime_nsec as i64),
        })
    }

    fn create_file(&self, dir: Inode, name: &[u8]) -> Result<Inode, FsError> {
        let c = component(name)?;
        let mut t = self.table()?;
        let created = rustix::fs::openat(
            &t.dir(dir)?.path,
            c.as_c_str(),
            OFlags::CREATE | OFlags::EXCL | OFlags::WRONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(0o666),
        )
        .map_err(fs_error)?;
        drop(created);
        let fd = rustix::fs::openat(
            &t.dir(dir)?.path,
            c.as_c_str(),
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(fs_error)?;
        t.insert(fd, dir, name)
    }

    fn create_directory(&self, dir: Inode, name: &[u8]) -> Result<Inode, FsError> {
        let c = component(name)?;
        let mut t = self.table()?;
        rustix::fs::mkdirat(&t.dir(dir)?.path, c.as_c_str(), Mode::from_raw_mode(0o777))
            .map_err(fs_error)?;
        drop(t);
        self.lookup(dir, name)
    }

    fn symlink(&self, dir: Inode, name: &[u8], target: &[u8]) -> Result<Inode, FsError> {
        let c = component(name)?;
        let target = CString::new(target).map_err(|_| FsError::InvalidArgument)?;
        let mut t = self.table()?;
        rustix::fs::symlinkat(target.as_c_str(), &t.dir(dir)?.path, c.as_c_str())
            .map_err(fs_error)?;
        drop(t);
        self.lookup(dir, name)
    }

    fn readlink(&self, node: Inode) -> Result<Vec<u8>, FsError> {
        let mut t = self.table()?;
        let n = t.node(node)?;
        if n.kind != FileKind::SymbolicLink {
            return Err(FsError::InvalidArgument);
        }
        let target = rustix::fs::readlinkat(&n.path, c"", Vec::new()).map_err(fs_error)?;
        Ok(target.into_bytes())
    }

    fn link(&self, node: Inode, dir: Inode, name: &[u8]) -> Result<(), FsError> {
        let c = component(name)?;
        let mut t = self.table()?;
        let n = t.node(node)?;
        if n.kind == FileKind::Directory {
            return Err(FsError::NotPermitted);
        }
        // Through the descriptor's /proc link: `AT_EMPTY_PATH` would need
        // CAP_DAC_READ_SEARCH.
        let source = proc_path(&n.path);
        let dir_fd = t.dir(dir)?.path.as_fd();
        rustix::fs::linkat(
            CWD,
            source.as_str(),
            dir_fd,
            c.as_c_str(),
            AtFlags::SYMLINK_FOLLOW,
        )
        .map_err(fs_error)
    }

    fn unlink(&self, dir: Inode, name: &[u8]) -> Result<(), FsError> {
        let c = component(name)?;
        let mut t = self.table()?;
        rustix::fs::unlinkat(&t.dir(dir)?.path, c.as_c_str(), AtFlags::empty()).map_err(fs_error)
    }

    fn remove_directory(&self, dir: Inode, name: &[u8]) -> Result<(), FsError> {
        let c = component(name)?;
        let mut t = self.table()?;
        rustix::fs::unlinkat(&t.dir(dir)?.path, c.as_c_str(), AtFlags::REMOVEDIR).map_err(fs_error)
    }

    fn rename(
        &self,
        dir: Inode,
        name: &[u8],
        to_dir: Inode,
        to_name: &[u8],
    ) -> Result<(), FsError> {
        let (from, to) = (component(name)?, component(to_name)?);
        let mut t = self.table()?;
        t.dir(dir)?;
        t.dir(to_dir)?;
        let (a, b) = match (t.nodes.get(&dir), t.nodes.get(&to_dir)) {
            (Some(a), Some(b)) => (a.path.as_fd(), b.path.as_fd()),
            _ => return Err(FsError::Stale),
        };
        rustix::fs::renameat(a, from.as_c_str(), b, to.as_c_str()).map_err(fs_error)
    }

    fn read(&self, node: Inode, offset: u64, buf: &mut [u8]) -> Result<usize, FsError> {
        let mut t = self.table()?;
        let fd = t.io(node, false)?;
        rustix::io::pread(fd, buf, offset).map_err(fs_error)
    }

    fn write(&self, node: Inode, offset: u64, data: &[u8]) -> Result<usize, FsError> {
        let mut t = self.table()?;
        let fd = t.io(node, true)?;
        rustix::io::pwrite(fd, data, offset).map_err(fs_error)
    }

    fn set_size(&self, node: Inode, size: u64) -> Result<(), FsError> {
        let mut t = self.table()?;
        let fd = t.io(node, true)?;
        rustix::fs::ftruncate(fd, size).map_err(fs_error)
    }

    fn set_times(&self, node: Inode, atim: TimeChange, mtim: TimeChange) -> Result<(), FsError> {
        let times = Timestamps {
            last_access: timespec(atim),
            last_modification: timespec(mtim),
        };
        let mut t = self.table()?;
        let kind = t.node(node)?.kind;
        match kind {
            FileKind::RegularFile => {
                let fd = t.io(node, false)?;
                rustix::fs::futimens(fd, &times).map_err(fs_error)
            }
            FileKind::Directory => {
                let dir = rustix::fs::openat(
                    &t.node(node)?.path,
                    c".",
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(fs_error)?;
                rustix::fs::futimens(&dir, &times).map_err(fs_error)
            }
            _ => {
                // By name in its directory, checked to still name this file.
                let (host, seen_at) = {
                    let n = t.node(node)?;
                    (n.host, n.seen_at.clone())
                };
                let (dir, name) = seen_at.ok_or(FsError::NotPermitted)?;
                let c = component(&name)?;
                let parent = &t.dir(dir)?.path;
                let st = rustix::fs::statat(parent, c.as_c_str(), AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(fs_error)?;
                if (st.st_dev, st.st_ino) != host {
                    return Err(FsError::Stale);
                }
                rustix::fs::utimensat(parent, c.as_c_str(), &times, AtFlags::SYMLINK_NOFOLLOW)
                    .map_err(fs_error)
            }
        }
    }

    fn read_dir(&self, dir: Inode, cookie: u64, max: usize) -> Result<Vec<DirEntry>, FsError> {
        let mut t = self.table()?;
        let node = t.dir(dir)?;
        let st = rustix::fs::fstat(&node.path).map_err(fs_error)?;
        let mut out = Vec::new();
        for (c, name) in [(0u64, &b"."[..]), (1, b"..")] {
            if cookie <= c && out.len() < max {
                out.push(DirEntry {
                    next: c + 1,
                    ino: st.st_ino,
                    kind: FileKind::Directory,
                    name: name.to_vec(),
                });
            }
        }
        if out.len() >= max {
            return Ok(out);
        }
        let reader = rustix::fs::openat(
            &node.path,
            c".",
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(fs_error)?;
        let start = cookie.saturating_sub(COOKIE_BIAS);
        if start > 0 {
            match rustix::fs::seek(&reader, SeekFrom::Start(start)) {
                Ok(_) => {}
                // a cookie past the last entry (beyond any offset the host
                // gives): nothing more, as wasmtime answers
                Err(rustix::io::Errno::INVAL) => return Ok(out),
                Err(e) => return Err(fs_error(e)),
            }
        }
        let mut buf = Vec::with_capacity(16 * 1024);
        buf.resize(16 * 1024, MaybeUninit::<u8>::uninit());
        let mut entries = RawDir::new(&reader, &mut buf);
        while out.len() < max {
            let Some(entry) = entries.next() else { break };
            let entry = entry.map_err(fs_error)?;
            let name = entry.file_name().to_bytes();
            if name == b"." || name == b".." {
                continue;
            }
            let kind = match entry.file_type() {
                FileType::Unknown => {
                    rustix::fs::statat(&reader, entry.file_name(), AtFlags::SYMLINK_NOFOLLOW)
                        .map(|s| kind_of(s.st_mode))
                        .unwrap_or(FileKind::Other)
                }
                other => kind_of(other.as_raw_mode()),
            };
            out.push(DirEntry {
                next: entry.next_entry_cookie().saturating_add(COOKIE_BIAS),
                ino: entry.ino(),
                kind,
                name: name.to_vec(),
            });
        }
        Ok(out)
    }

    fn sync(&self, node: Inode) -> Result<(), FsError> {
        let mut t = self.table()?;
        let kind = t.node(node)?.kind;
        match kind {
            FileKind::RegularFile => {
                let fd = t.io(node, false)?;
                rustix::fs::fsync(fd).map_err(fs_error)
            }
            FileKind::Directory => {
                let dir = rustix::fs::openat(
                    &t.node(node)?.path,
                    c".",
                    OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
                    Mode::empty(),
                )
                .map_err(fs_error)?;
                rustix::fs::fsync(&dir).map_err(fs_error)
            }
            _ => Ok(()),
        }
    }

    fn retain(&self, node: Inode) {
        if let Ok(mut t) = self.table()
            && let Some(n) = t.nodes.get_mut(&node)
        {
            n.retained += 1;
        }
    }

    fn release(&self, node: Inode) {
        if let Ok(mut t) = self.table() {
            if let Some(n) = t.nodes.get_mut(&node) {
                n.retained = n.retained.saturating_sub(1);
            }
            t.evict();
        }
    }
}

#[cfg(test)]
#[path = "host_fs_tests.rs"]
mod tests;
