//! The functions of `wasi:http/types` and `wasi:http/outgoing-handler`,
//! and the `wasi:io` stream operations on message bodies.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;

use basalt_runtime::Error;
use basalt_runtime::component::{Linker, Value};
use spin::Mutex;

use super::body::{BodyKind, InBody, OutBody, ReadEnd, WriteFailure};
use super::client::{self, ClientConn, Timeouts};
use super::code::{self, ErrorCode, Scheme};
use super::fields::{Fields, HeaderError};
use super::{
    HttpResource, HttpTypes, IncomingResponse, MAX_FIELDS_BYTES, MAX_RESPONSE_BODY,
    OutgoingRequest, OutgoingResponse, REQUEST_BODY_BUFFER, RequestOptions, ResponseBody,
    ResponseSet, get, push, take,
};
use crate::WasiCtx;
use crate::preview2::io::{self, PollTarget};
use crate::preview2::{
    Host, HostResource, InputStream, OutputStream, Types, boxed, def, iface, none, one, rep,
    str_arg, trap, u32_arg,
};

fn now(h: &Host<'_>) -> u64 {
    h.cx.services.clocks.monotonic_ns()
}

fn ok_v(v: Value) -> Result<Vec<Value>, Error> {
    one(Value::ok(Some(v)))
}

fn ok_unit() -> Result<Vec<Value>, Error> {
    one(Value::ok(None))
}

fn err_unit() -> Result<Vec<Value>, Error> {
    one(Value::err(None))
}

fn err_code(e: &ErrorCode) -> Result<Vec<Value>, Error> {
    one(Value::err(Some(e.to_value())))
}

fn header_error(e: HeaderError) -> Result<Vec<Value>, Error> {
    let case = match e {
        HeaderError::InvalidSyntax => 0,
        HeaderError::Forbidden => 1,
        HeaderError::Immutable => 2,
    };
    one(Value::err(Some(Value::Variant(case, None))))
}

fn some(v: Option<Value>) -> Value {
    Value::Option(v.map(Box::new))
}

/// Argument `i`: `list<tuple<field-name, field-value>>`.
fn entries_arg(args: &[Value], i: usize) -> Result<Vec<(String, Vec<u8>)>, Error> {
    let Some(Value::List(items)) = args.get(i) else {
        return Err(trap("fields: not a list of entries"));
    };
    items
        .iter()
        .map(|e| match e {
            Value::Tuple(t) if t.len() == 2 => match (&t[0], bytes_of(&t[1])) {
                (Value::String(n), Some(v)) => Ok((n.clone(), v)),
                _ => Err(trap("fields: not a (name, value) entry")),
            },
            _ => Err(trap("fields: not a (name, value) entry")),
        })
        .collect()
}

fn bytes_of(v: &Value) -> Option<Vec<u8>> {
    match v {
        Value::Bytes(b) => Some(b.clone()),
        Value::List(vs) => vs
            .iter()
            .map(|v| match v {
                Value::U8(b) => Some(*b),
                _ => None,
            })
            .collect(),
        _ => None,
    }
}

fn entries_value(f: &Fields) -> Value {
    Value::List(
        f.entries()
            .iter()
            .map(|(n, v)| {
                Value::Tuple(alloc::vec![
                    Value::String(n.clone()),
                    Value::Bytes(v.clone())
                ])
            })
            .collect(),
    )
}

fn fields_mut<'a>(h: &'a mut Host<'_>, a: &[Value]) -> Result<&'a mut Fields, Error> {
    match get(h, rep(a, 0)?)? {
        HttpResource::Fields(f) => Ok(f),
        _ => Err(trap("not a fields")),
    }
}

/// Checks `f` against [`MAX_FIELDS_BYTES`]: a guest that grows a header
/// map past it is stopped (as wasmtime's field-size limit does).
fn check_size(f: &Fields) -> Result<(), Error> {
    if f.size() > MAX_FIELDS_BYTES {
        return Err(trap(&format!(
            "header fields exceed {MAX_FIELDS_BYTES} bytes (the size limit of one fields)"
        )));
    }
    Ok(())
}

