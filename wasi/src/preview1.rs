//! The `wasi_snapshot_preview1` functions and their registration.
//!
//! Each function reads its arguments, checks every guest pointer through
//! [`GuestMemory`] and answers with an [`Errno`]. Functions this version
//! does not implement return [`Errno::Nosys`] after checking their
//! descriptor, and are listed in [`UNSUPPORTED`] (and in the README).

use alloc::string::String;
use alloc::vec::Vec;

use basalt_runtime::{Caller, Error, Extern, FuncType, Linker, Val, ValType};

use crate::abi::*;
use crate::ctx::{Descriptor, Node, OpenFd, WasiCtx};
use crate::errno::Errno;
use crate::memory::GuestMemory;
use crate::path::{self};
use crate::services::{FileStat, TimeChange};

mod paths;
mod poll;
mod sockets;

/// The import module name of WASI preview 1.
pub const MODULE: &str = "wasi_snapshot_preview1";

/// What this version does not support, and the errno it answers with.
pub const UNSUPPORTED: &[&str] = &[
    "fd_fdstat_set_flags on the standard streams (flags other than 0): ENOSYS",
    "fd_fdstat_set_flags and path_open with dsync, rsync or sync: ENOTSUP",
    "fd_filestat_set_times on the standard streams: ENOSYS",
    "fd_allocate: ENOTSUP (as wasmtime)",
    "proc_raise: ENOSYS",
];

/// How a call ends other than with success.
enum Failure {
    /// The function failed with this errno.
    Errno(Errno),
    /// `proc_exit`: the program ends with this code.
    Exit(i32),
    /// The call traps with this message (a host limit, as wasmtime's).
    Trap(String),
}

impl From<Errno> for Failure {
    fn from(e: Errno) -> Self {
        Failure::Errno(e)
    }
}

impl From<crate::services::FsError> for Failure {
    fn from(e: crate::services::FsError) -> Self {
        Failure::Errno(e.into())
    }
}

type Outcome = Result<(), Failure>;

/// The raw arguments of one call.
struct Args<'a>(&'a [Val]);

impl Args<'_> {
    fn u32(&self, i: usize) -> u32 {
        match self.0[i] {
            Val::I32(v) => v as u32,
            _ => 0,
        }
    }
    fn u64(&self, i: usize) -> u64 {
        match self.0[i] {
            Val::I64(v) => v as u64,
            _ => 0,
        }
    }
}

type Handler = fn(&mut WasiCtx, &mut GuestMemory<'_>, &Args<'_>) -> Outcome;

const I: ValType = ValType::I32;
const L: ValType = ValType::I64;

/// One function: name, parameter types, implementation.
struct Function {
    name: &'static str,
    params: &'static [ValType],
    handler: Handler,
}

