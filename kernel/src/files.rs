//! The directories shared with the program (`basalt run --dir`): one
//! in-memory file system per `preopen` of the manifest, filled at boot from
//! the bundle's `fs/N/…` entries (`docs/guest-protocol.md`).
//!
//! Files are copied out of the bundle into the heap, so the file systems
//! may hold at most a budget the caller derives from free memory; a bundle
//! whose files do not fit is refused before anything is copied. What the
//! program writes stays in the VM.
//!
//! This module needs only `alloc` and `basalt-wasi`, so host tests compile
//! it as it is (`tests/tests/bundle.rs`).

use alloc::collections::BTreeMap;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;

use basalt_wasi::memfs::Clock;
use basalt_wasi::services::{Inode, TimeChange};
use basalt_wasi::{FileSystem, FsError, MemFs};

use crate::bundle::{Bundle, Entry, EntryKind};

/// Why the shared directories could not be set up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FilesError {
    /// the files need more memory than the VM can spare
    TooBig {
        /// bytes of file data and link targets in the bundle
        need: u64,
        /// bytes the file systems may hold
        budget: u64,
    },
    /// an entry could not be created
    Entry {
        /// its archive path
        path: String,
        /// what the file system said
        error: FsError,
    },
    /// a hard link names no regular file of the same preopen before it
    BadHardLink {
        /// the link's archive path
        path: String,
        /// the archive path it names
        target: String,
    },
    /// more preopens than the program may have descriptors
    TooManyPreopens(usize),
}

impl fmt::Display for FilesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FilesError::TooBig { need, budget } => write!(
                f,
                "the shared directories (--dir) hold {} KiB of files, more than the {} KiB this VM can keep in memory (half of what is free after loading); give the VM more memory (--memory) or share less",
                need.div_ceil(1024),
                budget / 1024
            ),
            FilesError::Entry { path, error } => {
                write!(f, "bundle: cannot create `{path}` in memory: {error:?}")
            }
            FilesError::BadHardLink { path, target } => write!(
                f,
                "bundle: hard link `{path}` names `{target}`, which is no earlier regular file of the same directory"
            ),
            FilesError::TooManyPreopens(n) => write!(
                f,
                "{n} shared directories are more than a program may have descriptors"
            ),
        }
    }
}

/// The entry's path below `prefix` (empty for the prefix itself), if it
/// lies under it.
fn below<'p>(path: &'p [u8], prefix: &[u8]) -> Option<&'p [u8]> {
    let rest = path.strip_prefix(prefix)?;
    if rest.is_empty() {
        return Some(rest);
    }
    rest.strip_prefix(b"/")
}

/// Bytes the memory file system will charge for `e`, which lies at `rel`
/// below its share's root: file data or link target, and the inode and
/// name ([`basalt_wasi::memfs::NODE_COST`], [`basalt_wasi::memfs::entry_cost`]).
fn cost(e: &Entry<'_>, rel: &[u8]) -> u64 {
    use basalt_wasi::memfs::{NODE_COST, entry_cost};
    let Some(name) = rel.split(|c| *c == b'/').rfind(|n| !n.is_empty()) else {
        // the share's root itself
        return 0;
    };
    let node = match &e.kind {
        EntryKind::File => e.data.len() as u64 + NODE_COST,
        EntryKind::Symlink(t) => t.len() as u64 + NODE_COST,
        EntryKind::Directory => NODE_COST,
        EntryKind::HardLink(_) => 0,
    };
    node + entry_cost(name)
}

/// Bytes the entries under `prefix` need in a memory file system.
pub fn bytes_under(bundle: &Bundle<'_>, prefix: &str) -> u64 {
    bundle
        .entries()
        .iter()
        .filter_map(|e| below(&e.raw_path, prefix.as_bytes()).map(|rel| cost(e, rel)))
        .sum()
}

fn entry_err<'e>(e: &'e Entry<'_>) -> impl Fn(FsError) -> FilesError + 'e {
    move |error| FilesError::Entry {
        path: e.path.clone(),
        error,
    }
}

