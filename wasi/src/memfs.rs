//! An in-memory file system: a tree of inodes (regular files, directories,
//! symbolic links) behind the [`FileSystem`] trait, for the kernel (filled
//! from the bundle) and for hosted runs (filled from a host directory).
//!
//! Hard links share one inode and count their names; an inode lives while a
//! name or a descriptor refers to it ([`FileSystem::retain`]). Timestamps
//! come from a clock callback. Directory listings resume from cookies that
//! stay valid while the directory changes: each entry is numbered when it
//! is added. Data, inodes and names are charged against a byte capacity,
//! so a guest asking for a huge file, or for millions of empty files or
//! long names, gets `ENOSPC` rather than exhausting the heap.

use alloc::boxed::Box;
use alloc::collections::BTreeMap;
use alloc::vec::Vec;

use spin::Mutex;

use crate::services::{DirEntry, FileKind, FileStat, FileSystem, FsError, Inode, TimeChange};

/// The longest name of one directory entry, in bytes.
pub const NAME_MAX: usize = 255;
/// The most hard links one inode may have.
pub const LINK_MAX: u64 = 65_000;
/// The largest file size (preview1 file sizes and offsets are signed 64-bit on Linux).
pub const FILE_SIZE_MAX: u64 = i64::MAX as u64;

/// The first cookie of a real entry (0 is `.`, 1 is `..`).
const FIRST_ENTRY: u64 = 2;
const ROOT: Inode = 1;

/// A source of wall-clock time: nanoseconds since the Unix epoch.
pub type Clock = Box<dyn Fn() -> u64 + Send + Sync>;

struct Dir {
    /// the directory holding this one (the root's is itself)
    parent: Inode,
    /// entries by cookie
    by_cookie: BTreeMap<u64, (Vec<u8>, Inode)>,
    /// cookies by name
    by_name: BTreeMap<Vec<u8>, u64>,
    next_cookie: u64,
    /// removed from its parent: nothing can be created in it any more
    removed: bool,
}

enum Data {
    File(Vec<u8>),
    Dir(Dir),
    Symlink(Vec<u8>),
}

struct Node {
    data: Data,
    /// names referring to it
    nlink: u64,
    /// descriptors referring to it
    open: u64,
    atim: u64,
    mtim: u64,
    ctim: u64,
}

impl Node {
    fn kind(&self) -> FileKind {
        match self.data {
            Data::File(_) => FileKind::RegularFile,
            Data::Dir(_) => FileKind::Directory,
            Data::Symlink(_) => FileKind::SymbolicLink,
        }
    }

    fn bytes(&self) -> u64 {
        match &self.data {
            Data::File(d) | Data::Symlink(d) => d.len() as u64,
            Data::Dir(_) => 0,
        }
    }
}

struct State {
    nodes: BTreeMap<Inode, Node>,
    next_ino: Inode,
    /// bytes charged: file data and link targets, plus [`NODE_COST`] per
    /// inode and [`entry_cost`] per directory entry
    used: u64,
    /// the most `used` may reach
    capacity: u64,
}

/// What one inode costs against the capacity besides its data (its
/// bookkeeping in memory), so a program cannot fill the heap with empty
/// files or directories.
pub const NODE_COST: u64 = 256;

/// What one directory entry costs against the capacity: its name (held
/// twice, by name and by cookie) and its bookkeeping.
pub fn entry_cost(name: &[u8]) -> u64 {
    2 * name.len() as u64 + 128
}

/// The in-memory file system.
pub struct MemFs {
    dev: u64,
    clock: Clock,
    state: Mutex<State>,
}

/// Checks one name a caller wants to create or look up.
fn check_name(name: &[u8]) -> Result<(), FsError> {
    if name.len() > NAME_MAX {
        return Err(FsError::NameTooLong);
    }
    if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') || name.contains(&0)
    {
        return Err(FsError::InvalidArgument);
    }
    Ok(())
}

impl State {
    fn node(&self, ino: Inode) -> Result<&Node, FsError> {
        self.nodes.get(&ino).ok_or(FsError::Stale)
    }

    fn node_mut(&mut self, ino: Inode) -> Result<&mut Node, FsError> {
        self.nodes.get_mut(&ino).ok_or(FsError::Stale)
    }

    fn dir(&self, ino: Inode) -> Result<&Dir, FsError> {
        match &self.node(ino)?.data {
            Data::Dir(d) => Ok(d),
            _ => Err(FsError::NotDirectory),
        }
    }

