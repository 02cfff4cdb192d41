//! `basalt serve` in the VM: the kernel answers HTTP/1.1 on a port of the
//! program network (the loopback and the card) with the `wasi:http/proxy`
//! component, a fresh instance per request — the same server
//! ([`basalt_wasi::http_server`]) and per-request runner
//! ([`basalt_wasi::serve`]) as `basalt serve --hosted`.
//!
//! Every request runs in a task of its own ([`crate::tasks`]): one that
//! waits (a sleep, a poll, an outgoing request) parks, and the others go
//! on meanwhile; at most [`MAX_IN_FLIGHT`] at once, fewer when memory is
//! short ([`in_flight_limit`]). One timer drives
//! them all: its ticks raise one interrupt word that each request's store
//! shares ([`basalt_runtime::Store::share_interrupt`]); the store's check
//! polls the network, stops the request past its deadline, and otherwise
//! lets the other tasks run. A wait on the host stops at the deadline too
//! ([`basalt_wasi::WasiCtx::set_deadline`]).

use alloc::boxed::Box;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::net::{IpAddr, Ipv4Addr, SocketAddr};

use basalt_runtime::component::Component;
use basalt_runtime::{Engine, InterruptHandle, Store};
use basalt_wasi::http_server::{Handler, Request, Response, Server, ServerConfig};
use basalt_wasi::serve::{PrefixedStdio, ProxyApp};
use basalt_wasi::services::{Clocks, NetError, Network, Transport};
use basalt_wasi::{Services, Stdio, WasiCtx};

use crate::bundle::{Manifest, ServeConfig};
use crate::services::{KernelClocks, KernelEntropy, SerialStdio};

/// How much native stack a request's wasm may use: its task's stack
/// ([`crate::tasks::TASK_STACK`]) holds this and the host code it calls.
pub const SERVE_WASM_STACK: usize = 1 << 20;

/// How often the timer raises the requests' interrupt word.
const TICK_PERIOD_MS: u32 = 10;

/// Why the kernel cannot serve.
#[derive(Debug)]
pub enum ServeError {
    /// the component is not a proxy
    App(basalt_runtime::Error),
    /// the port cannot be listened on
    Listen(u16, NetError),
}

impl core::fmt::Display for ServeError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ServeError::App(e) => write!(f, "{e}"),
            ServeError::Listen(port, e) => write!(f, "cannot listen on port {port}: {e:?}"),
        }
    }
}

/// The one interrupt word every request's store shares, raised by the
/// timer; `None` when this CPU has no timer interrupt.
fn tick_word(engine: &Engine) -> Option<&'static InterruptHandle> {
    // Kept for good: the timer's stub writes the word.
    let handle = TICK_WORD.call_once(|| Store::new(engine, ()).interrupt_handle());
    basalt_arch::cpu::start_ticks(handle.request_word(), TICK_PERIOD_MS).then_some(handle)
}

/// The requests' interrupt word (see [`tick_word`]).
static TICK_WORD: spin::Once<InterruptHandle> = spin::Once::new();

/// Serves `component` as `manifest` and `config` say; returns only when
/// it cannot serve at all.
pub fn serve(
    engine: &Engine,
    component: Component,
    manifest: &Manifest,
    config: ServeConfig,
) -> ServeError {
    let app = match ProxyApp::new(component) {
        Ok(a) => a,
        Err(e) => return ServeError::App(e),
    };
    let net = crate::net::program::network();
    let listener = match listen(&net, config.port) {
        Ok(l) => l,
        Err(e) => return ServeError::Listen(config.port, e),
    };
    let tick = tick_word(engine);
    if tick.is_none() {
        kprintln!("serve: no timer interrupt on this CPU; request deadlines stop waits only");
    }
    // The CLI prints `Serving HTTP on …` when it reads this.
    kprintln!("BASALT-SERVE {}", config.port);
    let done: Arc<spin::Mutex<Vec<(u64, Response)>>> = Arc::default();
    let limit = in_flight_limit();
    kprintln!("serve: at most {limit} requests in flight");
    let mut handler = TaskHandler {
        limit,
        app: Arc::new(app),
        engine: engine.clone(),
        args: manifest.args.clone(),
        env: manifest.env.clone(),
        sockets: manifest.sockets,
        max_resources: manifest.max_resources,
        max_random_size: manifest.max_random_size,
        config,
        net: net.clone(),
        console: Arc::new(SerialStdio::new()),
        tick,
        done: done.clone(),
        count: 0,
    };
    let mut server = Server::new(net.clone(), listener, ServerConfig::default());
    loop {
        let now = crate::time::monotonic_ns();
        server.step(now, &mut handler);
        let waits = crate::tasks::run(now, &crate::net::program::ready);
        let answers: Vec<(u64, Response)> = core::mem::take(&mut *done.lock());
        let answered = !answers.is_empty();
        for (ticket, response) in answers {
            server.respond(ticket, &response, crate::time::monotonic_ns());
        }
        if answered || server.has_buffered_requests() || waits.deadline == Some(0) {
            continue;
        }
        server.wait(waits.deadline, &waits.interests);
    }
}

