//! `basalt run --hosted`: the same runtime and WASI implementation, in this
//! process on Linux, with the host OS as the WASI backend. Used to compare
//! our code generation with wasmtime's and native code, and to run the
//! WASI test suite.
//!
//! A `--dir` is live ([`basalt_wasi::host_fs::HostFs`]): every file call
//! goes to the host directory as it happens, as in a VM and under wasmtime,
//! so the program's changes reach the host at once and changes other
//! processes make meanwhile are seen and never undone. With `--dir-mode
//! copy` the directory is copied into an in-memory file system instead and
//! nothing comes back, as in a VM. A `--tcplisten` is a listening socket
//! of the host, preopened after the directories; `wasi:sockets` makes
//! host sockets, within the `-S` grants.

use std::sync::Arc;
use std::time::Instant;

use basalt_runtime::component::Component;
use basalt_runtime::{Config, Engine, Module};
use basalt_wasi::host::{HostClocks, HostEntropy, HostStdio};
use basalt_wasi::host_fs::HostFs;
use basalt_wasi::host_net::HostNetwork;
use basalt_wasi::{FileSystem, Outcome, ReadOnly, Services, Stdio, WasiCtx};

use crate::CliError;
use crate::run::{DirMode, SharedDir};

/// A core module (a preview1 command) or a component (a WASI 0.2 command).
enum Program {
    Module(Module),
    Component(Component),
}

/// What one hosted run is asked to do.
pub struct Hosted<'a> {
    /// the module's name, for messages
    pub name: &'a str,
    /// the module
    pub wasm: &'a [u8],
    /// `argv`, the program name first
    pub args: Vec<Vec<u8>>,
    /// the whole environment (`NAME=VALUE`)
    pub env: Vec<Vec<u8>>,
    /// host directories to share, preopened in this order
    pub dirs: &'a [SharedDir],
    /// live (default) or copied into memory
    pub dir_mode: DirMode,
    /// stop the program after this long (`--timeout`): its code is
    /// interrupted (exit code 124)
    pub timeout: Option<std::time::Duration>,
    /// fuel the program may spend (`--fuel`); `None`: unmetered
    pub fuel: Option<u64>,
    /// addresses to listen on, each preopened as a socket after the
    /// directories (`--tcplisten`)
    pub tcplisten: &'a [String],
    /// what `wasi:sockets` may do (`-S`)
    pub sockets: basalt_wasi::preview2::SocketGrants,
    /// the most WASI 0.2 resources the program may hold (`-S max-resources`)
    pub max_resources: Option<usize>,
    /// `-S max-random-size` and `-S cwd`
    pub wasi: crate::wasi_flags::Settings,
    /// report compile and run times on stderr
    pub verbose: bool,
}

/// Ends this process with exit code 124 after `limit` (`--timeout`),
/// whatever the program is doing: the backstop for a program blocked in a
/// host call (reading stdin, waiting on a socket), which the interrupt
/// check of its code cannot reach (standard streams flushed by the OS,
/// shared directories live: nothing is lost that the program had
/// written).
pub fn stop_after(limit: std::time::Duration, at: std::time::Duration) {
    std::thread::spawn(move || {
        std::thread::sleep(at);
        eprintln!("basalt: the program was stopped after {limit:?} (--timeout)");
        std::process::exit(124);
    });
}

/// Compiles and runs a module on this process's streams; returns the exit
/// code (a trap: 134, message on stderr).
pub fn run(run: Hosted<'_>) -> Result<i32, CliError> {
    run_with_stdio(run, Box::new(HostStdio))
}

