//! Host directories shared live over virtio-9p (`basalt run --dir`, the
//! default in a VM): a [`FileSystem`] whose every call is a 9P2000.L
//! request to QEMU, so the program's writes land in the host directory as
//! they happen, as under wasmtime.
//!
//! Inodes are the server's qid paths (the host's inode numbers). Each
//! inode the program has reached keeps a walked fid, refreshed on every
//! lookup so that it names a path that still exists; an inode with
//! descriptors open on it also keeps an opened fid, which is what keeps
//! an unlinked file readable, as on Linux.

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::vec::Vec;

use basalt_drivers::ninep::{self, Client, NinePError, SetTime, mode, open_flags};
use basalt_drivers::virtio::Transport;
use basalt_drivers::virtio::p9::Virtio9p;
use basalt_wasi::services::{DirEntry, FileKind, FileStat, FileSystem, FsError, Inode, TimeChange};
use spin::Mutex;

use crate::kprintln;

/// How long one 9P request may take before the share counts as hung.
pub const REQUEST_TIMEOUT_NS: u64 = 30_000_000_000;

/// Nodes kept before those without descriptors are forgotten (each holds
/// a fid in QEMU).
const MAX_NODES: usize = 32_768;

/// Linux `errno` numbers a 9P server answers with.
mod linux {
    pub const EPERM: u32 = 1;
    pub const ENOENT: u32 = 2;
    pub const EIO: u32 = 5;
    pub const EBADF: u32 = 9;
    pub const EACCES: u32 = 13;
    pub const EBUSY: u32 = 16;
    pub const EEXIST: u32 = 17;
    pub const EXDEV: u32 = 18;
    pub const ENOTDIR: u32 = 20;
    pub const EISDIR: u32 = 21;
    pub const EINVAL: u32 = 22;
    pub const EFBIG: u32 = 27;
    pub const ENOSPC: u32 = 28;
    pub const EROFS: u32 = 30;
    pub const EMLINK: u32 = 31;
    pub const ENAMETOOLONG: u32 = 36;
    pub const ENOTEMPTY: u32 = 39;
    pub const ELOOP: u32 = 40;
    pub const EDQUOT: u32 = 122;
}

/// The [`FsError`] of a 9P failure.
fn fs_error(e: NinePError) -> FsError {
    match e {
        NinePError::Remote(errno) => match errno {
            linux::EPERM => FsError::NotPermitted,
            linux::ENOENT => FsError::NotFound,
            linux::EBADF => FsError::Stale,
            linux::EACCES => FsError::AccessDenied,
            linux::EBUSY => FsError::Busy,
            linux::EEXIST => FsError::Exists,
            linux::EXDEV => FsError::CrossDevice,
            linux::ENOTDIR => FsError::NotDirectory,
            linux::EISDIR => FsError::IsDirectory,
            linux::EINVAL => FsError::InvalidArgument,
            linux::EFBIG => FsError::FileTooBig,
            linux::ENOSPC | linux::EDQUOT => FsError::NoSpace,
            linux::EROFS => FsError::ReadOnly,
            linux::EMLINK => FsError::TooManyLinks,
            linux::ENAMETOOLONG => FsError::NameTooLong,
            linux::ENOTEMPTY => FsError::NotEmpty,
            // A symbolic link where the server was told not to follow one.
            linux::ELOOP => FsError::NotDirectory,
            linux::EIO => FsError::Io,
            _ => FsError::Io,
        },
        NinePError::TooBig => FsError::NameTooLong,
        other => {
            kprintln!("9p: {other}");
            FsError::Io
        }
    }
}

/// The kind of file `st_mode` describes.
fn file_kind(st_mode: u32) -> FileKind {
    match st_mode & mode::TYPE_MASK {
        mode::DIRECTORY => FileKind::Directory,
        mode::REGULAR => FileKind::RegularFile,
        mode::SYMLINK => FileKind::SymbolicLink,
        mode::CHARACTER_DEVICE => FileKind::CharacterDevice,
        mode::BLOCK_DEVICE => FileKind::BlockDevice,
        mode::SOCKET => FileKind::Socket,
        _ => FileKind::Other,
    }
}

