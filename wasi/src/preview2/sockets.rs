//! `wasi:sockets`: what TCP ([`super::tcp`]) and UDP ([`super::udp`])
//! share — the grants, addresses and their checks, error codes, the
//! `network` resource, name lookup — over [`crate::services::Network`].
//!
//! A socket of the program is one socket of the network, held by a
//! [`SockHandle`] that its streams share, and closed when the last of
//! them is dropped. Pollables of sockets and their streams are
//! [`PollTarget::Socket`]s: readiness is asked of the network when polled
//! ([`ready`]), and waiting is the network's ([`interest`]).

use alloc::collections::VecDeque;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec;
use alloc::vec::Vec;
use core::sync::atomic::{AtomicBool, Ordering};

use basalt_runtime::Error;
use basalt_runtime::component::{Linker, Value};

use super::{
    Host, HostResource, PollTarget, Types, boxed, def, iface, ok, one, rep, str_arg, trap,
};
use crate::WasiCtx;
use crate::errno::Errno;
use crate::services::{Interest, IpAddr, NetError, Network, Shutdown, SocketAddr, SocketId};

/// What `wasi:sockets` may do, as wasmtime's `-S` options say. The
/// default is wasmtime's: no address may be bound, connected or sent to,
/// no name may be looked up, and both protocols' interfaces work (so
/// they fail with `access-denied` on addresses).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SocketGrants {
    /// every address may be used (`-S inherit-network`)
    pub inherit_network: bool,
    /// names may be resolved (`-S allow-ip-name-lookup`)
    pub ip_name_lookup: bool,
    /// TCP sockets may be made (`-S tcp`, on by default)
    pub tcp: bool,
    /// UDP sockets may be made (`-S udp`, on by default)
    pub udp: bool,
}

impl Default for SocketGrants {
    fn default() -> Self {
        SocketGrants {
            inherit_network: false,
            ip_name_lookup: false,
            tcp: true,
            udp: true,
        }
    }
}

/// `error-code` cases of `wasi:sockets/network`.
pub(crate) mod code {
    pub const UNKNOWN: u32 = 0;
    pub const ACCESS_DENIED: u32 = 1;
    pub const NOT_SUPPORTED: u32 = 2;
    pub const INVALID_ARGUMENT: u32 = 3;
    pub const OUT_OF_MEMORY: u32 = 4;
    pub const TIMEOUT: u32 = 5;
    pub const CONCURRENCY_CONFLICT: u32 = 6;
    pub const NOT_IN_PROGRESS: u32 = 7;
    pub const WOULD_BLOCK: u32 = 8;
    pub const INVALID_STATE: u32 = 9;
    pub const ADDRESS_NOT_BINDABLE: u32 = 11;
    pub const ADDRESS_IN_USE: u32 = 12;
    pub const REMOTE_UNREACHABLE: u32 = 13;
    pub const CONNECTION_REFUSED: u32 = 14;
    pub const CONNECTION_RESET: u32 = 15;
    pub const CONNECTION_ABORTED: u32 = 16;
    pub const DATAGRAM_TOO_LARGE: u32 = 17;
    pub const NAME_UNRESOLVABLE: u32 = 18;
    pub const TEMPORARY_RESOLVER_FAILURE: u32 = 19;
    pub const PERMANENT_RESOLVER_FAILURE: u32 = 20;
}