const FUNCTIONS: &[Function] = &[
    Function {
        name: "args_get",
        params: &[I, I],
        handler: args_get,
    },
    Function {
        name: "args_sizes_get",
        params: &[I, I],
        handler: args_sizes_get,
    },
    Function {
        name: "environ_get",
        params: &[I, I],
        handler: environ_get,
    },
    Function {
        name: "environ_sizes_get",
        params: &[I, I],
        handler: environ_sizes_get,
    },
    Function {
        name: "clock_res_get",
        params: &[I, I],
        handler: clock_res_get,
    },
    Function {
        name: "clock_time_get",
        params: &[I, L, I],
        handler: clock_time_get,
    },
    Function {
        name: "fd_advise",
        params: &[I, L, L, I],
        handler: fd_advise,
    },
    Function {
        name: "fd_allocate",
        params: &[I, L, L],
        handler: fd_allocate,
    },
    Function {
        name: "fd_close",
        params: &[I],
        handler: fd_close,
    },
    Function {
        name: "fd_datasync",
        params: &[I],
        handler: fd_datasync,
    },
    Function {
        name: "fd_fdstat_get",
        params: &[I, I],
        handler: fd_fdstat_get,
    },
    Function {
        name: "fd_fdstat_set_flags",
        params: &[I, I],
        handler: fd_fdstat_set_flags,
    },
    Function {
        name: "fd_fdstat_set_rights",
        params: &[I, L, L],
        handler: fd_fdstat_set_rights,
    },
    Function {
        name: "fd_filestat_get",
        params: &[I, I],
        handler: fd_filestat_get,
    },
    Function {
        name: "fd_filestat_set_size",
        params: &[I, L],
        handler: fd_filestat_set_size,
    },
    Function {
        name: "fd_filestat_set_times",
        params: &[I, L, L, I],
        handler: fd_filestat_set_times,
    },
    Function {
        name: "fd_pread",
        params: &[I, I, I, L, I],
        handler: fd_pread,
    },
    Function {
        name: "fd_prestat_get",
        params: &[I, I],
        handler: fd_prestat_get,
    },
    Function {
        name: "fd_prestat_dir_name",
        params: &[I, I, I],
        handler: fd_prestat_dir_name,
    },
    Function {
        name: "fd_pwrite",
        params: &[I, I, I, L, I],
        handler: fd_pwrite,
    },
    Function {
        name: "fd_read",
        params: &[I, I, I, I],
        handler: fd_read,
    },
    Function {
        name: "fd_readdir",
        params: &[I, I, I, L, I],
        handler: fd_readdir,
    },
    Function {
        name: "fd_renumber",
        params: &[I, I],
        handler: fd_renumber,
    },
    Function {
        name: "fd_seek",
        params: &[I, L, I, I],
        handler: fd_seek,
    },
    Function {
        name: "fd_sync",
        params: &[I],
        handler: fd_sync,
    },
    Function {
        name: "fd_tell",
        params: &[I, I],
        handler: fd_tell,
    },
    Function {
        name: "fd_write",
        params: &[I, I, I, I],
        handler: fd_write,
    },
    Function {
        name: "path_create_directory",
        params: &[I, I, I],
        handler: paths::path_create_directory,
    },
    Function {
        name: "path_filestat_get",
        params: &[I, I, I, I, I],
        handler: paths::path_filestat_get,
    },
    Function {
        name: "path_filestat_set_times",
        params: &[I, I, I, I, L, L, I],
        handler: paths::path_filestat_set_times,
    },
    Function {
        name: "path_link",
        params: &[I, I, I, I, I, I, I],
        handler: paths::path_link,
    },
    Function {
        name: "path_open",
        params: &[I, I, I, I, I, L, L, I, I],
        handler: paths::path_open,
    },
    Function {
        name: "path_readlink",
        params: &[I, I, I, I, I, I],
        handler: paths::path_readlink,
    },
    Function {
        name: "path_remove_directory",
        params: &[I, I, I],
        handler: paths::path_remove_directory,
    },
    Function {
        name: "path_rename",
        params: &[I, I, I, I, I, I],
        handler: paths::path_rename,
    },
    Function {
        name: "path_symlink",
        params: &[I, I, I, I, I],
        handler: paths::path_symlink,
    },
    Function {
        name: "path_unlink_file",
        params: &[I, I, I],
        handler: paths::path_unlink_file,
    },
    Function {
        name: "poll_oneoff",
        params: &[I, I, I, I],
        handler: poll::poll_oneoff,
    },
    Function {
        name: "proc_exit",
        params: &[I],
        handler: proc_exit,
    },
    Function {
        name: "proc_raise",
        params: &[I],
        handler: proc_raise,
    },
    Function {
        name: "sched_yield",
        params: &[],
        handler: sched_yield,
    },
    Function {
        name: "random_get",
        params: &[I, I],
        handler: random_get,
    },
    Function {
        name: "sock_accept",
        params: &[I, I, I],
        handler: sockets::sock_accept,
    },
    Function {
        name: "sock_recv",
        params: &[I, I, I, I, I, I],
        handler: sockets::sock_recv,
    },
    Function {
        name: "sock_send",
        params: &[I, I, I, I, I],
        handler: sockets::sock_send,
    },
    Function {
        name: "sock_shutdown",
        params: &[I, I],
        handler: sockets::sock_shutdown,
    },
];

/// The names of every `wasi_snapshot_preview1` function Basalt defines.
pub fn function_names() -> impl Iterator<Item = &'static str> {
    FUNCTIONS.iter().map(|f| f.name)
}

/// Defines every `wasi_snapshot_preview1` function in `linker`; `get`
/// finds the [`WasiCtx`] inside the store's data.
pub fn add_to_linker<T: 'static>(linker: &mut Linker<T>, get: fn(&mut T) -> &mut WasiCtx) {
    for f in FUNCTIONS {
        let results: &[ValType] = if f.name == "proc_exit" { &[] } else { &[I] };
        let ty = FuncType::new(f.params, results);
        let handler = f.handler;
        linker.func_new(
            MODULE,
            f.name,
            ty,
            move |caller: &mut Caller<'_, T>, params, results| {
                let memory = match caller.get_export("memory") {
                    Some(Extern::Memory(m)) => Some(m),
                    _ => None,
                };
                let mut no_memory: [u8; 0] = [];
                let (bytes, data) = match memory {
                    Some(m) => caller.memory_and_data(m),
                    None => (&mut no_memory[..], caller.data_mut()),
                };
                let fuel = get(data).hostcall_fuel;
                let mut mem = GuestMemory::with_fuel(bytes, fuel);
                let errno = match handler(get(data), &mut mem, &Args(params)) {
                    Ok(()) => 0,
                    Err(Failure::Errno(e)) => e.raw(),
                    Err(Failure::Exit(code)) => return Err(Error::Exit(code)),
                    Err(Failure::Trap(message)) => return Err(Error::host_trap(message)),
                };
                if let Some(r) = results.first_mut() {
                    *r = Val::I32(i32::from(errno));
                }
                Ok(())
            },
        );
    }
}

// ---- arguments and environment ------------------------------------------