/// The request, response or body behind argument 0.
fn outgoing_request<'a>(
    h: &'a mut Host<'_>,
    a: &[Value],
) -> Result<&'a mut OutgoingRequest, Error> {
    match get(h, rep(a, 0)?)? {
        HttpResource::OutgoingRequest(r) => Ok(r),
        _ => Err(trap("not an outgoing-request")),
    }
}

fn outgoing_response<'a>(
    h: &'a mut Host<'_>,
    a: &[Value],
) -> Result<&'a mut OutgoingResponse, Error> {
    match get(h, rep(a, 0)?)? {
        HttpResource::OutgoingResponse(r) => Ok(r),
        _ => Err(trap("not an outgoing-response")),
    }
}

fn options<'a>(h: &'a mut Host<'_>, a: &[Value]) -> Result<&'a mut RequestOptions, Error> {
    match get(h, rep(a, 0)?)? {
        HttpResource::RequestOptions(o) => Ok(o),
        _ => Err(trap("not a request-options")),
    }
}

/// Headers of a message as a new read-only `fields`, a child of it.
fn child_headers(h: &mut Host<'_>, parent: u32, f: Fields) -> Result<Vec<Value>, Error> {
    one(push(h, HttpResource::Fields(f), Some(parent), |t| {
        &t.fields
    })?)
}

/// The `content-length` a message's headers declare.
fn declared_length(f: &Fields) -> Option<u64> {
    let v = f.get("content-length");
    let first = v.first()?;
    core::str::from_utf8(first).ok()?.trim().parse().ok()
}

/// Whether `s` may be an authority: no whitespace, controls, or the
/// characters that end one (`/ ? #`).
fn valid_authority(s: &str) -> bool {
    s.bytes()
        .all(|b| b > 0x20 && b != 0x7f && !b"/?#".contains(&b))
}

/// Whether `s` may be a path with query.
fn valid_path(s: &str) -> bool {
    s.bytes().all(|b| b > 0x20 && b != 0x7f && b != b'#')
}

/// The host and port of an authority (`host[:port]`, `[v6][:port]`),
/// `default_port` when it names none.
fn host_port(authority: &str, default_port: u16) -> Option<(String, u16)> {
    let authority = authority.rsplit('@').next()?;
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest.split_once(']')?;
        match after {
            "" => (host, None),
            p => (host, Some(p.strip_prefix(':')?)),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return None;
    }
    let port = match port {
        None | Some("") => default_port,
        Some(p) => p.parse::<u16>().ok()?,
    };
    Some((host.to_string(), port))
}

/// The outgoing body of a message, made on first request.
fn new_body(kind: BodyKind, headers: &Fields) -> Arc<OutBody> {
    let cap = match kind {
        BodyKind::Request => REQUEST_BODY_BUFFER,
        BodyKind::Response => MAX_RESPONSE_BODY,
    };
    OutBody::new(kind, declared_length(headers), cap)
}

/// An empty, finished body (a message sent without `body` being asked).
fn empty_body(kind: BodyKind) -> Arc<OutBody> {
    let b = OutBody::new(kind, None, 0);
    let _ = b.finish(None, 0);
    b
}

fn body_resource(h: &mut Host<'_>, body: Arc<OutBody>) -> Result<Vec<Value>, Error> {
    let v = push(
        h,
        HttpResource::OutgoingBody(super::OutBodyHandle(body), false),
        None,
        |t| &t.outgoing_body,
    )?;
    ok_v(v)
}

// ---- streams over bodies ------------------------------------------------------

/// A `stream-error` for `failure`: `closed`, or `last-operation-failed`
/// with an error that `http-error-code` reads.
fn stream_failure(h: &mut Host<'_>, failure: Option<ErrorCode>) -> Result<Vec<Value>, Error> {
    let e = match failure {
        None => Value::Variant(1, None),
        Some(code) => {
            let r = h.cx.resources.push(HostResource::HttpError(code), None)?;
            Value::Variant(0, Some(boxed(Types::own(&h.ty.error, r))))
        }
    };
    one(Value::err(Some(e)))
}

