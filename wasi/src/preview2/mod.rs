//! WASI 0.2 (`wasi:cli`, `wasi:io`, `wasi:clocks`, `wasi:random`,
//! `wasi:filesystem`, `wasi:sockets`, `wasi:http`) for components, over the same services as preview1:
//! [`crate::Stdio`], [`crate::Clocks`], [`crate::Entropy`] and the
//! [`crate::FileSystem`]s of the preopened directories, with the path
//! operations of [`crate::fs_ops`] shared with preview1.
//!
//! Resources the host implements (streams, pollables, descriptors, …)
//! live in one table per program ([`Table`]); a guest's handle names an
//! entry by its representation. A pollable is a child of what it polls:
//! dropping the parent first traps, as the interfaces say.

mod cli;
mod clocks;
mod filesystem;
pub mod http;
mod io;
mod sockets;
mod tcp;
mod udp;

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use basalt_runtime::component::{Linker, LinkerInstance, ResourceType, Value};
use basalt_runtime::{Error, StoreMut};

use crate::WasiCtx;
use crate::errno::Errno;

pub(crate) use filesystem::FileDescriptor;
pub(crate) use io::{InputStream, OutputStream, PollTarget};
pub use sockets::SocketGrants;

/// The version every interface is defined at; components importing any
/// 0.2.x version link to it.
pub const VERSION: &str = "0.2.12";

/// The most resources one program may hold at once, unless
/// [`WasiCtx::set_max_resources`] says otherwise.
pub const DEFAULT_MAX_RESOURCES: usize = 1 << 20;

/// A resource the host implements.
pub(crate) enum HostResource {
    /// `wasi:io/error`: a message, and the file-system error code when
    /// it came from a file
    Error(String, Option<Errno>),
    /// `wasi:io/poll.pollable`
    Pollable(PollTarget),
    /// `wasi:io/streams.input-stream`
    Input(InputStream),
    /// `wasi:io/streams.output-stream`
    Output(OutputStream),
    /// `wasi:filesystem/types.descriptor`
    Descriptor(FileDescriptor),
    /// `wasi:filesystem/types.directory-entry-stream`: the entries left
    DirEntries(alloc::collections::VecDeque<(u8, String)>),
    /// `wasi:cli/terminal-input.terminal-input`
    TerminalInput,
    /// `wasi:cli/terminal-output.terminal-output`
    TerminalOutput,
    /// `wasi:sockets/network.network`
    Network,
    /// `wasi:sockets/tcp.tcp-socket`
    TcpSocket(tcp::TcpSocket),
    /// `wasi:sockets/udp.udp-socket`
    UdpSocket(udp::UdpSocket),
    /// `wasi:sockets/udp.incoming-datagram-stream`
    Incoming(udp::Incoming),
    /// `wasi:sockets/udp.outgoing-datagram-stream`
    Outgoing(udp::Outgoing),
    /// `wasi:sockets/ip-name-lookup.resolve-address-stream`: the
    /// addresses left
    Resolved(alloc::collections::VecDeque<crate::services::IpAddr>),
    /// a `wasi:http` resource
    Http(http::HttpResource),
    /// `wasi:io/error` of a failed message body: `http-error-code` reads it
    HttpError(http::ErrorCode),
}

struct Entry {
    res: HostResource,
    parent: Option<u32>,
    children: u32,
}

/// The host's resources of one program, by representation.
pub struct Table {
    entries: Vec<Option<Entry>>,
    free: Vec<u32>,
    live: usize,
    max: usize,
}

impl Default for Table {
    fn default() -> Self {
        Table {
            entries: Vec::new(),
            free: Vec::new(),
            live: 0,
            max: DEFAULT_MAX_RESOURCES,
        }
    }
}

fn trap(msg: &str) -> Error {
    Error::host_trap(msg)
}

impl Table {
    /// Sets the most entries it may hold.
    pub fn set_max(&mut self, max: usize) {
        self.max = max;
    }

    /// Adds `res`, a child of `parent` when given; its representation.
    pub(crate) fn push(&mut self, res: HostResource, parent: Option<u32>) -> Result<u32, Error> {
        if self.live >= self.max {
            return Err(trap(
                "resource table has no free keys (too many resources; see -S max-resources)",
            ));
        }
        if let Some(p) = parent {
            self.entry_mut(p)?.children += 1;
        }
        let e = Entry {
            res,
            parent,
            children: 0,
        };
        self.live += 1;
        if let Some(i) = self.free.pop() {
            self.entries[i as usize] = Some(e);
            return Ok(i);
        }
        self.entries.push(Some(e));
        Ok((self.entries.len() - 1) as u32)
    }