/// The directory `rel` names below the root of `fs`, created (with its
/// parents) if missing.
fn make_dirs(fs: &MemFs, rel: &[u8]) -> Result<Inode, FsError> {
    let mut at = fs.root();
    for name in rel.split(|c| *c == b'/').filter(|n| !n.is_empty()) {
        at = match fs.lookup(at, name) {
            Ok(ino) => ino,
            Err(FsError::NotFound) => fs.create_directory(at, name)?,
            Err(e) => return Err(e),
        };
    }
    Ok(at)
}

/// Splits `rel` into its parent directory's path and its last name.
fn split_last(rel: &[u8]) -> (&[u8], &[u8]) {
    match rel.iter().rposition(|c| *c == b'/') {
        Some(i) => (&rel[..i], &rel[i + 1..]),
        None => (&[], rel),
    }
}

/// Fills `fs` with the entries under `prefix`: directories, regular files,
/// symbolic links (targets as they are), hard links among its files, and
/// every entry's modification time (directories' last, as creating their
/// entries changes them).
pub fn fill(fs: &MemFs, bundle: &Bundle<'_>, prefix: &str) -> Result<(), FilesError> {
    let mut files: BTreeMap<&[u8], Inode> = BTreeMap::new();
    let mut dir_times: Vec<(Inode, u64)> = Vec::new();
    for e in bundle.entries() {
        let Some(rel) = below(&e.raw_path, prefix.as_bytes()) else {
            continue;
        };
        let err = entry_err(e);
        if e.kind == EntryKind::Directory {
            let ino = make_dirs(fs, rel).map_err(&err)?;
            dir_times.push((ino, e.mtime_ns));
            continue;
        }
        let (parent, name) = split_last(rel);
        if name.is_empty() {
            // the preopen itself, as anything but a directory
            return Err(err(FsError::NotDirectory));
        }
        let dir = make_dirs(fs, parent).map_err(&err)?;
        let ino = match &e.kind {
            EntryKind::File => {
                let ino = fs.create_file(dir, name).map_err(&err)?;
                fs.write(ino, 0, e.data).map_err(&err)?;
                files.insert(&e.raw_path, ino);
                ino
            }
            EntryKind::Symlink(target) => fs.symlink(dir, name, target).map_err(&err)?,
            EntryKind::HardLink(target) => {
                let Some(&ino) = files.get(&target[..]) else {
                    return Err(FilesError::BadHardLink {
                        path: e.path.clone(),
                        target: String::from_utf8_lossy(target).into_owned(),
                    });
                };
                fs.link(ino, dir, name).map_err(&err)?;
                continue;
            }
            EntryKind::Directory => continue,
        };
        let t = TimeChange::At(e.mtime_ns);
        fs.set_times(ino, t, t).map_err(&err)?;
    }
    for (ino, mtime) in dir_times.into_iter().rev() {
        let t = TimeChange::At(mtime);
        fs.set_times(ino, t, t).map_err(|error| FilesError::Entry {
            path: String::from(prefix),
            error,
        })?;
    }
    Ok(())
}

/// One file system per `(device number, archive prefix)`, in order,
/// filled from `bundle`. Together they may hold `budget` bytes: each gets
/// its files plus an equal share of what is left, for the program's
/// writes. `clock` makes each file system's clock.
pub fn load(
    bundle: &Bundle<'_>,
    copies: &[(u64, &str)],
    budget: u64,
    clock: impl Fn() -> Clock,
) -> Result<Vec<Arc<MemFs>>, FilesError> {
    let sizes: Vec<u64> = copies
        .iter()
        .map(|(_, prefix)| bytes_under(bundle, prefix))
        .collect();
    let need: u64 = sizes.iter().sum();
    if need > budget {
        return Err(FilesError::TooBig { need, budget });
    }
    let spare = (budget - need) / (copies.len().max(1) as u64);
    let mut out = Vec::with_capacity(copies.len());
    for ((dev, prefix), size) in copies.iter().zip(sizes) {
        let fs = Arc::new(MemFs::new(*dev, size + spare, clock()));
        fill(&fs, bundle, prefix)?;
        out.push(fs);
    }
    Ok(out)
}
