//! `basalt serve APP.wasm`: a `wasi:http/proxy` component as an HTTP
//! server, in wasmtime's dialect (`--addr`, `-S cli`, `-W timeout=…`,
//! `--env`, `--shutdown-addr`, `--no-logging-prefix`; the first line on
//! stderr names the URL it serves). Every request gets an instance of its
//! own, with a deadline and a memory limit; one that traps, runs past its
//! deadline or sets no response gets a 500, and the server goes on.
//!
//! Hosted (`--hosted`) the server is [`basalt_wasi::http_server`] over the
//! host's sockets, in this process.

use std::sync::Arc;
use std::time::{Duration, Instant};

use basalt_runtime::component::Component;
use basalt_runtime::{Config, Engine, InterruptHandle};
use basalt_wasi::host::{HostClocks, HostEntropy, HostStdio};
use basalt_wasi::host_net::HostNetwork;
use basalt_wasi::http_server::{Server, ServerConfig};
use basalt_wasi::serve::{PrefixedStdio, ProxyApp, ProxyHandler};
use basalt_wasi::services::{Clocks, Interest, Network};
use basalt_wasi::{Services, Stdio, WasiCtx};

use crate::CliError;
use crate::run::RunOptions;

/// What `basalt serve` adds to the run options.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// where to listen (`--addr`, default `0.0.0.0:8080`)
    pub addr: String,
    /// where a connection stops the server (`--shutdown-addr`)
    pub shutdown_addr: Option<String>,
    /// each request's deadline (`-W timeout=…`)
    pub timeout: Option<Duration>,
    /// the most bytes one linear memory of a request may grow to (`-W
    /// max-memory-size=…`)
    pub max_memory_size: usize,
    /// prefix each guest output line with its stream and request number
    pub logging_prefix: bool,
    /// hosted: threads answering requests at once, each with its own
    /// connections (`--cpus`; default: this machine's cores)
    pub workers: usize,
}

/// A request may run this long unless `-W timeout` says otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);
/// A request's memories may grow this far unless `-W max-memory-size`
/// says otherwise.
pub const DEFAULT_MAX_MEMORY: usize = 256 << 20;

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            addr: "0.0.0.0:8080".into(),
            shutdown_addr: None,
            timeout: Some(DEFAULT_TIMEOUT),
            max_memory_size: DEFAULT_MAX_MEMORY,
            logging_prefix: true,
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

/// A duration as wasmtime writes one: a number and a unit (`ns`, `us`,
/// `ms`, `s`, `m`, `h`); a bare number is seconds.
pub fn parse_duration(v: &str) -> Option<Duration> {
    let split = v
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(v.len());
    let (num, unit) = v.split_at(split);
    let n: f64 = num
        .parse()
        .ok()
        .filter(|n: &f64| n.is_finite() && *n >= 0.0)?;
    let secs = match unit.trim() {
        "ns" => n / 1e9,
        "us" | "µs" => n / 1e6,
        "ms" => n / 1e3,
        "" | "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return None,
    };
    Duration::try_from_secs_f64(secs).ok()
}

/// Applies one `-W` argument (`KEY=VALUE[,KEY=VALUE...]`) to `opts`.
pub fn apply_w(opts: &mut ServeOptions, arg: &str) -> Result<(), String> {
    for item in arg.split(',').filter(|s| !s.is_empty()) {
        let (key, value) = item.split_once('=').unwrap_or((item, ""));
        match key {
            "timeout" => {
                let d = parse_duration(value)
                    .filter(|d| !d.is_zero())
                    .ok_or_else(|| {
                        format!("-W timeout wants a duration such as 100ms or 5s, got `{value}`")
                    })?;
                opts.timeout = Some(d);
            }
            "max-memory-size" => {
                opts.max_memory_size = value.parse().map_err(|_| {
                    format!("-W max-memory-size wants a number of bytes, got `{value}`")
                })?;
            }
            other => {
                return Err(format!(
                    "unknown -W option `{other}` (Basalt knows timeout and max-memory-size)"
                ));
            }
        }
    }
    Ok(())
}

/// How often the server's ticker raises the requests' interrupt word.
const TICK: Duration = Duration::from_millis(5);

