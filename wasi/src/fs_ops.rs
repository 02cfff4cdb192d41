//! File-system operations on paths, shared by preview1 and WASI 0.2: each
//! resolves its path inside the directory it is given (never leaving it)
//! and answers with the errno wasmtime gives on Linux. The interfaces only
//! decode their arguments and encode these answers.

use alloc::sync::Arc;
use alloc::vec::Vec;

use crate::errno::Errno;
use crate::path::{self, Resolved};
use crate::services::{FileKind, FileStat, FileSystem, Inode, TimeChange};

/// A directory to resolve paths in.
#[derive(Clone)]
pub struct At<'a> {
    /// its file system
    pub fs: &'a Arc<dyn FileSystem>,
    /// the directory
    pub dir: Inode,
}

impl At<'_> {
    fn resolve(&self, p: &[u8], follow: bool) -> Result<Resolved, Errno> {
        path::resolve(&**self.fs, self.dir, p, follow)
    }

    /// `EPERM` for a read-only file system (checked before anything else
    /// is, so a link out of a read-only directory is `EPERM`, not `EXDEV`).
    fn writable(&self) -> Result<(), Errno> {
        if self.fs.read_only() {
            Err(Errno::Perm)
        } else {
            Ok(())
        }
    }
}

/// How [`open_at`] opens.
#[derive(Clone, Copy, Debug, Default)]
pub struct OpenHow {
    /// create the file if it does not exist
    pub create: bool,
    /// it must be a directory
    pub directory: bool,
    /// with `create`: fail if it exists
    pub exclusive: bool,
    /// truncate a regular file to zero
    pub truncate: bool,
    /// it will be written (a directory cannot be)
    pub write: bool,
}

/// Opens (maybe creates) `p`; the inode and its kind.
pub fn open_at(
    at: &At<'_>,
    p: &[u8],
    follow: bool,
    how: OpenHow,
) -> Result<(Inode, FileKind), Errno> {
    let fs = at.fs;
    let r = at.resolve(p, follow)?;
    if how.create || how.truncate || how.write {
        at.writable()?;
    }
    let ino = match r.node {
        Ok(_) if how.create && how.exclusive => return Err(Errno::Exist),
        Ok(_) => r.existing(&**fs)?,
        Err(Errno::Noent) if how.create => {
            if how.directory {
                return Err(Errno::Inval);
            }
            if r.trailing_slash {
                return Err(Errno::Isdir);
            }
            fs.create_file(r.parent, &r.name)?
        }
        Err(e) => return Err(e),
    };
    let kind = fs.stat(ino)?.kind;
    if kind == FileKind::SymbolicLink {
        // reached only without following: O_NOFOLLOW's answer
        return Err(Errno::Loop);
    }
    if how.directory && kind != FileKind::Directory {
        return Err(Errno::Notdir);
    }
    if kind == FileKind::Directory {
        if how.truncate || how.write {
            return Err(Errno::Isdir);
        }
    } else if how.truncate {
        fs.set_size(ino, 0)?;
    }
    Ok((ino, kind))
}

