//! Loading the bundle and running its program.

use alloc::boxed::Box;
use alloc::format;
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use basalt_arch::BootInfo;
use basalt_runtime::component::Component;
use basalt_runtime::{Arch, Config, Engine, Module, Target};

use crate::bundle::{Bundle, BundleError, Manifest, PreopenSource};
use crate::exit::{Status, finish};
use crate::files::FilesError;
use crate::mem::platform::KERNEL_PLATFORM;
use basalt_wasi::{FileSystem, Outcome, WasiCtx};

/// How much native stack wasm may use (of [`crate::RUN_STACK_SIZE`]; the
/// rest is for host functions called from wasm).
pub const MAX_WASM_STACK: usize = 4 << 20;
/// Upper bound on one linear memory (a full 32-bit memory).
pub const MAX_MEMORY_BYTES: usize = 4 << 30;

static VERBOSE: AtomicBool = AtomicBool::new(false);
static STAMPS: spin::Mutex<Vec<(u64, &'static str)>> = spin::Mutex::new(Vec::new());

/// Records a boot-timeline event; printed (with cycle stamps) when the
/// manifest says `verbose 1`.
pub fn stamp(what: &'static str) {
    let c = crate::time::cycles_since_boot();
    if VERBOSE.load(Ordering::Relaxed) {
        print_stamp(c, what);
    } else if let Some(mut s) = STAMPS.try_lock() {
        s.push((c, what));
    }
}

fn print_stamp(cycles: u64, what: &str) {
    let ns = crate::time::cycles_to_ns(cycles);
    kprintln!(
        "[{:>6}.{:03} ms {}+{:>12}] {what}",
        ns / 1_000_000,
        (ns / 1000) % 1000,
        basalt_arch::cpu::CYCLE_COUNTER_NAME,
        cycles
    );
}

fn initrd(info: &BootInfo) -> Option<&'static [u8]> {
    let r = info.initrd?;
    crate::mem::phys_slice(r.start, r.len)
}

/// Loads and runs the program; never returns (every path ends in a marker).
pub fn main(info: &BootInfo) -> ! {
    let freq = crate::time::init();
    stamp("clocks ready");
    crate::devices::init();
    stamp("devices probed");
    let seed = match crate::entropy::init() {
        Ok(s) => s,
        Err(e) => finish(Status::Panic, format_args!("{e}")),
    };
    kprintln!("entropy: seeded from {seed}");
    let (used, total) = crate::mem::frame_stats();
    kprintln!(
        "memory: {} MiB usable, {} KiB used; cycle counter {} MHz ({:?}); sleeps {}",
        total * 4 / 1024,
        used * 4,
        crate::time::frequency() / 1_000_000,
        freq,
        if crate::time::sleeps_halt() {
            "halt"
        } else {
            "spin"
        }
    );
    if let Some((started, jumped)) = info.loader_counters {
        let ms = |c: u64| crate::time::cycles_to_ns(c) / 1_000_000;
        kprintln!(
            "boot: firmware until the loader {} ms, loader {} ms ({} counter at kernel entry {})",
            ms(started),
            ms(jumped.saturating_sub(started)),
            basalt_arch::cpu::CYCLE_COUNTER_NAME,
            crate::time::boot_counter()
        );
    }
    match load_and_run(info) {
        Ok(Outcome::Exit(code)) => {
            stamp("program exited");
            finish(Status::Exit, format_args!("{}", (code as u32) & 0xff))
        }
        Ok(Outcome::Trap(t))
            if t.kind == basalt_runtime::TrapKind::Interrupted && crate::deadline::is_set() =>
        {
            crate::deadline::stop()
        }
        Ok(Outcome::Trap(t)) => {
            stamp("program trapped");
            for (i, f) in t.backtrace.iter().enumerate() {
                match &f.name {
                    Some(n) => kprintln!("wasm frame #{i}: func {} {n}", f.func),
                    None => kprintln!("wasm frame #{i}: func {}", f.func),
                }
            }
            finish(Status::Trap, format_args!("{} {t}", t.kind.id()))
        }
        Ok(Outcome::Error(e)) => finish(Status::Error, format_args!("{e}")),
        Err(message) => finish(Status::Error, format_args!("{message}")),
    }
}