/// Writes a list of NUL-terminated strings: pointers at `ptrs`, bytes at `buf`.
fn write_string_list(mem: &mut GuestMemory<'_>, list: &[Vec<u8>], ptrs: u32, buf: u32) -> Outcome {
    let mut at = buf;
    for (i, s) in list.iter().enumerate() {
        let i = u32::try_from(i).map_err(|_| Errno::Overflow)?;
        mem.write_u32(ptrs.checked_add(i * 4).ok_or(Errno::Fault)?, at)?;
        mem.write_bytes(at, s)?;
        let len = u32::try_from(s.len()).map_err(|_| Errno::Overflow)?;
        at = at.checked_add(len).ok_or(Errno::Fault)?;
        mem.write_u8(at, 0)?;
        at = at.checked_add(1).ok_or(Errno::Fault)?;
    }
    Ok(())
}

fn write_list_sizes(
    mem: &mut GuestMemory<'_>,
    list: &[Vec<u8>],
    count_ptr: u32,
    size_ptr: u32,
) -> Outcome {
    let bytes: usize = list.iter().map(|s| s.len() + 1).sum();
    let count = u32::try_from(list.len()).map_err(|_| Errno::Overflow)?;
    let bytes = u32::try_from(bytes).map_err(|_| Errno::Overflow)?;
    mem.write_u32(count_ptr, count)?;
    mem.write_u32(size_ptr, bytes)?;
    Ok(())
}

fn args_get(cx: &mut WasiCtx, mem: &mut GuestMemory<'_>, a: &Args<'_>) -> Outcome {
    write_string_list(mem, &cx.args, a.u32(0), a.u32(1))
}

fn args_sizes_get(cx: &mut WasiCtx, mem: &mut GuestMemory<'_>, a: &Args<'_>) -> Outcome {
    write_list_sizes(mem, &cx.args, a.u32(0), a.u32(1))
}

fn environ_get(cx: &mut WasiCtx, mem: &mut GuestMemory<'_>, a: &Args<'_>) -> Outcome {
    write_string_list(mem, &cx.env, a.u32(0), a.u32(1))
}

fn environ_sizes_get(cx: &mut WasiCtx, mem: &mut GuestMemory<'_>, a: &Args<'_>) -> Outcome {
    write_list_sizes(mem, &cx.env, a.u32(0), a.u32(1))
}

// ---- clocks, randomness, scheduling -------------------------------------

/// The clocks a sleep can wait on (realtime and monotonic); the CPU-time
/// clocks are read by [`cpu_time`] alone, and any other id is `EINVAL`,
/// as the preview1 definition asks of unsupported clocks.
fn check_clock(id: u32) -> Result<u32, Errno> {
    match id {
        CLOCK_REALTIME | CLOCK_MONOTONIC => Ok(id),
        _ => Err(Errno::Inval),
    }
}

fn now(cx: &WasiCtx, clock: u32) -> u64 {
    if clock == CLOCK_REALTIME {
        cx.services.clocks.realtime_ns()
    } else {
        cx.services.clocks.monotonic_ns()
    }
}

/// The program's CPU time for the process and thread CPU-time clocks
/// (one thread: the same clock), or `None` for another clock. Where the
/// platform cannot tell, they are unsupported (`EINVAL`, as any unknown
/// clock).
fn cpu_time(cx: &WasiCtx, clock: u32) -> Option<Result<u64, Errno>> {
    matches!(clock, CLOCK_PROCESS_CPUTIME | CLOCK_THREAD_CPUTIME)
        .then(|| cx.services.clocks.cpu_time_ns().ok_or(Errno::Inval))
}

fn clock_res_get(cx: &mut WasiCtx, mem: &mut GuestMemory<'_>, a: &Args<'_>) -> Outcome {
    if let Some(t) = cpu_time(cx, a.u32(0)) {
        t?;
    } else {
        check_clock(a.u32(0))?;
    }
    mem.write_u64(a.u32(1), cx.services.clocks.resolution_ns().max(1))?;
    Ok(())
}

fn clock_time_get(cx: &mut WasiCtx, mem: &mut GuestMemory<'_>, a: &Args<'_>) -> Outcome {
    let t = match cpu_time(cx, a.u32(0)) {
        Some(t) => t?,
        None => now(cx, check_clock(a.u32(0))?),
    };
    mem.write_u64(a.u32(2), t)?;
    Ok(())
}

fn random_get(cx: &mut WasiCtx, mem: &mut GuestMemory<'_>, a: &Args<'_>) -> Outcome {
    cx.check_random_len(u64::from(a.u32(1)))
        .map_err(Failure::Trap)?;
    let buf = mem.slice_mut(a.u32(0), a.u32(1))?;
    cx.services.entropy.fill(buf);
    Ok(())
}

/// One program on one CPU: there is nobody to yield to, so this returns at once.
fn sched_yield(_: &mut WasiCtx, _: &mut GuestMemory<'_>, _: &Args<'_>) -> Outcome {
    Ok(())
}

fn proc_exit(_: &mut WasiCtx, _: &mut GuestMemory<'_>, a: &Args<'_>) -> Outcome {
    Err(Failure::Exit(a.u32(0) as i32))
}

