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

#[path = "support/wasmtime_corpus.rs"]
mod corpus;

use corpus::{Which, run_all};

/// Runs that do not pass hosted, with why.
const KNOWN_FAILING_HOSTED: &[(&str, &str)] = &[];

/// Runs that do not pass in a VM (either ISA), with why.
const KNOWN_FAILING_IN_VM: &[(&str, &str)] = KNOWN_FAILING_HOSTED;

#[test]
fn wasmtime_p1_hosted() {
    run_all(
        "wasmtime p1, hosted",
        Which::P1Modules,
        &["--hosted"],
        KNOWN_FAILING_HOSTED,
    );
}

#[test]
fn wasmtime_p1_in_vm_x86_64() {
    run_all(
        "wasmtime p1, x86_64 VM",
        Which::P1Modules,
        &["--arch", "x86_64"],
        KNOWN_FAILING_IN_VM,
    );
}

#[test]
fn wasmtime_p1_in_vm_aarch64() {
    run_all(
        "wasmtime p1, aarch64 VM",
        Which::P1Modules,
        &["--arch", "aarch64"],
        KNOWN_FAILING_IN_VM,
    );
}