    fn dir_mut(&mut self, ino: Inode) -> Result<&mut Dir, FsError> {
        match &mut self.node_mut(ino)?.data {
            Data::Dir(d) => Ok(d),
            _ => Err(FsError::NotDirectory),
        }
    }

    /// A directory new entries may go into.
    fn live_dir(&self, ino: Inode) -> Result<&Dir, FsError> {
        let d = self.dir(ino)?;
        if d.removed {
            return Err(FsError::NotFound);
        }
        Ok(d)
    }

    fn lookup(&self, dir: Inode, name: &[u8]) -> Result<Inode, FsError> {
        let d = self.live_dir(dir)?;
        match name {
            b"." => return Ok(dir),
            b".." => return Ok(d.parent),
            _ => {}
        }
        check_name(name)?;
        let cookie = d.by_name.get(name).ok_or(FsError::NotFound)?;
        d.by_cookie
            .get(cookie)
            .map(|(_, ino)| *ino)
            .ok_or(FsError::NotFound)
    }

    fn add_entry(&mut self, dir: Inode, name: &[u8], ino: Inode, now: u64) -> Result<(), FsError> {
        let d = self.dir_mut(dir)?;
        let cookie = d.next_cookie;
        d.next_cookie += 1;
        d.by_name.insert(name.to_vec(), cookie);
        d.by_cookie.insert(cookie, (name.to_vec(), ino));
        self.touch_dir(dir, now);
        Ok(())
    }

    fn remove_entry(&mut self, dir: Inode, name: &[u8], now: u64) -> Result<(), FsError> {
        let d = self.dir_mut(dir)?;
        let cookie = d.by_name.remove(name).ok_or(FsError::NotFound)?;
        d.by_cookie.remove(&cookie);
        self.used = self.used.saturating_sub(entry_cost(name));
        self.touch_dir(dir, now);
        Ok(())
    }

    fn touch_dir(&mut self, dir: Inode, now: u64) {
        if let Some(n) = self.nodes.get_mut(&dir) {
            n.mtim = now;
            n.ctim = now;
        }
    }

    /// Drops one name of `ino`; frees it when nothing refers to it any more.
    fn unlinked(&mut self, ino: Inode, now: u64) {
        if let Some(n) = self.nodes.get_mut(&ino) {
            n.nlink = n.nlink.saturating_sub(1);
            n.ctim = now;
            if let Data::Dir(d) = &mut n.data {
                n.nlink = 0;
                d.removed = true;
            }
        }
        self.free_if_unused(ino);
    }

    fn free_if_unused(&mut self, ino: Inode) {
        if ino == ROOT {
            return;
        }
        if let Some(n) = self.nodes.get(&ino)
            && n.nlink == 0
            && n.open == 0
        {
            let bytes = n.bytes();
            self.nodes.remove(&ino);
            self.used = self.used.saturating_sub(bytes + NODE_COST);
        }
    }

    fn new_node(&mut self, data: Data, now: u64) -> Inode {
        let ino = self.next_ino;
        self.next_ino += 1;
        self.nodes.insert(
            ino,
            Node {
                data,
                nlink: 1,
                open: 0,
                atim: now,
                mtim: now,
                ctim: now,
            },
        );
        ino
    }

    /// Makes room for `more` bytes.
    fn charge(&mut self, more: u64) -> Result<(), FsError> {
        let used = self.used.checked_add(more).ok_or(FsError::NoSpace)?;
        if used > self.capacity {
            return Err(FsError::NoSpace);
        }
        self.used = used;
        Ok(())
    }

    /// Whether `ino` is `ancestor` or lies below it.
    fn is_within(&self, mut ino: Inode, ancestor: Inode) -> bool {
        loop {
            if ino == ancestor {
                return true;
            }
            match self.dir(ino) {
                Ok(d) if d.parent != ino => ino = d.parent,
                _ => return false,
            }
        }
    }
}

impl MemFs {
    /// An empty file system (just its root directory) numbered `dev`,
    /// holding at most `capacity` bytes (data, inodes and names), with
    /// timestamps from `clock`.
    pub fn new(dev: u64, capacity: u64, clock: Clock) -> MemFs {
        let now = clock();
        let mut nodes = BTreeMap::new();
        nodes.insert(
            ROOT,
            Node {
                data: Data::Dir(Dir {
                    parent: ROOT,
                    by_cookie: BTreeMap::new(),
                    by_name: BTreeMap::new(),
                    next_cookie: FIRST_ENTRY,
                    removed: false,
                }),
                nlink: 1,
                open: 0,
                atim: now,
                mtim: now,
                ctim: now,
            },
        );
        MemFs {
            dev,
            clock,
            state: Mutex::new(State {
                nodes,
                next_ino: ROOT + 1,
                used: 0,
                capacity,
            }),
        }
    }