/// Signals are not supported (`ENOSYS`).
fn proc_raise(_: &mut WasiCtx, _: &mut GuestMemory<'_>, _: &Args<'_>) -> Outcome {
    Err(Errno::Nosys.into())
}

// ---- descriptors ----------------------------------------------------------

/// The inode behind a file or directory descriptor (`EBADF` for a stream
/// where one is needed).
fn node_of(fd: &OpenFd) -> Result<&Node, Errno> {
    match &fd.desc {
        Descriptor::File(n) | Descriptor::Directory(n) => Ok(n),
        _ => Err(Errno::Badf),
    }
}

/// A directory descriptor with `rights` (`ENOTDIR` for anything else).
fn dir_fd(cx: &WasiCtx, fd: u32, rights: u64) -> Result<&Node, Errno> {
    let entry = cx.fd(fd)?;
    match &entry.desc {
        Descriptor::Directory(n) => {
            entry.require(rights)?;
            Ok(n)
        }
        _ => Err(Errno::Notdir),
    }
}

/// Copies a path argument out of guest memory.
fn guest_path(mem: &GuestMemory<'_>, ptr: u32, len: u32) -> Result<Vec<u8>, Errno> {
    let bytes = mem.slice(ptr, len)?.to_vec();
    path::check(&bytes)?;
    Ok(bytes)
}

fn write_filestat(mem: &mut GuestMemory<'_>, at: u32, st: &FileStat) -> Outcome {
    mem.slice_mut(at, FILESTAT_SIZE)?.fill(0);
    mem.write_u64(at, st.dev)?;
    mem.write_u64(at + 8, st.ino)?;
    mem.write_u8(at + 16, filetype(st.kind))?;
    mem.write_u64(at + 24, st.nlink)?;
    mem.write_u64(at + 32, st.size)?;
    mem.write_u64(at + 40, st.atim)?;
    mem.write_u64(at + 48, st.mtim)?;
    mem.write_u64(at + 56, st.ctim)?;
    Ok(())
}

/// The most bytes one read or write moves through its iovecs
/// ([`GuestMemory::iovecs`]): past it the call is short, as POSIX allows
/// (Linux stops at `MAX_RW_COUNT`; wasmtime takes only the first non-empty
/// buffer). Nothing is joined: each iovec is read or written in place, so
/// an iovec array that names the same memory thousands of times costs no
/// memory.
const MAX_TRANSFER: u64 = 16 << 20;

/// Writes the iovecs to file `node` from `at`, one after another; returns
/// the bytes written (short after a short write, or an error once some
/// bytes are written).
fn write_file_iovecs(
    node: &Node,
    mem: &GuestMemory<'_>,
    iovs: &[(u32, u32)],
    mut at: u64,
) -> Result<u64, Failure> {
    let mut total = 0u64;
    for &(buf, len) in iovs {
        let n = match node.fs.write(node.ino, at, mem.slice(buf, len)?) {
            Ok(n) => n,
            Err(_) if total > 0 => break,
            Err(e) => return Err(Errno::from(e).into()),
        };
        total += n as u64;
        at += n as u64;
        if n < len as usize {
            break;
        }
    }
    Ok(total)
}

/// Sends the iovecs on socket `fd`, one after another; returns the bytes
/// taken (short as [`write_file_iovecs`] is).
fn send_iovecs(
    cx: &WasiCtx,
    fd: u32,
    mem: &GuestMemory<'_>,
    iovs: &[(u32, u32)],
) -> Result<u64, Failure> {
    let mut total = 0u64;
    for &(buf, len) in iovs {
        let sent = match sockets::send_all(cx, fd, mem.slice(buf, len)?) {
            Ok(n) => n,
            Err(_) if total > 0 => break,
            Err(e) => return Err(e),
        };
        total += sent as u64;
        if sent < len as usize {
            break;
        }
    }
    Ok(total)
}

/// Reads file `node` from `offset` into an iovec array; returns the count.
fn scatter_read(
    node: &Node,
    mem: &mut GuestMemory<'_>,
    iovs: u32,
    count: u32,
    mut offset: u64,
) -> Result<u64, Errno> {
    let mut total = 0u64;
    for (buf, len) in mem.iovecs(iovs, count, MAX_TRANSFER)? {
        let dst = mem.slice_mut(buf, len)?;
        let n = node.fs.read(node.ino, offset, dst)?;
        total += n as u64;
        offset = offset.saturating_add(n as u64);
        if n < dst.len() {
            break;
        }
    }
    Ok(total)
}