/// `read`/`blocking-read` of input stream `r` over `body`.
pub(crate) fn stream_read(
    h: &mut Host<'_>,
    r: u32,
    body: Arc<InBody>,
    len: u64,
    blocking: bool,
) -> Result<Vec<Value>, Error> {
    let len = len.min(io::READ_MAX) as usize;
    loop {
        match body.read(len, now(h)) {
            Ok(b) if b.is_empty() && blocking && len > 0 => {
                io::wait(h.cx, &[PollTarget::Http(r)])?;
            }
            Ok(b) => return ok_v(Value::Bytes(b)),
            Err(ReadEnd::Closed) => return stream_failure(h, None),
            Err(ReadEnd::Failed(e)) => return stream_failure(h, Some(e)),
        }
    }
}

fn write_failure(h: &mut Host<'_>, f: WriteFailure) -> Result<Vec<Value>, Error> {
    match f {
        WriteFailure::Closed => stream_failure(h, None),
        WriteFailure::Failed(e) => stream_failure(h, Some(e)),
    }
}

/// `check-write` of an output stream over `body`.
pub(crate) fn stream_check_write(
    h: &mut Host<'_>,
    body: Arc<OutBody>,
) -> Result<Vec<Value>, Error> {
    match body.check_write(now(h)) {
        Ok(n) => ok_v(Value::U64(n)),
        Err(f) => write_failure(h, f),
    }
}

/// `write` to an output stream over `body`.
pub(crate) fn stream_write(
    h: &mut Host<'_>,
    body: Arc<OutBody>,
    data: &[u8],
) -> Result<Vec<Value>, Error> {
    match body.write(data, now(h)) {
        Ok(()) => ok_unit(),
        Err(f) => write_failure(h, f),
    }
}

/// `flush` (`blocking`: until its connection took every byte) of an
/// output stream over `body`.
pub(crate) fn stream_flush(
    h: &mut Host<'_>,
    body: Arc<OutBody>,
    blocking: bool,
) -> Result<Vec<Value>, Error> {
    loop {
        let t = now(h);
        body.pump(t);
        if let Err(WriteFailure::Failed(e)) = body.check_write(t) {
            return stream_failure(h, Some(e));
        }
        if !blocking || body.drained() {
            return ok_unit();
        }
        match (body.interest(), &h.cx.net) {
            (Some(i), Some(net)) => net.wait(&[i], body.deadline()),
            // Nothing takes the bytes until the message is sent whole.
            _ => return ok_unit(),
        }
    }
}

// ---- the interfaces -------------------------------------------------------------

