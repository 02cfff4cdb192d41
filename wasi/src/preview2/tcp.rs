//! `wasi:sockets/tcp` and `tcp-create-socket`: the state machine of a TCP
//! socket (bind, listen, connect as start/finish pairs; accept; shutdown)
//! and its options, over [`crate::services::Network`].
//!
//! Option values are the program's: what it set is what it reads back
//! (and what sockets accepted from a listener inherit), and the network
//! gets them too, as advice it may clamp or ignore.

use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;

use basalt_runtime::Error;
use basalt_runtime::component::{Linker, Value};

use super::sockets::{
    SockHandle, addr_arg, addr_value, check_access, check_family, check_network, check_remote,
    code, fail, family_arg, net_code, network, subscribe,
};
use super::{Host, HostResource, InputStream, OutputStream, Types, def, iface, ok, one, rep, trap};
use crate::WasiCtx;
use crate::services::{Interest, NetError, Shutdown, SocketId, SocketOption, Transport};

/// Where a TCP socket is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Unbound,
    BindStarted,
    Bound,
    ListenStarted,
    Listening,
    Connecting,
    /// a connect that failed at once, reported by `finish-connect`
    ConnectFailed(NetError),
    Connected,
    /// a connect failed: nothing more can be done with it
    Closed,
}

/// The options of a TCP socket, as the program set them.
#[derive(Clone, Copy, Debug)]
struct Options {
    backlog: u64,
    keep_alive: bool,
    keep_idle: u64,
    keep_interval: u64,
    keep_count: u32,
    hop_limit: u8,
    receive_buffer: u64,
    send_buffer: u64,
}

impl Default for Options {
    fn default() -> Self {
        const SECOND: u64 = 1_000_000_000;
        // Linux's defaults.
        Options {
            backlog: 128,
            keep_alive: false,
            keep_idle: 7200 * SECOND,
            keep_interval: 75 * SECOND,
            keep_count: 9,
            hop_limit: 64,
            receive_buffer: 128 * 1024,
            send_buffer: 16 * 1024,
        }
    }
}

/// The most a buffer-size option keeps (larger values are capped).
const MAX_BUFFER: u64 = 1 << 30;

/// A `tcp-socket`.
pub(crate) struct TcpSocket {
    sock: Arc<SockHandle>,
    v6: bool,
    state: State,
    opts: Options,
}

impl TcpSocket {
    /// Whether a pollable of it is ready: a connect has finished, a
    /// connection waits to be accepted, or there is nothing to wait for.
    pub fn ready(&self) -> bool {
        match self.state {
            State::Connecting => self.sock.net.connect_status(self.sock.id) != Ok(false),
            State::Listening => self
                .sock
                .net
                .readiness(self.sock.id)
                .map_or(true, |r| r.readable),
            _ => true,
        }
    }

    /// What a pollable of it waits for.
    pub fn interest(&self) -> Option<(SocketId, Interest)> {
        match self.state {
            State::Connecting => Some((self.sock.id, Interest::Write)),
            State::Listening => Some((self.sock.id, Interest::Read)),
            _ => None,
        }
    }

    /// Gives option `opt` to the network (advice: failures are ignored).
    fn apply(&self, opt: SocketOption) {
        let _ = self.sock.net.set_option(self.sock.id, opt);
    }
}

fn socket<'h>(h: &'h mut Host<'_>, a: &[Value]) -> Result<&'h mut TcpSocket, Error> {
    match h.cx.resources.get_mut(rep(a, 0)?)? {
        HostResource::TcpSocket(t) => Ok(t),
        _ => Err(trap("not a tcp-socket")),
    }
}

/// `result<_, error-code>` of `r`.
fn unit(r: Result<(), u32>) -> Result<Vec<Value>, Error> {
    match r {
        Ok(()) => ok(None),
        Err(c) => fail(c),
    }
}

/// `result<T, error-code>` of `r`.
fn value(r: Result<Value, u32>) -> Result<Vec<Value>, Error> {
    match r {
        Ok(v) => ok(Some(v)),
        Err(c) => fail(c),
    }
}