/// `d_type` when the host file system does not say.
const DT_UNKNOWN: u8 = 0;

/// The kind of file a directory entry's `d_type` says.
fn dirent_kind(d_type: u8) -> FileKind {
    match d_type {
        4 => FileKind::Directory,
        8 => FileKind::RegularFile,
        10 => FileKind::SymbolicLink,
        2 => FileKind::CharacterDevice,
        6 => FileKind::BlockDevice,
        12 => FileKind::Socket,
        _ => FileKind::Other,
    }
}

fn nanos((sec, nsec): (u64, u64)) -> u64 {
    sec.saturating_mul(1_000_000_000).saturating_add(nsec)
}

fn set_time(t: TimeChange) -> SetTime {
    match t {
        TimeChange::Keep => SetTime::Keep,
        TimeChange::Now => SetTime::Now,
        TimeChange::At(ns) => SetTime::At(ns / 1_000_000_000, ns % 1_000_000_000),
    }
}

/// An opened fid of a node.
#[derive(Clone, Copy)]
struct Opened {
    fid: u32,
    writable: bool,
}

/// What the share knows of one inode.
struct Node {
    /// a walked (not opened) fid naming it
    fid: u32,
    /// an opened fid, while descriptors are open or after I/O
    opened: Option<Opened>,
    /// descriptors open on it
    refs: u32,
    /// a directory listing's place: (the cookie of the next entry, the
    /// 9P offset that reads it)
    cursor: Option<(u64, u64)>,
}

struct State<T: Transport> {
    client: Client<Virtio9p<T>>,
    nodes: BTreeMap<Inode, Node>,
    root: Inode,
}

/// A host directory shared over one virtio-9p device.
pub struct LiveShare<T: Transport> {
    dev: u64,
    state: Mutex<State<T>>,
}

impl<T: Transport> LiveShare<T> {
    /// Opens a session on `device` and attaches to its export; `dev` is
    /// the device number the program sees in `filestat`.
    pub fn new(device: Virtio9p<T>, dev: u64) -> Result<LiveShare<T>, NinePError> {
        let mut client = Client::connect(device)?;
        let (fid, qid) = client.attach(0)?;
        let mut nodes = BTreeMap::new();
        nodes.insert(
            qid.path,
            Node {
                fid,
                opened: None,
                refs: 1,
                cursor: None,
            },
        );
        Ok(LiveShare {
            dev,
            state: Mutex::new(State {
                client,
                nodes,
                root: qid.path,
            }),
        })
    }

    /// The negotiated 9P message size, for the log.
    pub fn msize(&self) -> usize {
        self.state.lock().client.msize()
    }
}

impl<T: Transport> State<T> {
    fn node(&self, ino: Inode) -> Result<&Node, FsError> {
        self.nodes.get(&ino).ok_or(FsError::Stale)
    }

    fn fid(&self, ino: Inode) -> Result<u32, FsError> {
        Ok(self.node(ino)?.fid)
    }

    /// The fid to ask attributes of: the opened one if any (it outlives
    /// an unlink), else the walked one.
    fn stat_fid(&self, ino: Inode) -> Result<u32, FsError> {
        let n = self.node(ino)?;
        Ok(n.opened.map_or(n.fid, |o| o.fid))
    }

    /// Records that `fid` names `ino` (fresh from a walk): the node's
    /// walked fid is replaced, so it follows the newest name.
    fn adopt(&mut self, ino: Inode, fid: u32, keep: &[Inode]) {
        if let Some(n) = self.nodes.get_mut(&ino) {
            let old = core::mem::replace(&mut n.fid, fid);
            let _ = self.client.clunk(old);
            return;
        }
        if self.nodes.len() >= MAX_NODES {
            self.forget_idle(keep);
        }
        self.nodes.insert(
            ino,
            Node {
                fid,
                opened: None,
                refs: 0,
                cursor: None,
            },
        );
    }

