//! `basalt serve` in the VM: the kernel answers HTTP/1.1 on a port of the
//! program network (the loopback and the card) with the `wasi:http/proxy`
//! component, a fresh instance per request — the same server
//! ([`basalt_wasi::http_server`]) and per-request runner
//! ([`basalt_wasi::serve`]) as `basalt serve --hosted`.
//!
//! One timer drives every request: its ticks raise one interrupt word
//! that each request's store shares ([`basalt_runtime::Store::share_interrupt`]);
//! the store's check polls the network and stops the request past its
//! deadline. A wait on the host (a sleep, a poll) stops at the deadline
//! too ([`basalt_wasi::WasiCtx::set_deadline`]).

use alloc::boxed::Box;
use alloc::sync::Arc;
use core::cell::Cell;
use core::net::{IpAddr, Ipv4Addr, SocketAddr};

use basalt_runtime::component::Component;
use basalt_runtime::{Engine, InterruptHandle, Store};
use basalt_wasi::http_server::{Server, ServerConfig};
use basalt_wasi::serve::{PrefixedStdio, ProxyApp, ProxyHandler};
use basalt_wasi::services::{Clocks, NetError, Network, Transport};
use basalt_wasi::{Services, Stdio, WasiCtx};

use crate::bundle::{Manifest, ServeConfig};
use crate::services::{KernelClocks, KernelEntropy, SerialStdio};

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
    let console: Arc<dyn Stdio> = Arc::new(SerialStdio::new());
    let deadline = Cell::new(None::<u64>);
    let make_ctx = |n: u64| {
        let stdio: Box<dyn Stdio> = if config.prefix {
            Box::new(PrefixedStdio::new(console.clone(), n))
        } else {
            Box::new(SerialStdio::new())
        };
        let clocks = KernelClocks::default();
        let now = clocks.monotonic_ns();
        let mut ctx = WasiCtx::new(
            manifest.args.clone(),
            manifest.env.clone(),
            Services {
                stdio,
                clocks: Box::new(clocks),
                entropy: Box::new(KernelEntropy),
            },
        );
        let until = (config.timeout_ms > 0)
            .then(|| now.saturating_add(config.timeout_ms.saturating_mul(1_000_000)));
        deadline.set(until);
        ctx.set_deadline(until);
        ctx.set_socket_grants(manifest.sockets);
        if let Some(n) = manifest.max_resources {
            ctx.set_max_resources(n);
        }
        if let Some(n) = manifest.max_random_size {
            ctx.set_max_random_size(n);
        }
        ctx.set_network(net.clone());
        ctx
    };
    let prepare = |store: &mut Store<WasiCtx>| {
        if let Some(h) = tick {
            store.share_interrupt(h);
        }
        let until = deadline.get();
        store.set_interrupt_check(move || {
            crate::net::program::poll_in_background();
            until.is_some_and(|d| crate::time::monotonic_ns() >= d)
        });
    };
    // On the program's stderr, as `basalt serve --hosted` prints them.
    let errors = SerialStdio::new();
    let mut log = |n: u64, m: &str| {
        let _ = errors.write_stderr(alloc::format!("basalt: request {n}: {m}\n").as_bytes());
    };
    let count = core::sync::atomic::AtomicU64::new(0);
    let instantiate_ns = core::sync::atomic::AtomicU64::new(0);
    let mut handler = ProxyHandler {
        app: &app,
        engine,
        make_ctx,
        prepare,
        count: &count,
        log: &mut log,
        instantiate_ns: &instantiate_ns,
    };
    let mut server = Server::new(net.clone(), listener, ServerConfig::default());
    loop {
        server.step(crate::time::monotonic_ns(), &mut handler);
        if !server.has_buffered_requests() {
            server.wait(None, &[]);
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
