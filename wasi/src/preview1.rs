//! The `wasi_snapshot_preview1` functions and their registration.
//!
//! Each function reads its arguments, checks every guest pointer through
//! [`GuestMemory`] and answers with an [`Errno`]. Functions this version
//! does not implement return [`Errno::Nosys`] after checking their
//! descriptor, and are listed in [`UNSUPPORTED`] (and in the README).

use alloc::vec::Vec;

use basalt_runtime::{Caller, Error, Extern, FuncType, Linker, Val, ValType};

use crate::abi::*;
use crate::ctx::{Descriptor, WasiCtx};
use crate::errno::Errno;
use crate::memory::GuestMemory;

/// The import module name of WASI preview 1.
pub const MODULE: &str = "wasi_snapshot_preview1";

/// The functions this version answers with `ENOSYS` for a valid descriptor:
/// they need a file system or signals, which come later.
pub const UNSUPPORTED: &[&str] = &[
    "fd_fdstat_set_flags (flags other than 0)",
    "fd_filestat_set_times",
    "proc_raise",
];

/// How a call ends other than with success.
enum Failure {
    /// The function failed with this errno.
    Errno(Errno),
    /// `proc_exit`: the program ends with this code.
    Exit(i32),
}

impl From<Errno> for Failure {
    fn from(e: Errno) -> Self {
        Failure::Errno(e)
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
        handler: fd_not_seekable,
    },
    Function {
        name: "fd_allocate",
        params: &[I, L, L],
        handler: fd_not_seekable,
    },
    Function {
        name: "fd_close",
        params: &[I],
        handler: fd_close,
    },
    Function {
        name: "fd_datasync",
        params: &[I],
        handler: fd_sync,
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
        handler: fd_unsupported,
    },
    Function {
        name: "fd_pread",
        params: &[I, I, I, L, I],
        handler: fd_not_seekable,
    },
    Function {
        name: "fd_prestat_get",
        params: &[I, I],
        handler: fd_prestat,
    },
    Function {
        name: "fd_prestat_dir_name",
        params: &[I, I, I],
        handler: fd_prestat,
    },
    Function {
        name: "fd_pwrite",
        params: &[I, I, I, L, I],
        handler: fd_not_seekable,
    },
    Function {
        name: "fd_read",
        params: &[I, I, I, I],
        handler: fd_read,
    },
    Function {
        name: "fd_readdir",
        params: &[I, I, I, L, I],
        handler: fd_not_directory,
    },
    Function {
        name: "fd_renumber",
        params: &[I, I],
        handler: fd_renumber,
    },
    Function {
        name: "fd_seek",
        params: &[I, L, I, I],
        handler: fd_not_seekable,
    },
    Function {
        name: "fd_sync",
        params: &[I],
        handler: fd_sync,
    },
    Function {
        name: "fd_tell",
        params: &[I, I],
        handler: fd_not_seekable,
    },
    Function {
        name: "fd_write",
        params: &[I, I, I, I],
        handler: fd_write,
    },
    Function {
        name: "path_create_directory",
        params: &[I, I, I],
        handler: fd_not_directory,
    },
    Function {
        name: "path_filestat_get",
        params: &[I, I, I, I, I],
        handler: fd_not_directory,
    },
    Function {
        name: "path_filestat_set_times",
        params: &[I, I, I, I, L, L, I],
        handler: fd_not_directory,
    },
    Function {
        name: "path_link",
        params: &[I, I, I, I, I, I, I],
        handler: path_link,
    },
    Function {
        name: "path_open",
        params: &[I, I, I, I, I, L, L, I, I],
        handler: fd_not_directory,
    },
    Function {
        name: "path_readlink",
        params: &[I, I, I, I, I, I],
        handler: fd_not_directory,
    },
    Function {
        name: "path_remove_directory",
        params: &[I, I, I],
        handler: fd_not_directory,
    },
    Function {
        name: "path_rename",
        params: &[I, I, I, I, I, I],
        handler: path_rename,
    },
    Function {
        name: "path_symlink",
        params: &[I, I, I, I, I],
        handler: path_symlink,
    },
    Function {
        name: "path_unlink_file",
        params: &[I, I, I],
        handler: fd_not_directory,
    },
    Function {
        name: "poll_oneoff",
        params: &[I, I, I, I],
        handler: poll_oneoff,
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
        handler: fd_not_socket,
    },
    Function {
        name: "sock_recv",
        params: &[I, I, I, I, I, I],
        handler: fd_not_socket,
    },
    Function {
        name: "sock_send",
        params: &[I, I, I, I, I],
        handler: fd_not_socket,
    },
    Function {
        name: "sock_shutdown",
        params: &[I, I],
        handler: fd_not_socket,
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
                let mut mem = GuestMemory::new(bytes);
                let errno = match handler(get(data), &mut mem, &Args(params)) {
                    Ok(()) => 0,
                    Err(Failure::Errno(e)) => e.raw(),
                    Err(Failure::Exit(code)) => return Err(Error::Exit(code)),
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

/// The supported clocks; process and thread CPU-time clocks are not
/// (`EINVAL`, as the preview1 definition asks of unsupported clocks).
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

fn clock_res_get(cx: &mut WasiCtx, mem: &mut GuestMemory<'_>, a: &Args<'_>) -> Outcome {
    check_clock(a.u32(0))?;
    mem.write_u64(a.u32(1), cx.services.clocks.resolution_ns().max(1))?;
    Ok(())
}

fn clock_time_get(cx: &mut WasiCtx, mem: &mut GuestMemory<'_>, a: &Args<'_>) -> Outcome {
    let clock = check_clock(a.u32(0))?;
    let t = now(cx, clock);
    mem.write_u64(a.u32(2), t)?;
    Ok(())
}

fn random_get(cx: &mut WasiCtx, mem: &mut GuestMemory<'_>, a: &Args<'_>) -> Outcome {
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

fn fd_write(cx: &mut WasiCtx, mem: &mut GuestMemory<'_>, a: &Args<'_>) -> Outcome {
    let fd = cx.fd(a.u32(0))?;
    if fd.rights_base & RIGHT_FD_WRITE == 0 {
        return Err(Errno::Badf.into());
    }
    let iovs = mem.iovecs(a.u32(1), a.u32(2))?;
    let mut total: u32 = 0;
    let write = |bytes: &[u8]| match fd.desc {
        Descriptor::Stdout => cx.services.stdio.write_stdout(bytes),
        Descriptor::Stderr => cx.services.stdio.write_stderr(bytes),
        Descriptor::Stdin => {}
    };
    if let [(buf, len)] = iovs[..] {
        write(mem.slice(buf, len)?);
        total = len;
    } else {
        let mut joined = Vec::new();
        for (buf, len) in iovs {
            joined.extend_from_slice(mem.slice(buf, len)?);
            total = total.checked_add(len).ok_or(Errno::Inval)?;
        }
        write(&joined);
    }
    mem.write_u32(a.u32(3), total)?;
    Ok(())
}

fn fd_read(cx: &mut WasiCtx, mem: &mut GuestMemory<'_>, a: &Args<'_>) -> Outcome {
    let fd = cx.fd(a.u32(0))?;
    if fd.rights_base & RIGHT_FD_READ == 0 || fd.desc != Descriptor::Stdin {
        return Err(Errno::Badf.into());
    }
    let iovs = mem.iovecs(a.u32(1), a.u32(2))?;
    let mut n = 0;
    // One read, into the first non-empty buffer: like readv(2) on a stream,
    // a short read is normal and the caller asks again.
    if let Some(&(buf, len)) = iovs.iter().find(|(_, len)| *len > 0) {
        let dst = mem.slice_mut(buf, len)?;
        n = cx.services.stdio.read_stdin(dst).min(dst.len());
    }
    mem.write_u32(a.u32(3), u32::try_from(n).map_err(|_| Errno::Overflow)?)?;
    Ok(())
}

fn fd_close(cx: &mut WasiCtx, _: &mut GuestMemory<'_>, a: &Args<'_>) -> Outcome {
    cx.fds.remove(&a.u32(0)).ok_or(Errno::Badf)?;
    Ok(())
}

fn fd_renumber(cx: &mut WasiCtx, _: &mut GuestMemory<'_>, a: &Args<'_>) -> Outcome {
    let (from, to) = (a.u32(0), a.u32(1));
    let entry = cx.fd(from)?;
    cx.fd(to)?;
    cx.fds.remove(&from);
    cx.fds.insert(to, entry);
    Ok(())
}

fn fd_fdstat_get(cx: &mut WasiCtx, mem: &mut GuestMemory<'_>, a: &Args<'_>) -> Outcome {
    let fd = cx.fd(a.u32(0))?;
    let at = a.u32(1);
    mem.slice_mut(at, FDSTAT_SIZE)?.fill(0);
    mem.write_u8(at, FILETYPE_CHARACTER_DEVICE)?;
    mem.write_u16(at + 2, 0)?;
    mem.write_u64(at + 8, fd.rights_base)?;
    mem.write_u64(at + 16, fd.rights_inheriting)?;
    Ok(())
}

/// The standard streams have no flags set; setting none is a no-op, any
/// flag (append, nonblock, sync…) is not supported on them yet.
fn fd_fdstat_set_flags(cx: &mut WasiCtx, _: &mut GuestMemory<'_>, a: &Args<'_>) -> Outcome {
    cx.fd(a.u32(0))?;
    if a.u32(1) & 0xffff == 0 {
        Ok(())
    } else {
        Err(Errno::Nosys.into())
    }
}

fn fd_fdstat_set_rights(cx: &mut WasiCtx, _: &mut GuestMemory<'_>, a: &Args<'_>) -> Outcome {
    let fd_num = a.u32(0);
    let mut fd = cx.fd(fd_num)?;
    let (base, inheriting) = (a.u64(1), a.u64(2));
    if base & !fd.rights_base != 0 || inheriting & !fd.rights_inheriting != 0 {
        return Err(Errno::Notcapable.into());
    }
    fd.rights_base = base;
    fd.rights_inheriting = inheriting;
    cx.fds.insert(fd_num, fd);
    Ok(())
}

fn fd_filestat_get(cx: &mut WasiCtx, mem: &mut GuestMemory<'_>, a: &Args<'_>) -> Outcome {
    cx.fd(a.u32(0))?;
    let at = a.u32(1);
    mem.slice_mut(at, FILESTAT_SIZE)?.fill(0);
    mem.write_u8(at + 16, FILETYPE_CHARACTER_DEVICE)?;
    mem.write_u64(at + 24, 1)?;
    Ok(())
}

/// A stream cannot be truncated (`EINVAL`, as `ftruncate` on a terminal).
fn fd_filestat_set_size(cx: &mut WasiCtx, _: &mut GuestMemory<'_>, a: &Args<'_>) -> Outcome {
    refuse_on_valid_fd(cx, a.u32(0), Errno::Inval)
}

/// Streams have no file data to flush to storage (`EINVAL`, as `fsync` on a terminal).
fn fd_sync(cx: &mut WasiCtx, _: &mut GuestMemory<'_>, a: &Args<'_>) -> Outcome {
    refuse_on_valid_fd(cx, a.u32(0), Errno::Inval)
}

/// Positioned I/O, seeking, advice and allocation on a stream: `ESPIPE`.
fn fd_not_seekable(cx: &mut WasiCtx, _: &mut GuestMemory<'_>, a: &Args<'_>) -> Outcome {
    refuse_on_valid_fd(cx, a.u32(0), Errno::Spipe)
}

/// Directory operations on a descriptor that is not a directory: every
/// descriptor of this version is a stream, so `ENOTDIR` (or `EBADF`).
fn fd_not_directory(cx: &mut WasiCtx, _: &mut GuestMemory<'_>, a: &Args<'_>) -> Outcome {
    refuse_on_valid_fd(cx, a.u32(0), Errno::Notdir)
}

fn path_link(cx: &mut WasiCtx, _: &mut GuestMemory<'_>, a: &Args<'_>) -> Outcome {
    cx.fd(a.u32(0))?;
    refuse_on_valid_fd(cx, a.u32(4), Errno::Notdir)
}

fn path_rename(cx: &mut WasiCtx, _: &mut GuestMemory<'_>, a: &Args<'_>) -> Outcome {
    cx.fd(a.u32(0))?;
    refuse_on_valid_fd(cx, a.u32(3), Errno::Notdir)
}

fn path_symlink(cx: &mut WasiCtx, _: &mut GuestMemory<'_>, a: &Args<'_>) -> Outcome {
    refuse_on_valid_fd(cx, a.u32(2), Errno::Notdir)
}

/// No descriptor is a preopened directory in this version: `EBADF`, which
/// is also how a program learns that the preopen list has ended.
fn fd_prestat(cx: &mut WasiCtx, _: &mut GuestMemory<'_>, a: &Args<'_>) -> Outcome {
    refuse_on_valid_fd(cx, a.u32(0), Errno::Badf)
}

/// Not supported for a valid descriptor (`ENOSYS`).
fn fd_unsupported(cx: &mut WasiCtx, _: &mut GuestMemory<'_>, a: &Args<'_>) -> Outcome {
    refuse_on_valid_fd(cx, a.u32(0), Errno::Nosys)
}

/// No descriptor is a socket yet.
fn fd_not_socket(cx: &mut WasiCtx, _: &mut GuestMemory<'_>, a: &Args<'_>) -> Outcome {
    refuse_on_valid_fd(cx, a.u32(0), Errno::Notsock)
}

/// Fails with `errno` once `fd` is known to be open (`EBADF` before that,
/// as every call on a closed descriptor).
fn refuse_on_valid_fd(cx: &WasiCtx, fd: u32, errno: Errno) -> Outcome {
    cx.fd(fd)?;
    Err(errno.into())
}

// ---- poll_oneoff ----------------------------------------------------------

/// Waits for clocks and stream readiness. Output streams are always ready;
/// standard input is reported ready (a read then blocks until data or end
/// of file arrives). Clock subscriptions sleep until the earliest deadline
/// when nothing else is ready.
fn poll_oneoff(cx: &mut WasiCtx, mem: &mut GuestMemory<'_>, a: &Args<'_>) -> Outcome {
    let (subs, events, count, nevents_ptr) = (a.u32(0), a.u32(1), a.u32(2), a.u32(3));
    if count == 0 {
        return Err(Errno::Inval.into());
    }
    mem.slice(
        subs,
        count.checked_mul(SUBSCRIPTION_SIZE).ok_or(Errno::Fault)?,
    )?;
    mem.slice(events, count.checked_mul(EVENT_SIZE).ok_or(Errno::Fault)?)?;
    mem.read_u32(nevents_ptr)?;

    struct Ready {
        userdata: u64,
        error: u16,
        kind: u8,
    }
    let mut ready = Vec::new();
    // (userdata, monotonic deadline) of each valid clock subscription
    let mut clocks = Vec::new();
    for i in 0..count {
        let at = subs + i * SUBSCRIPTION_SIZE;
        let userdata = mem.read_u64(at)?;
        let tag = mem.read_u8(at + 8)?;
        match tag {
            EVENTTYPE_CLOCK => {
                let id = mem.read_u32(at + 16)?;
                let timeout = mem.read_u64(at + 24)?;
                let flags = mem.read_u16(at + 40)?;
                match check_clock(id) {
                    Err(e) => ready.push(Ready {
                        userdata,
                        error: e.raw(),
                        kind: tag,
                    }),
                    Ok(clock) => {
                        let mono = cx.services.clocks.monotonic_ns();
                        let deadline = if flags & SUBCLOCK_ABSTIME != 0 {
                            let remaining = timeout.saturating_sub(now(cx, clock));
                            mono.saturating_add(remaining)
                        } else {
                            mono.saturating_add(timeout)
                        };
                        clocks.push((userdata, deadline));
                    }
                }
            }
            EVENTTYPE_FD_READ | EVENTTYPE_FD_WRITE => {
                let fd = mem.read_u32(at + 16)?;
                let error = match cx.fd(fd) {
                    Err(e) => e.raw(),
                    Ok(f) => {
                        let usable = if tag == EVENTTYPE_FD_READ {
                            f.desc == Descriptor::Stdin && f.rights_base & RIGHT_FD_READ != 0
                        } else {
                            f.desc != Descriptor::Stdin && f.rights_base & RIGHT_FD_WRITE != 0
                        };
                        if usable { 0 } else { Errno::Badf.raw() }
                    }
                };
                ready.push(Ready {
                    userdata,
                    error,
                    kind: tag,
                });
            }
            _ => return Err(Errno::Inval.into()),
        }
    }
    if ready.is_empty()
        && let Some(&(_, earliest)) = clocks.iter().min_by_key(|(_, d)| *d)
    {
        cx.services.clocks.sleep_until_monotonic_ns(earliest);
    }
    let mono = cx.services.clocks.monotonic_ns();
    for (userdata, deadline) in clocks {
        if deadline <= mono {
            ready.push(Ready {
                userdata,
                error: 0,
                kind: EVENTTYPE_CLOCK,
            });
        }
    }
    for (i, r) in ready.iter().enumerate() {
        let at = events + (i as u32) * EVENT_SIZE;
        mem.slice_mut(at, EVENT_SIZE)?.fill(0);
        mem.write_u64(at, r.userdata)?;
        mem.write_u16(at + 8, r.error)?;
        mem.write_u8(at + 10, r.kind)?;
    }
    mem.write_u32(nevents_ptr, ready.len() as u32)?;
    Ok(())
}