/// Why the program could not be loaded.
#[derive(Debug)]
pub enum LoadError {
    /// the bundle or its manifest is unusable
    Bundle(BundleError),
    /// the CPU lacks what generated code needs
    Cpu(basalt_runtime::Error),
    /// the precompiled artifact does not fit this module or machine
    Artifact(basalt_runtime::Error),
    /// the module is invalid or could not be compiled
    Module(basalt_runtime::Error),
    /// the spec batch is malformed
    Batch(crate::spec::BatchError),
    /// the shared directories could not be set up
    Files(FilesError),
    /// a live share (`--dir`, virtio-9p) could not be opened
    Share(crate::live_share::ShareError),
    /// `basalt serve` could not serve
    Serve(crate::serve::ServeError),
    /// `basalt serve` was given a core module
    ServeModule,
    /// a `--tcplisten` socket could not be made
    Network {
        /// the address asked for
        addr: alloc::string::String,
        /// why
        error: crate::net::NetSetupError,
    },
}

impl From<BundleError> for LoadError {
    fn from(e: BundleError) -> Self {
        LoadError::Bundle(e)
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Bundle(e) => write!(f, "{e}"),
            LoadError::Cpu(e) => write!(
                f,
                "this CPU cannot run Basalt's generated code ({e}); give the VM a CPU with SSE4.1, e.g. QEMU `-cpu max` or `-cpu host`"
            ),
            LoadError::Artifact(e) => write!(
                f,
                "{e} (rebuild the bundle with this kernel's basalt CLI, or pass --jit)"
            ),
            LoadError::Module(e) => write!(f, "{e}"),
            LoadError::Batch(e) => write!(f, "{e}"),
            LoadError::Files(e) => write!(f, "{e}"),
            LoadError::Share(e) => write!(f, "{e}"),
            LoadError::Serve(e) => write!(f, "{e}"),
            LoadError::ServeModule => {
                f.write_str("a core module; basalt serve takes a wasi:http/proxy component")
            }
            LoadError::Network { addr, error } => {
                write!(f, "cannot listen on --tcplisten {addr}: {error}")
            }
        }
    }
}

/// A core module (a preview1 command) or a component (a WASI 0.2 command).
enum Program {
    Module(Module),
    Component(Component),
}

/// Loads the module: its host-compiled artifact, or compiled here (`jit`).
fn load_module(
    engine: &Engine,
    bundle: &Bundle<'_>,
    manifest: &Manifest,
    wasm: &[u8],
) -> Result<Module, LoadError> {
    let artifact = match (&manifest.artifact, manifest.jit) {
        (Some(path), false) => Some(bundle.require(path)?),
        _ => None,
    };
    let module = match artifact {
        Some(a) => Module::from_artifact(engine, wasm, a).map_err(|e| match e {
            basalt_runtime::Error::Artifact(_) => LoadError::Artifact(e),
            other => LoadError::Module(other),
        })?,
        None => {
            stamp("compiling module in the guest");
            Module::new(engine, wasm).map_err(LoadError::Module)?
        }
    };
    stamp(if artifact.is_some() {
        "module loaded (precompiled)"
    } else {
        "module compiled (JIT)"
    });
    if VERBOSE.load(Ordering::Relaxed) {
        let (heap_used, heap_size) = crate::mem::heap::stats();
        kprintln!(
            "module: {} bytes of wasm, {} bytes of code; heap {} KiB used of {} KiB",
            wasm.len(),
            module.code_size(),
            heap_used >> 10,
            heap_size >> 10
        );
    }
    Ok(module)
}

/// Loads a component: its core modules from their host-compiled artifacts
/// (`component-artifacts N`), or all of it validated and compiled here.
fn load_component(
    engine: &Engine,
    bundle: &Bundle<'_>,
    manifest: &Manifest,
    wasm: &[u8],
) -> Result<Program, LoadError> {
    let component = match (manifest.component_artifacts, manifest.jit) {
        (Some(n), false) => {
            let c = precompiled_component(engine, wasm, n, |i| {
                bundle.require(&format!("app.cwasm.{i}")).ok()
            })
            .map_err(|e| match e {
                basalt_runtime::Error::Artifact(_) => LoadError::Artifact(e),
                other => LoadError::Module(other),
            })?;
            stamp("component loaded (precompiled)");
            c
        }
        _ => {
            stamp("compiling component in the guest");
            let c = Component::new(engine, wasm).map_err(LoadError::Module)?;
            stamp("component compiled (JIT)");
            c
        }
    };
    Ok(Program::Component(component))
}

