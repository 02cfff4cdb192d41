//! Runs one sightglass benchmark program in Basalt's runtime on the host
//! and times the span between its `bench.start` and `bench.end` calls,
//! the part the benchmark measures (`bench/metering.py` runs it beside
//! wasmtime). The program's folder is preopened as `.`, where it finds its
//! input; its output goes to this process's stdout and stderr.
//!
//! usage: sightglass [--checks | --fuel N] DIR
//!
//! `--checks` compiles with interrupt checks (nothing interrupts: their
//! cost alone), `--fuel N` with fuel metering. The last line on stderr is
//! `{"compile_ms": …, "bench_ms": …, "exit": …}`.

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use basalt_runtime::{Config, Engine, FuncType, Linker, Module, Store};
use basalt_wasi::host::{HostClocks, HostEntropy, HostStdio};
use basalt_wasi::host_fs::HostFs;
use basalt_wasi::{Services, WasiCtx};

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let mut config = Config::hosted();
    let mut fuel = None;
    match args.first().map(String::as_str) {
        Some("--checks") => {
            config.interruptible = true;
            args.remove(0);
        }
        Some("--fuel") if args.len() > 1 => {
            config.consume_fuel = true;
            fuel = Some(args[1].parse::<u64>().expect("--fuel N: a whole number"));
            args.drain(..2);
        }
        _ => {}
    }
    let [dir] = args.as_slice() else {
        eprintln!("usage: sightglass [--checks | --fuel N] DIR");
        std::process::exit(2);
    };
    let dir = PathBuf::from(dir);
    let wasm = std::fs::read(dir.join("benchmark.wasm")).expect("DIR/benchmark.wasm");

    let engine = Engine::new(config).expect("engine");
    let t0 = Instant::now();
    let module = Module::new(&engine, &wasm).expect("the benchmark compiles");
    let compile_ms = t0.elapsed().as_secs_f64() * 1e3;

    let services = Services {
        stdio: Box::new(HostStdio),
        clocks: Box::new(HostClocks::default()),
        entropy: Box::new(HostEntropy),
    };
    let mut ctx = WasiCtx::new(vec![b"benchmark.wasm".to_vec()], Vec::new(), services);
    let fs = HostFs::open(&dir).expect("the benchmark's folder");
    ctx.preopen_dir(b".".to_vec(), Arc::new(fs))
        .expect("one preopen");

    let mut store = Store::new(&engine, ctx);
    if let Some(fuel) = fuel {
        store.set_fuel(fuel);
    }
    let mut linker = Linker::new();
    basalt_wasi::add_to_linker(&mut linker, |cx: &mut WasiCtx| cx);
    // (start, end) of the measured span.
    let span: Arc<Mutex<(Option<Instant>, Option<Instant>)>> = Arc::default();
    let started = span.clone();
    linker.func_new("bench", "start", FuncType::new(&[], &[]), move |_, _, _| {
        started.lock().expect("span").0 = Some(Instant::now());
        Ok(())
    });
    let ended = span.clone();
    linker.func_new("bench", "end", FuncType::new(&[], &[]), move |_, _, _| {
        ended.lock().expect("span").1 = Some(Instant::now());
        Ok(())
    });
    let instance = linker
        .instantiate(&mut store, &module)
        .expect("the benchmark instantiates");
    let start = instance
        .get_func(&mut store, "_start")
        .expect("a `_start` export");
    let exit = match start.call(&mut store, &[], &mut []) {
        Ok(()) => 0,
        Err(basalt_runtime::Error::Exit(code)) => code,
        Err(e) => {
            eprintln!("sightglass: the benchmark failed: {e}");
            std::process::exit(1);
        }
    };
    let (Some(begin), Some(end)) = *span.lock().expect("span") else {
        eprintln!("sightglass: the benchmark never called bench.start and bench.end");
        std::process::exit(1);
    };
    eprintln!(
        "{{\"compile_ms\": {compile_ms:.3}, \"bench_ms\": {:.3}, \"exit\": {exit}}}",
        (end - begin).as_secs_f64() * 1e3
    );
}
