//! Preview1 path calls: `path_open`, `path_create_directory`,
//! `path_filestat_get`, `path_filestat_set_times`, `path_link`,
//! `path_readlink`, `path_remove_directory`, `path_rename`,
//! `path_symlink` and `path_unlink_file`. Each checks the descriptor's
//! rights, decodes its arguments and calls the path operation WASI 0.2
//! shares ([`crate::fs_ops`]).

use alloc::sync::Arc;
use alloc::vec::Vec;

use super::{Args, Outcome, dir_fd, guest_path, time_changes, write_filestat};
use crate::abi::*;
use crate::ctx::{Descriptor, Node, OpenFd, WasiCtx};
use crate::errno::Errno;
use crate::fs_ops::{self, At, OpenHow};
use crate::memory::GuestMemory;
use crate::services::{FileKind, FileSystem, Inode};

/// The directory of descriptor `fd` (which must have `rights`).
fn dir_of(cx: &WasiCtx, fd: u32, rights: u64) -> Result<(Arc<dyn FileSystem>, Inode), Errno> {
    let d = dir_fd(cx, fd, rights)?;
    Ok((d.fs.clone(), d.ino))
}

/// A path argument and the directory it is relative to.
struct PathAt {
    fs: Arc<dyn FileSystem>,
    dir: Inode,
    path: Vec<u8>,
}

impl PathAt {
    /// The directory descriptor `fd` (which must have `rights`), then the
    /// path at `ptr`, `len` in guest memory, in that order of errors.
    fn read(
        cx: &WasiCtx,
        mem: &GuestMemory<'_>,
        fd: u32,
        rights: u64,
        ptr: u32,
        len: u32,
    ) -> Result<PathAt, Errno> {
        let (fs, dir) = dir_of(cx, fd, rights)?;
        let path = guest_path(mem, ptr, len)?;
        Ok(PathAt { fs, dir, path })
    }

    fn at(&self) -> At<'_> {
        At {
            fs: &self.fs,
            dir: self.dir,
        }
    }
}

fn follows(lookupflags: u32) -> bool {
    lookupflags & LOOKUP_SYMLINK_FOLLOW != 0
}

pub(super) fn path_open(cx: &mut WasiCtx, mem: &mut GuestMemory<'_>, a: &Args<'_>) -> Outcome {
    let (fd, dirflags, ptr, len) = (a.u32(0), a.u32(1), a.u32(2), a.u32(3));
    let oflags = (a.u32(4) & 0xffff) as u16;
    // The inheriting rights the program asks for (argument 6) are not
    // read: see the rights below.
    let want_base = a.u64(5);
    let fdflags = (a.u32(7) & 0xffff) as u16;
    let mut needed = RIGHT_PATH_OPEN;
    if oflags & OFLAGS_CREAT != 0 {
        needed |= RIGHT_PATH_CREATE_FILE;
    }
    if oflags & OFLAGS_TRUNC != 0 {
        needed |= RIGHT_PATH_FILESTAT_SET_SIZE;
    }
    if oflags & !(OFLAGS_CREAT | OFLAGS_DIRECTORY | OFLAGS_EXCL | OFLAGS_TRUNC) != 0 {
        return Err(Errno::Inval.into());
    }
    let (fs, dir) = dir_of(cx, fd, needed)?;
    let p = guest_path(mem, ptr, len)?;
    // like open(2) of a directory for writing
    let writing = RIGHT_FD_WRITE | RIGHT_FD_ALLOCATE | RIGHT_FD_FILESTAT_SET_SIZE;
    let how = OpenHow {
        create: oflags & OFLAGS_CREAT != 0,
        directory: oflags & OFLAGS_DIRECTORY != 0,
        exclusive: oflags & OFLAGS_EXCL != 0,
        truncate: oflags & OFLAGS_TRUNC != 0,
        write: want_base & writing != 0,
    };
    let (ino, kind) = fs_ops::open_at(&At { fs: &fs, dir }, &p, follows(dirflags), how)?;
    let inherit = cx.fd(fd)?.rights_inheriting;
    let (desc, mask) = if kind == FileKind::Directory {
        (Descriptor::Directory(Node::open(fs, ino)), DIRECTORY_RIGHTS)
    } else {
        (Descriptor::File(Node::open(fs, ino)), FILE_RIGHTS)
    };
    if fdflags & (FDFLAGS_DSYNC | FDFLAGS_RSYNC | FDFLAGS_SYNC) != 0 {
        return Err(Errno::Notsup.into());
    }
    // Rights as wasmtime grants them: what the program asks for says only
    // whether it reads or writes a file; otherwise the new descriptor gets
    // every right its kind has and its directory passes on (programs,
    // wasmtime's own tests among them, open directories asking for none),
    // and the inheriting rights it asks for are ignored, as wasmtime
    // ignores them.
    let reads = want_base & (RIGHT_FD_READ | RIGHT_FD_READDIR) != 0;
    let writes = want_base
        & (RIGHT_FD_DATASYNC | RIGHT_FD_WRITE | RIGHT_FD_ALLOCATE | RIGHT_FD_FILESTAT_SET_SIZE)
        != 0;
    let mut mask = mask;
    if mask == FILE_RIGHTS {
        if !reads {
            mask &= !RIGHT_FD_READ;
        }
        if !writes {
            mask &= !(RIGHT_FD_WRITE
                | RIGHT_FD_DATASYNC
                | RIGHT_FD_ALLOCATE
                | RIGHT_FD_FILESTAT_SET_SIZE);
        }
    }
    let new = cx.insert(OpenFd {
        desc,
        rights_base: inherit & mask,
        rights_inheriting: inherit,
        flags: fdflags & (FDFLAGS_APPEND | FDFLAGS_NONBLOCK),
        position: 0,
        preopen: None,
    })?;
    if let Err(e) = mem.write_u32(a.u32(8), new) {
        cx.fds.remove(&new);
        return Err(e.into());
    }
    Ok(())
}