/// The `error-code` of a network failure.
pub(crate) fn net_code(e: NetError) -> u32 {
    match e {
        NetError::WouldBlock => code::WOULD_BLOCK,
        NetError::ConnectionReset | NetError::BrokenPipe => code::CONNECTION_RESET,
        NetError::NotConnected => code::INVALID_STATE,
        NetError::InvalidArgument => code::INVALID_ARGUMENT,
        NetError::NoBuffers => code::OUT_OF_MEMORY,
        NetError::Stale => code::UNKNOWN,
        NetError::AddressInUse => code::ADDRESS_IN_USE,
        NetError::AddressNotAvailable => code::ADDRESS_NOT_BINDABLE,
        NetError::ConnectionRefused => code::CONNECTION_REFUSED,
        NetError::ConnectionAborted => code::CONNECTION_ABORTED,
        NetError::Unreachable => code::REMOTE_UNREACHABLE,
        NetError::Timeout => code::TIMEOUT,
        NetError::NotSupported => code::NOT_SUPPORTED,
        NetError::MessageTooLarge => code::DATAGRAM_TOO_LARGE,
        NetError::AccessDenied => code::ACCESS_DENIED,
        NetError::NameUnresolvable => code::NAME_UNRESOLVABLE,
        NetError::ResolverTemporary => code::TEMPORARY_RESOLVER_FAILURE,
        NetError::ResolverPermanent => code::PERMANENT_RESOLVER_FAILURE,
    }
}

/// `result<_, error-code>`'s error `c`.
pub(crate) fn fail(c: u32) -> Result<Vec<Value>, Error> {
    one(Value::err(Some(Value::Enum(c))))
}

/// The network, or `not-supported` when the program has none.
pub(crate) fn network(cx: &WasiCtx) -> Result<Arc<dyn Network>, u32> {
    cx.net.clone().ok_or(code::NOT_SUPPORTED)
}

/// Checks that argument `i` is a `network` handle.
pub(crate) fn check_network(h: &Host<'_>, args: &[Value], i: usize) -> Result<(), Error> {
    match h.cx.resources.get(rep(args, i)?)? {
        HostResource::Network => Ok(()),
        _ => Err(trap("not a network")),
    }
}

// ---- addresses ---------------------------------------------------------------

/// `ip-address` of `ip`.
pub(crate) fn ip_value(ip: IpAddr) -> Value {
    match ip {
        IpAddr::V4(a) => Value::Variant(
            0,
            Some(boxed(Value::Tuple(
                a.octets().iter().map(|b| Value::U8(*b)).collect(),
            ))),
        ),
        IpAddr::V6(a) => Value::Variant(
            1,
            Some(boxed(Value::Tuple(
                a.segments().iter().map(|s| Value::U16(*s)).collect(),
            ))),
        ),
    }
}

/// `ip-socket-address` of `a`.
pub(crate) fn addr_value(a: SocketAddr) -> Value {
    let ip = match ip_value(a.ip()) {
        Value::Variant(_, Some(t)) => *t,
        other => other,
    };
    match a {
        SocketAddr::V4(v4) => Value::Variant(
            0,
            Some(boxed(Value::Record(vec![Value::U16(v4.port()), ip]))),
        ),
        SocketAddr::V6(v6) => Value::Variant(
            1,
            Some(boxed(Value::Record(vec![
                Value::U16(v6.port()),
                Value::U32(v6.flowinfo()),
                ip,
                Value::U32(v6.scope_id()),
            ]))),
        ),
    }
}

fn bad_addr() -> Error {
    trap("not an ip-socket-address")
}

/// An `ip-socket-address` value.
pub(crate) fn addr_of(v: &Value) -> Result<SocketAddr, Error> {
    let Value::Variant(case, Some(payload)) = v else {
        return Err(bad_addr());
    };
    let Value::Record(fields) = &**payload else {
        return Err(bad_addr());
    };
    let u16_of = |v: &Value| match v {
        Value::U16(x) => Ok(*x),
        _ => Err(bad_addr()),
    };
    let u32_of = |v: &Value| match v {
        Value::U32(x) => Ok(*x),
        _ => Err(bad_addr()),
    };
    match (case, fields.as_slice()) {
        (0, [port, Value::Tuple(o)]) if o.len() == 4 => {
            let mut b = [0u8; 4];
            for (d, s) in b.iter_mut().zip(o) {
                *d = match s {
                    Value::U8(x) => *x,
                    _ => return Err(bad_addr()),
                };
            }
            Ok(SocketAddr::V4(core::net::SocketAddrV4::new(
                b.into(),
                u16_of(port)?,
            )))
        }
        (1, [port, flow, Value::Tuple(s), scope]) if s.len() == 8 => {
            let mut seg = [0u16; 8];
            for (d, v) in seg.iter_mut().zip(s) {
                *d = u16_of(v)?;
            }
            Ok(SocketAddr::V6(core::net::SocketAddrV6::new(
                seg.into(),
                u16_of(port)?,
                u32_of(flow)?,
                u32_of(scope)?,
            )))
        }
        _ => Err(bad_addr()),
    }
}