fn fd_write(cx: &mut WasiCtx, mem: &mut GuestMemory<'_>, a: &Args<'_>) -> Outcome {
    let fd_num = a.u32(0);
    let fd = cx.fd(fd_num)?;
    if fd.rights_base & RIGHT_FD_WRITE == 0 {
        return Err(Errno::Badf.into());
    }
    let iovs = mem.iovecs(a.u32(1), a.u32(2), MAX_TRANSFER)?;
    let mut total = 0u64;
    match &fd.desc {
        Descriptor::Stdin => return Err(Errno::Badf.into()),
        Descriptor::Directory(_) => return Err(Errno::Isdir.into()),
        Descriptor::Stdout | Descriptor::Stderr => {
            let stdout = matches!(fd.desc, Descriptor::Stdout);
            for &(buf, len) in &iovs {
                let data = mem.slice(buf, len)?;
                let wrote = if stdout {
                    cx.services.stdio.write_stdout(data)
                } else {
                    cx.services.stdio.write_stderr(data)
                };
                match wrote {
                    Ok(()) => total += u64::from(len),
                    // as writev(2): an error only if nothing went
                    Err(e) if total == 0 => return Err(Errno::from(e).into()),
                    Err(_) => break,
                }
            }
        }
        Descriptor::Socket(_) => total = send_iovecs(cx, fd_num, mem, &iovs)?,
        Descriptor::File(node) => {
            let at = if fd.flags & FDFLAGS_APPEND != 0 {
                node.fs.stat(node.ino)?.size
            } else {
                fd.position
            };
            total = write_file_iovecs(node, mem, &iovs, at)?;
            cx.fd_mut(fd_num)?.position = at + total;
        }
    }
    let total = u32::try_from(total).map_err(|_| Errno::Inval)?;
    mem.write_u32(a.u32(3), total)?;
    Ok(())
}

fn fd_read(cx: &mut WasiCtx, mem: &mut GuestMemory<'_>, a: &Args<'_>) -> Outcome {
    let fd_num = a.u32(0);
    let fd = cx.fd(fd_num)?;
    if fd.rights_base & RIGHT_FD_READ == 0 {
        return Err(Errno::Badf.into());
    }
    let n = match &fd.desc {
        Descriptor::Stdin => {
            let iovs = mem.iovecs(a.u32(1), a.u32(2), MAX_TRANSFER)?;
            // One read, into the first non-empty buffer: like readv(2) on a
            // stream, a short read is normal and the caller asks again.
            match iovs.first() {
                Some(&(buf, len)) => {
                    let dst = mem.slice_mut(buf, len)?;
                    let n = cx.services.stdio.read_stdin(dst).map_err(Errno::from)?;
                    n.min(dst.len()) as u64
                }
                None => 0,
            }
        }
        Descriptor::File(node) => {
            let n = scatter_read(node, mem, a.u32(1), a.u32(2), fd.position)?;
            cx.fd_mut(fd_num)?.position += n;
            n
        }
        Descriptor::Directory(_) => return Err(Errno::Isdir.into()),
        Descriptor::Stdout | Descriptor::Stderr => return Err(Errno::Badf.into()),
        Descriptor::Socket(_) => {
            sockets::recv_into(cx, fd_num, mem, a.u32(1), a.u32(2), false, false)?
        }
    };
    mem.write_u32(a.u32(3), u32::try_from(n).map_err(|_| Errno::Overflow)?)?;
    Ok(())
}

/// The regular file behind `fd` for positioned I/O, seeking and the like:
/// `ESPIPE` for a stream, `EISDIR` for a directory, after the rights check.
fn seekable(cx: &WasiCtx, fd: u32, rights: u64) -> Result<&OpenFd, Errno> {
    let entry = cx.fd(fd)?;
    match &entry.desc {
        Descriptor::File(_) => {
            entry.require(rights)?;
            Ok(entry)
        }
        Descriptor::Directory(_) => {
            entry.require(rights)?;
            Err(Errno::Isdir)
        }
        _ => Err(Errno::Spipe),
    }
}

fn fd_pread(cx: &mut WasiCtx, mem: &mut GuestMemory<'_>, a: &Args<'_>) -> Outcome {
    let fd = cx.fd(a.u32(0))?;
    if fd.desc.is_stream() {
        return Err(Errno::Spipe.into());
    }
    if fd.rights_base & RIGHT_FD_READ == 0 {
        return Err(Errno::Badf.into());
    }
    let entry = seekable(cx, a.u32(0), RIGHT_FD_READ)?;
    let n = scatter_read(node_of(entry)?, mem, a.u32(1), a.u32(2), a.u64(3))?;
    mem.write_u32(a.u32(4), u32::try_from(n).map_err(|_| Errno::Overflow)?)?;
    Ok(())
}

fn fd_pwrite(cx: &mut WasiCtx, mem: &mut GuestMemory<'_>, a: &Args<'_>) -> Outcome {
    let fd = cx.fd(a.u32(0))?;
    if fd.desc.is_stream() {
        return Err(Errno::Spipe.into());
    }
    if fd.rights_base & RIGHT_FD_WRITE == 0 {
        return Err(Errno::Badf.into());
    }
    let entry = seekable(cx, a.u32(0), RIGHT_FD_WRITE)?;
    let node = node_of(entry)?;
    // In append mode the offset is ignored and the data goes at the end,
    // as `pwrite(2)` does on Linux (and wasmtime).
    let at = if entry.flags & FDFLAGS_APPEND != 0 {
        node.fs.stat(node.ino)?.size
    } else {
        a.u64(3)
    };
    let iovs = mem.iovecs(a.u32(1), a.u32(2), MAX_TRANSFER)?;
    let n = write_file_iovecs(node, mem, &iovs, at)?;
    mem.write_u32(a.u32(4), u32::try_from(n).map_err(|_| Errno::Overflow)?)?;
    Ok(())
}