fn create(h: &mut Host<'_>, a: &[Value]) -> Result<Vec<Value>, Error> {
    let v6 = family_arg(a, 0)?;
    if !h.cx.grants.tcp {
        return fail(code::ACCESS_DENIED);
    }
    let net = match network(h.cx) {
        Ok(n) => n,
        Err(c) => return fail(c),
    };
    let id = match net.create(Transport::Tcp, v6) {
        Ok(id) => id,
        Err(e) => return fail(net_code(e)),
    };
    let t = TcpSocket {
        sock: SockHandle::new(net, id),
        v6,
        state: State::Unbound,
        opts: Options::default(),
    };
    let r = h.cx.resources.push(HostResource::TcpSocket(t), None)?;
    ok(Some(Types::own(&h.ty.tcp_socket, r)))
}

fn start_bind(h: &mut Host<'_>, a: &[Value]) -> Result<Vec<Value>, Error> {
    check_network(h, a, 1)?;
    let addr = addr_arg(a, 2)?;
    let access = check_access(h.cx, &addr);
    let t = socket(h, a)?;
    if t.state != State::Unbound {
        return fail(code::INVALID_STATE);
    }
    unit((|| {
        check_family(&addr, t.v6)?;
        access?;
        t.sock.net.bind(t.sock.id, addr).map_err(net_code)?;
        t.state = State::BindStarted;
        Ok(())
    })())
}

fn finish_bind(h: &mut Host<'_>, a: &[Value]) -> Result<Vec<Value>, Error> {
    let t = socket(h, a)?;
    if t.state != State::BindStarted {
        return fail(code::NOT_IN_PROGRESS);
    }
    t.state = State::Bound;
    ok(None)
}

fn start_connect(h: &mut Host<'_>, a: &[Value]) -> Result<Vec<Value>, Error> {
    check_network(h, a, 1)?;
    let addr = addr_arg(a, 2)?;
    let access = check_access(h.cx, &addr);
    let t = socket(h, a)?;
    match t.state {
        State::Unbound | State::Bound => {}
        State::Connecting | State::ConnectFailed(_) => return fail(code::CONCURRENCY_CONFLICT),
        _ => return fail(code::INVALID_STATE),
    }
    unit((|| {
        check_remote(&addr, t.v6)?;
        access?;
        t.state = match t.sock.net.connect(t.sock.id, addr) {
            Ok(()) => State::Connecting,
            Err(e) => State::ConnectFailed(e),
        };
        Ok(())
    })())
}

/// The input and output streams of connection `sock`.
fn streams(h: &mut Host<'_>, sock: &Arc<SockHandle>) -> Result<(Value, Value), Error> {
    let i =
        h.cx.resources
            .push(HostResource::Input(InputStream::Socket(sock.clone())), None)?;
    let o = h.cx.resources.push(
        HostResource::Output(OutputStream::Socket(sock.clone())),
        None,
    )?;
    Ok((Types::own(&h.ty.input, i), Types::own(&h.ty.output, o)))
}

fn finish_connect(h: &mut Host<'_>, a: &[Value]) -> Result<Vec<Value>, Error> {
    let t = socket(h, a)?;
    let status = match t.state {
        State::Connecting => t.sock.net.connect_status(t.sock.id),
        State::ConnectFailed(e) => Err(e),
        _ => return fail(code::NOT_IN_PROGRESS),
    };
    match status {
        Ok(false) => fail(code::WOULD_BLOCK),
        Err(e) => {
            t.state = State::Closed;
            fail(net_code(e))
        }
        Ok(true) => {
            t.state = State::Connected;
            let sock = t.sock.clone();
            let (i, o) = streams(h, &sock)?;
            ok(Some(Value::Tuple(vec![i, o])))
        }
    }
}

fn start_listen(h: &mut Host<'_>, a: &[Value]) -> Result<Vec<Value>, Error> {
    let t = socket(h, a)?;
    if t.state != State::Bound {
        return fail(code::INVALID_STATE);
    }
    let backlog = t.opts.backlog.min(u64::from(u32::MAX)) as u32;
    unit(
        t.sock
            .net
            .listen(t.sock.id, backlog)
            .map(|()| t.state = State::ListenStarted)
            .map_err(net_code),
    )
}

