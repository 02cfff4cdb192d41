//! `wasi:http` 0.2: `types` and `outgoing-handler` for a program, and the
//! host side of `incoming-handler` for a server ([`push_request`]).
//!
//! Messages are host resources in the program's [`super::Table`]; their
//! bodies ([`body`]) sit behind `wasi:io` streams, and an outgoing request
//! is one HTTP/1.1 exchange on a connection of the program's network
//! ([`client`]), driven whenever the guest reads, writes or polls. Headers
//! a guest may not set (the connection's own, `host`) are refused as
//! `forbidden` and left out of incoming messages ([`fields`]).

mod body;
mod client;
mod code;
pub mod fields;
mod handlers;

use alloc::string::String;
use alloc::sync::Arc;
use alloc::vec::Vec;

use basalt_runtime::Error;
use basalt_runtime::component::{ResourceType, Value};
use spin::Mutex;

pub(crate) use body::{InBody, OutBody};
pub use code::{ErrorCode, Scheme};
use fields::Fields;

use super::{Host, HostResource, Types, trap};
use crate::WasiCtx;

pub(crate) use handlers::{
    add, stream_check_write, stream_flush, stream_read, stream_write, types as types_of,
};

/// The most bytes of names and values one `fields` may hold.
pub const MAX_FIELDS_BYTES: usize = 128 << 10;
/// The most bytes of an outgoing request body held before its connection
/// takes them.
pub const REQUEST_BODY_BUFFER: usize = 1 << 20;
/// The most bytes of a response body a handler may write: the server
/// sends the response when the handler returns.
pub const MAX_RESPONSE_BODY: usize = 64 << 20;

/// The resource types of `wasi:http/types`.
pub(crate) struct HttpTypes {
    pub fields: ResourceType,
    pub incoming_request: ResourceType,
    pub outgoing_request: ResourceType,
    pub request_options: ResourceType,
    pub response_outparam: ResourceType,
    pub incoming_response: ResourceType,
    pub incoming_body: ResourceType,
    pub future_trailers: ResourceType,
    pub outgoing_response: ResourceType,
    pub outgoing_body: ResourceType,
    pub future_incoming_response: ResourceType,
}

/// A request the program received.
pub(crate) struct IncomingRequest {
    method: String,
    path_with_query: Option<String>,
    scheme: Option<Scheme>,
    authority: Option<String>,
    headers: Fields,
    body: Option<Arc<InBody>>,
}

/// A request the program builds.
pub(crate) struct OutgoingRequest {
    method: String,
    path_with_query: Option<String>,
    scheme: Option<Scheme>,
    authority: Option<String>,
    headers: Fields,
    body: Option<Arc<OutBody>>,
}

/// A response the program received.
pub(crate) struct IncomingResponse {
    status: u16,
    headers: Fields,
    body: Option<Arc<InBody>>,
}

/// A response the program builds.
pub(crate) struct OutgoingResponse {
    status: u16,
    headers: Fields,
    body: Option<Arc<OutBody>>,
}

/// `request-options`: each timeout, in nanoseconds (`None`: the default).
#[derive(Clone, Copy, Default)]
pub(crate) struct RequestOptions {
    connect: Option<u64>,
    first_byte: Option<u64>,
    between_bytes: Option<u64>,
}

/// What `response-outparam.set` was given.
pub enum ResponseSet {
    /// a response: status, header fields, and its body
    Response {
        /// the status code
        status: u16,
        /// the header fields
        headers: Vec<(String, Vec<u8>)>,
        /// the body the guest writes
        body: ResponseBody,
    },
    /// an `error-code` (its WIT case name)
    Error(String),
}

/// The body of a response a handler set: what is written so far.
pub struct ResponseBody(Arc<OutBody>);

/// What a handler wrote of a response body.
pub struct BodySoFar {
    /// the bytes written and not taken before
    pub bytes: Vec<u8>,
    /// whether `outgoing-body.finish` ended it with the right size
    pub complete: bool,
    /// the trailers `finish` gave
    pub trailers: Vec<(String, Vec<u8>)>,
}

impl ResponseBody {
    /// Takes what is written so far.
    pub fn take(&self) -> BodySoFar {
        let (bytes, complete, trailers) = self.0.take();
        BodySoFar {
            bytes,
            complete,
            trailers: trailers.map(|t| t.entries().to_vec()).unwrap_or_default(),
        }
    }
}

/// Where `response-outparam.set` puts the response, for the server.
#[derive(Clone, Default)]
pub struct ResponseSlot(Arc<Mutex<Option<ResponseSet>>>);

impl ResponseSlot {
    /// What the handler set, if it did.
    pub fn take(&self) -> Option<ResponseSet> {
        self.0.lock().take()
    }
}

/// A `wasi:http` resource of the host.
pub(crate) enum HttpResource {
    /// `fields`
    Fields(Fields),
    /// `incoming-request`
    IncomingRequest(IncomingRequest),
    /// `outgoing-request`
    OutgoingRequest(OutgoingRequest),
    /// `request-options`
    RequestOptions(RequestOptions),
    /// `response-outparam`
    ResponseOutparam(ResponseSlot),
    /// `incoming-response`
    IncomingResponse(IncomingResponse),
    /// `incoming-body`; whether its stream was taken
    IncomingBody(Arc<InBody>, bool),
    /// `future-trailers`
    FutureTrailers(Arc<InBody>),
    /// `outgoing-response`
    OutgoingResponse(OutgoingResponse),
    /// `outgoing-body`; whether its stream was taken
    OutgoingBody(OutBodyHandle, bool),
    /// `future-incoming-response`: the exchange, and whether `get` took
    /// its result
    FutureResponse(Arc<Mutex<client::ClientConn>>, bool),
}