/// The component `wasm`, its `n` core modules (in the order they appear
/// in the binary) from the code the host compiled for them:
/// `artifact(i)` is module `i`'s.
pub(crate) fn precompiled_component<'b>(
    engine: &Engine,
    wasm: &[u8],
    n: usize,
    artifact: impl Fn(usize) -> Option<&'b [u8]>,
) -> Result<Component, basalt_runtime::Error> {
    use basalt_runtime::component::def;
    let instantiate = basalt_runtime::Error::Instantiate;
    let parsed = def::parse(wasm)?;
    if parsed.modules.len() != n {
        return Err(instantiate(format!(
            "the component has {} core modules, the bundle artifacts for {n}",
            parsed.modules.len()
        )));
    }
    let mut modules = Vec::with_capacity(n);
    for (i, range) in parsed.modules.iter().enumerate() {
        let core = wasm
            .get(range.clone())
            .ok_or_else(|| instantiate(format!("core module {i} past the end of the component")))?;
        let code = artifact(i)
            .ok_or_else(|| instantiate(format!("no compiled code for core module {i}")))?;
        modules.push(Module::from_artifact(engine, core, code)?);
    }
    Ok(Component::from_parts(parsed.root, modules))
}

fn load_and_run(info: &BootInfo) -> Result<Outcome, LoadError> {
    let data = initrd(info).ok_or(BundleError::Missing)?;
    let bundle = Bundle::parse(data)?;
    let manifest = Manifest::parse(bundle.require("manifest")?)?;
    if let Some(syms) = bundle.get("kernel.syms") {
        crate::syms::install(syms);
    }
    // Fault-report tests: `basalt.crash=KIND` on the kernel command line.
    for word in info.cmdline.split(|c| *c == b' ') {
        if let Some(kind) = word.strip_prefix(b"basalt.crash=") {
            crate::fault::crash_test(kind);
        }
        // Network tests: `basalt.netcheck=PORT` echoes TCP connections.
        if let Some(port) = word.strip_prefix(b"basalt.netcheck=") {
            crate::net::netcheck(port);
        }
    }
    if manifest.verbose {
        VERBOSE.store(true, Ordering::Relaxed);
        kprintln!("boot timeline (ms since kernel entry, cycles since entry):");
        print_stamp(0, "kernel entry");
        for (c, what) in STAMPS.lock().drain(..) {
            print_stamp(c, what);
        }
    }
    stamp("bundle read");
    if manifest.verbose {
        for e in bundle.entries() {
            kprintln!("bundle: {} ({} bytes)", e.path, e.data.len());
        }
    }
    let features: Vec<&'static str> = basalt_arch::cpu::codegen_features().collect();
    let target = Target::new(Arch::native(), &features).map_err(LoadError::Cpu)?;
    kprintln!("code generation target: {target}");
    let engine = Engine::new(Config {
        target,
        platform: Some(&KERNEL_PLATFORM),
        // A server's requests run on stacks of their own, smaller.
        max_wasm_stack: if manifest.serve.is_some() {
            crate::serve::SERVE_WASM_STACK
        } else {
            MAX_WASM_STACK
        },
        // A server's requests each grow their memories to at most this.
        max_memory_bytes: manifest.serve.map_or(MAX_MEMORY_BYTES, |v| {
            usize::try_from(v.max_memory).unwrap_or(MAX_MEMORY_BYTES)
        }),
        interruptible: manifest.interrupt_checks,
        consume_fuel: manifest.fuel.is_some(),
    })
    .map_err(LoadError::Cpu)?;
    if let Some(path) = &manifest.spec_batch {
        stamp("running the spec batch");
        let text = bundle.require(path)?;
        return crate::spec::run(&engine, &bundle, text)
            .map(Outcome::Exit)
            .map_err(LoadError::Batch);
    }
    let wasm = bundle.require(&manifest.module)?;
    let program = if basalt_runtime::component::def::is_component(wasm) {
        load_component(&engine, &bundle, &manifest, wasm)?
    } else {
        Program::Module(load_module(&engine, &bundle, &manifest, wasm)?)
    };
    if let Some(config) = manifest.serve {
        let Program::Component(component) = program else {
            return Err(LoadError::ServeModule);
        };
        stamp("serving");
        return Err(LoadError::Serve(crate::serve::serve(
            &engine, component, &manifest, config,
        )));
    }
    let mut ctx = WasiCtx::new(
        manifest.args.clone(),
        manifest.env.clone(),
        crate::services::services(),
    );
    ctx.set_terminals(manifest.terminals);
    ctx.set_socket_grants(manifest.sockets);
    if let Some(n) = manifest.max_resources {
        ctx.set_max_resources(n);
    }
    if let Some(n) = manifest.max_random_size {
        ctx.set_max_random_size(n);
    }
    if let Some(n) = manifest.hostcall_fuel {
        ctx.set_hostcall_fuel(n);
    }
    if let Some(cwd) = &manifest.cwd {
        ctx.set_initial_cwd(cwd.clone());
    }
    // The program's own sockets (wasi:sockets): the loopback, and the
    // card when the VM has one.
    ctx.set_network(crate::net::program::network());
    if !manifest.preopens.is_empty() {
        // Copies are loaded into the heap: they may take half of the
        // memory still free, the rest is for the program. Live shares
        // are opened over virtio-9p. Device numbers follow --dir order.
        let (used, total) = crate::mem::frame_stats();
        let budget = total.saturating_sub(used) * 4096 / 2;
        let clock = || -> basalt_wasi::memfs::Clock { Box::new(crate::time::realtime_ns) };
        let dev = |i: usize| i as u64 + 1;
        let copied: Vec<(u64, &str)> = (manifest.preopens.iter().enumerate())
            .filter_map(|(i, p)| match &p.source {
                PreopenSource::Bundle(prefix) => Some((dev(i), prefix.as_str())),
                PreopenSource::Host(_) => None,
            })
            .collect();
        let mut copies = crate::files::load(&bundle, &copied, budget, clock)
            .map_err(LoadError::Files)?
            .into_iter();
        let too_many = || LoadError::Files(FilesError::TooManyPreopens(manifest.preopens.len()));
        for (i, p) in manifest.preopens.iter().enumerate() {
            let fs: Arc<dyn FileSystem> = match &p.source {
                PreopenSource::Bundle(_) => copies
                    .next()
                    .map(|f| f as Arc<dyn FileSystem>)
                    .ok_or_else(too_many)?,
                PreopenSource::Host(tag) => {
                    crate::live_share::open(tag, dev(i)).map_err(LoadError::Share)?
                }
            };
            let fs: Arc<dyn FileSystem> = if p.read_only {
                Arc::new(basalt_wasi::ReadOnly::new(fs))
            } else {
                fs
            };
            ctx.preopen_dir(p.guest.clone(), fs)
                .map_err(|_| too_many())?;
        }
        stamp("shared directories ready");
    }
    for addr in &manifest.tcplisten {
        let (net, listener) = crate::net::listen(addr).map_err(|e| LoadError::Network {
            addr: addr.clone(),
            error: e,
        })?;
        ctx.preopen_socket(net, listener).map_err(|_| {
            LoadError::Files(FilesError::TooManyPreopens(
                manifest.preopens.len() + manifest.tcplisten.len(),
            ))
        })?;
        kprintln!("net: listening on {addr} for the program");
    }
    if !manifest.tcplisten.is_empty() {
        stamp("sockets ready");
    }
    stamp("calling _start");
    let fuel = manifest.fuel;
    if let Some(ms) = manifest.deadline_ms {
        crate::deadline::start(ms);
    }
    let mut ticking = false;
    let prepare = |store: &mut basalt_runtime::Store<WasiCtx>| {
        if let Some(fuel) = fuel {
            store.set_fuel(fuel);
        }
        // Asked when the program's interrupt request is raised: by the
        // timer's ticks, when the code has interrupt checks.
        store.set_interrupt_check(move || {
            TICKS_SEEN.fetch_add(1, Ordering::Relaxed);
            crate::net::poll_in_background();
            crate::deadline::passed()
        });
        if engine.config().interruptible {
            // Kept for good: the timer's stub writes the word.
            let handle = TICK_TARGET.call_once(|| store.interrupt_handle());
            ticking = basalt_arch::cpu::start_ticks(handle.request_word(), TICK_PERIOD_MS);
            if !ticking {
                kprintln!(
                    "ticks: no timer interrupt on this CPU; the network waits for socket calls"
                );
            }
        }
    };
    let outcome = match &program {
        Program::Module(m) => basalt_wasi::run_command_with(&engine, m, ctx, prepare),
        Program::Component(c) => basalt_wasi::run_component_with(&engine, c, ctx, prepare),
    };
    if ticking {
        basalt_arch::cpu::stop_ticks();
        kprintln!(
            "ticks: the program's interrupt checks ran {} times (the network polled from them)",
            TICKS_SEEN.load(Ordering::Relaxed)
        );
    }
    Ok(outcome)
}

/// How often the timer raises the program's interrupt request while its
/// code has interrupt checks: the network is driven at least this often.
const TICK_PERIOD_MS: u32 = 10;

/// The interrupt handle of the program's store, whose word the timer
/// raises.
static TICK_TARGET: spin::Once<basalt_runtime::InterruptHandle> = spin::Once::new();

/// How many times the program's interrupt check ran.
static TICKS_SEEN: AtomicU64 = AtomicU64::new(0);
