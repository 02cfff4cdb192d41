//! `wasi:sockets/udp` and `udp-create-socket`: UDP sockets, their
//! datagram streams (`stream` connects or disconnects them), and their
//! options, over [`crate::services::Network`].

use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;

use basalt_runtime::Error;
use basalt_runtime::component::{Linker, Value};

use super::sockets::{
    SockHandle, addr_arg, addr_of, addr_value, check_access, check_family, check_network,
    check_remote, code, fail, family_arg, net_code, network, subscribe,
};
use super::{Host, HostResource, Types, def, iface, ok, one, rep, trap};
use crate::WasiCtx;
use crate::services::{NetError, SocketAddr, SocketOption, Transport};

/// How many datagrams `check-send` permits at once.
const SEND_PERMIT: u64 = 16;
/// The most `receive` returns at once.
const RECEIVE_MAX: u64 = 64;
/// The largest UDP payload over IPv4 (and the receive buffer's size).
const MAX_DATAGRAM: usize = 65507;
/// The most a buffer-size option keeps (larger values are capped).
const MAX_BUFFER: u64 = 1 << 30;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Unbound,
    BindStarted,
    Bound,
    Connected(SocketAddr),
}

/// A `udp-socket`.
pub(crate) struct UdpSocket {
    sock: Arc<SockHandle>,
    v6: bool,
    state: State,
    hop_limit: u8,
    receive_buffer: u64,
    send_buffer: u64,
}

/// An `incoming-datagram-stream`.
pub(crate) struct Incoming {
    /// the socket
    pub sock: Arc<SockHandle>,
    /// the peer when connected: datagrams from others are dropped
    remote: Option<SocketAddr>,
}

impl Incoming {
    /// Whether a datagram (or an error) waits.
    pub fn ready(&self) -> bool {
        self.sock
            .net
            .readiness(self.sock.id)
            .map_or(true, |r| r.readable || r.hangup)
    }
}

/// An `outgoing-datagram-stream`.
pub(crate) struct Outgoing {
    /// the socket
    pub sock: Arc<SockHandle>,
    /// the peer when connected
    remote: Option<SocketAddr>,
    v6: bool,
    /// datagrams `check-send` permitted and `send` has not used
    permit: u64,
}

impl Outgoing {
    /// Whether a datagram could be sent now.
    pub fn ready(&self) -> bool {
        self.sock
            .net
            .readiness(self.sock.id)
            .map_or(true, |r| r.writable.is_some() || r.hangup)
    }
}

fn socket<'h>(h: &'h mut Host<'_>, a: &[Value]) -> Result<&'h mut UdpSocket, Error> {
    match h.cx.resources.get_mut(rep(a, 0)?)? {
        HostResource::UdpSocket(u) => Ok(u),
        _ => Err(trap("not a udp-socket")),
    }
}

fn create(h: &mut Host<'_>, a: &[Value]) -> Result<Vec<Value>, Error> {
    let v6 = family_arg(a, 0)?;
    if !h.cx.grants.udp {
        return fail(code::ACCESS_DENIED);
    }
    let net = match network(h.cx) {
        Ok(n) => n,
        Err(c) => return fail(c),
    };
    let id = match net.create(Transport::Udp, v6) {
        Ok(id) => id,
        Err(e) => return fail(net_code(e)),
    };
    let u = UdpSocket {
        sock: SockHandle::new(net, id),
        v6,
        state: State::Unbound,
        hop_limit: 64,
        receive_buffer: 208 * 1024,
        send_buffer: 208 * 1024,
    };
    let r = h.cx.resources.push(HostResource::UdpSocket(u), None)?;
    ok(Some(Types::own(&h.ty.udp_socket, r)))
}

fn start_bind(h: &mut Host<'_>, a: &[Value]) -> Result<Vec<Value>, Error> {
    check_network(h, a, 1)?;
    let addr = addr_arg(a, 2)?;
    let access = check_access(h.cx, &addr);
    let u = socket(h, a)?;
    if u.state != State::Unbound {
        return fail(code::INVALID_STATE);
    }
    let r = (|| {
        check_family(&addr, u.v6)?;
        access?;
        u.sock.net.bind(u.sock.id, addr).map_err(net_code)?;
        u.state = State::BindStarted;
        Ok(())
    })();
    match r {
        Ok(()) => ok(None),
        Err(c) => fail(c),
    }
}

fn finish_bind(h: &mut Host<'_>, a: &[Value]) -> Result<Vec<Value>, Error> {
    let u = socket(h, a)?;
    if u.state != State::BindStarted {
        return fail(code::NOT_IN_PROGRESS);
    }
    u.state = State::Bound;
    ok(None)
}

