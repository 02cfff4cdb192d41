//! wasmtime's own WASI 0.2 test programs (`shared/testsuite/wasi-p2`) run
//! by `basalt run` as a user runs them: the `p2_*` components that need
//! neither HTTP nor sockets (`wasi_sockets.rs` runs those with their
//! grants), and the 58 `p1_*` programs as components
//! (module + wasmtime's preview1 adapter, as upstream's `*_COMPONENT`
//! artifacts), hosted; and a few of each in a VM of each ISA (the same
//! WASI 0.2 code in the kernel, core modules compiled on the host). Each run gets
//! what its manifest entry says (see `support/wasmtime_corpus.rs`).
//!
//! Runs that do not pass yet are listed with the reason (a program's
//! name for all its runs, `NAME#K` for its K-th run in the manifest); the
//! test fails when another run fails or a listed one passes, so the lists
//! only shrink. Without the corpus the test says so and passes.
//! `BASALT_P1_ONLY=a,b` runs only those programs. Runs of wasmtime's own
//! CLI features are left out: `--invoke` (it prints the result) and
//! `-Wtimeout` with sub-second deadlines (`p2_cli_sleep_forever`;
//! Basalt's `--timeout` takes seconds).

#![forbid(unsafe_code)]

#[path = "support/wasmtime_corpus.rs"]
mod corpus;

use corpus::{Which, run_all, run_selected};

/// `p2_*` runs that do not pass hosted, with why: a program's name stands
/// for all its runs, `NAME#K` for its K-th run in the manifest.
const P2_KNOWN_FAILING: &[(&str, &str)] = &[(
    "p2_api_time",
    "wasmtime's harness gives it fake clocks (wall clock fixed at 1431648000 s + 100 ns, monotonic clock advancing 42 s per call): a host hook, not a CLI option",
)];

/// `p1_*` components that do not pass hosted, with why.
const P1_KNOWN_FAILING: &[(&str, &str)] = &[];

#[test]
fn wasmtime_p2_hosted() {
    run_all(
        "wasmtime p2, hosted",
        Which::P2,
        &["--hosted"],
        P2_KNOWN_FAILING,
    );
}

#[test]
fn wasmtime_p1_components_hosted() {
    run_all(
        "wasmtime p1 components, hosted",
        Which::P1Components,
        &["--hosted"],
        P1_KNOWN_FAILING,
    );
}

/// What the VM runs take: programs of each kind (files, streams, clocks,
/// random, exit codes, stdin, preopens, `-S cwd`), a few seconds of TCG
/// each.
const VM_P2: &str = "p2_cli_file_read,p2_cli_initial_cwd,p2_cli_exit_failure,p2_cli_stdin,p2_cli_multiple_preopens,p2_pollable_correct,p2_sleep,p2_stream_pollable_correct,p2_file_read_write";
const VM_P1: &str =
    "p1_fd_readdir,p1_path_rename,p1_file_pread_pwrite,p1_poll_oneoff_stdio,p1_big_random_buf";

fn in_vm(arch: &str) {
    let mode = ["--arch", arch];
    run_selected(
        &format!("wasmtime p2, {arch} VM"),
        Which::P2,
        &mode,
        &[],
        Some(VM_P2),
    );
    run_selected(
        &format!("wasmtime p1 components, {arch} VM"),
        Which::P1Components,
        &mode,
        &[],
        Some(VM_P1),
    );
}

#[test]
fn wasmtime_p2_in_vm_x86_64() {
    in_vm("x86_64");
}

#[test]
fn wasmtime_p2_in_vm_aarch64() {
    in_vm("aarch64");
}
