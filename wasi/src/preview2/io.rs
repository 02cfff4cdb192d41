//! `wasi:io`: errors, pollables and streams.

use alloc::format;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;

use basalt_runtime::Error;
use basalt_runtime::component::{Linker, Value};

use super::sockets::{self, SockHandle};
use super::{Host, HostResource, Types, boxed, def, iface, none, ok, one, rep, trap, u64_arg};
use crate::WasiCtx;
use crate::ctx::Node;
use crate::errno::Errno;
use crate::services::StdioError;

/// What a `write` may carry after `check-write` (and what `check-write`
/// answers): the host never holds back, so this is only a bound on one
/// call's buffer.
pub const WRITE_PERMIT: u64 = 1 << 20;
/// The most `blocking-write-and-flush` takes, as the interface says.
pub const BLOCKING_WRITE_MAX: usize = 4096;
/// The most one `read` returns.
pub const READ_MAX: u64 = 1 << 20;

/// Where an input stream reads from.
pub(crate) enum InputStream {
    /// the program's standard input
    Stdin,
    /// a file, from this offset on (`read-via-stream`)
    File {
        /// the file
        node: Node,
        /// the next offset
        pos: u64,
    },
    /// a TCP connection
    Socket(Arc<SockHandle>),
    /// a `wasi:http` message's body
    Http(Arc<super::http::InBody>),
}

/// Where an output stream writes to.
pub(crate) enum OutputStream {
    /// standard output
    Stdout,
    /// standard error
    Stderr,
    /// a file at an offset, or at its end (`append-via-stream`)
    File {
        /// the file
        node: Node,
        /// the next offset; `None`: always the end
        pos: Option<u64>,
    },
    /// a TCP connection
    Socket(Arc<SockHandle>),
    /// a `wasi:http` message's body
    Http(Arc<super::http::OutBody>),
}

/// What a pollable waits for.
#[derive(Clone, Copy, Debug)]
pub(crate) enum PollTarget {
    /// nothing: it is ready (streams of files and standard streams)
    Ready,
    /// the monotonic clock reaching this many nanoseconds
    Deadline(u64),
    /// a socket resource or stream of one (its representation, the
    /// pollable's parent) becoming ready, as [`sockets::ready`] says
    Socket(u32),
    /// a `wasi:http` body stream or future (its representation) being
    /// ready, as [`super::http::ready`] says
    Http(u32),
}

impl PollTarget {
    fn ready(self, cx: &WasiCtx) -> bool {
        match self {
            PollTarget::Ready => true,
            PollTarget::Deadline(t) => cx.services.clocks.monotonic_ns() >= t,
            PollTarget::Socket(r) => sockets::ready(cx, r),
            PollTarget::Http(r) => super::http::ready(cx, r),
        }
    }
}

/// A `stream-error`: `last-operation-failed(error)` for a failure with
/// `errno`, or `closed`.
fn stream_error(h: &mut Host<'_>, failure: Option<Errno>) -> Result<Value, Error> {
    Ok(match failure {
        None => Value::Variant(1, None),
        Some(e) => {
            let r =
                h.cx.resources
                    .push(HostResource::Error(format!("{e}"), Some(e)), None)?;
            Value::Variant(0, Some(boxed(Types::own(&h.ty.error, r))))
        }
    })
}

fn stream_err(h: &mut Host<'_>, failure: Option<Errno>) -> Result<Vec<Value>, Error> {
    let e = stream_error(h, failure)?;
    one(Value::err(Some(e)))
}

fn pollable(
    h: &mut Host<'_>,
    target: PollTarget,
    parent: Option<u32>,
) -> Result<Vec<Value>, Error> {
    let r =
        h.cx.resources
            .push(HostResource::Pollable(target), parent)?;
    one(Types::own(&h.ty.pollable, r))
}

/// A pollable for `target`, a child of resource `parent`.
pub(crate) fn child_pollable(
    h: &mut Host<'_>,
    target: PollTarget,
    parent: u32,
) -> Result<Vec<Value>, Error> {
    pollable(h, target, Some(parent))
}