/// Argument `i` as an `ip-socket-address`.
pub(crate) fn addr_arg(args: &[Value], i: usize) -> Result<SocketAddr, Error> {
    addr_of(args.get(i).ok_or_else(bad_addr)?)
}

/// Why `addr` cannot be used by a socket of family `v6` at all: the wrong
/// family, an IPv4-mapped IPv6 address (sockets are IPv6-only), or an
/// address that is not unicast.
pub(crate) fn check_family(addr: &SocketAddr, v6: bool) -> Result<(), u32> {
    let ok = match addr.ip() {
        IpAddr::V4(a) => !v6 && !a.is_broadcast() && !a.is_multicast(),
        IpAddr::V6(a) => v6 && !a.is_multicast() && a.to_ipv4_mapped().is_none(),
    };
    if ok {
        Ok(())
    } else {
        Err(code::INVALID_ARGUMENT)
    }
}

/// [`check_family`], and that `addr` names a peer: not unspecified, not
/// port 0.
pub(crate) fn check_remote(addr: &SocketAddr, v6: bool) -> Result<(), u32> {
    check_family(addr, v6)?;
    if addr.ip().is_unspecified() || addr.port() == 0 {
        return Err(code::INVALID_ARGUMENT);
    }
    Ok(())
}

/// Whether the grants let the program use `addr` (`access-denied` if not).
pub(crate) fn check_access(cx: &WasiCtx, _addr: &SocketAddr) -> Result<(), u32> {
    if cx.grants.inherit_network {
        Ok(())
    } else {
        Err(code::ACCESS_DENIED)
    }
}

/// `ip-address-family`: 0 IPv4, 1 IPv6; whether it is IPv6.
pub(crate) fn family_arg(args: &[Value], i: usize) -> Result<bool, Error> {
    Ok(super::u32_arg(args, i)? == 1)
}

// ---- sockets and their streams -------------------------------------------------

/// One socket of the network, shared by the resource and its streams;
/// closed in the network when the last of them goes.
pub(crate) struct SockHandle {
    /// the network it lives in
    pub net: Arc<dyn Network>,
    /// its number there
    pub id: SocketId,
    /// no more reading: shut down, or the peer's end of stream was seen
    read_shut: AtomicBool,
    /// no more writing (shut down)
    write_shut: AtomicBool,
    /// bytes written that the network has not taken yet
    pending: spin::Mutex<Vec<u8>>,
}

impl Drop for SockHandle {
    fn drop(&mut self) {
        self.net.close(self.id);
    }
}

/// How much an output stream of a socket takes at once (`check-write`).
pub const SOCKET_WRITE_PERMIT: u64 = 64 * 1024;

impl SockHandle {
    /// A handle of socket `id` of `net`.
    pub fn new(net: Arc<dyn Network>, id: SocketId) -> Arc<SockHandle> {
        Arc::new(SockHandle {
            net,
            id,
            read_shut: AtomicBool::new(false),
            write_shut: AtomicBool::new(false),
            pending: spin::Mutex::new(Vec::new()),
        })
    }