    /// Forgets every node without descriptors, except the root and `keep`.
    fn forget_idle(&mut self, keep: &[Inode]) {
        let idle: Vec<Inode> = self
            .nodes
            .iter()
            .filter(|(ino, n)| n.refs == 0 && **ino != self.root && !keep.contains(ino))
            .map(|(ino, _)| *ino)
            .collect();
        for ino in idle {
            if let Some(n) = self.nodes.remove(&ino) {
                let _ = self.client.clunk(n.fid);
                if let Some(o) = n.opened {
                    let _ = self.client.clunk(o.fid);
                }
            }
        }
    }

    /// Walks `dir` → `name` and records the result.
    fn lookup(&mut self, dir: Inode, name: &[u8]) -> Result<Inode, FsError> {
        let dfid = self.fid(dir)?;
        let (fid, qid) = self.client.walk(dfid, &[name]).map_err(fs_error)?;
        self.adopt(qid.path, fid, &[dir]);
        Ok(qid.path)
    }

    /// The kind of file entry `name` of `dir` is, without keeping a fid.
    fn kind_of(&mut self, dir: Inode, name: &[u8]) -> Result<FileKind, FsError> {
        let dfid = self.fid(dir)?;
        let (fid, _) = self.client.walk(dfid, &[name]).map_err(fs_error)?;
        let attr = self.client.getattr(fid);
        let _ = self.client.clunk(fid);
        Ok(file_kind(attr.map_err(fs_error)?.mode))
    }

    /// An opened fid of `ino`, opening one if needed; `write` wants it
    /// writable. Directories are opened read-only.
    fn opened(&mut self, ino: Inode, write: bool) -> Result<u32, FsError> {
        let node = self.node(ino)?;
        if let Some(o) = node.opened
            && (o.writable || !write)
        {
            return Ok(o.fid);
        }
        let walked = node.fid;
        let old = node.opened;
        let kind = file_kind(self.client.getattr(walked).map_err(fs_error)?.mode);
        let (fid, _) = self.client.walk(walked, &[]).map_err(fs_error)?;
        let result = match kind {
            FileKind::Directory if write => Err(NinePError::Remote(linux::EISDIR)),
            FileKind::Directory => self
                .client
                .lopen(fid, open_flags::READ_ONLY | open_flags::DIRECTORY)
                .map(|_| false),
            _ => match self.client.lopen(fid, open_flags::READ_WRITE) {
                Ok(_) => Ok(true),
                Err(NinePError::Remote(linux::EACCES | linux::EROFS)) if !write => {
                    self.client.lopen(fid, open_flags::READ_ONLY).map(|_| false)
                }
                Err(e) => Err(e),
            },
        };
        let writable = match result {
            Ok(w) => w,
            Err(e) => {
                let _ = self.client.clunk(fid);
                return Err(fs_error(e));
            }
        };
        if let Some(o) = old {
            let _ = self.client.clunk(o.fid);
        }
        if let Some(n) = self.nodes.get_mut(&ino) {
            n.opened = Some(Opened { fid, writable });
            n.cursor = None;
        }
        Ok(fid)
    }

    /// A clone of directory `dir`'s walked fid, for requests that turn
    /// their fid into something else (Tlcreate).
    fn clone_fid(&mut self, dir: Inode) -> Result<u32, FsError> {
        let dfid = self.fid(dir)?;
        Ok(self.client.walk(dfid, &[]).map_err(fs_error)?.0)
    }

    /// The host entries of directory `dir` from listing position `index`
    /// (0 = the first entry after `.` and `..`), at most `max`, each with
    /// its index + 1.
    fn host_entries(
        &mut self,
        dir: Inode,
        index: u64,
        max: usize,
    ) -> Result<Vec<(u64, ninep::DirEntry)>, FsError> {
        let fid = self.opened(dir, false)?;
        // A listing that goes on where the last call stopped resumes at
        // its 9P offset; any other starts over (offset 0 rewinds, so
        // entries made since are seen) and counts its way to `index`.
        let (mut at, mut offset) = match self.node(dir)?.cursor {
            Some((i, off)) if i == index && index > 0 => (i, off),
            _ => (0, 0),
        };
        let mut out = Vec::new();
        let mut scanned = 0u64;
        'reading: loop {
            let asked = offset;
            let batch = self.client.readdir(fid, offset).map_err(fs_error)?;
            if batch.is_empty() {
                break;
            }
            // A server whose offsets do not move on (or that never ends a
            // listing) would keep this loop going for ever: it is an I/O
            // error instead.
            if batch.last().is_some_and(|e| e.offset == asked) {
                return Err(FsError::Io);
            }
            for e in batch {
                scanned += 1;
                if scanned > MAX_LISTING {
                    return Err(FsError::Io);
                }
                offset = e.offset;
                if e.name == b"." || e.name == b".." {
                    continue;
                }
                at += 1;
                if at > index {
                    out.push((at, e));
                    if out.len() >= max {
                        break 'reading;
                    }
                }
            }
        }
        if let Some(n) = self.nodes.get_mut(&dir) {
            n.cursor = Some((at, offset));
        }
        Ok(out)
    }
}