/// Defines `wasi:http/types` and `wasi:http/outgoing-handler` in `linker`.
pub(crate) fn add<T: 'static>(
    linker: &mut Linker<T>,
    getcx: fn(&mut T) -> &mut WasiCtx,
    types: &Arc<Types>,
) {
    let mut i = linker.instance(&iface("http", "types"));
    let mut d = |name: &str, f: crate::preview2::HostCall| def(&mut i, name, getcx, types, f);

    d("[constructor]fields", |h, _| {
        one(push(h, HttpResource::Fields(Fields::new()), None, |t| {
            &t.fields
        })?)
    });
    d("[static]fields.from-list", |h, a| {
        match Fields::from_list(&entries_arg(a, 0)?) {
            Ok(f) => {
                check_size(&f)?;
                ok_v(push(h, HttpResource::Fields(f), None, |t| &t.fields)?)
            }
            Err(e) => header_error(e),
        }
    });
    d("[method]fields.get", |h, a| {
        let name = str_arg(a, 1)?.to_string();
        let f = fields_mut(h, a)?;
        one(Value::List(
            f.get(&name).into_iter().map(Value::Bytes).collect(),
        ))
    });
    d("[method]fields.has", |h, a| {
        let name = str_arg(a, 1)?.to_string();
        one(Value::Bool(fields_mut(h, a)?.has(&name)))
    });
    d("[method]fields.set", |h, a| {
        let name = str_arg(a, 1)?.to_string();
        let Some(Value::List(vs)) = a.get(2) else {
            return Err(trap("fields.set: not a list of values"));
        };
        let values = vs
            .iter()
            .map(|v| bytes_of(v).ok_or_else(|| trap("fields.set: not a value")))
            .collect::<Result<Vec<_>, _>>()?;
        let f = fields_mut(h, a)?;
        match f.set(&name, &values) {
            Ok(()) => {
                check_size(f)?;
                ok_unit()
            }
            Err(e) => header_error(e),
        }
    });
    d("[method]fields.delete", |h, a| {
        let name = str_arg(a, 1)?.to_string();
        match fields_mut(h, a)?.delete(&name) {
            Ok(()) => ok_unit(),
            Err(e) => header_error(e),
        }
    });
    d("[method]fields.append", |h, a| {
        let name = str_arg(a, 1)?.to_string();
        let value = bytes_of(a.get(2).ok_or_else(|| trap("fields.append: no value"))?)
            .ok_or_else(|| trap("fields.append: not a value"))?;
        let f = fields_mut(h, a)?;
        match f.append(&name, &value) {
            Ok(()) => {
                check_size(f)?;
                ok_unit()
            }
            Err(e) => header_error(e),
        }
    });
    d("[method]fields.entries", |h, a| {
        one(entries_value(fields_mut(h, a)?))
    });
    d("[method]fields.clone", |h, a| {
        let copy = fields_mut(h, a)?.mutable_copy();
        one(push(h, HttpResource::Fields(copy), None, |t| &t.fields)?)
    });

    // incoming-request
    fn incoming<'a>(
        h: &'a mut Host<'_>,
        a: &[Value],
    ) -> Result<&'a mut super::IncomingRequest, Error> {
        match get(h, rep(a, 0)?)? {
            HttpResource::IncomingRequest(r) => Ok(r),
            _ => Err(trap("not an incoming-request")),
        }
    }
    d("[method]incoming-request.method", |h, a| {
        one(code::method_value(&incoming(h, a)?.method))
    });
    d("[method]incoming-request.path-with-query", |h, a| {
        let p = incoming(h, a)?.path_with_query.clone();
        one(some(p.map(Value::String)))
    });
    d("[method]incoming-request.scheme", |h, a| {
        let s = incoming(h, a)?.scheme.clone();
        one(some(s.as_ref().map(code::scheme_value)))
    });
    d("[method]incoming-request.authority", |h, a| {
        let s = incoming(h, a)?.authority.clone();
        one(some(s.map(Value::String)))
    });
    d("[method]incoming-request.headers", |h, a| {
        let f = incoming(h, a)?.headers.frozen_copy();
        child_headers(h, rep(a, 0)?, f)
    });
    d("[method]incoming-request.consume", |h, a| {
        match incoming(h, a)?.body.take() {
            Some(b) => {
                let v = push(h, HttpResource::IncomingBody(b, false), None, |t| {
                    &t.incoming_body
                })?;
                ok_v(v)
            }
            None => err_unit(),
        }
    });

    // outgoing-request
    d("[constructor]outgoing-request", |h, a| {
        let HttpResource::Fields(mut headers) = take(h, rep(a, 0)?)? else {
            return Err(trap("outgoing-request: not a fields"));
        };
        headers.freeze();
        let r = OutgoingRequest {
            method: "GET".into(),
            path_with_query: None,
            scheme: None,
            authority: None,
            headers,
            body: None,
        };
        one(push(h, HttpResource::OutgoingRequest(r), None, |t| {
            &t.outgoing_request
        })?)
    });
    d("[method]outgoing-request.body", |h, a| {
        let r = outgoing_request(h, a)?;
        if r.body.is_some() {
            return err_unit();
        }
        let b = new_body(BodyKind::Request, &r.headers);
        r.body = Some(b.clone());
        body_resource(h, b)
    });
    d("[method]outgoing-request.method", |h, a| {
        one(code::method_value(&outgoing_request(h, a)?.method))
    });
    d("[method]outgoing-request.set-method", |h, a| {
        let Some(m) = a.get(1).and_then(code::method_of) else {
            return err_unit();
        };
        outgoing_request(h, a)?.method = m;
        ok_unit()
    });
    d("[method]outgoing-request.path-with-query", |h, a| {
        let p = outgoing_request(h, a)?.path_with_query.clone();
        one(some(p.map(Value::String)))
    });
    d("[method]outgoing-request.set-path-with-query", |h, a| {
        let p = opt_string(a, 1)?;
        if p.as_deref().is_some_and(|p| !valid_path(p)) {
            return err_unit();
        }
        outgoing_request(h, a)?.path_with_query = p;
        ok_unit()
    });
    d("[method]outgoing-request.scheme", |h, a| {
        let s = outgoing_request(h, a)?.scheme.clone();
        one(some(s.as_ref().map(code::scheme_value)))
    });
    d("[method]outgoing-request.set-scheme", |h, a| {
        let s = match a.get(1) {
            Some(Value::Option(None)) => None,
            Some(Value::Option(Some(v))) => match code::scheme_of(v) {
                Ok(s) => Some(s),
                Err(()) => return err_unit(),
            },
            _ => return Err(trap("set-scheme: not an option<scheme>")),
        };
        outgoing_request(h, a)?.scheme = s;
        ok_unit()
    });
    d("[method]outgoing-request.authority", |h, a| {
        let s = outgoing_request(h, a)?.authority.clone();
        one(some(s.map(Value::String)))
    });
    d("[method]outgoing-request.set-authority", |h, a| {
        let s = opt_string(a, 1)?;
        if s.as_deref().is_some_and(|s| !valid_authority(s)) {
            return err_unit();
        }
        outgoing_request(h, a)?.authority = s;
        ok_unit()
    });
    d("[method]outgoing-request.headers", |h, a| {
        let f = outgoing_request(h, a)?.headers.frozen_copy();
        child_headers(h, rep(a, 0)?, f)
    });

    // request-options
    d("[constructor]request-options", |h, _| {
        one(push(
            h,
            HttpResource::RequestOptions(RequestOptions::default()),
            None,
            |t| &t.request_options,
        )?)
    });
    d("[method]request-options.connect-timeout", |h, a| {
        one(some(options(h, a)?.connect.map(Value::U64)))
    });
    d("[method]request-options.first-byte-timeout", |h, a| {
        one(some(options(h, a)?.first_byte.map(Value::U64)))
    });
    d("[method]request-options.between-bytes-timeout", |h, a| {
        one(some(options(h, a)?.between_bytes.map(Value::U64)))
    });
    d("[method]request-options.set-connect-timeout", |h, a| {
        let v = opt_u64(a, 1)?;
        options(h, a)?.connect = v;
        ok_unit()
    });
    d("[method]request-options.set-first-byte-timeout", |h, a| {
        let v = opt_u64(a, 1)?;
        options(h, a)?.first_byte = v;
        ok_unit()
    });
    d(
        "[method]request-options.set-between-bytes-timeout",
        |h, a| {
            let v = opt_u64(a, 1)?;
            options(h, a)?.between_bytes = v;
            ok_unit()
        },
    );

    // response-outparam
    d("[method]response-outparam.send-informational", |_, _| {
        err_code(&ErrorCode::InternalError(Some(
            "informational (1xx) responses are not supported".into(),
        )))
    });
    d("[static]response-outparam.set", |h, a| {
        let HttpResource::ResponseOutparam(slot) = take(h, rep(a, 0)?)? else {
            return Err(trap("response-outparam.set: not a response-outparam"));
        };
        let set = match a.get(1) {
            Some(Value::Result(Ok(Some(v)))) => {
                let Value::Own(r) = &**v else {
                    return Err(trap("response-outparam.set: not an outgoing-response"));
                };
                let HttpResource::OutgoingResponse(resp) = take(h, r.rep)? else {
                    return Err(trap("response-outparam.set: not an outgoing-response"));
                };
                ResponseSet::Response {
                    status: resp.status,
                    headers: resp.headers.entries().to_vec(),
                    body: ResponseBody(resp.body.unwrap_or_else(|| empty_body(BodyKind::Response))),
                }
            }
            Some(Value::Result(Err(Some(e)))) => match &**e {
                Value::Variant(case, _) => ResponseSet::Error(code::error_case_name(*case).into()),
                _ => return Err(trap("response-outparam.set: not an error-code")),
            },
            _ => return Err(trap("response-outparam.set: not a result")),
        };
        *slot.0.lock() = Some(set);
        none()
    });

    // incoming-response
    fn incoming_response<'a>(
        h: &'a mut Host<'_>,
        a: &[Value],
    ) -> Result<&'a mut IncomingResponse, Error> {
        match get(h, rep(a, 0)?)? {
            HttpResource::IncomingResponse(r) => Ok(r),
            _ => Err(trap("not an incoming-response")),
        }
    }
    d("[method]incoming-response.status", |h, a| {
        one(Value::U16(incoming_response(h, a)?.status))
    });
    d("[method]incoming-response.headers", |h, a| {
        let f = incoming_response(h, a)?.headers.frozen_copy();
        child_headers(h, rep(a, 0)?, f)
    });
    d(
        "[method]incoming-response.consume",
        |h, a| match incoming_response(h, a)?.body.take() {
            Some(b) => {
                let v = push(h, HttpResource::IncomingBody(b, false), None, |t| {
                    &t.incoming_body
                })?;
                ok_v(v)
            }
            None => err_unit(),
        },
    );

    // incoming-body, future-trailers
    d("[method]incoming-body.stream", |h, a| {
        let r = rep(a, 0)?;
        let HttpResource::IncomingBody(b, taken) = get(h, r)? else {
            return Err(trap("not an incoming-body"));
        };
        if *taken {
            return err_unit();
        }
        *taken = true;
        let b = b.clone();
        let s =
            h.cx.resources
                .push(HostResource::Input(InputStream::Http(b)), Some(r))?;
        ok_v(Types::own(&h.ty.input, s))
    });
    d("[static]incoming-body.finish", |h, a| {
        let HttpResource::IncomingBody(b, _) = take(h, rep(a, 0)?)? else {
            return Err(trap("incoming-body.finish: not an incoming-body"));
        };
        one(push(h, HttpResource::FutureTrailers(b), None, |t| {
            &t.future_trailers
        })?)
    });
    d("[method]future-trailers.subscribe", |h, a| {
        let r = rep(a, 0)?;
        io::child_pollable(h, PollTarget::Http(r), r)
    });
    d("[method]future-trailers.get", |h, a| {
        let t = now(h);
        let HttpResource::FutureTrailers(b) = get(h, rep(a, 0)?)? else {
            return Err(trap("not a future-trailers"));
        };
        let b = b.clone();
        match b.trailers(t) {
            None => one(Value::Option(None)),
            Some(Ok(None)) => one(Value::some(Value::ok(Some(Value::ok(Some(
                Value::Option(None),
            )))))),
            Some(Ok(Some(f))) => {
                let v = push(h, HttpResource::Fields(f), None, |t| &t.fields)?;
                one(Value::some(Value::ok(Some(Value::ok(Some(Value::some(
                    v,
                )))))))
            }
            Some(Err(e)) => one(Value::some(Value::ok(Some(Value::err(Some(e.to_value())))))),
        }
    });

    // outgoing-response
    d("[constructor]outgoing-response", |h, a| {
        let HttpResource::Fields(mut headers) = take(h, rep(a, 0)?)? else {
            return Err(trap("outgoing-response: not a fields"));
        };
        headers.freeze();
        let r = OutgoingResponse {
            status: 200,
            headers,
            body: None,
        };
        one(push(h, HttpResource::OutgoingResponse(r), None, |t| {
            &t.outgoing_response
        })?)
    });
    d("[method]outgoing-response.status-code", |h, a| {
        one(Value::U16(outgoing_response(h, a)?.status))
    });
    d("[method]outgoing-response.set-status-code", |h, a| {
        let s = u32_arg(a, 1)?;
        if !(100..=999).contains(&s) {
            return err_unit();
        }
        outgoing_response(h, a)?.status = s as u16;
        ok_unit()
    });
    d("[method]outgoing-response.headers", |h, a| {
        let f = outgoing_response(h, a)?.headers.frozen_copy();
        child_headers(h, rep(a, 0)?, f)
    });
    d("[method]outgoing-response.body", |h, a| {
        let r = outgoing_response(h, a)?;
        if r.body.is_some() {
            return err_unit();
        }
        let b = new_body(BodyKind::Response, &r.headers);
        r.body = Some(b.clone());
        body_resource(h, b)
    });

    // outgoing-body
    d("[method]outgoing-body.write", |h, a| {
        let r = rep(a, 0)?;
        let HttpResource::OutgoingBody(b, taken) = get(h, r)? else {
            return Err(trap("not an outgoing-body"));
        };
        if *taken {
            return err_unit();
        }
        *taken = true;
        let b = b.0.clone();
        let s =
            h.cx.resources
                .push(HostResource::Output(OutputStream::Http(b)), Some(r))?;
        ok_v(Types::own(&h.ty.output, s))
    });
    d("[static]outgoing-body.finish", |h, a| {
        let t = now(h);
        let HttpResource::OutgoingBody(b, _) = take(h, rep(a, 0)?)? else {
            return Err(trap("outgoing-body.finish: not an outgoing-body"));
        };
        let trailers = match a.get(1) {
            Some(Value::Option(Some(v))) => match &**v {
                Value::Own(r) => match take(h, r.rep)? {
                    HttpResource::Fields(f) => Some(f),
                    _ => return Err(trap("outgoing-body.finish: trailers not a fields")),
                },
                _ => return Err(trap("outgoing-body.finish: trailers not a fields")),
            },
            _ => None,
        };
        match b.0.finish(trailers, t) {
            Ok(()) => ok_unit(),
            Err(e) => err_code(&e),
        }
    });

    // future-incoming-response
    d("[method]future-incoming-response.subscribe", |h, a| {
        let r = rep(a, 0)?;
        io::child_pollable(h, PollTarget::Http(r), r)
    });
    d("[method]future-incoming-response.get", |h, a| {
        let t = now(h);
        let HttpResource::FutureResponse(c, taken) = get(h, rep(a, 0)?)? else {
            return Err(trap("not a future-incoming-response"));
        };
        if *taken {
            return one(Value::some(Value::err(None)));
        }
        let conn = c.clone();
        let head = {
            let mut c = conn.lock();
            c.pump(t);
            c.head()
        };
        let Some(head) = head else {
            return one(Value::Option(None));
        };
        if let HttpResource::FutureResponse(_, taken) = get(h, rep(a, 0)?)? {
            *taken = true;
        }
        match head {
            Ok(head) => {
                let resp = IncomingResponse {
                    status: head.status,
                    headers: Fields::from_wire(&head.headers),
                    body: Some(Arc::new(InBody::Client(conn))),
                };
                let v = push(h, HttpResource::IncomingResponse(resp), None, |t| {
                    &t.incoming_response
                })?;
                one(Value::some(Value::ok(Some(Value::ok(Some(v))))))
            }
            Err(e) => one(Value::some(Value::ok(Some(Value::err(Some(e.to_value())))))),
        }
    });
    d("http-error-code", |h, a| {
        match h.cx.resources.get(rep(a, 0)?)? {
            HostResource::HttpError(e) => one(Value::some(e.to_value())),
            _ => one(Value::Option(None)),
        }
    });

    let mut i = linker.instance(&iface("http", "outgoing-handler"));
    def(&mut i, "handle", getcx, types, outgoing_handle);
}

