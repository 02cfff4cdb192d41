//! `wasi:filesystem`: descriptors of the preopened directories and what is
//! opened through them, over the shared path operations ([`crate::fs_ops`]).

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;

use basalt_runtime::Error;
use basalt_runtime::component::{Linker, Value};

use super::io::{InputStream, OutputStream};
use super::{
    Host, HostResource, Types, boxed, def, iface, ok, one, rep, str_arg, trap, u32_arg, u64_arg,
};
use crate::WasiCtx;
use crate::ctx::{Descriptor, Node};
use crate::errno::Errno;
use crate::fs_ops::{self, At, OpenHow};
use crate::services::{FileKind, FileStat, TimeChange};

/// `descriptor-flags`: read
pub const READ: u32 = 1 << 0;
/// `descriptor-flags`: write
pub const WRITE: u32 = 1 << 1;
/// `descriptor-flags`: file-integrity-sync, data-integrity-sync and
/// requested-write-sync, which Basalt does not offer
pub const SYNC_FLAGS: u32 = 0b111 << 2;
/// `descriptor-flags`: mutate-directory
pub const MUTATE_DIRECTORY: u32 = 1 << 5;

/// An open file or directory.
pub(crate) struct FileDescriptor {
    /// the inode
    pub node: Node,
    /// it is a directory
    pub dir: bool,
    /// its `descriptor-flags`
    pub flags: u32,
}

/// The `error-code` case of an errno.
pub(crate) fn code(e: Errno) -> u32 {
    match e {
        Errno::Acces => 0,
        Errno::Again => 1,
        Errno::Badf => 3,
        Errno::Busy => 4,
        Errno::Exist => 7,
        Errno::Fbig => 8,
        Errno::Ilseq => 9,
        Errno::Inval => 12,
        Errno::Io => 13,
        Errno::Isdir => 14,
        Errno::Loop => 15,
        Errno::Mlink => 16,
        Errno::Nametoolong => 18,
        Errno::Noent => 20,
        Errno::Nomem | Errno::Nobufs | Errno::Mfile => 22,
        Errno::Nospc => 23,
        Errno::Notdir => 24,
        Errno::Notempty => 25,
        Errno::Notsup | Errno::Nosys => 27,
        Errno::Overflow => 30,
        Errno::Perm | Errno::Notcapable => 31,
        Errno::Pipe => 32,
        Errno::Rofs => 33,
        Errno::Spipe => 34,
        Errno::Xdev => 36,
        _ => 13,
    }
}

fn fail(e: Errno) -> Result<Vec<Value>, Error> {
    one(Value::err(Some(Value::Enum(code(e)))))
}

fn kind_code(k: FileKind) -> u32 {
    match k {
        FileKind::BlockDevice => 1,
        FileKind::CharacterDevice => 2,
        FileKind::Directory => 3,
        FileKind::SymbolicLink => 5,
        FileKind::RegularFile => 6,
        FileKind::Socket => 7,
        FileKind::Other => 0,
    }
}

fn datetime(ns: u64) -> Value {
    Value::Record(vec![
        Value::U64(ns / 1_000_000_000),
        Value::U32((ns % 1_000_000_000) as u32),
    ])
}

fn stat_value(st: &FileStat) -> Value {
    Value::Record(vec![
        Value::Enum(kind_code(st.kind)),
        Value::U64(st.nlink),
        Value::U64(st.size),
        Value::some(datetime(st.atim)),
        Value::some(datetime(st.mtim)),
        Value::some(datetime(st.ctim)),
    ])
}

fn desc<'h>(h: &'h Host<'_>, r: u32) -> Result<&'h FileDescriptor, Error> {
    match h.cx.resources.get(r)? {
        HostResource::Descriptor(d) => Ok(d),
        _ => Err(trap("not a descriptor")),
    }
}

/// A regular file of descriptor `r` with `need` flags: else is-directory
/// for a directory and not-permitted for a file opened without them, as
/// wasmtime answers.
fn file<'h>(
    h: &'h Host<'_>,
    r: u32,
    need: u32,
) -> Result<Result<&'h FileDescriptor, Errno>, Error> {
    let d = desc(h, r)?;
    Ok(if d.dir {
        Err(Errno::Isdir)
    } else if d.flags & need != need {
        Err(Errno::Perm)
    } else {
        Ok(d)
    })
}