/// One interrupt word for every request of the server, raised every
/// [`TICK`] by a thread of its own (epochs, as wasmtime's): each request's
/// store shares it and its check stops the request past its deadline, so
/// arming a deadline costs nothing per request.
fn start_ticker(engine: &Engine) -> InterruptHandle {
    let handle = basalt_runtime::Store::new(engine, ()).interrupt_handle();
    let raiser = handle.clone();
    std::thread::spawn(move || {
        loop {
            std::thread::sleep(TICK);
            raiser.interrupt();
        }
    });
    handle
}

/// The name and bytes of `run.wasm`, which must be a component.
fn read_component(run: &RunOptions) -> Result<(String, Vec<u8>), CliError> {
    let name = run.wasm.display().to_string();
    let wasm = std::fs::read(&run.wasm)
        .map_err(|e| CliError::Input(format!("cannot read {name}: {e}")))?;
    if !basalt_runtime::component::def::is_component(&wasm) {
        return Err(CliError::Module(format!(
            "{name}: a core module; basalt serve takes a wasi:http/proxy component"
        )));
    }
    Ok((name, wasm))
}

/// `basalt serve --hosted`: serves `run.wasm` on this machine until a
/// connection to `--shutdown-addr` (exit code 0) or a signal.
pub fn serve_hosted(run: &RunOptions, serve: &ServeOptions) -> Result<i32, CliError> {
    let (name, wasm) = read_component(run)?;
    let config = Config {
        interruptible: serve.timeout.is_some(),
        max_memory_bytes: serve.max_memory_size,
        ..Config::hosted()
    };
    let engine = Engine::new(config).map_err(|e| CliError::Module(e.to_string()))?;
    let t0 = Instant::now();
    let component =
        Component::new(&engine, &wasm).map_err(|e| CliError::Module(format!("{name}: {e}")))?;
    let app = ProxyApp::new(component).map_err(|e| CliError::Module(format!("{name}: {e}")))?;
    if run.verbose {
        eprintln!(
            "basalt: hosted: compiled {} KiB of wasm in {:.1} ms",
            wasm.len() / 1024,
            t0.elapsed().as_secs_f64() * 1e3
        );
    }
    // One monotonic clock for the server, the network and every request:
    // the network's deadlines are on it.
    let origin = Instant::now();
    let net = Arc::new(HostNetwork::new(origin));
    let shutdown = match &serve.shutdown_addr {
        Some(a) => {
            let (id, bound) = net.listen(a).map_err(|e| {
                CliError::Input(format!("cannot listen on --shutdown-addr {a}: {e}"))
            })?;
            eprintln!("Listening for shutdown on tcp://{bound}/");
            Some(id)
        }
        None => None,
    };
    let (listener, bound) = net
        .listen(&serve.addr)
        .map_err(|e| CliError::Input(format!("cannot listen on --addr {}: {e}", serve.addr)))?;
    eprintln!("Serving HTTP on http://{bound}/");

    let stdio: Arc<dyn Stdio> = Arc::new(HostStdio);
    let ticker = serve.timeout.map(|_| start_ticker(&engine));
    let shared = Shared {
        run,
        serve,
        name: &name,
        app: &app,
        engine: &engine,
        net: &net,
        listener,
        shutdown,
        origin,
        stdio: &stdio,
        ticker: ticker.as_ref(),
        count: std::sync::atomic::AtomicU64::new(0),
        instantiate_ns: std::sync::atomic::AtomicU64::new(0),
        stop: std::sync::atomic::AtomicBool::new(false),
    };
    let workers = serve.workers.max(1);
    if run.verbose {
        eprintln!("basalt: hosted: {workers} workers");
    }
    let outcome = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..workers)
            .map(|_| scope.spawn(|| worker(&shared)))
            .collect();
        let mut outcome = Ok(0);
        for t in threads {
            match t.join() {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => outcome = Err(e),
                Err(_) => outcome = Err(CliError::Io("a server worker panicked".into())),
            }
        }
        outcome
    });
    if run.verbose {
        let n = shared.count.load(std::sync::atomic::Ordering::Relaxed);
        let ns = shared
            .instantiate_ns
            .load(std::sync::atomic::Ordering::Relaxed);
        eprintln!(
            "basalt: served {n} requests; instantiation {:.1} us a request on average",
            ns as f64 / 1e3 / n.max(1) as f64
        );
    }
    outcome
}