fn stream(h: &mut Host<'_>, a: &[Value]) -> Result<Vec<Value>, Error> {
    let remote = match a.get(1) {
        Some(Value::Option(None)) => None,
        Some(Value::Option(Some(v))) => Some(addr_of(v)?),
        _ => return Err(trap("stream: argument of the wrong type")),
    };
    let access = remote.as_ref().map(|r| check_access(h.cx, r));
    let u = socket(h, a)?;
    if !matches!(u.state, State::Bound | State::Connected(_)) {
        return fail(code::INVALID_STATE);
    }
    let r = (|| {
        if let Some(addr) = &remote {
            check_remote(addr, u.v6)?;
            access.unwrap_or(Ok(()))?;
        }
        if matches!(u.state, State::Connected(_)) {
            u.sock.net.disconnect(u.sock.id).map_err(net_code)?;
            u.state = State::Bound;
        }
        if let Some(addr) = remote {
            u.sock.net.connect(u.sock.id, addr).map_err(net_code)?;
            u.state = State::Connected(addr);
        }
        Ok(())
    })();
    if let Err(c) = r {
        return fail(c);
    }
    let (sock, v6) = (u.sock.clone(), u.v6);
    let i = h.cx.resources.push(
        HostResource::Incoming(Incoming {
            sock: sock.clone(),
            remote,
        }),
        None,
    )?;
    let o = h.cx.resources.push(
        HostResource::Outgoing(Outgoing {
            sock,
            remote,
            v6,
            permit: 0,
        }),
        None,
    )?;
    ok(Some(Value::Tuple(vec![
        Types::own(&h.ty.incoming_datagrams, i),
        Types::own(&h.ty.outgoing_datagrams, o),
    ])))
}

fn receive(h: &mut Host<'_>, a: &[Value]) -> Result<Vec<Value>, Error> {
    let max = super::u64_arg(a, 1)?.min(RECEIVE_MAX);
    let HostResource::Incoming(inc) = h.cx.resources.get(rep(a, 0)?)? else {
        return Err(trap("not an incoming-datagram-stream"));
    };
    let mut out = Vec::new();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    while (out.len() as u64) < max {
        match inc.sock.net.recv_from(inc.sock.id, &mut buf) {
            Ok((_, from)) if inc.remote.is_some_and(|r| r != from) => {}
            Ok((n, from)) => out.push(Value::Record(vec![
                Value::Bytes(buf[..n].to_vec()),
                addr_value(from),
            ])),
            Err(NetError::WouldBlock) => break,
            Err(e) if out.is_empty() => return fail(net_code(e)),
            Err(_) => break,
        }
    }
    ok(Some(Value::List(out)))
}

fn outgoing<'h>(h: &'h mut Host<'_>, a: &[Value]) -> Result<&'h mut Outgoing, Error> {
    match h.cx.resources.get_mut(rep(a, 0)?)? {
        HostResource::Outgoing(o) => Ok(o),
        _ => Err(trap("not an outgoing-datagram-stream")),
    }
}

fn check_send(h: &mut Host<'_>, a: &[Value]) -> Result<Vec<Value>, Error> {
    let o = outgoing(h, a)?;
    o.permit = if o.ready() { SEND_PERMIT } else { 0 };
    ok(Some(Value::U64(o.permit)))
}

/// Where one outgoing datagram goes: `None` to the connected peer.
fn destination(
    cx: &WasiCtx,
    remote: Option<SocketAddr>,
    v6: bool,
    to: Option<SocketAddr>,
) -> Result<Option<SocketAddr>, u32> {
    match (to, remote) {
        (None, Some(_)) => Ok(None),
        (None, None) => Err(code::INVALID_ARGUMENT),
        (Some(a), Some(r)) if a == r => Ok(None),
        (Some(_), Some(_)) => Err(code::INVALID_ARGUMENT),
        (Some(a), None) => {
            check_remote(&a, v6)?;
            check_access(cx, &a)?;
            Ok(Some(a))
        }
    }
}

fn send(h: &mut Host<'_>, a: &[Value]) -> Result<Vec<Value>, Error> {
    let Some(Value::List(list)) = a.get(1) else {
        return Err(trap("send: argument of the wrong type"));
    };
    let mut datagrams = Vec::with_capacity(list.len());
    for d in list {
        let Value::Record(fields) = d else {
            return Err(trap("send: not an outgoing-datagram"));
        };
        let data = super::bytes_arg(fields, 0)?;
        let to = match fields.get(1) {
            Some(Value::Option(None)) => None,
            Some(Value::Option(Some(v))) => Some(addr_of(v)?),
            _ => return Err(trap("send: not an outgoing-datagram")),
        };
        datagrams.push((data, to));
    }
    let o = outgoing(h, a)?;
    if datagrams.len() as u64 > o.permit {
        return Err(trap("unpermitted: argument exceeds permitted size"));
    }
    o.permit -= datagrams.len() as u64;
    let (sock, remote, v6) = (o.sock.clone(), o.remote, o.v6);
    let mut sent = 0u64;
    for (data, to) in datagrams {
        let r = destination(h.cx, remote, v6, to).and_then(|to| {
            if data.len() > MAX_DATAGRAM {
                return Err(code::DATAGRAM_TOO_LARGE);
            }
            match sock.net.send_to(sock.id, &data, to) {
                Ok(()) => Ok(true),
                Err(NetError::WouldBlock) => Ok(false),
                Err(e) => Err(net_code(e)),
            }
        });
        match r {
            Ok(true) => sent += 1,
            Ok(false) => break,
            Err(c) if sent == 0 => return fail(c),
            Err(_) => break,
        }
    }
    ok(Some(Value::U64(sent)))
}