/// The most entries one listing call reads from the server (a directory
/// of more is an I/O error rather than a loop without end).
const MAX_LISTING: u64 = 1 << 24;

impl<T: Transport + Send> FileSystem for LiveShare<T> {
    fn root(&self) -> Inode {
        self.state.lock().root
    }

    fn lookup(&self, dir: Inode, name: &[u8]) -> Result<Inode, FsError> {
        self.state.lock().lookup(dir, name)
    }

    fn stat(&self, node: Inode) -> Result<FileStat, FsError> {
        let mut s = self.state.lock();
        let fid = s.stat_fid(node)?;
        let a = s.client.getattr(fid).map_err(fs_error)?;
        Ok(FileStat {
            dev: self.dev,
            ino: a.qid.path,
            kind: file_kind(a.mode),
            nlink: a.nlink,
            size: a.size,
            atim: nanos(a.atime),
            mtim: nanos(a.mtime),
            ctim: nanos(a.ctime),
        })
    }

    fn create_file(&self, dir: Inode, name: &[u8]) -> Result<Inode, FsError> {
        let mut s = self.state.lock();
        let fid = s.clone_fid(dir)?;
        // O_EXCL: a name that is taken is EEXIST, as the trait says.
        const EXCLUSIVE: u32 = 0o200;
        let created = s
            .client
            .lcreate(fid, name, open_flags::READ_WRITE | EXCLUSIVE, 0o644, 0);
        let qid = match created {
            Ok(q) => q,
            Err(e) => {
                let _ = s.client.clunk(fid);
                return Err(fs_error(e));
            }
        };
        let ino = s.lookup(dir, name)?;
        if ino != qid.path {
            // Replaced on the host between the two requests.
            let _ = s.client.clunk(fid);
            return Ok(ino);
        }
        match s.nodes.get_mut(&ino) {
            Some(n) if n.opened.is_none() => {
                n.opened = Some(Opened {
                    fid,
                    writable: true,
                });
            }
            _ => {
                let _ = s.client.clunk(fid);
            }
        }
        Ok(ino)
    }

    fn create_directory(&self, dir: Inode, name: &[u8]) -> Result<Inode, FsError> {
        let mut s = self.state.lock();
        let dfid = s.fid(dir)?;
        s.client.mkdir(dfid, name, 0o755, 0).map_err(fs_error)?;
        s.lookup(dir, name)
    }

    fn symlink(&self, dir: Inode, name: &[u8], target: &[u8]) -> Result<Inode, FsError> {
        let mut s = self.state.lock();
        let dfid = s.fid(dir)?;
        s.client.symlink(dfid, name, target, 0).map_err(fs_error)?;
        s.lookup(dir, name)
    }

    fn readlink(&self, node: Inode) -> Result<Vec<u8>, FsError> {
        let mut s = self.state.lock();
        let fid = s.fid(node)?;
        s.client.readlink(fid).map_err(|e| match fs_error(e) {
            // Linux readlink(2) on a non-link
            FsError::NotFound => FsError::NotFound,
            FsError::Io => FsError::InvalidArgument,
            other => other,
        })
    }

    fn link(&self, node: Inode, dir: Inode, name: &[u8]) -> Result<(), FsError> {
        let mut s = self.state.lock();
        let fid = s.fid(node)?;
        let dfid = s.fid(dir)?;
        s.client.link(dfid, fid, name).map_err(fs_error)
    }