/// A pollable for `target` (clocks subscribe with this).
pub(crate) fn new_pollable(h: &mut Host<'_>, target: PollTarget) -> Result<Vec<Value>, Error> {
    pollable(h, target, None)
}

fn target(h: &Host<'_>, r: u32) -> Result<PollTarget, Error> {
    match h.cx.resources.get(r)? {
        HostResource::Pollable(t) => Ok(*t),
        _ => Err(trap("not a pollable")),
    }
}

/// The trap of a program whose deadline ([`WasiCtx::set_deadline`])
/// passed while it waited.
fn timed_out() -> Error {
    Error::Trap(basalt_runtime::Trap {
        kind: basalt_runtime::TrapKind::Interrupted,
        func: None,
        message: Some("guest timed out: its deadline passed while it waited".into()),
        backtrace: Vec::new(),
    })
}

/// Blocks until one of `targets` is ready; the indices of those ready.
/// Past the context's deadline, the program is stopped.
pub(crate) fn wait(cx: &WasiCtx, targets: &[PollTarget]) -> Result<Vec<u32>, Error> {
    loop {
        let ready: Vec<u32> = targets
            .iter()
            .enumerate()
            .filter(|(_, t)| t.ready(cx))
            .map(|(i, _)| i as u32)
            .collect();
        if !ready.is_empty() {
            return Ok(ready);
        }
        if let Some(d) = cx.deadline_ns
            && cx.services.clocks.monotonic_ns() >= d
        {
            return Err(timed_out());
        }
        let next = targets
            .iter()
            .filter_map(|t| match t {
                PollTarget::Deadline(d) => Some(*d),
                PollTarget::Http(r) => super::http::deadline(cx, *r),
                PollTarget::Ready | PollTarget::Socket(_) => None,
            })
            .chain(cx.deadline_ns)
            .min();
        let interests: Vec<_> = targets
            .iter()
            .filter_map(|t| match t {
                PollTarget::Socket(r) => sockets::interest(cx, *r),
                PollTarget::Http(r) => super::http::interest(cx, *r),
                _ => None,
            })
            .collect();
        match (next, &cx.net) {
            (_, Some(net)) if !interests.is_empty() => net.wait(&interests, next),
            (Some(d), _) => cx.services.clocks.sleep_until_monotonic_ns(d),
            (None, _) => return Ok(Vec::new()),
        }
    }
}

/// A failed standard stream as a `stream-error`: `closed` when nobody
/// reads it any more (wasmtime's `EPIPE`), else `last-operation-failed`
/// with the errno (`filesystem-error-code` recovers e.g. `is-directory`).
fn stdio_failure(e: StdioError) -> Option<Errno> {
    match e {
        StdioError::Closed => None,
        other => Some(other.into()),
    }
}

fn read(h: &mut Host<'_>, r: u32, len: u64, blocking: bool) -> Result<Vec<Value>, Error> {
    if let HostResource::Input(InputStream::Http(b)) = h.cx.resources.get(r)? {
        let b = b.clone();
        return super::http::stream_read(h, r, b, len, blocking);
    }
    let len = len.min(READ_MAX) as usize;
    let mut buf = vec![0u8; len];
    let got = match h.cx.resources.get_mut(r)? {
        HostResource::Input(InputStream::Stdin) => {
            if len == 0 {
                Ok(0)
            } else {
                match h.cx.services.stdio.read_stdin(&mut buf) {
                    Ok(0) => Err(None),
                    Ok(n) => Ok(n),
                    Err(e) => Err(stdio_failure(e)),
                }
            }
        }
        HostResource::Input(InputStream::File { node, pos }) => {
            match node.fs.read(node.ino, *pos, &mut buf) {
                Ok(0) if len > 0 => Err(None),
                Ok(n) => {
                    *pos += n as u64;
                    Ok(n)
                }
                Err(e) => Err(Some(Errno::from(e))),
            }
        }
        HostResource::Input(InputStream::Socket(s)) => s.read(len).map(|b| {
            let n = b.len();
            buf = b;
            n
        }),
        _ => return Err(trap("not an input stream")),
    };
    match got {
        Ok(n) => {
            buf.truncate(n);
            ok(Some(Value::Bytes(buf)))
        }
        Err(failure) => stream_err(h, failure),
    }
}

