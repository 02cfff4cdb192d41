//! Path resolution that cannot leave its directory.
//!
//! A preview1 path is always relative to a directory descriptor, and that
//! directory is the root of everything the path may reach: `..` above it,
//! an absolute path, or a symbolic link whose target is absolute or climbs
//! above it is an escape (`EPERM`, as wasmtime answers on Linux). The walk
//! goes one component at a time through [`FileSystem::lookup`], keeping the
//! stack of directories it went through, so `..` is exact even after a
//! symbolic link. Links are followed at most [`MAX_SYMLINK_FOLLOWS`] times
//! (`ELOOP`); names longer than [`NAME_MAX`] give `ENAMETOOLONG`, paths
//! that are not UTF-8 `EILSEQ` and paths containing NUL `EINVAL`.

use alloc::vec::Vec;

use crate::errno::Errno;
use crate::memfs::NAME_MAX;
use crate::services::{FileKind, FileSystem, Inode};

/// How many symbolic links one resolution may follow (Linux's limit).
pub const MAX_SYMLINK_FOLLOWS: usize = 40;
/// The longest path accepted, in bytes.
pub const PATH_MAX: usize = 4096;

/// Where a path leads.
#[derive(Debug)]
pub struct Resolved {
    /// the directory holding the last component
    pub parent: Inode,
    /// the last component (`.` or `..` when the path ends with one)
    pub name: Vec<u8>,
    /// what the last component names: an inode, or why there is none
    pub node: Result<Inode, Errno>,
    /// the path ended with `/`: the last component must be a directory
    pub trailing_slash: bool,
}

impl Resolved {
    /// Whether the last component is `.` or `..` (which cannot be created,
    /// removed or renamed).
    pub fn is_dot(&self) -> bool {
        self.name == b"." || self.name == b".."
    }

    /// The inode the path names, which must exist; with a trailing slash,
    /// it must be a directory (`ENOTDIR`).
    pub fn existing(&self, fs: &dyn FileSystem) -> Result<Inode, Errno> {
        let ino = self.node?;
        if self.trailing_slash && fs.stat(ino)?.kind != FileKind::Directory {
            return Err(Errno::Notdir);
        }
        Ok(ino)
    }
}

/// Checks a guest path: UTF-8 (`EILSEQ`), no NUL (`EINVAL`), not too long.
pub fn check(path: &[u8]) -> Result<(), Errno> {
    if path.len() > PATH_MAX {
        return Err(Errno::Nametoolong);
    }
    if core::str::from_utf8(path).is_err() {
        return Err(Errno::Ilseq);
    }
    if path.contains(&0) {
        return Err(Errno::Inval);
    }
    Ok(())
}

/// The components of `path` in reverse order (so `pop` yields the next).
fn components_reversed(path: &[u8]) -> Vec<Vec<u8>> {
    path.split(|b| *b == b'/')
        .filter(|c| !c.is_empty())
        .rev()
        .map(<[u8]>::to_vec)
        .collect()
}