/// What every worker of a hosted server shares.
struct Shared<'a> {
    run: &'a RunOptions,
    serve: &'a ServeOptions,
    name: &'a str,
    app: &'a ProxyApp,
    engine: &'a Engine,
    net: &'a Arc<HostNetwork>,
    listener: basalt_wasi::services::SocketId,
    shutdown: Option<basalt_wasi::services::SocketId>,
    origin: Instant,
    stdio: &'a Arc<dyn Stdio>,
    ticker: Option<&'a InterruptHandle>,
    count: std::sync::atomic::AtomicU64,
    /// nanoseconds spent making instances
    instantiate_ns: std::sync::atomic::AtomicU64,
    /// a worker saw the shutdown connection: all end
    stop: std::sync::atomic::AtomicBool,
}

/// One worker thread: its own connections, accepted from the shared
/// listener, answered one request at a time, until the shutdown
/// connection (`Ok`) or a signal.
fn worker(sh: &Shared<'_>) -> Result<i32, CliError> {
    use std::sync::atomic::Ordering;
    let (run, serve) = (sh.run, sh.serve);
    let deadline_at = std::cell::Cell::new(None::<Instant>);
    let make_ctx = |n: u64| {
        let clocks = HostClocks::from_origin(sh.origin);
        let started = clocks.monotonic_ns();
        let streams: Box<dyn Stdio> = if serve.logging_prefix {
            Box::new(PrefixedStdio::new(sh.stdio.clone(), n))
        } else {
            Box::new(Unprefixed(sh.stdio.clone()))
        };
        let mut ctx = WasiCtx::new(
            vec![sh.name.to_string().into_bytes()],
            run.env.clone(),
            Services {
                stdio: streams,
                clocks: Box::new(clocks),
                entropy: Box::new(HostEntropy),
            },
        );
        if let Some(limit) = serve.timeout {
            deadline_at.set(Some(Instant::now() + limit));
            ctx.set_deadline(Some(started.saturating_add(limit.as_nanos() as u64)));
        }
        let net: Arc<dyn Network> = sh.net.clone();
        ctx.set_network(net);
        ctx.set_socket_grants(run.sockets);
        if let Some(n) = run.max_resources {
            ctx.set_max_resources(n);
        }
        run.wasi.apply_to(&mut ctx);
        if let Err(e) = crate::hosted::preopen_dirs(&mut ctx, &run.dirs, run.dir_mode) {
            eprintln!("basalt: request {n}: {e}");
        }
        ctx
    };
    let prepare = |store: &mut basalt_runtime::Store<WasiCtx>| {
        if let (Some(t), Some(at)) = (sh.ticker, deadline_at.get()) {
            store.share_interrupt(t);
            store.set_interrupt_check(move || Instant::now() >= at);
        }
    };
    let mut log = |n: u64, m: &str| eprintln!("basalt: request {n}: {m}");
    let mut handler = ProxyHandler {
        app: sh.app,
        engine: sh.engine,
        make_ctx,
        prepare,
        count: &sh.count,
        log: &mut log,
        instantiate_ns: &sh.instantiate_ns,
    };
    let net: Arc<dyn Network> = sh.net.clone();
    let mut server = Server::new(net, sh.listener, ServerConfig::default());
    let clocks = HostClocks::from_origin(sh.origin);
    let extra: Vec<(basalt_wasi::services::SocketId, Interest)> =
        sh.shutdown.iter().map(|s| (*s, Interest::Read)).collect();
    loop {
        server.step(clocks.monotonic_ns(), &mut handler);
        if let Some(s) = sh.shutdown
            && sh.net.accept(s).is_ok()
        {
            sh.stop.store(true, Ordering::Relaxed);
        }
        if sh.stop.load(Ordering::Relaxed) {
            return Ok(0);
        }
        if crate::signals::received().is_some() {
            // SIGINT or SIGTERM is how a server is stopped: a clean end.
            sh.stop.store(true, Ordering::Relaxed);
            return Ok(0);
        }
        if !server.has_buffered_requests() {
            // At most 100 ms: a worker notices another's stop.
            server.wait(Some(clocks.monotonic_ns() + 100_000_000), &extra);
        }
    }
}

/// The guest's output as it writes it (`--no-logging-prefix`).
struct Unprefixed(Arc<dyn Stdio>);

impl Stdio for Unprefixed {
    fn write_stdout(&self, bytes: &[u8]) -> Result<(), basalt_wasi::StdioError> {
        self.0.write_stdout(bytes)
    }
    fn write_stderr(&self, bytes: &[u8]) -> Result<(), basalt_wasi::StdioError> {
        self.0.write_stderr(bytes)
    }
    fn read_stdin(&self, _buf: &mut [u8]) -> Result<usize, basalt_wasi::StdioError> {
        Ok(0)
    }
}

