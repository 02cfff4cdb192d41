//! `basalt serve`: a `wasi:http/proxy` component answering every request
//! in an instance of its own, made for the request and dropped after it,
//! so nothing one request does (a trap, a loop cut by its deadline, memory
//! it grew) reaches the next.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::sync::Arc;
use alloc::vec::Vec;

use basalt_runtime::component::{Component, InstancePre, Linker as ComponentLinker};
use basalt_runtime::{Engine, Error, Store, Trap, TrapKind};

use crate::WasiCtx;
use crate::http_server::{Request, Response};
use crate::preview2::http::{RequestParts, ResponseSet, Scheme, WasiTypes, push_request};
use crate::preview2::{self, VERSION};

/// The interface a proxy component exports.
pub fn handler_interface() -> String {
    format!("wasi:http/incoming-handler@{VERSION}")
}

/// A proxy component, linked once and instantiated per request (its
/// imports bound and types evaluated once: [`InstancePre`]).
pub struct ProxyApp {
    pre: InstancePre<WasiCtx>,
    types: WasiTypes,
}

/// How one request went, beside the response sent.
#[derive(Debug)]
pub enum RequestOutcome {
    /// the handler set a response and returned
    Answered,
    /// the handler set an `error-code` instead of a response (its name)
    GuestError(String),
    /// the handler returned without setting a response
    NotSet,
    /// the handler trapped after setting the response
    Trap(Trap),
    /// the handler trapped before setting a response
    TrapBeforeSet(Trap),
    /// the component could not be instantiated
    Error(Error),
}

impl RequestOutcome {
    /// A line for the server's log, if the request went wrong.
    pub fn message(&self) -> Option<String> {
        match self {
            RequestOutcome::Answered => None,
            RequestOutcome::GuestError(e) => {
                Some(format!("the handler answered with error-code {e}"))
            }
            RequestOutcome::NotSet => {
                Some("guest never invoked `response-outparam::set` method".into())
            }
            RequestOutcome::Trap(t) if t.kind == TrapKind::Interrupted => {
                Some("guest timed out: the request's deadline passed (-W timeout)".into())
            }
            RequestOutcome::Trap(t) => Some(format!("the handler trapped: {t}")),
            RequestOutcome::TrapBeforeSet(t) if t.kind == TrapKind::Interrupted => Some(
                "guest timed out: the request's deadline passed (-W timeout); guest never invoked \
                 `response-outparam::set` method"
                    .into(),
            ),
            RequestOutcome::TrapBeforeSet(t) => Some(format!(
                "the handler trapped: {t}; guest never invoked `response-outparam::set` method"
            )),
            RequestOutcome::Error(e) => {
                Some(format!("the component could not be instantiated: {e}"))
            }
        }
    }
}

impl ProxyApp {
    /// Links `component` with every WASI 0.2 interface; it must export
    /// `wasi:http/incoming-handler`.
    pub fn new(component: Component) -> Result<ProxyApp, Error> {
        let exports = component.export_names();
        let wanted = "wasi:http/incoming-handler@0.2";
        if !exports.iter().any(|e| e.starts_with(wanted)) {
            return Err(Error::Instantiate(format!(
                "the component exports no `wasi:http/incoming-handler@0.2.x`: it is not a \
                 wasi:http proxy (it exports: {})",
                if exports.is_empty() {
                    "nothing".to_string()
                } else {
                    exports.join(", ")
                }
            )));
        }
        let mut linker = ComponentLinker::new();
        let types = preview2::add_to_linker(&mut linker, |cx: &mut WasiCtx| cx);
        Ok(ProxyApp {
            pre: linker.instantiate_pre(&component),
            types,
        })
    }

    /// Answers `request` in a fresh instance with context `ctx`, its store
    /// set up by `prepare` (a deadline, fuel) before it is instantiated.
    pub fn handle(
        &self,
        engine: &Engine,
        ctx: WasiCtx,
        prepare: impl FnOnce(&mut Store<WasiCtx>),
        request: Request,
    ) -> (Response, RequestOutcome) {
        self.handle_timed(engine, ctx, prepare, request).0
    }