/// Walks `path` from directory `base` without leaving it. The last
/// component is followed if it is a symbolic link only when `follow` is
/// set; every other link is followed. An empty path is `ENOENT`.
pub fn resolve(
    fs: &dyn FileSystem,
    base: Inode,
    path: &[u8],
    follow: bool,
) -> Result<Resolved, Errno> {
    check(path)?;
    if path.is_empty() {
        return Err(Errno::Noent);
    }
    if path[0] == b'/' {
        return Err(Errno::Perm);
    }
    if fs.stat(base)?.kind != FileKind::Directory {
        return Err(Errno::Notdir);
    }
    let mut trailing_slash = path.ends_with(b"/");
    let mut pending = components_reversed(path);
    let mut stack: Vec<Inode> = alloc::vec![base];
    let mut follows = 0;
    while let Some(comp) = pending.pop() {
        let last = pending.is_empty();
        let cur = *stack.last().ok_or(Errno::Perm)?;
        if comp == b"." {
            if last {
                return Ok(Resolved {
                    parent: cur,
                    name: comp,
                    node: Ok(cur),
                    trailing_slash,
                });
            }
            continue;
        }
        if comp == b".." {
            if stack.len() == 1 {
                return Err(Errno::Perm);
            }
            stack.pop();
            let up = *stack.last().ok_or(Errno::Perm)?;
            if last {
                return Ok(Resolved {
                    parent: up,
                    name: comp,
                    node: Ok(up),
                    trailing_slash,
                });
            }
            continue;
        }
        if comp.len() > NAME_MAX {
            return Err(Errno::Nametoolong);
        }
        let found = fs.lookup(cur, &comp).map_err(Errno::from);
        let ino = match found {
            Ok(ino) => ino,
            Err(e) if last => {
                return Ok(Resolved {
                    parent: cur,
                    name: comp,
                    node: Err(e),
                    trailing_slash,
                });
            }
            Err(e) => return Err(e),
        };
        match fs.stat(ino)?.kind {
            FileKind::Directory if !last => stack.push(ino),
            FileKind::SymbolicLink if !last || follow => {
                follows += 1;
                if follows > MAX_SYMLINK_FOLLOWS {
                    return Err(Errno::Loop);
                }
                let target = fs.readlink(ino)?;
                if target.is_empty() {
                    return Err(Errno::Noent);
                }
                if target[0] == b'/' {
                    return Err(Errno::Perm);
                }
                if last && target.ends_with(b"/") {
                    trailing_slash = true;
                }
                let more = components_reversed(&target);
                if more.is_empty() {
                    pending.push(b".".to_vec());
                }
                // the target's components come before what is left
                pending.extend(more);
            }
            _ if !last => return Err(Errno::Notdir),
            _ => {
                return Ok(Resolved {
                    parent: cur,
                    name: comp,
                    node: Ok(ino),
                    trailing_slash,
                });
            }
        }
    }
    // only a path of slashes gets here, and those were refused above
    Err(Errno::Noent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memfs::MemFs;
    use alloc::boxed::Box;

    /// root/ { d/ { f, up -> .., loop -> loop, abs -> /etc, esc -> ../.. }, top -> d/f, l1 -> l2, l2 -> l1 }
    fn tree() -> (MemFs, Inode, Inode, Inode) {
        let fs = MemFs::new(1, 1 << 20, Box::new(|| 0));
        let root = fs.root();
        let d = fs.create_directory(root, b"d").unwrap();
        let f = fs.create_file(d, b"f").unwrap();
        fs.symlink(d, b"up", b"..").unwrap();
        fs.symlink(d, b"loop", b"loop").unwrap();
        fs.symlink(d, b"abs", b"/etc").unwrap();
        fs.symlink(d, b"esc", b"../..").unwrap();
        fs.symlink(d, b"todir", b"../d/").unwrap();
        fs.symlink(root, b"top", b"d/f").unwrap();
        fs.symlink(root, b"l1", b"l2").unwrap();
        fs.symlink(root, b"l2", b"l1").unwrap();
        (fs, root, d, f)
    }

    fn node(fs: &MemFs, base: Inode, path: &str, follow: bool) -> Result<Inode, Errno> {
        let r = resolve(fs, base, path.as_bytes(), follow)?;
        r.existing(fs)
    }

    #[test]
    fn ordinary_paths() {
        let (fs, root, d, f) = tree();
        assert_eq!(node(&fs, root, "d/f", false), Ok(f));
        assert_eq!(node(&fs, root, "d//./f", false), Ok(f));
        assert_eq!(node(&fs, root, "d/../d/f", false), Ok(f));
        assert_eq!(node(&fs, root, ".", false), Ok(root));
        assert_eq!(node(&fs, root, "d/", false), Ok(d));
        assert_eq!(node(&fs, root, "top", true), Ok(f));
        assert_eq!(node(&fs, root, "d/up/d/f", false), Ok(f));
        assert_eq!(node(&fs, d, "up", true), Err(Errno::Perm));
        assert_eq!(node(&fs, root, "d/up", true), Ok(root));
        assert_eq!(node(&fs, root, "d/todir", true), Ok(d));
    }

    #[test]
    fn escapes_are_refused() {
        let (fs, root, d, _) = tree();
        for p in ["/", "/d", "..", "d/../..", "./../d", "d/abs", "d/esc"] {
            assert_eq!(node(&fs, root, p, true), Err(Errno::Perm), "{p}");
        }
        // from a subdirectory, that subdirectory is the root
        assert_eq!(node(&fs, d, "..", false), Err(Errno::Perm));
        assert_eq!(node(&fs, d, "f/..", false), Err(Errno::Notdir));
        // not followed: the link itself, whatever it says
        assert!(node(&fs, root, "d/abs", false).is_ok());
        // an escaping link in the middle of a path is always followed
        assert_eq!(node(&fs, root, "d/esc/x", false), Err(Errno::Perm));
    }

    #[test]
    fn loops_and_limits() {
        let (fs, root, _, _) = tree();
        assert_eq!(node(&fs, root, "l1", true), Err(Errno::Loop));
        assert_eq!(node(&fs, root, "d/loop/x", false), Err(Errno::Loop));
        assert!(node(&fs, root, "l1", false).is_ok());
        let long = "a".repeat(NAME_MAX + 1);
        assert_eq!(node(&fs, root, &long, false), Err(Errno::Nametoolong));
        let deep = "d/".repeat(PATH_MAX);
        assert_eq!(node(&fs, root, &deep, false), Err(Errno::Nametoolong));
        assert_eq!(
            resolve(&fs, root, b"d/\xff", false).map(|_| ()),
            Err(Errno::Ilseq)
        );
        assert_eq!(
            resolve(&fs, root, b"d/f\0", false).map(|_| ()),
            Err(Errno::Inval)
        );
        assert_eq!(
            resolve(&fs, root, b"", false).map(|_| ()),
            Err(Errno::Noent)
        );
    }

    #[test]
    fn trailing_slashes_and_missing_names() {
        let (fs, root, d, f) = tree();
        assert_eq!(node(&fs, root, "d/f/", false), Err(Errno::Notdir));
        assert_eq!(node(&fs, root, "d/f///", false), Err(Errno::Notdir));
        assert_eq!(node(&fs, root, "d/f/x", false), Err(Errno::Notdir));
        let r = resolve(&fs, root, b"d/new", false).unwrap();
        assert_eq!(
            (r.parent, &r.name[..], r.node),
            (d, &b"new"[..], Err(Errno::Noent))
        );
        assert_eq!(node(&fs, root, "nope/x", false), Err(Errno::Noent));
        let r = resolve(&fs, root, b"top", false).unwrap();
        assert_ne!(r.node, Ok(f));
    }
}