fn opt_string(a: &[Value], i: usize) -> Result<Option<String>, Error> {
    match a.get(i) {
        Some(Value::Option(None)) => Ok(None),
        Some(Value::Option(Some(v))) => match &**v {
            Value::String(s) => Ok(Some(s.clone())),
            _ => Err(trap("not an option<string>")),
        },
        _ => Err(trap("not an option<string>")),
    }
}

fn opt_u64(a: &[Value], i: usize) -> Result<Option<u64>, Error> {
    match a.get(i) {
        Some(Value::Option(None)) => Ok(None),
        Some(Value::Option(Some(v))) => match &**v {
            Value::U64(n) => Ok(Some(*n)),
            _ => Err(trap("not an option<duration>")),
        },
        _ => Err(trap("not an option<duration>")),
    }
}

/// `outgoing-handler.handle`: starts the exchange; its response comes
/// through the returned future.
fn outgoing_handle(h: &mut Host<'_>, a: &[Value]) -> Result<Vec<Value>, Error> {
    let HttpResource::OutgoingRequest(req) = take(h, rep(a, 0)?)? else {
        return Err(trap("outgoing-handler.handle: not an outgoing-request"));
    };
    let opts = match a.get(1) {
        Some(Value::Option(Some(v))) => match &**v {
            Value::Own(r) => match take(h, r.rep)? {
                HttpResource::RequestOptions(o) => o,
                _ => return Err(trap("outgoing-handler.handle: not a request-options")),
            },
            _ => return Err(trap("outgoing-handler.handle: not a request-options")),
        },
        _ => RequestOptions::default(),
    };
    match req.scheme.clone().unwrap_or(Scheme::Http) {
        Scheme::Http => {}
        Scheme::Https => {
            return err_code(&ErrorCode::InternalError(Some(
                "https is not supported: Basalt has no TLS yet (use http)".into(),
            )));
        }
        Scheme::Other(_) => return err_code(&ErrorCode::HttpProtocolError),
    }
    let Some(authority) = req.authority.clone() else {
        return err_code(&ErrorCode::HttpRequestUriInvalid);
    };
    let Some((host, port)) = host_port(&authority, 80) else {
        return err_code(&ErrorCode::HttpRequestUriInvalid);
    };
    let Some(path_with_query) = req.path_with_query.clone() else {
        return err_code(&ErrorCode::HttpRequestUriInvalid);
    };
    let Some(net) = h.cx.net.clone() else {
        return err_code(&ErrorCode::InternalError(Some(
            "the program has no network".into(),
        )));
    };
    let body = req
        .body
        .clone()
        .unwrap_or_else(|| empty_body(BodyKind::Request));
    let defaults = Timeouts::default();
    let request = client::Request {
        method: req.method.clone(),
        host,
        port,
        authority,
        path_with_query,
        headers: req.headers.entries().to_vec(),
        body: body.clone(),
        timeouts: Timeouts {
            connect: opts.connect.unwrap_or(defaults.connect),
            first_byte: opts.first_byte.unwrap_or(defaults.first_byte),
            between_bytes: opts.between_bytes.unwrap_or(defaults.between_bytes),
        },
    };
    let conn = Arc::new(Mutex::new(ClientConn::new(net, request)));
    body.attach(&conn);
    conn.lock().pump(now(h));
    let v = push(h, HttpResource::FutureResponse(conn, false), None, |t| {
        &t.future_incoming_response
    })?;
    ok_v(v)
}

/// Makes the resource types of `wasi:http/types` in `linker`.
pub(crate) fn types<T: 'static>(
    linker: &mut Linker<T>,
    getcx: fn(&mut T) -> &mut WasiCtx,
) -> HttpTypes {
    let mut i = linker.instance(&iface("http", "types"));
    let mut r = |name: &str| crate::preview2::resource(&mut i, name, getcx);
    HttpTypes {
        fields: r("fields"),
        incoming_request: r("incoming-request"),
        outgoing_request: r("outgoing-request"),
        request_options: r("request-options"),
        response_outparam: r("response-outparam"),
        incoming_response: r("incoming-response"),
        incoming_body: r("incoming-body"),
        future_trailers: r("future-trailers"),
        outgoing_response: r("outgoing-response"),
        outgoing_body: r("outgoing-body"),
        future_incoming_response: r("future-incoming-response"),
    }
}