fn finish_listen(h: &mut Host<'_>, a: &[Value]) -> Result<Vec<Value>, Error> {
    let t = socket(h, a)?;
    if t.state != State::ListenStarted {
        return fail(code::NOT_IN_PROGRESS);
    }
    t.state = State::Listening;
    ok(None)
}

fn accept(h: &mut Host<'_>, a: &[Value]) -> Result<Vec<Value>, Error> {
    let t = socket(h, a)?;
    if t.state != State::Listening {
        return fail(code::INVALID_STATE);
    }
    let id = match t.sock.net.accept(t.sock.id) {
        Ok(id) => id,
        Err(e) => return fail(net_code(e)),
    };
    let conn = TcpSocket {
        sock: SockHandle::new(t.sock.net.clone(), id),
        v6: t.v6,
        state: State::Connected,
        opts: t.opts,
    };
    // The accepted socket has the listener's options already (the
    // network copies them, as POSIX stacks do).
    let sock = conn.sock.clone();
    let r = h.cx.resources.push(HostResource::TcpSocket(conn), None)?;
    let (i, o) = streams(h, &sock)?;
    ok(Some(Value::Tuple(vec![
        Types::own(&h.ty.tcp_socket, r),
        i,
        o,
    ])))
}

fn local_address(h: &mut Host<'_>, a: &[Value]) -> Result<Vec<Value>, Error> {
    let t = socket(h, a)?;
    if matches!(t.state, State::Unbound | State::BindStarted | State::Closed) {
        return fail(code::INVALID_STATE);
    }
    value(
        t.sock
            .net
            .local_addr(t.sock.id)
            .map(addr_value)
            .map_err(net_code),
    )
}

fn remote_address(h: &mut Host<'_>, a: &[Value]) -> Result<Vec<Value>, Error> {
    let t = socket(h, a)?;
    if t.state != State::Connected {
        return fail(code::INVALID_STATE);
    }
    value(
        t.sock
            .net
            .peer_addr(t.sock.id)
            .map(addr_value)
            .map_err(net_code),
    )
}

fn shutdown(h: &mut Host<'_>, a: &[Value]) -> Result<Vec<Value>, Error> {
    let how = match super::u32_arg(a, 1)? {
        0 => Shutdown::Read,
        1 => Shutdown::Write,
        _ => Shutdown::Both,
    };
    let t = socket(h, a)?;
    if t.state != State::Connected {
        return fail(code::INVALID_STATE);
    }
    unit(t.sock.shutdown(how).map_err(net_code))
}

/// Sets an option after checking it is positive; `f` stores it.
fn set(
    h: &mut Host<'_>,
    a: &[Value],
    v: u64,
    f: fn(&mut Options, u64) -> SocketOption,
) -> Result<Vec<Value>, Error> {
    let t = socket(h, a)?;
    if v == 0 {
        return fail(code::INVALID_ARGUMENT);
    }
    let opt = f(&mut t.opts, v);
    t.apply(opt);
    ok(None)
}

fn get(h: &mut Host<'_>, a: &[Value], f: fn(&Options) -> Value) -> Result<Vec<Value>, Error> {
    let t = socket(h, a)?;
    ok(Some(f(&t.opts)))
}

fn arg_u64(a: &[Value]) -> Result<u64, Error> {
    super::u64_arg(a, 1)
}

fn arg_u32(a: &[Value]) -> Result<u64, Error> {
    super::u32_arg(a, 1).map(u64::from)
}