    /// Bytes charged against the capacity: file contents and link
    /// targets, and the bookkeeping of inodes and names.
    pub fn used(&self) -> u64 {
        self.state.lock().used
    }

    fn now(&self) -> u64 {
        (self.clock)()
    }

    fn create(&self, dir: Inode, name: &[u8], data: Data) -> Result<Inode, FsError> {
        check_name(name)?;
        let now = self.now();
        let mut st = self.state.lock();
        let d = st.live_dir(dir)?;
        if d.by_name.contains_key(name) {
            return Err(FsError::Exists);
        }
        let bytes = match &data {
            Data::Symlink(t) => t.len() as u64,
            _ => 0,
        };
        st.charge(bytes + NODE_COST + entry_cost(name))?;
        let ino = st.new_node(data, now);
        st.add_entry(dir, name, ino, now)?;
        Ok(ino)
    }

    /// Grows or shrinks file `ino` to `size` bytes (caller holds the lock).
    fn resize(&self, st: &mut State, ino: Inode, size: u64) -> Result<(), FsError> {
        if size > FILE_SIZE_MAX {
            return Err(FsError::FileTooBig);
        }
        let len = match &st.node(ino)?.data {
            Data::File(d) => d.len() as u64,
            Data::Dir(_) => return Err(FsError::IsDirectory),
            Data::Symlink(_) => return Err(FsError::InvalidArgument),
        };
        let new_len = usize::try_from(size).map_err(|_| FsError::NoSpace)?;
        if size > len {
            st.charge(size - len)?;
        }
        let Data::File(data) = &mut st.node_mut(ino)?.data else {
            return Err(FsError::InvalidArgument);
        };
        if size > len {
            if data.try_reserve(new_len - data.len()).is_err() {
                st.used = st.used.saturating_sub(size - len);
                return Err(FsError::NoSpace);
            }
            data.resize(new_len, 0);
        } else {
            data.truncate(new_len);
            data.shrink_to(new_len.max(64));
            st.used = st.used.saturating_sub(len - size);
        }
        Ok(())
    }
}

impl FileSystem for MemFs {
    fn root(&self) -> Inode {
        ROOT
    }

    fn lookup(&self, dir: Inode, name: &[u8]) -> Result<Inode, FsError> {
        self.state.lock().lookup(dir, name)
    }

    fn stat(&self, ino: Inode) -> Result<FileStat, FsError> {
        let st = self.state.lock();
        let n = st.node(ino)?;
        let (size, nlink) = match &n.data {
            Data::File(d) | Data::Symlink(d) => (d.len() as u64, n.nlink),
            Data::Dir(d) => {
                // its name in the parent, its own `.`, each subdirectory's `..`
                let subdirs = d
                    .by_cookie
                    .values()
                    .filter(|(_, c)| {
                        matches!(st.nodes.get(c).map(Node::kind), Some(FileKind::Directory))
                    })
                    .count() as u64;
                let named = if d.removed { 0 } else { 2 };
                (0, named + subdirs)
            }
        };
        Ok(FileStat {
            dev: self.dev,
            ino,
            kind: n.kind(),
            nlink,
            size,
            atim: n.atim,
            mtim: n.mtim,
            ctim: n.ctim,
        })
    }

    fn create_file(&self, dir: Inode, name: &[u8]) -> Result<Inode, FsError> {
        self.create(dir, name, Data::File(Vec::new()))
    }

    fn create_directory(&self, dir: Inode, name: &[u8]) -> Result<Inode, FsError> {
        self.create(
            dir,
            name,
            Data::Dir(Dir {
                parent: dir,
                by_cookie: BTreeMap::new(),
                by_name: BTreeMap::new(),
                next_cookie: FIRST_ENTRY,
                removed: false,
            }),
        )
    }

    fn symlink(&self, dir: Inode, name: &[u8], target: &[u8]) -> Result<Inode, FsError> {
        if target.contains(&0) {
            return Err(FsError::InvalidArgument);
        }
        self.create(dir, name, Data::Symlink(target.to_vec()))
    }