    /// Hands what it can of the pending bytes to the network.
    fn try_flush(&self) -> Result<(), NetError> {
        let mut p = self.pending.lock();
        while !p.is_empty() {
            match self.net.send(self.id, &p) {
                Ok(0) | Err(NetError::WouldBlock) => return Ok(()),
                Ok(n) => {
                    p.drain(..n);
                }
                Err(e) => {
                    p.clear();
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    fn flushed(&self) -> bool {
        self.pending.lock().is_empty()
    }

    /// Waits until every pending byte is handed to the network.
    fn flush_blocking(&self) -> Result<(), NetError> {
        loop {
            self.try_flush()?;
            if self.flushed() {
                return Ok(());
            }
            self.net.wait(&[(self.id, Interest::Write)], None);
        }
    }

    /// Shuts down `how` (pending bytes are sent first).
    pub fn shutdown(&self, how: Shutdown) -> Result<(), NetError> {
        if matches!(how, Shutdown::Write | Shutdown::Both) {
            let _ = self.flush_blocking();
        }
        let r = self.net.shutdown(self.id, how);
        if matches!(how, Shutdown::Read | Shutdown::Both) {
            self.read_shut.store(true, Ordering::Relaxed);
        }
        if matches!(how, Shutdown::Write | Shutdown::Both) {
            self.write_shut.store(true, Ordering::Relaxed);
        }
        r
    }

    /// `input-stream.read`: up to `len` bytes; `Err(None)`: closed.
    pub fn read(&self, len: usize) -> Result<Vec<u8>, Option<Errno>> {
        if self.read_shut.load(Ordering::Relaxed) {
            return Err(None);
        }
        // Reading nothing still tells end of stream from nothing yet.
        let mut buf = vec![0u8; len.max(1)];
        match self.net.recv(self.id, &mut buf, len == 0) {
            Ok(0) => {
                self.read_shut.store(true, Ordering::Relaxed);
                Err(None)
            }
            Ok(_) if len == 0 => Ok(Vec::new()),
            Ok(n) => {
                buf.truncate(n);
                Ok(buf)
            }
            Err(NetError::WouldBlock) => Ok(Vec::new()),
            Err(e) => Err(Some(e.into())),
        }
    }

    /// `output-stream.check-write`.
    pub fn check_write(&self) -> Result<u64, Option<Errno>> {
        if self.write_shut.load(Ordering::Relaxed) {
            return Err(None);
        }
        self.try_flush().map_err(|e| Some(e.into()))?;
        Ok(if self.flushed() {
            SOCKET_WRITE_PERMIT
        } else {
            0
        })
    }

    /// `output-stream.write`: takes all of `data`.
    pub fn write(&self, data: &[u8]) -> Result<(), Option<Errno>> {
        if self.write_shut.load(Ordering::Relaxed) {
            return Err(None);
        }
        self.pending.lock().extend_from_slice(data);
        self.try_flush().map_err(|e| Some(e.into()))
    }

    /// `output-stream.flush` (`blocking`: and wait until it is done).
    pub fn flush(&self, blocking: bool) -> Result<(), Option<Errno>> {
        if self.write_shut.load(Ordering::Relaxed) {
            return Err(None);
        }
        let r = if blocking {
            self.flush_blocking()
        } else {
            self.try_flush()
        };
        r.map_err(|e| Some(e.into()))
    }

    fn input_ready(&self) -> bool {
        self.read_shut.load(Ordering::Relaxed)
            || self
                .net
                .readiness(self.id)
                .map_or(true, |r| r.readable || r.hangup)
    }

    fn output_ready(&self) -> bool {
        self.write_shut.load(Ordering::Relaxed) || self.try_flush().is_err() || self.flushed()
    }
}

/// Whether the socket resource or stream `rep` a pollable watches is
/// ready.
pub(crate) fn ready(cx: &WasiCtx, rep: u32) -> bool {
    match cx.resources.get(rep) {
        Ok(HostResource::Input(super::InputStream::Socket(s))) => s.input_ready(),
        Ok(HostResource::Output(super::OutputStream::Socket(s))) => s.output_ready(),
        Ok(HostResource::TcpSocket(t)) => t.ready(),
        Ok(HostResource::UdpSocket(_)) => true,
        Ok(HostResource::Incoming(i)) => i.ready(),
        Ok(HostResource::Outgoing(o)) => o.ready(),
        _ => true,
    }
}

/// What to wait for in the network until pollable target `rep` may be
/// ready (`None`: nothing, it is ready).
pub(crate) fn interest(cx: &WasiCtx, rep: u32) -> Option<(SocketId, Interest)> {
    match cx.resources.get(rep).ok()? {
        HostResource::Input(super::InputStream::Socket(s)) => Some((s.id, Interest::Read)),
        HostResource::Output(super::OutputStream::Socket(s)) => Some((s.id, Interest::Write)),
        HostResource::TcpSocket(t) => t.interest(),
        HostResource::Incoming(i) => Some((i.sock.id, Interest::Read)),
        HostResource::Outgoing(o) => Some((o.sock.id, Interest::Write)),
        _ => None,
    }
}

/// A pollable of the socket resource or stream `r`.
pub(crate) fn subscribe(h: &mut Host<'_>, r: u32) -> Result<Vec<Value>, Error> {
    super::io::child_pollable(h, PollTarget::Socket(r), r)
}

// ---- name lookup -----------------------------------------------------------------

/// An IP literal `name` is (`[…]` around IPv6 allowed).
fn ip_literal(name: &str) -> Option<IpAddr> {
    let inner = name
        .strip_prefix('[')
        .and_then(|n| n.strip_suffix(']'))
        .unwrap_or(name);
    inner.parse().ok()
}

/// Whether `name` may be a host name (else `invalid-argument`): labels of
/// letters, digits, `-` and `_` (any non-ASCII character too: the
/// resolver decides on internationalised names), separated by dots.
fn host_name_ok(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name.trim_end_matches('.').split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || !c.is_ascii())
        })
}

fn resolve_addresses(h: &mut Host<'_>, a: &[Value]) -> Result<Vec<Value>, Error> {
    check_network(h, a, 0)?;
    let name = String::from(str_arg(a, 1)?);
    if !h.cx.grants.ip_name_lookup {
        return fail(code::PERMANENT_RESOLVER_FAILURE);
    }
    let ips = if let Some(ip) = ip_literal(&name) {
        vec![ip]
    } else if !host_name_ok(&name) {
        return fail(code::INVALID_ARGUMENT);
    } else {
        let net = match network(h.cx) {
            Ok(n) => n,
            Err(c) => return fail(c),
        };
        match net.resolve(&name) {
            Ok(ips) => ips,
            Err(e) => return fail(net_code(e)),
        }
    };
    let r = h.cx.resources.push(
        HostResource::Resolved(ips.into_iter().collect::<VecDeque<_>>()),
        None,
    )?;
    ok(Some(Types::own(&h.ty.resolve_stream, r)))
}

pub(super) fn add<T: 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut WasiCtx,
    types: &Arc<Types>,
) {
    let mut i = linker.instance(&iface("sockets", "network"));
    def(&mut i, "network-error-code", get, types, |_h, _a| {
        one(Value::Option(None))
    });

    let mut i = linker.instance(&iface("sockets", "instance-network"));
    def(&mut i, "instance-network", get, types, |h, _a| {
        let r = h.cx.resources.push(HostResource::Network, None)?;
        one(Types::own(&h.ty.network, r))
    });

    let mut i = linker.instance(&iface("sockets", "ip-name-lookup"));
    def(&mut i, "resolve-addresses", get, types, resolve_addresses);
    def(
        &mut i,
        "[method]resolve-address-stream.resolve-next-address",
        get,
        types,
        |h, a| match h.cx.resources.get_mut(rep(a, 0)?)? {
            HostResource::Resolved(q) => ok(Some(Value::Option(
                q.pop_front().map(|ip| boxed(ip_value(ip))),
            ))),
            _ => Err(trap("not a resolve-address-stream")),
        },
    );
    def(
        &mut i,
        "[method]resolve-address-stream.subscribe",
        get,
        types,
        |h, a| {
            let r = rep(a, 0)?;
            super::io::child_pollable(h, PollTarget::Ready, r)
        },
    );
}