pub(super) fn path_create_directory(
    cx: &mut WasiCtx,
    mem: &mut GuestMemory<'_>,
    a: &Args<'_>,
) -> Outcome {
    let p = PathAt::read(
        cx,
        mem,
        a.u32(0),
        RIGHT_PATH_CREATE_DIRECTORY,
        a.u32(1),
        a.u32(2),
    )?;
    fs_ops::create_directory_at(&p.at(), &p.path)?;
    Ok(())
}

pub(super) fn path_filestat_get(
    cx: &mut WasiCtx,
    mem: &mut GuestMemory<'_>,
    a: &Args<'_>,
) -> Outcome {
    let p = PathAt::read(
        cx,
        mem,
        a.u32(0),
        RIGHT_PATH_FILESTAT_GET,
        a.u32(2),
        a.u32(3),
    )?;
    let st = fs_ops::stat_at(&p.at(), &p.path, follows(a.u32(1)))?;
    write_filestat(mem, a.u32(4), &st)
}

pub(super) fn path_filestat_set_times(
    cx: &mut WasiCtx,
    mem: &mut GuestMemory<'_>,
    a: &Args<'_>,
) -> Outcome {
    let (atim, mtim) = time_changes(a.u64(4), a.u64(5), a.u32(6))?;
    let p = PathAt::read(
        cx,
        mem,
        a.u32(0),
        RIGHT_PATH_FILESTAT_SET_TIMES,
        a.u32(2),
        a.u32(3),
    )?;
    fs_ops::set_times_at(&p.at(), &p.path, follows(a.u32(1)), atim, mtim)?;
    Ok(())
}

pub(super) fn path_link(cx: &mut WasiCtx, mem: &mut GuestMemory<'_>, a: &Args<'_>) -> Outcome {
    let (fs, dir) = dir_of(cx, a.u32(0), RIGHT_PATH_LINK_SOURCE)?;
    let (to_fs, to_dir) = dir_of(cx, a.u32(4), RIGHT_PATH_LINK_TARGET)?;
    let p = guest_path(mem, a.u32(2), a.u32(3))?;
    let to = guest_path(mem, a.u32(5), a.u32(6))?;
    fs_ops::link_at(
        &At { fs: &fs, dir },
        &p,
        follows(a.u32(1)),
        &At {
            fs: &to_fs,
            dir: to_dir,
        },
        &to,
    )?;
    Ok(())
}

pub(super) fn path_readlink(cx: &mut WasiCtx, mem: &mut GuestMemory<'_>, a: &Args<'_>) -> Outcome {
    let p = PathAt::read(cx, mem, a.u32(0), RIGHT_PATH_READLINK, a.u32(1), a.u32(2))?;
    let target = fs_ops::readlink_at(&p.at(), &p.path)?;
    let n = target.len().min(a.u32(4) as usize);
    mem.write_bytes(a.u32(3), &target[..n])?;
    mem.write_u32(a.u32(5), n as u32)?;
    Ok(())
}

pub(super) fn path_remove_directory(
    cx: &mut WasiCtx,
    mem: &mut GuestMemory<'_>,
    a: &Args<'_>,
) -> Outcome {
    let p = PathAt::read(
        cx,
        mem,
        a.u32(0),
        RIGHT_PATH_REMOVE_DIRECTORY,
        a.u32(1),
        a.u32(2),
    )?;
    fs_ops::remove_directory_at(&p.at(), &p.path)?;
    Ok(())
}

pub(super) fn path_rename(cx: &mut WasiCtx, mem: &mut GuestMemory<'_>, a: &Args<'_>) -> Outcome {
    let (fs, dir) = dir_of(cx, a.u32(0), RIGHT_PATH_RENAME_SOURCE)?;
    let (to_fs, to_dir) = dir_of(cx, a.u32(3), RIGHT_PATH_RENAME_TARGET)?;
    let p = guest_path(mem, a.u32(1), a.u32(2))?;
    let to = guest_path(mem, a.u32(4), a.u32(5))?;
    fs_ops::rename_at(
        &At { fs: &fs, dir },
        &p,
        &At {
            fs: &to_fs,
            dir: to_dir,
        },
        &to,
    )?;
    Ok(())
}

pub(super) fn path_symlink(cx: &mut WasiCtx, mem: &mut GuestMemory<'_>, a: &Args<'_>) -> Outcome {
    let target = guest_path(mem, a.u32(0), a.u32(1))?;
    let p = PathAt::read(cx, mem, a.u32(2), RIGHT_PATH_SYMLINK, a.u32(3), a.u32(4))?;
    fs_ops::symlink_at(&p.at(), &target, &p.path)?;
    Ok(())
}

pub(super) fn path_unlink_file(
    cx: &mut WasiCtx,
    mem: &mut GuestMemory<'_>,
    a: &Args<'_>,
) -> Outcome {
    let p = PathAt::read(
        cx,
        mem,
        a.u32(0),
        RIGHT_PATH_UNLINK_FILE,
        a.u32(1),
        a.u32(2),
    )?;
    fs_ops::unlink_file_at(&p.at(), &p.path)?;
    Ok(())
}