    fn readlink(&self, ino: Inode) -> Result<Vec<u8>, FsError> {
        match &self.state.lock().node(ino)?.data {
            Data::Symlink(t) => Ok(t.clone()),
            _ => Err(FsError::InvalidArgument),
        }
    }

    fn link(&self, ino: Inode, dir: Inode, name: &[u8]) -> Result<(), FsError> {
        check_name(name)?;
        let now = self.now();
        let mut st = self.state.lock();
        let n = st.node(ino)?;
        if n.kind() == FileKind::Directory {
            return Err(FsError::NotPermitted);
        }
        if n.nlink == 0 {
            return Err(FsError::NotFound);
        }
        if n.nlink >= LINK_MAX {
            return Err(FsError::TooManyLinks);
        }
        if st.live_dir(dir)?.by_name.contains_key(name) {
            return Err(FsError::Exists);
        }
        st.charge(entry_cost(name))?;
        let n = st.node_mut(ino)?;
        n.nlink += 1;
        n.ctim = now;
        st.add_entry(dir, name, ino, now)
    }

    fn unlink(&self, dir: Inode, name: &[u8]) -> Result<(), FsError> {
        check_name(name)?;
        let now = self.now();
        let mut st = self.state.lock();
        let ino = st.lookup(dir, name)?;
        if st.node(ino)?.kind() == FileKind::Directory {
            return Err(FsError::IsDirectory);
        }
        st.remove_entry(dir, name, now)?;
        st.unlinked(ino, now);
        Ok(())
    }

    fn remove_directory(&self, dir: Inode, name: &[u8]) -> Result<(), FsError> {
        check_name(name)?;
        let now = self.now();
        let mut st = self.state.lock();
        let ino = st.lookup(dir, name)?;
        if !st.dir(ino)?.by_cookie.is_empty() {
            return Err(FsError::NotEmpty);
        }
        st.remove_entry(dir, name, now)?;
        st.unlinked(ino, now);
        Ok(())
    }

    fn rename(
        &self,
        dir: Inode,
        name: &[u8],
        to_dir: Inode,
        to_name: &[u8],
    ) -> Result<(), FsError> {
        check_name(name)?;
        check_name(to_name)?;
        let now = self.now();
        let mut st = self.state.lock();
        let ino = st.lookup(dir, name)?;
        st.live_dir(to_dir)?;
        let is_dir = st.node(ino)?.kind() == FileKind::Directory;
        let replaced = match st.lookup(to_dir, to_name) {
            Ok(existing) => Some(existing),
            Err(FsError::NotFound) => None,
            Err(e) => return Err(e),
        };
        if replaced == Some(ino) {
            return Ok(());
        }
        if let Some(existing) = replaced {
            let existing_is_dir = st.node(existing)?.kind() == FileKind::Directory;
            match (is_dir, existing_is_dir) {
                (true, false) => return Err(FsError::NotDirectory),
                (false, true) => return Err(FsError::IsDirectory),
                (true, true) if !st.dir(existing)?.by_cookie.is_empty() => {
                    return Err(FsError::NotEmpty);
                }
                _ => {}
            }
        }
        if is_dir && st.is_within(to_dir, ino) {
            return Err(FsError::InvalidArgument);
        }
        // The new name is charged before anything changes; the names
        // removed below give their share back.
        st.charge(entry_cost(to_name))?;
        if let Some(existing) = replaced {
            st.remove_entry(to_dir, to_name, now)?;
            st.unlinked(existing, now);
        }
        st.remove_entry(dir, name, now)?;
        st.add_entry(to_dir, to_name, ino, now)?;
        let n = st.node_mut(ino)?;
        n.ctim = now;
        if let Data::Dir(d) = &mut n.data {
            d.parent = to_dir;
        }
        Ok(())
    }

    fn read(&self, ino: Inode, offset: u64, buf: &mut [u8]) -> Result<usize, FsError> {
        let now = self.now();
        let mut st = self.state.lock();
        let n = st.node_mut(ino)?;
        let data = match &n.data {
            Data::File(d) => d,
            Data::Dir(_) => return Err(FsError::IsDirectory),
            Data::Symlink(_) => return Err(FsError::InvalidArgument),
        };
        let Ok(start) = usize::try_from(offset) else {
            return Ok(0);
        };
        let count = data.len().saturating_sub(start).min(buf.len());
        if count > 0 {
            buf[..count].copy_from_slice(&data[start..start + count]);
        }
        n.atim = now;
        Ok(count)
    }