/// The most requests answered at once (each holds a task, its stack and
/// an instance); more get 503. Fewer when memory is short: see
/// [`in_flight_limit`].
const MAX_IN_FLIGHT: usize = 256;

/// Memory set aside for each request in flight when the limit is chosen:
/// its task's stack and a small instance.
const PER_REQUEST: usize = 8 << 20;

/// How many requests may be in flight in the memory free now.
fn in_flight_limit() -> usize {
    let (used, total) = crate::mem::frame_stats();
    let free =
        usize::try_from(total.saturating_sub(used).saturating_mul(4096)).unwrap_or(usize::MAX);
    (free / PER_REQUEST).clamp(1, MAX_IN_FLIGHT)
}

/// Answers each request in a task of its own.
struct TaskHandler {
    /// the most requests in flight
    limit: usize,
    app: Arc<ProxyApp>,
    engine: Engine,
    args: Vec<Vec<u8>>,
    env: Vec<Vec<u8>>,
    sockets: basalt_wasi::preview2::SocketGrants,
    max_resources: Option<usize>,
    max_random_size: Option<u64>,
    config: ServeConfig,
    net: Arc<dyn Network>,
    console: Arc<dyn Stdio>,
    tick: Option<&'static InterruptHandle>,
    /// the answers of the tasks that ended, by ticket
    done: Arc<spin::Mutex<Vec<(u64, Response)>>>,
    count: u64,
}

impl TaskHandler {
    /// A fresh context for request `n`, and its deadline.
    fn context(&self, n: u64) -> (WasiCtx, Option<u64>) {
        let stdio: Box<dyn Stdio> = if self.config.prefix {
            Box::new(PrefixedStdio::new(self.console.clone(), n))
        } else {
            Box::new(SerialStdio::new())
        };
        let clocks = KernelClocks::default();
        let now = clocks.monotonic_ns();
        let mut ctx = WasiCtx::new(
            self.args.clone(),
            self.env.clone(),
            Services {
                stdio,
                clocks: Box::new(clocks),
                entropy: Box::new(KernelEntropy),
            },
        );
        let until = (self.config.timeout_ms > 0)
            .then(|| now.saturating_add(self.config.timeout_ms.saturating_mul(1_000_000)));
        ctx.set_deadline(until);
        ctx.set_socket_grants(self.sockets);
        if let Some(n) = self.max_resources {
            ctx.set_max_resources(n);
        }
        if let Some(n) = self.max_random_size {
            ctx.set_max_random_size(n);
        }
        ctx.set_network(self.net.clone());
        (ctx, until)
    }
}

impl Handler for TaskHandler {
    fn handle(&mut self, ticket: u64, request: Request) -> Option<Response> {
        if crate::tasks::count() >= self.limit {
            return Some(Response::text(
                503,
                "too many requests in flight: try again\n",
            ));
        }
        let n = self.count;
        self.count += 1;
        let (ctx, until) = self.context(n);
        let (app, engine, done, tick) = (
            self.app.clone(),
            self.engine.clone(),
            self.done.clone(),
            self.tick,
        );
        let body = Box::new(move || {
            let prepare = |store: &mut Store<WasiCtx>| {
                if let Some(h) = tick {
                    store.share_interrupt(h);
                }
                store.set_interrupt_check(move || {
                    crate::net::program::poll_in_background();
                    if until.is_some_and(|d| crate::time::monotonic_ns() >= d) {
                        return true;
                    }
                    // A tick: the other requests get their turn.
                    crate::tasks::yield_now();
                    false
                });
            };
            let (response, outcome) = app.handle(&engine, ctx, prepare, request);
            if let Some(m) = outcome.message() {
                // On the program's stderr, as `basalt serve --hosted`
                // prints them.
                let _ = SerialStdio::new()
                    .write_stderr(alloc::format!("basalt: request {n}: {m}\n").as_bytes());
            }
            done.lock().push((ticket, response));
        });
        match crate::tasks::spawn(body) {
            Ok(()) => None,
            Err(_) => Some(Response::text(
                503,
                "no memory for another request: try again\n",
            )),
        }
    }
}

/// A listener on `port` of every address of the program network.
fn listen(net: &Arc<dyn Network>, port: u16) -> Result<basalt_wasi::services::SocketId, NetError> {
    let s = net.create(Transport::Tcp, false)?;
    net.bind(s, SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port))?;
    net.listen(s, 1024)?;
    Ok(s)
}