    fn unlink(&self, dir: Inode, name: &[u8]) -> Result<(), FsError> {
        let mut s = self.state.lock();
        let dfid = s.fid(dir)?;
        s.client.unlinkat(dfid, name, 0).map_err(fs_error)
    }

    fn remove_directory(&self, dir: Inode, name: &[u8]) -> Result<(), FsError> {
        let mut s = self.state.lock();
        let dfid = s.fid(dir)?;
        s.client
            .unlinkat(dfid, name, ninep::REMOVE_DIRECTORY)
            .map_err(fs_error)
    }

    fn rename(
        &self,
        dir: Inode,
        name: &[u8],
        to_dir: Inode,
        to_name: &[u8],
    ) -> Result<(), FsError> {
        let mut s = self.state.lock();
        let from = s.fid(dir)?;
        let to = s.fid(to_dir)?;
        s.client.renameat(from, name, to, to_name).map_err(fs_error)
    }

    fn read(&self, node: Inode, offset: u64, buf: &mut [u8]) -> Result<usize, FsError> {
        let mut s = self.state.lock();
        let fid = s.opened(node, false)?;
        let mut done = 0;
        while done < buf.len() {
            let at = offset.saturating_add(done as u64);
            let n = s.client.read(fid, at, &mut buf[done..]).map_err(fs_error)?;
            if n == 0 {
                break;
            }
            done += n;
        }
        Ok(done)
    }

    fn write(&self, node: Inode, offset: u64, data: &[u8]) -> Result<usize, FsError> {
        let mut s = self.state.lock();
        let fid = s.opened(node, true)?;
        let mut done = 0;
        while done < data.len() {
            let at = offset.saturating_add(done as u64);
            let n = s.client.write(fid, at, &data[done..]).map_err(fs_error)?;
            if n == 0 {
                return if done == 0 {
                    Err(FsError::NoSpace)
                } else {
                    Ok(done)
                };
            }
            done += n;
        }
        Ok(done)
    }

    fn set_size(&self, node: Inode, size: u64) -> Result<(), FsError> {
        let mut s = self.state.lock();
        let fid = s.stat_fid(node)?;
        s.client
            .setattr(fid, Some(size), SetTime::Keep, SetTime::Keep)
            .map_err(fs_error)
    }

    fn set_times(&self, node: Inode, atim: TimeChange, mtim: TimeChange) -> Result<(), FsError> {
        let mut s = self.state.lock();
        let fid = s.stat_fid(node)?;
        s.client
            .setattr(fid, None, set_time(atim), set_time(mtim))
            .map_err(fs_error)
    }

    fn read_dir(&self, dir: Inode, cookie: u64, max: usize) -> Result<Vec<DirEntry>, FsError> {
        let mut s = self.state.lock();
        let mut out = Vec::new();
        // Cookies as wasmtime numbers them: 0 `.`, 1 `..`, then the host's
        // entries in its order, counted.
        if cookie == 0 && out.len() < max {
            out.push(DirEntry {
                next: 1,
                ino: dir,
                kind: FileKind::Directory,
                name: b".".to_vec(),
            });
        }
        if cookie <= 1 && out.len() < max {
            let dfid = s.fid(dir)?;
            let (fid, qid) = s.client.walk(dfid, &[b".."]).map_err(fs_error)?;
            let _ = s.client.clunk(fid);
            out.push(DirEntry {
                next: 2,
                ino: qid.path,
                kind: FileKind::Directory,
                name: b"..".to_vec(),
            });
        }
        if out.len() < max {
            let want = max - out.len();
            for (index, e) in s.host_entries(dir, cookie.saturating_sub(2), want)? {
                let kind = match e.kind {
                    // Some host file systems leave `d_type` unknown: ask.
                    DT_UNKNOWN => s.kind_of(dir, &e.name).unwrap_or(FileKind::Other),
                    t => dirent_kind(t),
                };
                out.push(DirEntry {
                    next: index + 2,
                    ino: e.qid.path,
                    kind,
                    name: e.name,
                });
            }
        }
        Ok(out)
    }