    /// [`ProxyApp::handle`], and how long making the instance took (ns,
    /// on the context's monotonic clock).
    pub fn handle_timed(
        &self,
        engine: &Engine,
        ctx: WasiCtx,
        prepare: impl FnOnce(&mut Store<WasiCtx>),
        request: Request,
    ) -> ((Response, RequestOutcome), u64) {
        let mut store = Store::new(engine, ctx);
        prepare(&mut store);
        let parts = request_parts(request);
        let t0 = store.data().monotonic_ns();
        let instance = self.pre.instantiate(&mut store);
        let took = store.data().monotonic_ns().saturating_sub(t0);
        (self.answer(store, instance, parts), took)
    }

    fn answer(
        &self,
        mut store: Store<WasiCtx>,
        instance: Result<basalt_runtime::component::ComponentInstance<WasiCtx>, Error>,
        parts: RequestParts,
    ) -> (Response, RequestOutcome) {
        let called = instance.and_then(|instance| {
            let handle = instance
                .get_instance_func(&handler_interface(), "handle")
                .ok_or_else(|| Error::Instantiate("no incoming-handler.handle".into()))?;
            let (args, slot) = push_request(store.data_mut(), &self.types, parts)?;
            let result = handle.call(&mut store, &args).map(|_| ());
            Ok((slot, result))
        });
        let (slot, result) = match called {
            Ok(v) => v,
            Err(e) => {
                return (
                    Response::text(500, "internal server error\n"),
                    RequestOutcome::Error(e),
                );
            }
        };
        let failure = match result {
            Ok(()) => None,
            Err(Error::Trap(t)) => Some(RequestOutcome::Trap(t)),
            Err(e) => Some(RequestOutcome::Error(e)),
        };
        let response = match slot.take() {
            Some(ResponseSet::Response {
                status,
                headers,
                body,
            }) => {
                let so_far = body.take();
                let response = Response {
                    status,
                    headers,
                    body: so_far.bytes,
                    complete: so_far.complete,
                    trailers: so_far.trailers,
                };
                let outcome = failure.unwrap_or(RequestOutcome::Answered);
                return (response, outcome);
            }
            Some(ResponseSet::Error(e)) => RequestOutcome::GuestError(e),
            None => match failure {
                Some(RequestOutcome::Trap(t)) => RequestOutcome::TrapBeforeSet(t),
                Some(other) => other,
                None => RequestOutcome::NotSet,
            },
        };
        (Response::text(500, "internal server error\n"), response)
    }
}

/// What the guest sees of `request`: the target split into path,
/// authority and scheme (origin form, absolute form, authority form for
/// CONNECT), the authority from `host` when the target has none.
fn request_parts(request: Request) -> RequestParts {
    let Request { head, body } = request;
    let host = head
        .values("host")
        .next()
        .and_then(|h| core::str::from_utf8(h).ok())
        .map(str::to_string);
    let target = head.target.clone();
    let (scheme, authority, path) = if let Some((scheme, rest)) = target.split_once("://") {
        let (auth, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            other => Scheme::Other(other.to_string()),
        };
        (scheme, Some(auth.to_string()), Some(path.to_string()))
    } else if head.method == "CONNECT" {
        (Scheme::Http, Some(target.clone()), None)
    } else {
        (Scheme::Http, host.clone(), Some(target.clone()))
    };
    RequestParts {
        method: head.method.clone(),
        path_with_query: path,
        scheme: Some(scheme),
        authority: authority.or(host),
        headers: head.headers,
        body,
    }
}

/// The requests of a server, answered by [`ProxyApp::handle`].
pub struct ProxyHandler<'a, C, P>
where
    C: FnMut(u64) -> WasiCtx,
    P: FnMut(&mut Store<WasiCtx>),
{
    /// the app
    pub app: &'a ProxyApp,
    /// the engine its instances live in
    pub engine: &'a Engine,
    /// a fresh context for request number N
    pub make_ctx: C,
    /// sets a request's store up
    pub prepare: P,
    /// requests so far, shared by every worker of the server (a request's
    /// number is its place in this count)
    pub count: &'a core::sync::atomic::AtomicU64,
    /// called with each request's number and what went wrong
    pub log: &'a mut dyn FnMut(u64, &str),
    /// nanoseconds spent making instances, summed over every request
    pub instantiate_ns: &'a core::sync::atomic::AtomicU64,
}