fn dir_at<'h>(h: &'h Host<'_>, r: u32) -> Result<Result<(At<'h>, u32), Errno>, Error> {
    let d = desc(h, r)?;
    Ok(if d.dir {
        Ok((
            At {
                fs: &d.node.fs,
                dir: d.node.ino,
            },
            d.flags,
        ))
    } else {
        Err(Errno::Notdir)
    })
}

/// [`dir_at`] for a change inside the directory: a descriptor without
/// `mutate-directory` gives `not-permitted`.
fn mutable_dir_at<'h>(h: &'h Host<'_>, r: u32) -> Result<Result<At<'h>, Errno>, Error> {
    Ok(dir_at(h, r)?.and_then(|(at, fl)| {
        if fl & MUTATE_DIRECTORY == 0 {
            Err(Errno::Perm)
        } else {
            Ok(at)
        }
    }))
}

fn path(args: &[Value], i: usize) -> Result<Vec<u8>, Error> {
    Ok(str_arg(args, i)?.as_bytes().to_vec())
}

fn time_change(v: Option<&Value>) -> Result<TimeChange, Error> {
    match v {
        Some(Value::Variant(0, None)) => Ok(TimeChange::Keep),
        Some(Value::Variant(1, None)) => Ok(TimeChange::Now),
        Some(Value::Variant(2, Some(dt))) => match &**dt {
            Value::Record(f) => match (f.first(), f.get(1)) {
                (Some(Value::U64(s)), Some(Value::U32(ns))) => Ok(TimeChange::At(
                    s.saturating_mul(1_000_000_000)
                        .saturating_add(u64::from(*ns)),
                )),
                _ => Err(trap("new-timestamp of the wrong type")),
            },
            _ => Err(trap("new-timestamp of the wrong type")),
        },
        _ => Err(trap("new-timestamp of the wrong type")),
    }
}

fn unit(r: Result<(), Errno>) -> Result<Vec<Value>, Error> {
    match r {
        Ok(()) => ok(None),
        Err(e) => fail(e),
    }
}

fn new_descriptor(h: &mut Host<'_>, d: FileDescriptor) -> Result<Value, Error> {
    let r = h.cx.resources.push(HostResource::Descriptor(d), None)?;
    Ok(Types::own(&h.ty.descriptor, r))
}

fn stream(h: &mut Host<'_>, res: HostResource, input: bool) -> Result<Vec<Value>, Error> {
    let r = h.cx.resources.push(res, None)?;
    let ty = if input { &h.ty.input } else { &h.ty.output };
    ok(Some(Types::own(ty, r)))
}

fn open_at(h: &mut Host<'_>, a: &[Value]) -> Result<Vec<Value>, Error> {
    let (r, path_flags, p) = (rep(a, 0)?, u32_arg(a, 1)?, path(a, 2)?);
    let (open_flags, flags) = (u32_arg(a, 3)?, u32_arg(a, 4)?);
    if flags & SYNC_FLAGS != 0 {
        // synchronous writes are not offered (preview1's FDFLAGS_SYNC: ENOTSUP)
        return fail(Errno::Notsup);
    }
    let how = OpenHow {
        create: open_flags & 1 != 0,
        directory: open_flags & 2 != 0,
        exclusive: open_flags & 4 != 0,
        truncate: open_flags & 8 != 0,
        write: flags & WRITE != 0,
    };
    let opened = match dir_at(h, r)? {
        Err(e) => Err(e),
        Ok((at, parent_flags)) => {
            let mutates = how.create || how.truncate || flags & (WRITE | MUTATE_DIRECTORY) != 0;
            if mutates && parent_flags & MUTATE_DIRECTORY == 0 {
                Err(Errno::Perm)
            } else {
                fs_ops::open_at(&at, &p, path_flags & 1 != 0, how)
                    .map(|(ino, kind)| (at.fs.clone(), ino, kind, parent_flags))
            }
        }
    };
    match opened {
        Err(e) => fail(e),
        Ok((fs, ino, kind, parent_flags)) => {
            let dir = kind == FileKind::Directory;
            // A directory has what its parent may do (as wasmtime's
            // directory permissions pass on); a file what was asked for.
            let flags = if dir {
                parent_flags & (READ | MUTATE_DIRECTORY)
            } else {
                flags & !MUTATE_DIRECTORY
            };
            let node = Node::open(fs, ino);
            let v = new_descriptor(h, FileDescriptor { node, dir, flags })?;
            ok(Some(v))
        }
    }
}