fn skip(h: &mut Host<'_>, r: u32, len: u64, blocking: bool) -> Result<Vec<Value>, Error> {
    let out = read(h, r, len, blocking)?;
    Ok(match out.into_iter().next() {
        Some(Value::Result(Ok(Some(v)))) => match *v {
            Value::Bytes(b) => vec![Value::ok(Some(Value::U64(b.len() as u64)))],
            other => vec![Value::ok(Some(other))],
        },
        Some(other) => vec![other],
        None => Vec::new(),
    })
}

/// Writes `data` to output stream `r`: `None` when it went, else the
/// failure (`Some(None)`: closed).
fn write_all(h: &mut Host<'_>, r: u32, data: &[u8]) -> Result<Option<Option<Errno>>, Error> {
    match h.cx.resources.get_mut(r)? {
        HostResource::Output(OutputStream::Stdout) => Ok(h
            .cx
            .services
            .stdio
            .write_stdout(data)
            .err()
            .map(stdio_failure)),
        HostResource::Output(OutputStream::Stderr) => Ok(h
            .cx
            .services
            .stdio
            .write_stderr(data)
            .err()
            .map(stdio_failure)),
        HostResource::Output(OutputStream::File { node, pos }) => {
            let at = match pos {
                Some(p) => *p,
                None => match node.fs.stat(node.ino) {
                    Ok(st) => st.size,
                    Err(e) => return Ok(Some(Some(e.into()))),
                },
            };
            let mut done = 0;
            while done < data.len() {
                match node.fs.write(node.ino, at + done as u64, &data[done..]) {
                    Ok(0) => return Ok(Some(Some(Errno::Io))),
                    Ok(n) => done += n,
                    Err(e) => return Ok(Some(Some(e.into()))),
                }
            }
            if let Some(p) = pos {
                *p += done as u64;
            }
            Ok(None)
        }
        HostResource::Output(OutputStream::Socket(s)) => Ok(s.write(data).err()),
        HostResource::Output(OutputStream::Http(_)) => {
            Err(trap("internal: a message body is written by its own path"))
        }
        _ => Err(trap("not an output stream")),
    }
}

/// The body behind output stream `r`, if it is a `wasi:http` one.
fn http_body(h: &Host<'_>, r: u32) -> Result<Option<Arc<super::http::OutBody>>, Error> {
    Ok(match h.cx.resources.get(r)? {
        HostResource::Output(OutputStream::Http(b)) => Some(b.clone()),
        _ => None,
    })
}

fn write(h: &mut Host<'_>, r: u32, data: &[u8]) -> Result<Vec<Value>, Error> {
    if let Some(b) = http_body(h, r)? {
        return super::http::stream_write(h, b, data);
    }
    match write_all(h, r, data)? {
        None => ok(None),
        Some(failure) => stream_err(h, failure),
    }
}

/// `flush` (`blocking`: `blocking-flush`) of output stream `r`: only
/// sockets hold bytes back.
fn flush(h: &mut Host<'_>, r: u32, blocking: bool) -> Result<Vec<Value>, Error> {
    if let Some(b) = http_body(h, r)? {
        return super::http::stream_flush(h, b, blocking);
    }
    match h.cx.resources.get(r)? {
        HostResource::Output(OutputStream::Socket(s)) => match s.flush(blocking) {
            Ok(()) => ok(None),
            Err(failure) => stream_err(h, failure),
        },
        HostResource::Output(_) => ok(None),
        _ => Err(trap("not an output stream")),
    }
}