impl<C, P> crate::http_server::Handler for ProxyHandler<'_, C, P>
where
    C: FnMut(u64) -> WasiCtx,
    P: FnMut(&mut Store<WasiCtx>),
{
    fn handle(&mut self, _ticket: u64, request: Request) -> Option<Response> {
        let n = self
            .count
            .fetch_add(1, core::sync::atomic::Ordering::Relaxed);
        let ctx = (self.make_ctx)(n);
        let ((response, outcome), took) =
            self.app
                .handle_timed(self.engine, ctx, &mut self.prepare, request);
        self.instantiate_ns
            .fetch_add(took, core::sync::atomic::Ordering::Relaxed);
        if let Some(m) = outcome.message() {
            (self.log)(n, &m);
        }
        Some(response)
    }
}

/// A request's standard streams as `wasmtime serve` shows them: each
/// line the guest writes goes out whole, after `stdout [N] :: ` or
/// `stderr [N] :: ` (N: the request's number), so the lines of requests
/// that run side by side stay apart. What is left of a line when the
/// request ends goes out then. Standard input is empty.
pub struct PrefixedStdio {
    inner: Arc<dyn crate::Stdio>,
    n: u64,
    out: spin::Mutex<Vec<u8>>,
    err: spin::Mutex<Vec<u8>>,
}

impl PrefixedStdio {
    /// The streams of request `n`, written to `inner`.
    pub fn new(inner: Arc<dyn crate::Stdio>, n: u64) -> PrefixedStdio {
        PrefixedStdio {
            inner,
            n,
            out: spin::Mutex::new(Vec::new()),
            err: spin::Mutex::new(Vec::new()),
        }
    }

    /// Writes the whole lines of `buf` (all of it if `all`) with `name`'s
    /// prefix.
    fn lines(
        &self,
        name: &str,
        buf: &mut Vec<u8>,
        all: bool,
        write: impl Fn(&[u8]) -> Result<(), crate::StdioError>,
    ) -> Result<(), crate::StdioError> {
        let mut out = Vec::new();
        while let Some(i) = buf.iter().position(|b| *b == b'\n') {
            out.extend_from_slice(format!("{name} [{}] :: ", self.n).as_bytes());
            out.extend(buf.drain(..=i));
        }
        if all && !buf.is_empty() {
            out.extend_from_slice(format!("{name} [{}] :: ", self.n).as_bytes());
            out.append(buf);
            out.push(b'\n');
        }
        if out.is_empty() { Ok(()) } else { write(&out) }
    }
}

impl crate::Stdio for PrefixedStdio {
    fn write_stdout(&self, bytes: &[u8]) -> Result<(), crate::StdioError> {
        let mut b = self.out.lock();
        b.extend_from_slice(bytes);
        self.lines("stdout", &mut b, false, |o| self.inner.write_stdout(o))
    }
    fn write_stderr(&self, bytes: &[u8]) -> Result<(), crate::StdioError> {
        let mut b = self.err.lock();
        b.extend_from_slice(bytes);
        self.lines("stderr", &mut b, false, |o| self.inner.write_stderr(o))
    }
    fn read_stdin(&self, _buf: &mut [u8]) -> Result<usize, crate::StdioError> {
        Ok(0)
    }
}

impl Drop for PrefixedStdio {
    fn drop(&mut self) {
        let mut out = core::mem::take(&mut *self.out.lock());
        let _ = self.lines("stdout", &mut out, true, |o| self.inner.write_stdout(o));
        let mut err = core::mem::take(&mut *self.err.lock());
        let _ = self.lines("stderr", &mut err, true, |o| self.inner.write_stderr(o));
    }
}