fn read_directory(h: &mut Host<'_>, r: u32) -> Result<Vec<Value>, Error> {
    let d = desc(h, r)?;
    if !d.dir {
        return fail(Errno::Notdir);
    }
    let mut entries = VecDeque::new();
    let mut cookie = 0;
    loop {
        let batch = match d.node.fs.read_dir(d.node.ino, cookie, 256) {
            Ok(b) => b,
            Err(e) => return fail(e.into()),
        };
        let Some(last) = batch.last() else {
            break;
        };
        cookie = last.next;
        for e in batch {
            if e.name != b"." && e.name != b".." {
                entries.push_back((
                    kind_code(e.kind) as u8,
                    String::from_utf8_lossy(&e.name).into_owned(),
                ));
            }
        }
    }
    let r =
        h.cx.resources
            .push(HostResource::DirEntries(entries), None)?;
    ok(Some(Types::own(&h.ty.dir_entries, r)))
}

fn hash(st: &FileStat) -> Value {
    let mix = |x: u64| {
        let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    Value::Record(vec![
        Value::U64(mix(st.ino ^ mix(st.dev))),
        Value::U64(mix(st.dev)),
    ])
}

/// New descriptors of the preopened directories, with their names.
fn preopens(h: &mut Host<'_>) -> Result<Vec<Value>, Error> {
    let dirs: Vec<(Node, Vec<u8>)> =
        h.cx.fds
            .values()
            .filter_map(|fd| match (&fd.desc, &fd.preopen) {
                (Descriptor::Directory(n), Some(name)) => {
                    Some((Node::open(n.fs.clone(), n.ino), name.clone()))
                }
                _ => None,
            })
            .collect();
    let mut list = Vec::new();
    for (node, name) in dirs {
        // A read-only preopen (`--dir-ro`) lets nothing in it change.
        let flags = if node.fs.read_only() {
            READ
        } else {
            READ | MUTATE_DIRECTORY
        };
        let d = new_descriptor(
            h,
            FileDescriptor {
                node,
                dir: true,
                flags,
            },
        )?;
        list.push(Value::Tuple(vec![
            d,
            Value::String(String::from_utf8_lossy(&name).into_owned()),
        ]));
    }
    one(Value::List(list))
}

pub(super) fn add<T: 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut WasiCtx,
    types: &Arc<Types>,
) {
    let mut i = linker.instance(&iface("filesystem", "preopens"));
    def(&mut i, "get-directories", get, types, |h, _| preopens(h));

    let mut i = linker.instance(&iface("filesystem", "types"));
    def(
        &mut i,
        "[method]descriptor.read-via-stream",
        get,
        types,
        |h, a| {
            let (r, off) = (rep(a, 0)?, u64_arg(a, 1)?);
            let node = match file(h, r, READ)? {
                Ok(d) => Node::open(d.node.fs.clone(), d.node.ino),
                Err(e) => return fail(e),
            };
            stream(
                h,
                HostResource::Input(InputStream::File { node, pos: off }),
                true,
            )
        },
    );
    def(
        &mut i,
        "[method]descriptor.write-via-stream",
        get,
        types,
        |h, a| {
            let (r, off) = (rep(a, 0)?, u64_arg(a, 1)?);
            let node = match file(h, r, WRITE)? {
                Ok(d) => Node::open(d.node.fs.clone(), d.node.ino),
                Err(e) => return fail(e),
            };
            stream(
                h,
                HostResource::Output(OutputStream::File {
                    node,
                    pos: Some(off),
                }),
                false,
            )
        },
    );
    def(
        &mut i,
        "[method]descriptor.append-via-stream",
        get,
        types,
        |h, a| {
            let node = match file(h, rep(a, 0)?, WRITE)? {
                Ok(d) => Node::open(d.node.fs.clone(), d.node.ino),
                Err(e) => return fail(e),
            };
            stream(
                h,
                HostResource::Output(OutputStream::File { node, pos: None }),
                false,
            )
        },
    );
    def(&mut i, "[method]descriptor.advise", get, types, |h, a| {
        unit(file(h, rep(a, 0)?, 0)?.map(|_| ()))
    });
    for name in ["sync-data", "sync"] {
        let f: super::HostCall = |h, a| {
            let d = desc(h, rep(a, 0)?)?;
            unit(d.node.fs.sync(d.node.ino).map_err(Errno::from))
        };
        def(
            &mut i,
            &alloc::format!("[method]descriptor.{name}"),
            get,
            types,
            f,
        );
    }
    def(
        &mut i,
        "[method]descriptor.get-flags",
        get,
        types,
        |h, a| {
            let d = desc(h, rep(a, 0)?)?;
            ok(Some(Value::Flags(d.flags)))
        },
    );
    def(&mut i, "[method]descriptor.get-type", get, types, |h, a| {
        let d = desc(h, rep(a, 0)?)?;
        match d.node.fs.stat(d.node.ino) {
            Ok(st) => ok(Some(Value::Enum(kind_code(st.kind)))),
            Err(e) => fail(e.into()),
        }
    });
    def(&mut i, "[method]descriptor.set-size", get, types, |h, a| {
        let size = u64_arg(a, 1)?;
        unit(match file(h, rep(a, 0)?, 0)? {
            // ftruncate(2) of a file opened for reading only: EINVAL
            Ok(d) if d.flags & WRITE == 0 => Err(Errno::Inval),
            Ok(d) => d.node.fs.set_size(d.node.ino, size).map_err(Errno::from),
            Err(e) => Err(e),
        })
    });
    def(
        &mut i,
        "[method]descriptor.set-times",
        get,
        types,
        |h, a| {
            let (at, mt) = (time_change(a.get(1))?, time_change(a.get(2))?);
            let d = desc(h, rep(a, 0)?)?;
            unit(d.node.fs.set_times(d.node.ino, at, mt).map_err(Errno::from))
        },
    );
    def(&mut i, "[method]descriptor.read", get, types, |h, a| {
        let (len, off) = (u64_arg(a, 1)?, u64_arg(a, 2)?);
        let d = match file(h, rep(a, 0)?, READ)? {
            Ok(d) => d,
            Err(e) => return fail(e),
        };
        let mut buf = vec![0u8; len.min(super::io::READ_MAX) as usize];
        match d.node.fs.read(d.node.ino, off, &mut buf) {
            Ok(n) => {
                let eof = n < buf.len() || buf.is_empty();
                buf.truncate(n);
                ok(Some(Value::Tuple(vec![
                    Value::Bytes(buf),
                    Value::Bool(eof),
                ])))
            }
            Err(e) => fail(e.into()),
        }
    });
    def(&mut i, "[method]descriptor.write", get, types, |h, a| {
        let (data, off) = (super::bytes_arg(a, 1)?, u64_arg(a, 2)?);
        let d = match file(h, rep(a, 0)?, WRITE)? {
            Ok(d) => d,
            Err(e) => return fail(e),
        };
        match d.node.fs.write(d.node.ino, off, &data) {
            Ok(n) => ok(Some(Value::U64(n as u64))),
            Err(e) => fail(e.into()),
        }
    });
    def(
        &mut i,
        "[method]descriptor.read-directory",
        get,
        types,
        |h, a| read_directory(h, rep(a, 0)?),
    );
    def(
        &mut i,
        "[method]descriptor.create-directory-at",
        get,
        types,
        |h, a| {
            let p = path(a, 1)?;
            unit(mutable_dir_at(h, rep(a, 0)?)?.and_then(|at| fs_ops::create_directory_at(&at, &p)))
        },
    );
    def(&mut i, "[method]descriptor.stat", get, types, |h, a| {
        let d = desc(h, rep(a, 0)?)?;
        match d.node.fs.stat(d.node.ino) {
            Ok(st) => ok(Some(stat_value(&st))),
            Err(e) => fail(e.into()),
        }
    });
    def(&mut i, "[method]descriptor.stat-at", get, types, |h, a| {
        let (follow, p) = (u32_arg(a, 1)? & 1 != 0, path(a, 2)?);
        match dir_at(h, rep(a, 0)?)?.and_then(|(at, _)| fs_ops::stat_at(&at, &p, follow)) {
            Ok(st) => ok(Some(stat_value(&st))),
            Err(e) => fail(e),
        }
    });
    def(
        &mut i,
        "[method]descriptor.set-times-at",
        get,
        types,
        |h, a| {
            let (follow, p) = (u32_arg(a, 1)? & 1 != 0, path(a, 2)?);
            let (at_, mt) = (time_change(a.get(3))?, time_change(a.get(4))?);
            unit(
                mutable_dir_at(h, rep(a, 0)?)?
                    .and_then(|at| fs_ops::set_times_at(&at, &p, follow, at_, mt)),
            )
        },
    );
    def(&mut i, "[method]descriptor.link-at", get, types, |h, a| {
        let (follow, p) = (u32_arg(a, 1)? & 1 != 0, path(a, 2)?);
        let (to_r, to) = (rep(a, 3)?, path(a, 4)?);
        let from = mutable_dir_at(h, rep(a, 0)?)?;
        let target = mutable_dir_at(h, to_r)?;
        unit(
            from.and_then(|at| {
                target.and_then(|to_at| fs_ops::link_at(&at, &p, follow, &to_at, &to))
            }),
        )
    });
    def(&mut i, "[method]descriptor.open-at", get, types, open_at);
    def(
        &mut i,
        "[method]descriptor.readlink-at",
        get,
        types,
        |h, a| {
            let p = path(a, 1)?;
            match dir_at(h, rep(a, 0)?)?.and_then(|(at, _)| fs_ops::readlink_at(&at, &p)) {
                Ok(t) => ok(Some(Value::String(
                    String::from_utf8_lossy(&t).into_owned(),
                ))),
                Err(e) => fail(e),
            }
        },
    );
    def(
        &mut i,
        "[method]descriptor.remove-directory-at",
        get,
        types,
        |h, a| {
            let p = path(a, 1)?;
            unit(mutable_dir_at(h, rep(a, 0)?)?.and_then(|at| fs_ops::remove_directory_at(&at, &p)))
        },
    );
    def(
        &mut i,
        "[method]descriptor.rename-at",
        get,
        types,
        |h, a| {
            let (p, to_r, to) = (path(a, 1)?, rep(a, 2)?, path(a, 3)?);
            let from = mutable_dir_at(h, rep(a, 0)?)?;
            let target = mutable_dir_at(h, to_r)?;
            unit(
                from.and_then(|at| {
                    target.and_then(|to_at| fs_ops::rename_at(&at, &p, &to_at, &to))
                }),
            )
        },
    );
    def(
        &mut i,
        "[method]descriptor.symlink-at",
        get,
        types,
        |h, a| {
            let (target, p) = (path(a, 1)?, path(a, 2)?);
            unit(mutable_dir_at(h, rep(a, 0)?)?.and_then(|at| fs_ops::symlink_at(&at, &target, &p)))
        },
    );
    def(
        &mut i,
        "[method]descriptor.unlink-file-at",
        get,
        types,
        |h, a| {
            let p = path(a, 1)?;
            unit(mutable_dir_at(h, rep(a, 0)?)?.and_then(|at| fs_ops::unlink_file_at(&at, &p)))
        },
    );
    def(
        &mut i,
        "[method]descriptor.is-same-object",
        get,
        types,
        |h, a| {
            let x = desc(h, rep(a, 0)?)?;
            let y = desc(h, rep(a, 1)?)?;
            one(Value::Bool(
                Arc::ptr_eq(&x.node.fs, &y.node.fs) && x.node.ino == y.node.ino,
            ))
        },
    );
    def(
        &mut i,
        "[method]descriptor.metadata-hash",
        get,
        types,
        |h, a| {
            let d = desc(h, rep(a, 0)?)?;
            match d.node.fs.stat(d.node.ino) {
                Ok(st) => ok(Some(hash(&st))),
                Err(e) => fail(e.into()),
            }
        },
    );
    def(
        &mut i,
        "[method]descriptor.metadata-hash-at",
        get,
        types,
        |h, a| {
            let (follow, p) = (u32_arg(a, 1)? & 1 != 0, path(a, 2)?);
            match dir_at(h, rep(a, 0)?)?.and_then(|(at, _)| fs_ops::stat_at(&at, &p, follow)) {
                Ok(st) => ok(Some(hash(&st))),
                Err(e) => fail(e),
            }
        },
    );
    def(
        &mut i,
        "[method]directory-entry-stream.read-directory-entry",
        get,
        types,
        |h, a| match h.cx.resources.get_mut(rep(a, 0)?)? {
            HostResource::DirEntries(q) => match q.pop_front() {
                Some((kind, name)) => ok(Some(Value::some(Value::Record(vec![
                    Value::Enum(u32::from(kind)),
                    Value::String(name),
                ])))),
                None => ok(Some(Value::Option(None))),
            },
            _ => Err(trap("not a directory-entry-stream")),
        },
    );
    def(
        &mut i,
        "filesystem-error-code",
        get,
        types,
        |h, a| match h.cx.resources.get(rep(a, 0)?)? {
            HostResource::Error(_, Some(e)) => one(Value::some(Value::Enum(code(*e)))),
            HostResource::Error(_, None) | HostResource::HttpError(_) => one(Value::Option(None)),
            _ => Err(trap("not an error")),
        },
    );
    let _ = boxed;
}