    fn sync(&self, node: Inode) -> Result<(), FsError> {
        let mut s = self.state.lock();
        let fid = match s.opened(node, false) {
            Ok(f) => f,
            // nothing to flush in what cannot be opened (a symbolic link)
            Err(_) => return Ok(()),
        };
        s.client.fsync(fid, false).map_err(fs_error)
    }

    fn retain(&self, node: Inode) {
        let mut s = self.state.lock();
        let Some(n) = s.nodes.get_mut(&node) else {
            return;
        };
        n.refs += 1;
        // Open it now, so it stays readable if its last name goes.
        if n.opened.is_none() {
            let _ = s.opened(node, false);
        }
    }

    fn release(&self, node: Inode) {
        let mut s = self.state.lock();
        let Some(n) = s.nodes.get_mut(&node) else {
            return;
        };
        n.refs = n.refs.saturating_sub(1);
        if n.refs == 0
            && let Some(o) = n.opened.take()
        {
            n.cursor = None;
            let _ = s.client.clunk(o.fid);
        }
    }
}

/// The transport live shares run on (virtio-mmio or virtio-PCI).
type DeviceTransport = basalt_drivers::virtio::VirtioTransport;

/// Why a live share could not be opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShareError {
    /// no virtio-9p device has the mount tag the manifest names
    NoDevice {
        /// the tag wanted
        tag: String,
        /// the tags of the devices found
        found: Vec<String>,
    },
    /// the 9P session failed (the device's tag, the failure)
    Protocol(String, NinePError),
}

impl core::fmt::Display for ShareError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ShareError::NoDevice { tag, found } => write!(
                f,
                "no virtio-9p device has mount tag `{tag}` (found: {}); was the VM started by `basalt run --dir`, on a QEMU with 9P support (virtfs)?",
                if found.is_empty() {
                    String::from("none")
                } else {
                    found.join(", ")
                }
            ),
            ShareError::Protocol(tag, e) => write!(f, "9P share `{tag}`: {e}"),
        }
    }
}

/// Devices brought up and not yet opened as a share.
static READY: Mutex<Vec<Virtio9p<DeviceTransport>>> = Mutex::new(Vec::new());
static CLAIMED: spin::Once<Vec<String>> = spin::Once::new();

/// Claims and brings up every virtio-9p device, once; returns the tags of
/// all that came up.
fn bring_up() -> &'static [String] {
    CLAIMED.call_once(|| {
        let mut tags = Vec::new();
        for (transport, at) in crate::devices::claim_virtio(basalt_drivers::virtio::p9::DEVICE_TYPE)
        {
            match Virtio9p::new(
                transport,
                &mut crate::mem::FrameDma,
                crate::time::monotonic_ns,
                REQUEST_TIMEOUT_NS,
            ) {
                Ok(d) => {
                    let tag = String::from_utf8_lossy(d.tag()).into_owned();
                    kprintln!(
                        "virtio-9p: {} device at {at}: mount tag `{tag}`",
                        at.transport()
                    );
                    tags.push(tag);
                    READY.lock().push(d);
                }
                Err(e) => kprintln!("virtio-9p: {} device at {at}: {e}", at.transport()),
            }
        }
        tags
    })
}

/// Opens the live share of the virtio-9p device whose mount tag is `tag`,
/// as file system `dev`.
pub fn open(tag: &str, dev: u64) -> Result<alloc::sync::Arc<dyn FileSystem>, ShareError> {
    let tags = bring_up();
    let device = {
        let mut ready = READY.lock();
        let at = ready.iter().position(|d| d.tag() == tag.as_bytes());
        at.map(|i| ready.swap_remove(i))
    };
    let device = device.ok_or_else(|| ShareError::NoDevice {
        tag: String::from(tag),
        found: tags.to_vec(),
    })?;
    let share =
        LiveShare::new(device, dev).map_err(|e| ShareError::Protocol(String::from(tag), e))?;
    kprintln!("9p: share `{tag}` attached (msize {})", share.msize());
    Ok(alloc::sync::Arc::new(share))
}
