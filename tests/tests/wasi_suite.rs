//! The official WASI test suite (preview1, Rust programs) run hosted
//! (`basalt run --hosted` in this process): every program of
//! `shared/testsuite/wasi/rust/wasm32-wasip1` follows its JSON, on a fresh
//! copy of its fixtures shared through `--dir`, and must pass unless it is
//! in [`KNOWN_FAILING`](basalt_tests::wasi_suite::KNOWN_FAILING).

use std::sync::{Arc, Mutex};

use basalt_tests::wasi_suite::{
    Ran, Scratch, Spec, Tally, judge, prepare_dirs, programs, suite_dir,
};
use basalt_wasi::Stdio;

/// Standard streams captured in memory; stdin is empty.
#[derive(Clone, Default)]
struct Captured {
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
}

impl Stdio for Captured {
    fn write_stdout(&self, b: &[u8]) {
        if let Ok(mut o) = self.stdout.lock() {
            o.extend_from_slice(b);
        }
    }
    fn write_stderr(&self, b: &[u8]) {
        if let Ok(mut e) = self.stderr.lock() {
            e.extend_from_slice(b);
        }
    }
    fn read_stdin(&self, _: &mut [u8]) -> usize {
        0
    }
}

/// Runs `name` hosted as `spec` says; `Err` when it could not be run.
fn run_hosted(suite: &std::path::Path, name: &str, spec: &Spec) -> Result<Ran, String> {
    let scratch = Scratch::new(name).map_err(|e| e.to_string())?;
    let dirs = prepare_dirs(suite, spec, &scratch.0).map_err(|e| format!("fixtures: {e}"))?;
    let wasm = std::fs::read(suite.join(format!("{name}.wasm"))).map_err(|e| e.to_string())?;
    let args = std::iter::once(format!("{name}.wasm"))
        .chain(spec.args.iter().cloned())
        .map(String::into_bytes)
        .collect();
    let env = spec
        .env
        .iter()
        .map(|(k, v)| format!("{k}={v}").into_bytes())
        .collect();
    let io = Captured::default();
    let code =
        basalt::hosted::run_with_stdio(name, &wasm, args, env, &dirs, Box::new(io.clone()), false)
            .map_err(|e| e.to_string())?;
    let take = |m: &Mutex<Vec<u8>>| m.lock().map(|b| b.clone()).unwrap_or_default();
    Ok(Ran {
        exit_code: code,
        stdout: take(&io.stdout),
        stderr: take(&io.stderr),
    })
}

#[test]
fn wasi_testsuite_hosted() {
    let Some(suite) = suite_dir().filter(|d| d.is_dir()) else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "WASI test suite not found (set BASALT_WASI_TESTSUITE)"
        );
        eprintln!("WASI test suite not found; skipping (set BASALT_WASI_TESTSUITE)");
        return;
    };
    let mut tally = Tally::default();
    for name in programs(&suite) {
        let failure = match Spec::of(&suite, &name) {
            Err(e) => Some(format!("unreadable JSON: {e}")),
            Ok(spec) => match &spec.unsupported {
                Some(why) => Some(format!("cannot run: {why}")),
                None => match run_hosted(&suite, &name, &spec) {
                    Ok(ran) => judge(&spec, &ran),
                    Err(e) => Some(format!("not run: {e}")),
                },
            },
        };
        tally.record(&name, failure);
    }
    tally.finish("WASI test suite, hosted");
}