fn fd_seek(cx: &mut WasiCtx, mem: &mut GuestMemory<'_>, a: &Args<'_>) -> Outcome {
    let (fd_num, delta, whence) = (a.u32(0), a.u64(1) as i64, a.u32(2));
    // asking where one is (`lseek(fd, 0, SEEK_CUR)`) needs `fd_tell` or `fd_seek`
    let telling = whence == u32::from(WHENCE_CUR) && delta == 0;
    let needed = if telling && cx.fd(fd_num)?.rights_base & RIGHT_FD_TELL != 0 {
        RIGHT_FD_TELL
    } else {
        RIGHT_FD_SEEK
    };
    let entry = seekable(cx, fd_num, needed)?;
    let base = match u8::try_from(whence).map_err(|_| Errno::Inval)? {
        WHENCE_SET => 0,
        WHENCE_CUR => entry.position,
        WHENCE_END => node_of(entry).and_then(|n| Ok(n.fs.stat(n.ino)?.size))?,
        _ => return Err(Errno::Inval.into()),
    };
    let base = i64::try_from(base).map_err(|_| Errno::Overflow)?;
    let new = base.checked_add(delta).ok_or(Errno::Inval)?;
    let new = u64::try_from(new).map_err(|_| Errno::Inval)?;
    mem.write_u64(a.u32(3), new)?;
    cx.fd_mut(fd_num)?.position = new;
    Ok(())
}

fn fd_tell(cx: &mut WasiCtx, mem: &mut GuestMemory<'_>, a: &Args<'_>) -> Outcome {
    let entry = seekable(cx, a.u32(0), RIGHT_FD_TELL)?;
    mem.write_u64(a.u32(1), entry.position)?;
    Ok(())
}

fn fd_advise(cx: &mut WasiCtx, _: &mut GuestMemory<'_>, a: &Args<'_>) -> Outcome {
    seekable(cx, a.u32(0), RIGHT_FD_ADVISE)?;
    // normal, sequential, random, willneed, dontneed, noreuse: all fine for memory
    if a.u32(3) > 5 {
        return Err(Errno::Inval.into());
    }
    Ok(())
}

/// Not supported, as under wasmtime (`ENOTSUP`, after the descriptor and
/// rights checks): a program extends a file by writing or `fd_filestat_set_size`.
fn fd_allocate(cx: &mut WasiCtx, _: &mut GuestMemory<'_>, a: &Args<'_>) -> Outcome {
    seekable(cx, a.u32(0), RIGHT_FD_ALLOCATE)?;
    Err(Errno::Notsup.into())
}

fn fd_close(cx: &mut WasiCtx, _: &mut GuestMemory<'_>, a: &Args<'_>) -> Outcome {
    cx.fds.remove(&a.u32(0)).ok_or(Errno::Badf)?;
    Ok(())
}

fn fd_renumber(cx: &mut WasiCtx, _: &mut GuestMemory<'_>, a: &Args<'_>) -> Outcome {
    let (from, to) = (a.u32(0), a.u32(1));
    cx.fd(from)?;
    cx.fd(to)?;
    if from != to {
        let entry = cx.fds.remove(&from).ok_or(Errno::Badf)?;
        cx.fds.insert(to, entry);
    }
    Ok(())
}

/// The file type of a standard stream: a character device when it is a
/// terminal, else unknown (a file, a pipe, `/dev/null`: as wasmtime says).
fn stream_filetype(cx: &WasiCtx, desc: &Descriptor) -> u8 {
    if cx.is_terminal(desc) {
        FILETYPE_CHARACTER_DEVICE
    } else {
        FILETYPE_UNKNOWN
    }
}

fn fd_fdstat_get(cx: &mut WasiCtx, mem: &mut GuestMemory<'_>, a: &Args<'_>) -> Outcome {
    let fd = cx.fd(a.u32(0))?;
    let filetype = match &fd.desc {
        Descriptor::File(n) | Descriptor::Directory(n) => filetype(n.fs.stat(n.ino)?.kind),
        Descriptor::Socket(_) => FILETYPE_SOCKET_STREAM,
        desc => stream_filetype(cx, desc),
    };
    let at = a.u32(1);
    mem.slice_mut(at, FDSTAT_SIZE)?.fill(0);
    mem.write_u8(at, filetype)?;
    mem.write_u16(at + 2, fd.flags)?;
    mem.write_u64(at + 8, fd.rights_base)?;
    mem.write_u64(at + 16, fd.rights_inheriting)?;
    Ok(())
}

