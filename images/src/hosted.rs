//! `basalt run --hosted`: the same runtime and WASI implementation, in this
//! process on Linux, with the host OS as the WASI backend. Used to compare
//! our code generation with wasmtime's and native code.

use std::time::Instant;

use basalt_runtime::{Config, Engine, Module};
use basalt_wasi::{Outcome, WasiCtx};

use crate::CliError;

/// Compiles and runs `wasm`; returns the exit code (a trap: 134, message on stderr).
pub fn run(
    name: &str,
    wasm: &[u8],
    args: Vec<Vec<u8>>,
    env: Vec<Vec<u8>>,
    verbose: bool,
) -> Result<i32, CliError> {
    let engine = Engine::new(Config::hosted()).map_err(|e| CliError::Module(e.to_string()))?;
    let t0 = Instant::now();
    let module =
        Module::new(&engine, wasm).map_err(|e| CliError::Module(format!("{name}: {e}")))?;
    let compiled = t0.elapsed();
    if verbose {
        eprintln!(
            "basalt: hosted: compiled {} KiB of wasm into {} KiB of code in {:.1} ms",
            wasm.len() / 1024,
            module.code_size() / 1024,
            compiled.as_secs_f64() * 1e3
        );
    }
    let ctx = WasiCtx::new(args, env, basalt_wasi::host::services());
    let t1 = Instant::now();
    let outcome = basalt_wasi::run_command(&engine, &module, ctx);
    if verbose {
        eprintln!(
            "basalt: hosted: ran in {:.1} ms",
            t1.elapsed().as_secs_f64() * 1e3
        );
    }
    Ok(match outcome {
        Outcome::Exit(code) => code & 0xff,
        Outcome::Trap(t) => {
            eprintln!("basalt: {name}: {t}");
            134
        }
        Outcome::Error(e) => return Err(CliError::Module(format!("{name}: {e}"))),
    })
}