/// The guest port a VM serves on when the host's is chosen by the OS.
const GUEST_PORT: u16 = 8080;

/// `basalt serve` in a VM: the kernel serves on a port of its own, QEMU
/// forwards `--addr` to it, and the first stderr line names `--addr`
/// once the kernel listens. Runs until SIGINT or SIGTERM stops the VM
/// (exit code 0).
pub fn serve_vm(run: &RunOptions, serve: &ServeOptions) -> Result<i32, CliError> {
    use crate::vm::Machine;
    if serve.shutdown_addr.is_some() {
        return Err(CliError::Usage(
            "--shutdown-addr is --hosted's; stop a VM's server with a signal (Ctrl-C)".into(),
        ));
    }
    if !run.dirs.is_empty() || !run.tcplisten.is_empty() {
        return Err(CliError::Usage(
            "basalt serve in a VM takes no --dir or --tcplisten yet (with --hosted it takes --dir)"
                .into(),
        ));
    }
    if matches!(
        run.machine,
        Machine::Firecracker | Machine::CloudHypervisor | Machine::Raspi4b
    ) || run.net_tap.is_some()
        || run.firmware.is_some()
    {
        return Err(CliError::Usage(
            "basalt serve in a VM runs on QEMU's default machines (x86_64 q35, pc, microvm; aarch64 virt) under -kernel, on its user network"
                .into(),
        ));
    }
    let (name, wasm) = read_component(run)?;
    let component = Component::new(
        &Engine::new(Config::hosted()).map_err(|e| CliError::Module(e.to_string()))?,
        &wasm,
    )
    .map_err(|e| CliError::Module(format!("{name}: {e}")))?;
    // Refused here, before a VM boots, as hosted.
    ProxyApp::new(component).map_err(|e| CliError::Module(format!("{name}: {e}")))?;
    use std::net::ToSocketAddrs;
    let addr = serve
        .addr
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| CliError::Usage(format!("--addr wants HOST:PORT, got `{}`", serve.addr)))?;
    // QEMU binds the host's port itself; a port 0 is chosen here first.
    let (host_port, guest_port) = match addr.port() {
        0 => {
            let probe = std::net::TcpListener::bind((addr.ip(), 0))
                .map_err(|e| CliError::Input(format!("cannot listen on --addr {addr}: {e}")))?;
            let port = probe
                .local_addr()
                .map_err(|e| CliError::Io(e.to_string()))?
                .port();
            (port, GUEST_PORT)
        }
        p => {
            std::net::TcpListener::bind(addr)
                .map_err(|e| CliError::Input(format!("cannot listen on --addr {addr}: {e}")))?;
            (p, p)
        }
    };
    let mut opts = run.clone();
    opts.serve = Some(crate::bundle::ServeManifest {
        port: guest_port,
        timeout_ms: serve.timeout.map_or(0, |t| {
            u64::try_from(t.as_millis()).unwrap_or(u64::MAX).max(1)
        }),
        max_memory: serve.max_memory_size as u64,
        prefix: serve.logging_prefix,
    });
    let mut net = opts.network.clone().unwrap_or_default();
    net.forwards.push((host_port, guest_port));
    net.forward_host = Some(addr.ip());
    opts.network = Some(net);
    opts.serve_banner = Some(format!(
        "Serving HTTP on http://{}/",
        std::net::SocketAddr::new(addr.ip(), host_port)
    ));
    match crate::run::run_on_stdio(&opts) {
        // SIGINT or SIGTERM is how a server is stopped: a clean end (the
        // VM is stopped with it).
        Err(CliError::Interrupted(_)) => Ok(0),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_wasmtime_units() {
        assert_eq!(parse_duration("100us"), Some(Duration::from_micros(100)));
        assert_eq!(parse_duration("5s"), Some(Duration::from_secs(5)));
        assert_eq!(parse_duration("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_duration("1.5m"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("5 parsecs"), None);
        let mut o = ServeOptions::default();
        apply_w(&mut o, "timeout=100ms,max-memory-size=65536").unwrap();
        assert_eq!(o.timeout, Some(Duration::from_millis(100)));
        assert_eq!(o.max_memory_size, 65536);
        assert!(apply_w(&mut o, "unknown=1").is_err());
    }
}