/// Files take `append` and `nonblock` (which changes nothing: memory never
/// blocks); the synchronous-I/O flags are not supported (`ENOTSUP`). The
/// standard streams have no flags set; setting none is a no-op, any flag
/// is not supported on them yet (`ENOSYS`).
fn fd_fdstat_set_flags(cx: &mut WasiCtx, _: &mut GuestMemory<'_>, a: &Args<'_>) -> Outcome {
    let fd_num = a.u32(0);
    let flags = (a.u32(1) & 0xffff) as u16;
    let fd = cx.fd(fd_num)?;
    if let Descriptor::Socket(_) = fd.desc {
        fd.require(RIGHT_FD_FDSTAT_SET_FLAGS)?;
        // Sockets take `nonblock` only, as under wasmtime.
        if flags & !FDFLAGS_NONBLOCK != 0 {
            return Err(Errno::Inval.into());
        }
        cx.fd_mut(fd_num)?.flags = flags;
        return Ok(());
    }
    if fd.desc.is_stream() {
        return if flags == 0 {
            Ok(())
        } else {
            Err(Errno::Nosys.into())
        };
    }
    // Directories have no flags to set (`EBADF`, as wasmtime answers).
    if let Descriptor::Directory(_) = fd.desc {
        return Err(Errno::Badf.into());
    }
    fd.require(RIGHT_FD_FDSTAT_SET_FLAGS)?;
    if flags & (FDFLAGS_DSYNC | FDFLAGS_RSYNC | FDFLAGS_SYNC) != 0 {
        return Err(Errno::Notsup.into());
    }
    if flags & !(FDFLAGS_APPEND | FDFLAGS_NONBLOCK) != 0 {
        return Err(Errno::Inval.into());
    }
    cx.fd_mut(fd_num)?.flags = flags;
    Ok(())
}

fn fd_fdstat_set_rights(cx: &mut WasiCtx, _: &mut GuestMemory<'_>, a: &Args<'_>) -> Outcome {
    let fd = cx.fd_mut(a.u32(0))?;
    let (base, inheriting) = (a.u64(1), a.u64(2));
    if base & !fd.rights_base != 0 || inheriting & !fd.rights_inheriting != 0 {
        return Err(Errno::Notcapable.into());
    }
    fd.rights_base = base;
    fd.rights_inheriting = inheriting;
    Ok(())
}

fn fd_filestat_get(cx: &mut WasiCtx, mem: &mut GuestMemory<'_>, a: &Args<'_>) -> Outcome {
    let fd = cx.fd(a.u32(0))?;
    let at = a.u32(1);
    if let Descriptor::Socket(_) = fd.desc {
        mem.slice_mut(at, FILESTAT_SIZE)?.fill(0);
        mem.write_u8(at + 16, FILETYPE_SOCKET_STREAM)?;
        mem.write_u64(at + 24, 1)?;
        return Ok(());
    }
    if fd.desc.is_stream() {
        mem.slice_mut(at, FILESTAT_SIZE)?.fill(0);
        mem.write_u8(at + 16, stream_filetype(cx, &fd.desc))?;
        mem.write_u64(at + 24, 1)?;
        return Ok(());
    }
    fd.require(RIGHT_FD_FILESTAT_GET)?;
    let n = node_of(fd)?;
    let st = n.fs.stat(n.ino)?;
    write_filestat(mem, at, &st)
}

/// A stream cannot be truncated, nor can a file not opened for writing
/// (`EINVAL`, as `ftruncate` answers for both on Linux, and wasmtime).
fn fd_filestat_set_size(cx: &mut WasiCtx, _: &mut GuestMemory<'_>, a: &Args<'_>) -> Outcome {
    let fd = cx.fd(a.u32(0))?;
    if fd.desc.is_stream() {
        return Err(Errno::Inval.into());
    }
    if matches!(fd.desc, Descriptor::File(_)) && fd.rights_base & RIGHT_FD_WRITE == 0 {
        return Err(Errno::Inval.into());
    }
    let entry = seekable(cx, a.u32(0), RIGHT_FD_FILESTAT_SET_SIZE)?;
    let n = node_of(entry)?;
    n.fs.set_size(n.ino, a.u64(1))?;
    Ok(())
}

/// The two timestamps `fstflags` asks for; `EINVAL` for a time given both
/// as a value and as "now", or for unknown flags.
fn time_changes(atim: u64, mtim: u64, flags: u32) -> Result<(TimeChange, TimeChange), Errno> {
    let flags = u16::try_from(flags & 0xffff).map_err(|_| Errno::Inval)?;
    let known = FSTFLAGS_ATIM | FSTFLAGS_ATIM_NOW | FSTFLAGS_MTIM | FSTFLAGS_MTIM_NOW;
    if flags & !known != 0 {
        return Err(Errno::Inval);
    }
    let pick = |set: u16, now: u16, t: u64| match (flags & set != 0, flags & now != 0) {
        (true, true) => Err(Errno::Inval),
        (true, false) => Ok(TimeChange::At(t)),
        (false, true) => Ok(TimeChange::Now),
        (false, false) => Ok(TimeChange::Keep),
    };
    Ok((
        pick(FSTFLAGS_ATIM, FSTFLAGS_ATIM_NOW, atim)?,
        pick(FSTFLAGS_MTIM, FSTFLAGS_MTIM_NOW, mtim)?,
    ))
}