    fn entry_mut(&mut self, rep: u32) -> Result<&mut Entry, Error> {
        self.entries
            .get_mut(rep as usize)
            .and_then(Option::as_mut)
            .ok_or_else(|| trap("unknown resource"))
    }

    /// Resource `rep`.
    pub(crate) fn get(&self, rep: u32) -> Result<&HostResource, Error> {
        self.entries
            .get(rep as usize)
            .and_then(Option::as_ref)
            .map(|e| &e.res)
            .ok_or_else(|| trap("unknown resource"))
    }

    /// Resource `rep`, to change.
    pub(crate) fn get_mut(&mut self, rep: u32) -> Result<&mut HostResource, Error> {
        Ok(&mut self.entry_mut(rep)?.res)
    }

    /// Removes resource `rep` (a guest dropped its handle); traps while
    /// children of it live.
    pub(crate) fn remove(&mut self, rep: u32) -> Result<HostResource, Error> {
        let e = self.entry_mut(rep)?;
        if e.children > 0 {
            return Err(trap("resource has children: drop its pollables first"));
        }
        let e = self.entries[rep as usize]
            .take()
            .ok_or_else(|| trap("unknown resource"))?;
        self.free.push(rep);
        self.live -= 1;
        if let Some(p) = e.parent
            && let Ok(pe) = self.entry_mut(p)
        {
            pe.children -= 1;
        }
        Ok(e.res)
    }
}

/// The resource types the host defines, to make handles of.
pub(crate) struct Types {
    pub error: ResourceType,
    pub pollable: ResourceType,
    pub input: ResourceType,
    pub output: ResourceType,
    pub descriptor: ResourceType,
    pub dir_entries: ResourceType,
    pub terminal_input: ResourceType,
    pub terminal_output: ResourceType,
    pub network: ResourceType,
    pub tcp_socket: ResourceType,
    pub udp_socket: ResourceType,
    pub incoming_datagrams: ResourceType,
    pub outgoing_datagrams: ResourceType,
    pub resolve_stream: ResourceType,
    pub http: http::HttpTypes,
}

impl Types {
    /// An owned handle of a new resource of type `ty` for representation `rep`.
    pub fn own(ty: &ResourceType, rep: u32) -> Value {
        Value::Own(basalt_runtime::component::Resource {
            ty: ty.clone(),
            rep,
        })
    }
}

/// What a host function sees: the program's context and the types.
pub(crate) struct Host<'a> {
    pub cx: &'a mut WasiCtx,
    pub ty: &'a Types,
}

/// A host function of this module.
pub(crate) type HostCall = fn(&mut Host<'_>, &[Value]) -> Result<Vec<Value>, Error>;

/// Defines `name` in `inst` as `f`, over the context `get` finds.
pub(crate) fn def<T: 'static>(
    inst: &mut LinkerInstance<'_, T>,
    name: &str,
    get: fn(&mut T) -> &mut WasiCtx,
    types: &Arc<Types>,
    f: HostCall,
) {
    let types = types.clone();
    inst.func_new(name, move |store: &mut dyn StoreMut<T>, args: &[Value]| {
        let cx = get(store.host_data());
        f(&mut Host { cx, ty: &types }, args)
    });
}

fn resource<T: 'static>(
    inst: &mut LinkerInstance<'_, T>,
    name: &str,
    get: fn(&mut T) -> &mut WasiCtx,
) -> ResourceType {
    inst.resource(name, move |store: &mut dyn StoreMut<T>, rep| {
        get(store.host_data()).resources.remove(rep).map(|_| ())
    })
}

/// The name of interface `iface` of package `pkg` at [`VERSION`].
pub(crate) fn iface(pkg: &str, iface: &str) -> String {
    format!("wasi:{pkg}/{iface}@{VERSION}")
}