    fn write(&self, ino: Inode, offset: u64, bytes: &[u8]) -> Result<usize, FsError> {
        let now = self.now();
        let mut st = self.state.lock();
        let end = offset
            .checked_add(bytes.len() as u64)
            .ok_or(FsError::FileTooBig)?;
        let len = match &st.node(ino)?.data {
            Data::File(d) => d.len() as u64,
            Data::Dir(_) => return Err(FsError::IsDirectory),
            Data::Symlink(_) => return Err(FsError::InvalidArgument),
        };
        if end > len {
            self.resize(&mut st, ino, end)?;
        }
        let n = st.node_mut(ino)?;
        if let Data::File(data) = &mut n.data {
            // `end` fits: the file is at least that long now
            let start = end as usize - bytes.len();
            data[start..end as usize].copy_from_slice(bytes);
        }
        n.mtim = now;
        n.ctim = now;
        Ok(bytes.len())
    }

    fn set_size(&self, ino: Inode, size: u64) -> Result<(), FsError> {
        let now = self.now();
        let mut st = self.state.lock();
        self.resize(&mut st, ino, size)?;
        let n = st.node_mut(ino)?;
        n.mtim = now;
        n.ctim = now;
        Ok(())
    }

    fn set_times(&self, ino: Inode, atim: TimeChange, mtim: TimeChange) -> Result<(), FsError> {
        let now = self.now();
        let mut st = self.state.lock();
        let n = st.node_mut(ino)?;
        let pick = |change: TimeChange, old: u64| match change {
            TimeChange::Keep => old,
            TimeChange::Now => now,
            TimeChange::At(t) => t,
        };
        n.atim = pick(atim, n.atim);
        n.mtim = pick(mtim, n.mtim);
        n.ctim = now;
        Ok(())
    }

    fn read_dir(&self, dir: Inode, cookie: u64, max: usize) -> Result<Vec<DirEntry>, FsError> {
        let st = self.state.lock();
        let d = st.dir(dir)?;
        let mut out = Vec::new();
        let dots = [(0, &b"."[..], dir), (1, &b".."[..], d.parent)];
        for (c, name, ino) in dots {
            if cookie <= c && out.len() < max {
                out.push(DirEntry {
                    next: c + 1,
                    ino,
                    kind: FileKind::Directory,
                    name: name.to_vec(),
                });
            }
        }
        for (&c, (name, ino)) in d.by_cookie.range(cookie.max(FIRST_ENTRY)..) {
            if out.len() >= max {
                break;
            }
            let kind = st.node(*ino)?.kind();
            out.push(DirEntry {
                next: c + 1,
                ino: *ino,
                kind,
                name: name.clone(),
            });
        }
        Ok(out)
    }

    fn sync(&self, ino: Inode) -> Result<(), FsError> {
        self.state.lock().node(ino).map(|_| ())
    }

    fn retain(&self, ino: Inode) {
        if let Some(n) = self.state.lock().nodes.get_mut(&ino) {
            n.open += 1;
        }
    }