pub(super) fn add<T: 'static>(
    linker: &mut Linker<T>,
    getcx: fn(&mut T) -> &mut WasiCtx,
    types: &Arc<Types>,
) {
    let mut i = linker.instance(&iface("sockets", "tcp-create-socket"));
    def(&mut i, "create-tcp-socket", getcx, types, create);

    let mut i = linker.instance(&iface("sockets", "tcp"));
    let m = |n: &str| alloc::format!("[method]tcp-socket.{n}");
    let calls: &[(&str, super::HostCall)] = &[
        ("start-bind", start_bind),
        ("finish-bind", finish_bind),
        ("start-connect", start_connect),
        ("finish-connect", finish_connect),
        ("start-listen", start_listen),
        ("finish-listen", finish_listen),
        ("accept", accept),
        ("local-address", local_address),
        ("remote-address", remote_address),
        ("shutdown", shutdown),
        ("subscribe", |h, a| subscribe(h, rep(a, 0)?)),
        ("is-listening", |h, a| {
            let t = socket(h, a)?;
            one(Value::Bool(t.state == State::Listening))
        }),
        ("address-family", |h, a| {
            let t = socket(h, a)?;
            one(Value::Enum(u32::from(t.v6)))
        }),
        ("set-listen-backlog-size", |h, a| {
            let v = arg_u64(a)?;
            let t = socket(h, a)?;
            if v == 0 {
                return fail(code::INVALID_ARGUMENT);
            }
            match t.state {
                State::Connecting | State::ConnectFailed(_) | State::Connected | State::Closed => {
                    fail(code::INVALID_STATE)
                }
                State::Listening => {
                    t.opts.backlog = v;
                    let backlog = v.min(u64::from(u32::MAX)) as u32;
                    // Listening again only changes the queue's length.
                    let _ = t.sock.net.listen(t.sock.id, backlog);
                    ok(None)
                }
                _ => {
                    t.opts.backlog = v;
                    ok(None)
                }
            }
        }),
        ("keep-alive-enabled", |h, a| {
            get(h, a, |o| Value::Bool(o.keep_alive))
        }),
        ("set-keep-alive-enabled", |h, a| {
            let on = matches!(a.get(1), Some(Value::Bool(true)));
            let t = socket(h, a)?;
            t.opts.keep_alive = on;
            t.apply(SocketOption::KeepAlive(on));
            ok(None)
        }),
        ("keep-alive-idle-time", |h, a| {
            get(h, a, |o| Value::U64(o.keep_idle))
        }),
        ("set-keep-alive-idle-time", |h, a| {
            set(h, a, arg_u64(a)?, |o, v| {
                o.keep_idle = v;
                SocketOption::KeepAliveIdle(v)
            })
        }),
        ("keep-alive-interval", |h, a| {
            get(h, a, |o| Value::U64(o.keep_interval))
        }),
        ("set-keep-alive-interval", |h, a| {
            set(h, a, arg_u64(a)?, |o, v| {
                o.keep_interval = v;
                SocketOption::KeepAliveInterval(v)
            })
        }),
        ("keep-alive-count", |h, a| {
            get(h, a, |o| Value::U32(o.keep_count))
        }),
        ("set-keep-alive-count", |h, a| {
            set(h, a, arg_u32(a)?, |o, v| {
                o.keep_count = v as u32;
                SocketOption::KeepAliveCount(v as u32)
            })
        }),
        ("hop-limit", |h, a| get(h, a, |o| Value::U8(o.hop_limit))),
        ("set-hop-limit", |h, a| {
            set(h, a, arg_u32(a)?, |o, v| {
                o.hop_limit = v as u8;
                SocketOption::HopLimit(v as u8)
            })
        }),
        ("receive-buffer-size", |h, a| {
            get(h, a, |o| Value::U64(o.receive_buffer))
        }),
        ("set-receive-buffer-size", |h, a| {
            set(h, a, arg_u64(a)?, |o, v| {
                o.receive_buffer = v.min(MAX_BUFFER);
                SocketOption::ReceiveBuffer(o.receive_buffer as usize)
            })
        }),
        ("send-buffer-size", |h, a| {
            get(h, a, |o| Value::U64(o.send_buffer))
        }),
        ("set-send-buffer-size", |h, a| {
            set(h, a, arg_u64(a)?, |o, v| {
                o.send_buffer = v.min(MAX_BUFFER);
                SocketOption::SendBuffer(o.send_buffer as usize)
            })
        }),
    ];
    for (name, f) in calls {
        def(&mut i, &m(name), getcx, types, *f);
    }
}