/// Files and directories; the standard streams: not supported (`ENOSYS`).
fn fd_filestat_set_times(cx: &mut WasiCtx, _: &mut GuestMemory<'_>, a: &Args<'_>) -> Outcome {
    let fd = cx.fd(a.u32(0))?;
    if fd.desc.is_stream() {
        return Err(Errno::Nosys.into());
    }
    let (atim, mtim) = time_changes(a.u64(1), a.u64(2), a.u32(3))?;
    fd.require(RIGHT_FD_FILESTAT_SET_TIMES)?;
    let n = node_of(fd)?;
    n.fs.set_times(n.ino, atim, mtim)?;
    Ok(())
}

/// Streams have no file data to flush to storage (`EINVAL`, as `fsync` on
/// a terminal); a directory is not a file to sync (`EBADF`, as wasmtime
/// answers, where Linux would sync it).
fn sync_with(cx: &WasiCtx, fd: u32, right: u64) -> Outcome {
    let fd = cx.fd(fd)?;
    if fd.desc.is_stream() {
        return Err(Errno::Inval.into());
    }
    if let Descriptor::Directory(_) = fd.desc {
        return Err(Errno::Badf.into());
    }
    fd.require(right)?;
    let n = node_of(fd)?;
    n.fs.sync(n.ino)?;
    Ok(())
}

fn fd_sync(cx: &mut WasiCtx, _: &mut GuestMemory<'_>, a: &Args<'_>) -> Outcome {
    sync_with(cx, a.u32(0), RIGHT_FD_SYNC)
}

fn fd_datasync(cx: &mut WasiCtx, _: &mut GuestMemory<'_>, a: &Args<'_>) -> Outcome {
    sync_with(cx, a.u32(0), RIGHT_FD_DATASYNC)
}

/// The guest path of preopened directory `fd` (`EBADF` for any other
/// descriptor, which is how a program learns that the preopens have ended).
fn preopen_name(cx: &WasiCtx, fd: u32) -> Result<&[u8], Errno> {
    cx.fd(fd)?.preopen.as_deref().ok_or(Errno::Badf)
}

fn fd_prestat_get(cx: &mut WasiCtx, mem: &mut GuestMemory<'_>, a: &Args<'_>) -> Outcome {
    let name = preopen_name(cx, a.u32(0))?;
    let at = a.u32(1);
    mem.slice_mut(at, 8)?.fill(0);
    mem.write_u8(at, PREOPENTYPE_DIR)?;
    mem.write_u32(
        at + 4,
        u32::try_from(name.len()).map_err(|_| Errno::Overflow)?,
    )?;
    Ok(())
}

fn fd_prestat_dir_name(cx: &mut WasiCtx, mem: &mut GuestMemory<'_>, a: &Args<'_>) -> Outcome {
    let name = preopen_name(cx, a.u32(0))?;
    if (a.u32(2) as usize) < name.len() {
        return Err(Errno::Nametoolong.into());
    }
    mem.write_bytes(a.u32(1), name)?;
    Ok(())
}

fn fd_readdir(cx: &mut WasiCtx, mem: &mut GuestMemory<'_>, a: &Args<'_>) -> Outcome {
    let (fd, buf, buf_len, mut cookie, used_ptr) =
        (a.u32(0), a.u32(1), a.u32(2), a.u64(3), a.u32(4));
    let dir = match &cx.fd(fd)?.desc {
        Descriptor::Directory(_) => dir_fd(cx, fd, RIGHT_FD_READDIR)?,
        Descriptor::File(_) | Descriptor::Socket(_) => return Err(Errno::Notdir.into()),
        _ => return Err(Errno::Badf.into()),
    };
    mem.slice(buf, buf_len)?;
    let mut used: u32 = 0;
    'fill: while used < buf_len {
        let batch = dir.fs.read_dir(dir.ino, cookie, 64)?;
        if batch.is_empty() {
            break;
        }
        for e in batch {
            let namlen = u32::try_from(e.name.len()).map_err(|_| Errno::Overflow)?;
            let mut entry = Vec::with_capacity(DIRENT_SIZE as usize + e.name.len());
            entry.extend_from_slice(&e.next.to_le_bytes());
            entry.extend_from_slice(&e.ino.to_le_bytes());
            entry.extend_from_slice(&namlen.to_le_bytes());
            entry.extend_from_slice(&[filetype(e.kind), 0, 0, 0]);
            entry.extend_from_slice(&e.name);
            // the last entry may be cut short: the caller sees a full
            // buffer and asks again with a larger one
            let room = (buf_len - used) as usize;
            let take = entry.len().min(room);
            mem.write_bytes(buf + used, &entry[..take])?;
            used += take as u32;
            cookie = e.next;
            if used >= buf_len {
                break 'fill;
            }
        }
    }
    mem.write_u32(used_ptr, used)?;
    Ok(())
}