/// [`run`] with the program's standard streams on `stdio`.
pub fn run_with_stdio(run: Hosted<'_>, stdio: Box<dyn Stdio>) -> Result<i32, CliError> {
    let Hosted {
        name,
        wasm,
        args,
        env,
        dirs,
        dir_mode,
        timeout,
        fuel,
        tcplisten,
        sockets,
        max_resources,
        wasi,
        verbose,
    } = run;
    // The interrupt checks cost a load and a branch per loop iteration:
    // only when a deadline needs them.
    let config = Config {
        interruptible: timeout.is_some(),
        consume_fuel: fuel.is_some(),
        ..Config::hosted()
    };
    let engine = Engine::new(config).map_err(|e| CliError::Module(e.to_string()))?;
    let t0 = Instant::now();
    let program = if basalt_runtime::component::def::is_component(wasm) {
        Program::Component(
            Component::new(&engine, wasm).map_err(|e| CliError::Module(format!("{name}: {e}")))?,
        )
    } else {
        Program::Module(
            Module::new(&engine, wasm).map_err(|e| CliError::Module(format!("{name}: {e}")))?,
        )
    };
    let compiled = t0.elapsed();
    if verbose {
        let what = match &program {
            Program::Module(m) => format!("{} KiB of code", m.code_size() / 1024),
            Program::Component(_) => "a component".to_string(),
        };
        eprintln!(
            "basalt: hosted: compiled {} KiB of wasm into {what} in {:.1} ms",
            wasm.len() / 1024,
            compiled.as_secs_f64() * 1e3
        );
    }
    let clocks = HostClocks::default();
    let origin = clocks.origin();
    let services = Services {
        stdio,
        clocks: Box::new(clocks),
        entropy: Box::new(HostEntropy),
    };
    let mut ctx = WasiCtx::new(args, env, services);
    ctx.set_terminals(crate::run::host_terminals());
    preopen_dirs(&mut ctx, dirs, dir_mode)?;
    // One host network serves the --tcplisten listeners and the sockets a
    // WASI 0.2 program makes within its -S grants.
    let net = Arc::new(HostNetwork::new(origin));
    ctx.set_network(net.clone());
    ctx.set_socket_grants(sockets);
    if let Some(n) = max_resources {
        ctx.set_max_resources(n);
    }
    wasi.apply_to(&mut ctx);
    {
        for addr in tcplisten {
            let (id, bound) = net.listen(addr).map_err(|e| {
                CliError::Input(format!("cannot listen on --tcplisten {addr}: {e}"))
            })?;
            let fd = ctx
                .preopen_socket(net.clone(), id)
                .map_err(|e| CliError::Usage(format!("too many --tcplisten: {e}")))?;
            if verbose {
                eprintln!("basalt: hosted: listening on {bound} (descriptor {fd})");
            }
        }
    }
    let t1 = Instant::now();
    let prepare = |store: &mut basalt_runtime::Store<WasiCtx>| {
        if let Some(fuel) = fuel {
            store.set_fuel(fuel);
        }
        if let Some(limit) = timeout {
            // Raised once at the deadline: the program's code stops at its
            // next function entry or loop header (no check: a raised
            // request stops).
            let handle = store.interrupt_handle();
            std::thread::spawn(move || {
                std::thread::sleep(limit);
                handle.interrupt();
            });
        }
    };
    let outcome = match &program {
        Program::Module(m) => basalt_wasi::run_command_with(&engine, m, ctx, prepare),
        Program::Component(c) => {
            let t = Instant::now();
            basalt_wasi::run_component_observed(&engine, c, ctx, prepare, || {
                if verbose {
                    eprintln!(
                        "basalt: hosted: instantiated the component in {:.1} us",
                        t.elapsed().as_secs_f64() * 1e6
                    );
                }
            })
        }
    };
    if verbose {
        eprintln!(
            "basalt: hosted: ran in {:.1} ms",
            t1.elapsed().as_secs_f64() * 1e3
        );
    }
    Ok(match outcome {
        Outcome::Exit(code) => code & 0xff,
        Outcome::Trap(t) if t.kind == basalt_runtime::TrapKind::Interrupted => {
            let limit = timeout.unwrap_or_default();
            eprintln!("basalt: the program was stopped after {limit:?} (--timeout)");
            124
        }
        Outcome::Trap(t) => {
            eprintln!("basalt: {name}: {t}");
            eprint!(
                "{}",
                crate::symbols::wasm_backtrace(
                    t.backtrace.iter().map(|f| (f.func, f.name.as_deref()))
                )
            );
            134
        }
        Outcome::Error(e) => return Err(CliError::Module(format!("{name}: {e}"))),
    })
}

/// Preopens `dirs` in `ctx` in order: live host directories, or copies
/// in memory (`--dir-mode copy`), read-only where asked.
pub fn preopen_dirs(
    ctx: &mut WasiCtx,
    dirs: &[SharedDir],
    dir_mode: DirMode,
) -> Result<(), CliError> {
    for (i, dir) in dirs.iter().enumerate() {
        let (host, guest) = (&dir.host, &dir.guest);
        let unreadable = |e: std::io::Error| {
            CliError::Input(format!("cannot read --dir {}: {e}", host.display()))
        };
        let fs: Arc<dyn FileSystem> = match dir_mode {
            DirMode::Live => {
                if !host.is_dir() {
                    return Err(CliError::Input(format!(
                        "--dir {}: not a directory",
                        host.display()
                    )));
                }
                Arc::new(HostFs::open(host).map_err(unreadable)?)
            }
            DirMode::Copy => {
                let fs = Arc::new(basalt_wasi::host::memfs(i as u64 + 1));
                basalt_wasi::host::load_dir(&fs, fs.root(), host).map_err(unreadable)?;
                fs
            }
        };
        let fs = if dir.read_only {
            Arc::new(ReadOnly::new(fs))
        } else {
            fs
        };
        ctx.preopen_dir(guest.clone().into_bytes(), fs)
            .map_err(|e| CliError::Usage(format!("too many --dir: {e}")))?;
    }
    Ok(())
}