/// Defines every WASI 0.2 interface Basalt implements in `linker`, over
/// the [`WasiCtx`] `get` finds in the store's data; the resource types it
/// made (a server makes `wasi:http` requests of them).
pub fn add_to_linker<T: 'static>(
    linker: &mut Linker<T>,
    get: fn(&mut T) -> &mut WasiCtx,
) -> http::WasiTypes {
    let http_types = http::types_of(linker, get);
    let types = Arc::new(Types {
        http: http_types,
        error: resource(&mut linker.instance(&iface("io", "error")), "error", get),
        pollable: resource(&mut linker.instance(&iface("io", "poll")), "pollable", get),
        input: resource(
            &mut linker.instance(&iface("io", "streams")),
            "input-stream",
            get,
        ),
        output: resource(
            &mut linker.instance(&iface("io", "streams")),
            "output-stream",
            get,
        ),
        descriptor: resource(
            &mut linker.instance(&iface("filesystem", "types")),
            "descriptor",
            get,
        ),
        dir_entries: resource(
            &mut linker.instance(&iface("filesystem", "types")),
            "directory-entry-stream",
            get,
        ),
        terminal_input: resource(
            &mut linker.instance(&iface("cli", "terminal-input")),
            "terminal-input",
            get,
        ),
        terminal_output: resource(
            &mut linker.instance(&iface("cli", "terminal-output")),
            "terminal-output",
            get,
        ),
        network: resource(
            &mut linker.instance(&iface("sockets", "network")),
            "network",
            get,
        ),
        tcp_socket: resource(
            &mut linker.instance(&iface("sockets", "tcp")),
            "tcp-socket",
            get,
        ),
        udp_socket: resource(
            &mut linker.instance(&iface("sockets", "udp")),
            "udp-socket",
            get,
        ),
        incoming_datagrams: resource(
            &mut linker.instance(&iface("sockets", "udp")),
            "incoming-datagram-stream",
            get,
        ),
        outgoing_datagrams: resource(
            &mut linker.instance(&iface("sockets", "udp")),
            "outgoing-datagram-stream",
            get,
        ),
        resolve_stream: resource(
            &mut linker.instance(&iface("sockets", "ip-name-lookup")),
            "resolve-address-stream",
            get,
        ),
    });
    io::add(linker, get, &types);
    cli::add(linker, get, &types);
    clocks::add(linker, get, &types);
    filesystem::add(linker, get, &types);
    sockets::add(linker, get, &types);
    tcp::add(linker, get, &types);
    udp::add(linker, get, &types);
    http::add(linker, get, &types);
    http::WasiTypes(types)
}

// ---- arguments and results -------------------------------------------------

fn bad_arg(i: usize) -> Error {
    trap(&format!("argument {i} of the wrong type"))
}

/// The representation of the resource handle in argument `i`.
pub(crate) fn rep(args: &[Value], i: usize) -> Result<u32, Error> {
    match args.get(i) {
        Some(Value::Own(r) | Value::Borrow(r)) => Ok(r.rep),
        _ => Err(bad_arg(i)),
    }
}

/// Argument `i` as a `u64`.
pub(crate) fn u64_arg(args: &[Value], i: usize) -> Result<u64, Error> {
    match args.get(i) {
        Some(Value::U64(v)) => Ok(*v),
        _ => Err(bad_arg(i)),
    }
}

/// Argument `i` as a `u32` (also flags).
pub(crate) fn u32_arg(args: &[Value], i: usize) -> Result<u32, Error> {
    match args.get(i) {
        Some(Value::U32(v) | Value::Flags(v) | Value::Enum(v)) => Ok(*v),
        Some(Value::U8(v)) => Ok(u32::from(*v)),
        Some(Value::U16(v)) => Ok(u32::from(*v)),
        _ => Err(bad_arg(i)),
    }
}

/// Argument `i` as a string.
pub(crate) fn str_arg(args: &[Value], i: usize) -> Result<&str, Error> {
    match args.get(i) {
        Some(Value::String(s)) => Ok(s),
        _ => Err(bad_arg(i)),
    }
}

/// Argument `i` as bytes (`list<u8>`).
pub(crate) fn bytes_arg(args: &[Value], i: usize) -> Result<Vec<u8>, Error> {
    match args.get(i) {
        Some(Value::Bytes(b)) => Ok(b.clone()),
        Some(Value::List(vs)) => vs
            .iter()
            .map(|v| match v {
                Value::U8(b) => Ok(*b),
                _ => Err(bad_arg(i)),
            })
            .collect(),
        _ => Err(bad_arg(i)),
    }
}

/// One result.
pub(crate) fn one(v: Value) -> Result<Vec<Value>, Error> {
    Ok(alloc::vec![v])
}

/// No result.
pub(crate) fn none() -> Result<Vec<Value>, Error> {
    Ok(Vec::new())
}

/// A `result<_, E>` or `result<T, E>` that is `ok`.
pub(crate) fn ok(v: Option<Value>) -> Result<Vec<Value>, Error> {
    one(Value::ok(v))
}

/// A boxed value (payloads).
pub(crate) fn boxed(v: Value) -> Box<Value> {
    Box::new(v)
}