/// Sets a positive option; `f` stores it and names it for the network.
fn set(
    h: &mut Host<'_>,
    a: &[Value],
    v: u64,
    f: fn(&mut UdpSocket, u64) -> SocketOption,
) -> Result<Vec<Value>, Error> {
    let u = socket(h, a)?;
    if v == 0 {
        return fail(code::INVALID_ARGUMENT);
    }
    let opt = f(u, v);
    let _ = u.sock.net.set_option(u.sock.id, opt);
    ok(None)
}

pub(super) fn add<T: 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut WasiCtx,
    types: &Arc<Types>,
) {
    let mut i = linker.instance(&iface("sockets", "udp-create-socket"));
    def(&mut i, "create-udp-socket", get, types, create);

    let mut i = linker.instance(&iface("sockets", "udp"));
    let calls: &[(&str, super::HostCall)] = &[
        ("[method]udp-socket.start-bind", start_bind),
        ("[method]udp-socket.finish-bind", finish_bind),
        ("[method]udp-socket.stream", stream),
        ("[method]udp-socket.local-address", |h, a| {
            let u = socket(h, a)?;
            if matches!(u.state, State::Unbound | State::BindStarted) {
                return fail(code::INVALID_STATE);
            }
            match u.sock.net.local_addr(u.sock.id) {
                Ok(addr) => ok(Some(addr_value(addr))),
                Err(e) => fail(net_code(e)),
            }
        }),
        ("[method]udp-socket.remote-address", |h, a| {
            let u = socket(h, a)?;
            match u.state {
                State::Connected(addr) => ok(Some(addr_value(addr))),
                _ => fail(code::INVALID_STATE),
            }
        }),
        ("[method]udp-socket.address-family", |h, a| {
            let u = socket(h, a)?;
            one(Value::Enum(u32::from(u.v6)))
        }),
        ("[method]udp-socket.unicast-hop-limit", |h, a| {
            let u = socket(h, a)?;
            ok(Some(Value::U8(u.hop_limit)))
        }),
        ("[method]udp-socket.set-unicast-hop-limit", |h, a| {
            let v = super::u32_arg(a, 1)?;
            set(h, a, u64::from(v), |u, v| {
                u.hop_limit = v as u8;
                SocketOption::HopLimit(v as u8)
            })
        }),
        ("[method]udp-socket.receive-buffer-size", |h, a| {
            let u = socket(h, a)?;
            ok(Some(Value::U64(u.receive_buffer)))
        }),
        ("[method]udp-socket.set-receive-buffer-size", |h, a| {
            let v = super::u64_arg(a, 1)?;
            set(h, a, v, |u, v| {
                u.receive_buffer = v.min(MAX_BUFFER);
                SocketOption::ReceiveBuffer(u.receive_buffer as usize)
            })
        }),
        ("[method]udp-socket.send-buffer-size", |h, a| {
            let u = socket(h, a)?;
            ok(Some(Value::U64(u.send_buffer)))
        }),
        ("[method]udp-socket.set-send-buffer-size", |h, a| {
            let v = super::u64_arg(a, 1)?;
            set(h, a, v, |u, v| {
                u.send_buffer = v.min(MAX_BUFFER);
                SocketOption::SendBuffer(u.send_buffer as usize)
            })
        }),
        ("[method]udp-socket.subscribe", |h, a| {
            subscribe(h, rep(a, 0)?)
        }),
        ("[method]incoming-datagram-stream.receive", receive),
        ("[method]incoming-datagram-stream.subscribe", |h, a| {
            subscribe(h, rep(a, 0)?)
        }),
        ("[method]outgoing-datagram-stream.check-send", check_send),
        ("[method]outgoing-datagram-stream.send", send),
        ("[method]outgoing-datagram-stream.subscribe", |h, a| {
            subscribe(h, rep(a, 0)?)
        }),
    ];
    for (name, f) in calls {
        def(&mut i, name, get, types, *f);
    }
}