/// The guest's `outgoing-body`: dropped without `finish`, its message is
/// abandoned (a response is cut short, a request fails).
pub(crate) struct OutBodyHandle(pub(crate) Arc<OutBody>);

impl Drop for OutBodyHandle {
    fn drop(&mut self) {
        self.0.abandon();
    }
}

/// A request for [`push_request`]: what the server read off the wire.
pub struct RequestParts {
    /// the method, as sent
    pub method: String,
    /// the path and query (origin form), or `None` (authority form)
    pub path_with_query: Option<String>,
    /// the scheme the server serves
    pub scheme: Option<Scheme>,
    /// the authority: from an absolute target, or the `host` header
    pub authority: Option<String>,
    /// the header fields (lower-case names) as received
    pub headers: Vec<(String, Vec<u8>)>,
    /// the whole body
    pub body: Vec<u8>,
}

/// The types a [`crate::preview2::add_to_linker`] defined, for a server to
/// make the arguments of `incoming-handler.handle` with.
#[derive(Clone)]
pub struct WasiTypes(pub(crate) Arc<Types>);

/// Puts `request` and a response outparam into `cx`'s resources: the two
/// arguments of `wasi:http/incoming-handler.handle`, and where the
/// response will be.
pub fn push_request(
    cx: &mut WasiCtx,
    types: &WasiTypes,
    request: RequestParts,
) -> Result<([Value; 2], ResponseSlot), Error> {
    let t = &types.0.http;
    let req = IncomingRequest {
        method: request.method,
        path_with_query: request.path_with_query,
        scheme: request.scheme,
        authority: request.authority,
        headers: Fields::from_wire(&request.headers),
        body: Some(InBody::buffered(request.body, None)),
    };
    let slot = ResponseSlot::default();
    let r = cx
        .resources
        .push(HostResource::Http(HttpResource::IncomingRequest(req)), None)?;
    let o = cx.resources.push(
        HostResource::Http(HttpResource::ResponseOutparam(slot.clone())),
        None,
    )?;
    Ok((
        [
            Types::own(&t.incoming_request, r),
            Types::own(&t.response_outparam, o),
        ],
        slot,
    ))
}

/// The `wasi:http` resource `rep`.
fn get<'a>(h: &'a mut Host<'_>, rep: u32) -> Result<&'a mut HttpResource, Error> {
    match h.cx.resources.get_mut(rep)? {
        HostResource::Http(r) => Ok(r),
        _ => Err(trap("not a wasi:http resource")),
    }
}

/// Takes `wasi:http` resource `rep` out of the table (an `own` handed in).
fn take(h: &mut Host<'_>, rep: u32) -> Result<HttpResource, Error> {
    match h.cx.resources.get(rep)? {
        HostResource::Http(_) => {}
        _ => return Err(trap("not a wasi:http resource")),
    }
    match h.cx.resources.remove(rep)? {
        HostResource::Http(r) => Ok(r),
        _ => Err(trap("not a wasi:http resource")),
    }
}

/// Adds `r` as a resource of type `ty` (a child of `parent` if given).
fn push(
    h: &mut Host<'_>,
    r: HttpResource,
    parent: Option<u32>,
    ty: fn(&HttpTypes) -> &ResourceType,
) -> Result<Value, Error> {
    let rep = h.cx.resources.push(HostResource::Http(r), parent)?;
    Ok(Types::own(ty(&h.ty.http), rep))
}

/// What a pollable of `wasi:http` resource `rep` (a body stream or a
/// future) waits for: whether it is ready now.
pub(crate) fn ready(cx: &WasiCtx, rep: u32) -> bool {
    let now = cx.services.clocks.monotonic_ns();
    match cx.resources.get(rep) {
        Ok(HostResource::Input(super::InputStream::Http(b))) => b.ready(now),
        Ok(HostResource::Output(super::OutputStream::Http(b))) => b.ready(now),
        Ok(HostResource::Http(HttpResource::FutureTrailers(b))) => b.trailers_ready(now),
        Ok(HostResource::Http(HttpResource::FutureResponse(c, _))) => {
            let mut c = c.lock();
            c.pump(now);
            c.head_ready()
        }
        // Gone: nothing to wait for.
        _ => true,
    }
}

/// The socket a pollable of resource `rep` waits on, and for what.
pub(crate) fn interest(
    cx: &WasiCtx,
    rep: u32,
) -> Option<(crate::services::SocketId, crate::services::Interest)> {
    match cx.resources.get(rep).ok()? {
        HostResource::Input(super::InputStream::Http(b)) => b.interest(),
        HostResource::Output(super::OutputStream::Http(b)) => b.interest(),
        HostResource::Http(HttpResource::FutureTrailers(b)) => b.interest(),
        HostResource::Http(HttpResource::FutureResponse(c, _)) => c.lock().interest(),
        _ => None,
    }
}

/// When a pollable of resource `rep` must look again (a timeout).
pub(crate) fn deadline(cx: &WasiCtx, rep: u32) -> Option<u64> {
    match cx.resources.get(rep).ok()? {
        HostResource::Input(super::InputStream::Http(b)) => b.deadline(),
        HostResource::Output(super::OutputStream::Http(b)) => b.deadline(),
        HostResource::Http(HttpResource::FutureTrailers(b)) => b.deadline(),
        HostResource::Http(HttpResource::FutureResponse(c, _)) => c.lock().deadline(),
        _ => None,
    }
}

impl InBody {
    /// Whether the trailers (or the failure) are there.
    fn trailers_ready(&self, now: u64) -> bool {
        match self {
            InBody::Buffered(_) => true,
            InBody::Client(c) => {
                let mut c = c.lock();
                c.pump(now);
                c.trailers().is_some()
            }
        }
    }
}
