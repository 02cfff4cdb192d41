//! Preview1 path calls: `path_open`, `path_create_directory`,
//! `path_filestat_get`, `path_filestat_set_times`, `path_link`,
//! `path_readlink`, `path_remove_directory`, `path_rename`,
//! `path_symlink` and `path_unlink_file`. Paths are resolved by
//! [`crate::path`], never leaving their directory.

use alloc::sync::Arc;

use super::{
    Args, Outcome, dir_fd, guest_path, resolve_at, time_changes, writable, write_filestat,
};
use crate::abi::*;
use crate::ctx::{Descriptor, Node, OpenFd, WasiCtx};
use crate::errno::Errno;
use crate::memory::GuestMemory;
use crate::services::FileKind;

pub(super) fn path_open(cx: &mut WasiCtx, mem: &mut GuestMemory<'_>, a: &Args<'_>) -> Outcome {
    let (fd, dirflags, ptr, len) = (a.u32(0), a.u32(1), a.u32(2), a.u32(3));
    let oflags = (a.u32(4) & 0xffff) as u16;
    let (want_base, want_inheriting) = (a.u64(5), a.u64(6));
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
    let (fs, r) = resolve_at(cx, mem, fd, needed, dirflags, ptr, len)?;
    if oflags & (OFLAGS_CREAT | OFLAGS_TRUNC) != 0 || want_base & RIGHT_FD_WRITE != 0 {
        writable(&*fs)?;
    }
    let ino = match r.node {
        Ok(_) if oflags & (OFLAGS_CREAT | OFLAGS_EXCL) == OFLAGS_CREAT | OFLAGS_EXCL => {
            return Err(Errno::Exist.into());
        }
        Ok(_) => r.existing(&*fs)?,
        Err(Errno::Noent) if oflags & OFLAGS_CREAT != 0 => {
            if oflags & OFLAGS_DIRECTORY != 0 {
                return Err(Errno::Inval.into());
            }
            if r.trailing_slash {
                return Err(Errno::Isdir.into());
            }
            fs.create_file(r.parent, &r.name)?
        }
        Err(e) => return Err(e.into()),
    };
    let kind = fs.stat(ino)?.kind;
    if kind == FileKind::SymbolicLink {
        // reached only without `symlink_follow`: O_NOFOLLOW's answer
        return Err(Errno::Loop.into());
    }
    if oflags & OFLAGS_DIRECTORY != 0 && kind != FileKind::Directory {
        return Err(Errno::Notdir.into());
    }
    let inherit = cx.fd(fd)?.rights_inheriting;
    let (desc, mask) = if kind == FileKind::Directory {
        // like open(2) of a directory for writing
        let writing = RIGHT_FD_WRITE | RIGHT_FD_ALLOCATE | RIGHT_FD_FILESTAT_SET_SIZE;
        if oflags & OFLAGS_TRUNC != 0 || want_base & writing != 0 {
            return Err(Errno::Isdir.into());
        }
        (Descriptor::Directory(Node::open(fs, ino)), DIRECTORY_RIGHTS)
    } else {
        if oflags & OFLAGS_TRUNC != 0 {
            fs.set_size(ino, 0)?;
        }
        (Descriptor::File(Node::open(fs, ino)), FILE_RIGHTS)
    };
    if fdflags & (FDFLAGS_DSYNC | FDFLAGS_RSYNC | FDFLAGS_SYNC) != 0 {
        return Err(Errno::Notsup.into());
    }
    // Rights as wasmtime grants them: what the program asks for says only
    // whether it reads or writes a file; otherwise the new descriptor gets
    // every right its kind has and its directory passes on (programs,
    // wasmtime's own tests among them, open directories asking for none).
    let _ = want_inheriting;
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
    let (fs, r) = resolve_at(
        cx,
        mem,
        a.u32(0),
        RIGHT_PATH_CREATE_DIRECTORY,
        0,
        a.u32(1),
        a.u32(2),
    )?;
    writable(&*fs)?;
    match r.node {
        Ok(_) => Err(Errno::Exist.into()),
        Err(Errno::Noent) => {
            fs.create_directory(r.parent, &r.name)?;
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

pub(super) fn path_filestat_get(
    cx: &mut WasiCtx,
    mem: &mut GuestMemory<'_>,
    a: &Args<'_>,
) -> Outcome {
    let (fs, r) = resolve_at(
        cx,
        mem,
        a.u32(0),
        RIGHT_PATH_FILESTAT_GET,
        a.u32(1),
        a.u32(2),
        a.u32(3),
    )?;
    let st = fs.stat(r.existing(&*fs)?)?;
    write_filestat(mem, a.u32(4), &st)
}

pub(super) fn path_filestat_set_times(
    cx: &mut WasiCtx,
    mem: &mut GuestMemory<'_>,
    a: &Args<'_>,
) -> Outcome {
    let (atim, mtim) = time_changes(a.u64(4), a.u64(5), a.u32(6))?;
    let (fs, r) = resolve_at(
        cx,
        mem,
        a.u32(0),
        RIGHT_PATH_FILESTAT_SET_TIMES,
        a.u32(1),
        a.u32(2),
        a.u32(3),
    )?;
    writable(&*fs)?;
    fs.set_times(r.existing(&*fs)?, atim, mtim)?;
    Ok(())
}

/// Links are made to what the source path names itself: asking to follow
/// a symbolic link there is `EINVAL`, as under wasmtime.
pub(super) fn path_link(cx: &mut WasiCtx, mem: &mut GuestMemory<'_>, a: &Args<'_>) -> Outcome {
    dir_fd(cx, a.u32(0), RIGHT_PATH_LINK_SOURCE)?;
    dir_fd(cx, a.u32(4), RIGHT_PATH_LINK_TARGET)?;
    if a.u32(1) & LOOKUP_SYMLINK_FOLLOW != 0 {
        return Err(Errno::Inval.into());
    }
    let (fs, from) = resolve_at(
        cx,
        mem,
        a.u32(0),
        RIGHT_PATH_LINK_SOURCE,
        0,
        a.u32(2),
        a.u32(3),
    )?;
    writable(&*fs)?;
    let (to_fs, to) = resolve_at(
        cx,
        mem,
        a.u32(4),
        RIGHT_PATH_LINK_TARGET,
        0,
        a.u32(5),
        a.u32(6),
    )?;
    writable(&*to_fs)?;
    if !Arc::ptr_eq(&fs, &to_fs) {
        return Err(Errno::Xdev.into());
    }
    let ino = from.existing(&*fs)?;
    if fs.stat(ino)?.kind == FileKind::Directory {
        return Err(Errno::Perm.into());
    }
    match to.node {
        Ok(_) => return Err(Errno::Exist.into()),
        Err(Errno::Noent) if to.trailing_slash => return Err(Errno::Noent.into()),
        Err(Errno::Noent) => {}
        Err(e) => return Err(e.into()),
    }
    fs.link(ino, to.parent, &to.name)?;
    Ok(())
}

pub(super) fn path_readlink(cx: &mut WasiCtx, mem: &mut GuestMemory<'_>, a: &Args<'_>) -> Outcome {
    let (fs, r) = resolve_at(
        cx,
        mem,
        a.u32(0),
        RIGHT_PATH_READLINK,
        0,
        a.u32(1),
        a.u32(2),
    )?;
    let target = fs.readlink(r.existing(&*fs)?)?;
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
    let (fs, r) = resolve_at(
        cx,
        mem,
        a.u32(0),
        RIGHT_PATH_REMOVE_DIRECTORY,
        0,
        a.u32(1),
        a.u32(2),
    )?;
    writable(&*fs)?;
    if r.name == b"." {
        return Err(Errno::Inval.into());
    }
    if r.name == b".." {
        return Err(Errno::Notempty.into());
    }
    r.existing(&*fs)?;
    fs.remove_directory(r.parent, &r.name)?;
    Ok(())
}

pub(super) fn path_rename(cx: &mut WasiCtx, mem: &mut GuestMemory<'_>, a: &Args<'_>) -> Outcome {
    let (fs, from) = resolve_at(
        cx,
        mem,
        a.u32(0),
        RIGHT_PATH_RENAME_SOURCE,
        0,
        a.u32(1),
        a.u32(2),
    )?;
    writable(&*fs)?;
    let (to_fs, to) = resolve_at(
        cx,
        mem,
        a.u32(3),
        RIGHT_PATH_RENAME_TARGET,
        0,
        a.u32(4),
        a.u32(5),
    )?;
    writable(&*to_fs)?;
    if !Arc::ptr_eq(&fs, &to_fs) {
        return Err(Errno::Xdev.into());
    }
    if from.is_dot() || to.is_dot() {
        return Err(Errno::Busy.into());
    }
    let ino = from.existing(&*fs)?;
    let is_dir = fs.stat(ino)?.kind == FileKind::Directory;
    if to.trailing_slash && !is_dir {
        return Err(Errno::Notdir.into());
    }
    match to.node {
        Ok(_) | Err(Errno::Noent) => {}
        Err(e) => return Err(e.into()),
    }
    fs.rename(from.parent, &from.name, to.parent, &to.name)?;
    Ok(())
}

pub(super) fn path_symlink(cx: &mut WasiCtx, mem: &mut GuestMemory<'_>, a: &Args<'_>) -> Outcome {
    let target = guest_path(mem, a.u32(0), a.u32(1))?;
    let (fs, r) = resolve_at(cx, mem, a.u32(2), RIGHT_PATH_SYMLINK, 0, a.u32(3), a.u32(4))?;
    writable(&*fs)?;
    // a link that would lead out of every directory is refused at once
    if target.starts_with(b"/") {
        return Err(Errno::Perm.into());
    }
    match r.node {
        // `name/` of a file: the slash is wrong before the name is taken
        Ok(ino) if r.trailing_slash && fs.stat(ino)?.kind != FileKind::Directory => {
            Err(Errno::Notdir.into())
        }
        Ok(_) => Err(Errno::Exist.into()),
        Err(Errno::Noent) if r.trailing_slash => Err(Errno::Noent.into()),
        Err(Errno::Noent) => {
            fs.symlink(r.parent, &r.name, &target)?;
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

pub(super) fn path_unlink_file(
    cx: &mut WasiCtx,
    mem: &mut GuestMemory<'_>,
    a: &Args<'_>,
) -> Outcome {
    let (fs, r) = resolve_at(
        cx,
        mem,
        a.u32(0),
        RIGHT_PATH_UNLINK_FILE,
        0,
        a.u32(1),
        a.u32(2),
    )?;
    writable(&*fs)?;
    if r.is_dot() {
        return Err(Errno::Isdir.into());
    }
    let ino = r.node?;
    if r.trailing_slash {
        return Err(if fs.stat(ino)?.kind == FileKind::Directory {
            Errno::Isdir
        } else {
            Errno::Notdir
        }
        .into());
    }
    fs.unlink(r.parent, &r.name)?;
    Ok(())
}