/// Creates directory `p`.
pub fn create_directory_at(at: &At<'_>, p: &[u8]) -> Result<(), Errno> {
    let r = at.resolve(p, false)?;
    at.writable()?;
    match r.node {
        Ok(_) => Err(Errno::Exist),
        Err(Errno::Noent) => {
            at.fs.create_directory(r.parent, &r.name)?;
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// The attributes of `p`.
pub fn stat_at(at: &At<'_>, p: &[u8], follow: bool) -> Result<FileStat, Errno> {
    let r = at.resolve(p, follow)?;
    Ok(at.fs.stat(r.existing(&**at.fs)?)?)
}

/// Sets the times of `p`.
pub fn set_times_at(
    at: &At<'_>,
    p: &[u8],
    follow: bool,
    atim: TimeChange,
    mtim: TimeChange,
) -> Result<(), Errno> {
    let r = at.resolve(p, follow)?;
    at.writable()?;
    at.fs.set_times(r.existing(&**at.fs)?, atim, mtim)?;
    Ok(())
}

/// Links `to` (in `to_at`) to what `p` names itself: asking to follow a
/// symbolic link there is `EINVAL`, as under wasmtime.
pub fn link_at(
    at: &At<'_>,
    p: &[u8],
    follow: bool,
    to_at: &At<'_>,
    to: &[u8],
) -> Result<(), Errno> {
    if follow {
        return Err(Errno::Inval);
    }
    let from = at.resolve(p, false)?;
    at.writable()?;
    let target = to_at.resolve(to, false)?;
    to_at.writable()?;
    if !Arc::ptr_eq(at.fs, to_at.fs) {
        return Err(Errno::Xdev);
    }
    let fs = at.fs;
    let ino = from.existing(&**fs)?;
    if fs.stat(ino)?.kind == FileKind::Directory {
        return Err(Errno::Perm);
    }
    match target.node {
        Ok(_) => return Err(Errno::Exist),
        Err(Errno::Noent) if target.trailing_slash => return Err(Errno::Noent),
        Err(Errno::Noent) => {}
        Err(e) => return Err(e),
    }
    fs.link(ino, target.parent, &target.name)?;
    Ok(())
}

/// The target of symbolic link `p`.
pub fn readlink_at(at: &At<'_>, p: &[u8]) -> Result<Vec<u8>, Errno> {
    let r = at.resolve(p, false)?;
    Ok(at.fs.readlink(r.existing(&**at.fs)?)?)
}

/// Removes empty directory `p`.
pub fn remove_directory_at(at: &At<'_>, p: &[u8]) -> Result<(), Errno> {
    let r = at.resolve(p, false)?;
    at.writable()?;
    if r.name == b"." {
        return Err(Errno::Inval);
    }
    if r.name == b".." {
        return Err(Errno::Notempty);
    }
    r.existing(&**at.fs)?;
    at.fs.remove_directory(r.parent, &r.name)?;
    Ok(())
}

/// Renames `p` to `to` (in `to_at`).
pub fn rename_at(at: &At<'_>, p: &[u8], to_at: &At<'_>, to: &[u8]) -> Result<(), Errno> {
    let from = at.resolve(p, false)?;
    at.writable()?;
    let target = to_at.resolve(to, false)?;
    to_at.writable()?;
    if !Arc::ptr_eq(at.fs, to_at.fs) {
        return Err(Errno::Xdev);
    }
    if from.is_dot() || target.is_dot() {
        return Err(Errno::Busy);
    }
    let fs = at.fs;
    let ino = from.existing(&**fs)?;
    let is_dir = fs.stat(ino)?.kind == FileKind::Directory;
    if target.trailing_slash && !is_dir {
        return Err(Errno::Notdir);
    }
    match target.node {
        Ok(_) | Err(Errno::Noent) => {}
        Err(e) => return Err(e),
    }
    fs.rename(from.parent, &from.name, target.parent, &target.name)?;
    Ok(())
}

/// Creates symbolic link `p` holding `target`.
pub fn symlink_at(at: &At<'_>, target: &[u8], p: &[u8]) -> Result<(), Errno> {
    path::check(target)?;
    let r = at.resolve(p, false)?;
    at.writable()?;
    // a link that would lead out of every directory is refused at once
    if target.starts_with(b"/") {
        return Err(Errno::Perm);
    }
    match r.node {
        // `name/` of a file: the slash is wrong before the name is taken
        Ok(ino) if r.trailing_slash && at.fs.stat(ino)?.kind != FileKind::Directory => {
            Err(Errno::Notdir)
        }
        Ok(_) => Err(Errno::Exist),
        Err(Errno::Noent) if r.trailing_slash => Err(Errno::Noent),
        Err(Errno::Noent) => {
            at.fs.symlink(r.parent, &r.name, target)?;
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Removes non-directory `p`.
pub fn unlink_file_at(at: &At<'_>, p: &[u8]) -> Result<(), Errno> {
    let r = at.resolve(p, false)?;
    at.writable()?;
    if r.is_dot() {
        return Err(Errno::Isdir);
    }
    let ino = r.node?;
    if r.trailing_slash {
        return Err(if at.fs.stat(ino)?.kind == FileKind::Directory {
            Errno::Isdir
        } else {
            Errno::Notdir
        });
    }
    at.fs.unlink(r.parent, &r.name)?;
    Ok(())
}