fn bytes(args: &[Value], i: usize) -> Result<Vec<u8>, Error> {
    super::bytes_arg(args, i)
}

fn splice(h: &mut Host<'_>, args: &[Value], blocking: bool) -> Result<Vec<Value>, Error> {
    let (dst, src, len) = (rep(args, 0)?, rep(args, 1)?, u64_arg(args, 2)?);
    let got = read(h, src, len.min(WRITE_PERMIT), blocking)?;
    match got.into_iter().next() {
        Some(Value::Result(Ok(Some(v)))) => {
            let Value::Bytes(b) = *v else {
                return Err(trap("splice: unexpected read result"));
            };
            if let Some(body) = http_body(h, dst)? {
                let n = b.len() as u64;
                let out = super::http::stream_write(h, body, &b)?;
                return match out.first() {
                    Some(Value::Result(Ok(_))) => ok(Some(Value::U64(n))),
                    _ => Ok(out),
                };
            }
            match write_all(h, dst, &b)? {
                None => ok(Some(Value::U64(b.len() as u64))),
                Some(failure) => stream_err(h, failure),
            }
        }
        Some(other) => Ok(vec![other]),
        None => Err(trap("splice: no read result")),
    }
}

pub(super) fn add<T: 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut WasiCtx,
    types: &Arc<Types>,
) {
    let mut i = linker.instance(&iface("io", "error"));
    def(
        &mut i,
        "[method]error.to-debug-string",
        get,
        types,
        |h, a| match h.cx.resources.get(rep(a, 0)?)? {
            HostResource::Error(m, _) => one(Value::String(m.clone())),
            HostResource::HttpError(e) => one(Value::String(format!("{e}"))),
            _ => Err(trap("not an error")),
        },
    );

    let mut i = linker.instance(&iface("io", "poll"));
    def(&mut i, "[method]pollable.ready", get, types, |h, a| {
        let t = target(h, rep(a, 0)?)?;
        one(Value::Bool(t.ready(h.cx)))
    });
    def(&mut i, "[method]pollable.block", get, types, |h, a| {
        let t = target(h, rep(a, 0)?)?;
        wait(h.cx, &[t])?;
        none()
    });
    def(&mut i, "poll", get, types, |h, a| {
        let Some(Value::List(list)) = a.first() else {
            return Err(trap("poll: argument of the wrong type"));
        };
        if list.is_empty() {
            return Err(trap("empty poll list: poll needs at least one pollable"));
        }
        let targets = list
            .iter()
            .map(|v| match v {
                Value::Borrow(r) | Value::Own(r) => target(h, r.rep),
                _ => Err(trap("poll: not a pollable")),
            })
            .collect::<Result<Vec<_>, _>>()?;
        let ready = wait(h.cx, &targets)?;
        one(Value::List(ready.into_iter().map(Value::U32).collect()))
    });

    let mut i = linker.instance(&iface("io", "streams"));
    def(&mut i, "[method]input-stream.read", get, types, |h, a| {
        read(h, rep(a, 0)?, u64_arg(a, 1)?, false)
    });
    def(
        &mut i,
        "[method]input-stream.blocking-read",
        get,
        types,
        |h, a| read(h, rep(a, 0)?, u64_arg(a, 1)?, true),
    );
    def(&mut i, "[method]input-stream.skip", get, types, |h, a| {
        skip(h, rep(a, 0)?, u64_arg(a, 1)?, false)
    });
    def(
        &mut i,
        "[method]input-stream.blocking-skip",
        get,
        types,
        |h, a| skip(h, rep(a, 0)?, u64_arg(a, 1)?, true),
    );
    def(
        &mut i,
        "[method]input-stream.subscribe",
        get,
        types,
        |h, a| {
            let r = rep(a, 0)?;
            let t = match h.cx.resources.get(r)? {
                HostResource::Input(InputStream::Socket(_)) => PollTarget::Socket(r),
                HostResource::Input(InputStream::Http(_)) => PollTarget::Http(r),
                _ => PollTarget::Ready,
            };
            pollable(h, t, Some(r))
        },
    );
    def(
        &mut i,
        "[method]output-stream.check-write",
        get,
        types,
        |h, a| match h.cx.resources.get(rep(a, 0)?)? {
            HostResource::Output(OutputStream::Socket(s)) => match s.check_write() {
                Ok(n) => ok(Some(Value::U64(n))),
                Err(failure) => stream_err(h, failure),
            },
            HostResource::Output(OutputStream::Http(b)) => {
                let b = b.clone();
                super::http::stream_check_write(h, b)
            }
            HostResource::Output(_) => ok(Some(Value::U64(WRITE_PERMIT))),
            _ => Err(trap("not an output stream")),
        },
    );
    def(&mut i, "[method]output-stream.write", get, types, |h, a| {
        let data = bytes(a, 1)?;
        if data.len() as u64 > WRITE_PERMIT {
            return Err(trap(&format!(
                "write of {} bytes is more than check-write permitted ({WRITE_PERMIT})",
                data.len()
            )));
        }
        write(h, rep(a, 0)?, &data)
    });
    def(
        &mut i,
        "[method]output-stream.blocking-write-and-flush",
        get,
        types,
        |h, a| {
            let data = bytes(a, 1)?;
            if data.len() > BLOCKING_WRITE_MAX {
                return Err(trap(&format!(
                    "Buffer too large for blocking-write-and-flush (expected at most {BLOCKING_WRITE_MAX}, got {})",
                    data.len()
                )));
            }
            let r = rep(a, 0)?;
            match write(h, r, &data)? {
                v if matches!(v.first(), Some(Value::Result(Ok(_)))) => flush(h, r, true),
                v => Ok(v),
            }
        },
    );
    def(&mut i, "[method]output-stream.flush", get, types, |h, a| {
        flush(h, rep(a, 0)?, false)
    });
    def(
        &mut i,
        "[method]output-stream.blocking-flush",
        get,
        types,
        |h, a| flush(h, rep(a, 0)?, true),
    );
    def(
        &mut i,
        "[method]output-stream.subscribe",
        get,
        types,
        |h, a| {
            let r = rep(a, 0)?;
            let t = match h.cx.resources.get(r)? {
                HostResource::Output(OutputStream::Socket(_)) => PollTarget::Socket(r),
                HostResource::Output(OutputStream::Http(_)) => PollTarget::Http(r),
                _ => PollTarget::Ready,
            };
            pollable(h, t, Some(r))
        },
    );
    def(
        &mut i,
        "[method]output-stream.write-zeroes",
        get,
        types,
        |h, a| {
            let n = u64_arg(a, 1)?;
            if n > WRITE_PERMIT {
                return Err(trap("write-zeroes of more than check-write permitted"));
            }
            write(h, rep(a, 0)?, &vec![0u8; n as usize])
        },
    );
    def(
        &mut i,
        "[method]output-stream.blocking-write-zeroes-and-flush",
        get,
        types,
        |h, a| {
            let n = u64_arg(a, 1)?;
            if n > BLOCKING_WRITE_MAX as u64 {
                return Err(trap(&format!(
                    "Buffer too large for blocking-write-zeroes-and-flush (expected at most {BLOCKING_WRITE_MAX}, got {n})"
                )));
            }
            let r = rep(a, 0)?;
            match write(h, r, &vec![0u8; n as usize])? {
                v if matches!(v.first(), Some(Value::Result(Ok(_)))) => flush(h, r, true),
                v => Ok(v),
            }
        },
    );
    def(
        &mut i,
        "[method]output-stream.splice",
        get,
        types,
        |h, a| splice(h, a, false),
    );
    def(
        &mut i,
        "[method]output-stream.blocking-splice",
        get,
        types,
        |h, a| splice(h, a, true),
    );
}