    fn release(&self, ino: Inode) {
        let mut st = self.state.lock();
        if let Some(n) = st.nodes.get_mut(&ino) {
            n.open = n.open.saturating_sub(1);
        }
        st.free_if_unused(ino);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::boxed::Box;

    fn fs() -> MemFs {
        MemFs::new(7, 1 << 20, Box::new(|| 1_000))
    }

    #[test]
    fn files_directories_and_links() {
        let fs = fs();
        let root = fs.root();
        let d = fs.create_directory(root, b"d").unwrap();
        let f = fs.create_file(d, b"f").unwrap();
        assert_eq!(fs.create_file(d, b"f"), Err(FsError::Exists));
        assert_eq!(fs.write(f, 3, b"abc"), Ok(3));
        let mut buf = [9u8; 8];
        assert_eq!(fs.read(f, 0, &mut buf), Ok(6));
        assert_eq!(&buf[..6], b"\0\0\0abc");
        fs.link(f, root, b"g").unwrap();
        assert_eq!(fs.stat(f).unwrap().nlink, 2);
        assert_eq!(fs.link(d, root, b"h"), Err(FsError::NotPermitted));
        assert_eq!(fs.remove_directory(root, b"d"), Err(FsError::NotEmpty));
        assert_eq!(fs.unlink(root, b"d"), Err(FsError::IsDirectory));
        fs.unlink(d, b"f").unwrap();
        assert_eq!(fs.stat(f).unwrap().nlink, 1);
        fs.remove_directory(root, b"d").unwrap();
        assert_eq!(fs.lookup(root, b"d"), Err(FsError::NotFound));
        assert_eq!(fs.lookup(root, b"g"), Ok(f));
        assert_eq!(fs.stat(root).unwrap().nlink, 2);
    }

    #[test]
    fn open_files_outlive_their_names() {
        let fs = fs();
        let f = fs.create_file(fs.root(), b"f").unwrap();
        fs.write(f, 0, b"data").unwrap();
        fs.retain(f);
        fs.unlink(fs.root(), b"f").unwrap();
        assert_eq!(fs.stat(f).unwrap().nlink, 0);
        fs.release(f);
        assert_eq!(fs.stat(f), Err(FsError::Stale));
        assert_eq!(fs.used(), 0);
    }

    #[test]
    fn rename_follows_posix() {
        let fs = fs();
        let root = fs.root();
        let a = fs.create_directory(root, b"a").unwrap();
        let b = fs.create_directory(a, b"b").unwrap();
        fs.create_file(root, b"f").unwrap();
        assert_eq!(
            fs.rename(root, b"a", b, b"x"),
            Err(FsError::InvalidArgument)
        );
        assert_eq!(
            fs.rename(root, b"a", root, b"f"),
            Err(FsError::NotDirectory)
        );
        assert_eq!(fs.rename(root, b"f", a, b"b"), Err(FsError::IsDirectory));
        fs.rename(a, b"b", root, b"b").unwrap();
        assert_eq!(fs.lookup(b, b".."), Ok(root));
        // an empty directory may be replaced
        fs.rename(root, b"a", root, b"b").unwrap();
        assert_eq!(fs.lookup(root, b"b"), Ok(a));
    }

    #[test]
    fn cookies_survive_changes() {
        let fs = fs();
        let root = fs.root();
        for n in [&b"x"[..], b"y", b"z"] {
            fs.create_file(root, n).unwrap();
        }
        let first = fs.read_dir(root, 0, 3).unwrap();
        let names: Vec<_> = first.iter().map(|e| e.name.clone()).collect();
        assert_eq!(names, [&b"."[..], b"..", b"x"]);
        fs.unlink(root, b"y").unwrap();
        let rest = fs.read_dir(root, first[2].next, 10).unwrap();
        assert_eq!(rest.len(), 1);
        assert_eq!(rest[0].name, b"z");
    }

    #[test]
    fn empty_files_and_names_are_charged_until_the_capacity_runs_out() {
        let fs = MemFs::new(1, 64 << 10, Box::new(|| 0));
        let root = fs.root();
        let mut made = 0;
        let full = loop {
            let name = alloc::format!("{made:0>200}");
            match fs.create_directory(root, name.as_bytes()) {
                Ok(_) => made += 1,
                Err(e) => break e,
            }
        };
        assert_eq!(full, FsError::NoSpace);
        assert!(made > 50 && made < 200, "{made}");
        // A rename to a longer name needs room too; removing frees it all.
        for i in 0..made {
            fs.remove_directory(root, alloc::format!("{i:0>200}").as_bytes())
                .unwrap();
        }
        assert_eq!(fs.used(), 0);
    }

    #[test]
    fn hostile_sizes_and_names() {
        let fs = fs();
        let f = fs.create_file(fs.root(), b"f").unwrap();
        assert_eq!(fs.set_size(f, 1 << 40), Err(FsError::NoSpace));
        assert_eq!(fs.set_size(f, u64::MAX), Err(FsError::FileTooBig));
        assert_eq!(fs.write(f, u64::MAX, b"x"), Err(FsError::FileTooBig));
        assert_eq!(fs.write(f, 1 << 30, b"x"), Err(FsError::NoSpace));
        // Only the empty file's inode and name are charged.
        assert_eq!(fs.used(), NODE_COST + entry_cost(b"f"));
        let long = [b'a'; NAME_MAX + 1];
        assert_eq!(fs.create_file(fs.root(), &long), Err(FsError::NameTooLong));
        assert_eq!(
            fs.create_file(fs.root(), b"a/b"),
            Err(FsError::InvalidArgument)
        );
        assert_eq!(
            fs.create_file(fs.root(), b".."),
            Err(FsError::InvalidArgument)
        );
        assert_eq!(fs.read(f, u64::MAX, &mut [0; 4]), Ok(0));
    }
}
