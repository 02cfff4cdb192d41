//! wasmtime's own WASI preview1 test programs (`shared/testsuite/wasi-p2`,
//! the 57 `p1_*` core modules and how wasmtime's harness runs them), run by
//! `basalt run` as a user runs it: hosted, and booted in a VM of each ISA,
//! one VM per program. Each run gets what its manifest entry says: fresh
//! directories holding its files (`--dir`, `--dir-ro` for a read-only
//! preopen), argv with argv[0], exactly its environment, stdin closed (or
//! a terminal under `script` where the harness wants one); it must end as
//! its `expect` says (exit code, output, host files afterwards).
//!
//! Runs that do not pass yet are listed with the reason; the test fails
//! when another run fails or a listed one passes, so the lists only
//! shrink. Without the corpus the test says so and passes.
//! `BASALT_P1_ONLY=p1_a,p1_b` runs only those programs; `BASALT_P1_JOBS=N`
//! runs N at a time (default: one per CPU, at most 4).

#![forbid(unsafe_code)]

#[path = "support/wasmtime_p1.rs"]
mod corpus;

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use corpus::{P1Run, Tally};

/// Runs that do not pass hosted, with why.
const KNOWN_FAILING_HOSTED: &[(&str, &str)] = &[(
    "p1_cli_hostcall_fuel",
    "needs wasmtime's -Shostcall-fuel=1000 (a budget of bytes a host call may copy, ENOMEM beyond it); Basalt has no such limit, so the 110,000-byte path and the 10,000-entry iovec and subscription arrays are accepted",
)];

/// Runs that do not pass in a VM (either ISA), with why.
const KNOWN_FAILING_IN_VM: &[(&str, &str)] = KNOWN_FAILING_HOSTED;

/// How long one run may take (a VM under TCG on a loaded 2-core machine
/// included).
const LIMIT: Duration = Duration::from_secs(180);

fn basalt() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_basalt"))
}

/// Whether `script` (util-linux) can give a run a terminal.
fn have_script() -> bool {
    std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs every core-module run of the corpus with `basalt run MODE…`, `jobs`
/// at a time, and judges them against `known`.
fn run_all(what: &str, mode: &[&str], known: &'static [(&'static str, &'static str)]) {
    let Some(dir) = corpus::corpus_dir() else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "wasmtime's WASI test programs not found (set BASALT_WASI_P2_TESTSUITE)"
        );
        eprintln!(
            "{what}: wasmtime's WASI test programs not found; skipped (set BASALT_WASI_P2_TESTSUITE)"
        );
        return;
    };
    let corpus::Corpus { runs, without } = corpus::runs(&dir).unwrap_or_else(|e| panic!("{e}"));
    let only = std::env::var("BASALT_P1_ONLY").ok();
    let wanted = |name: &str| {
        only.as_deref()
            .is_none_or(|o| o.split(',').any(|n| n == name))
    };
    let started = Instant::now();
    let mut tally = Tally::new(what, if only.is_some() { &[] } else { known });
    for (name, why) in &without {
        tally.skip(name, why);
    }
    let script = have_script();
    let mut todo: Vec<&P1Run> = Vec::new();
    for run in runs.iter().filter(|r| wanted(&r.name)) {
        if run.terminal && !script {
            tally.skip(
                &run.name,
                "needs a terminal, and `script` (util-linux) is missing",
            );
        } else {
            todo.push(run);
        }
    }
    let jobs = std::env::var("BASALT_P1_JOBS")
        .ok()
        .and_then(|j| j.parse().ok())
        .filter(|j| *j > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get().min(4)));
    let next = AtomicUsize::new(0);
    let results = Mutex::new(Vec::new());
    let scratch = tempfile::Builder::new()
        .prefix("basalt-p1-")
        .tempdir()
        .expect("scratch directory");
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(run) = todo.get(i) else { break };
                    let dir = scratch.path().join(format!("{i}-{}", run.name));
                    let failure = match corpus::execute(basalt(), mode, run, &dir, LIMIT) {
                        Ok(ran) => {
                            println!("{what}: {:>6.1} s  {}", ran.took.as_secs_f64(), run.name);
                            corpus::judge(run, &ran, &dir)
                        }
                        Err(e) => Some(format!("not run: {e}")),
                    };
                    if let Ok(mut r) = results.lock() {
                        r.push((i, failure));
                    }
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_default();
    results.sort_by_key(|(i, _)| *i);
    for (i, failure) in results {
        tally.record(&todo[i].name, failure);
    }
    tally.finish(started);
}

#[test]
fn wasmtime_p1_hosted() {
    run_all("wasmtime p1, hosted", &["--hosted"], KNOWN_FAILING_HOSTED);
}

#[test]
fn wasmtime_p1_in_vm_x86_64() {
    run_all(
        "wasmtime p1, x86_64 VM",
        &["--arch", "x86_64"],
        KNOWN_FAILING_IN_VM,
    );
}

#[test]
fn wasmtime_p1_in_vm_aarch64() {
    run_all(
        "wasmtime p1, aarch64 VM",
        &["--arch", "aarch64"],
        KNOWN_FAILING_IN_VM,
    );
}
