//! wasmtime's own WASI 0.2 test programs (`shared/testsuite/wasi-p2`) run
//! by `basalt run` as a user runs them: the `p2_*` components that need
//! neither HTTP nor sockets, and the 58 `p1_*` programs as components
//! (module + wasmtime's preview1 adapter, as upstream's `*_COMPONENT`
//! artifacts), hosted; and a few of each in a VM of each ISA. Each run gets
//! what its manifest entry says (see `support/wasmtime_corpus.rs`).
//!
//! Runs that do not pass yet are listed with the reason; the test fails
//! when another run fails or a listed one passes, so the lists only
//! shrink. Without the corpus the test says so and passes.
//! `BASALT_P1_ONLY=a,b` runs only those programs. Runs of wasmtime's own
//! CLI features are left out: `--invoke` (it prints the result) and
//! `-Wtimeout` with sub-second deadlines (`p2_cli_sleep_forever`;
//! Basalt's `--timeout` takes seconds).

#![forbid(unsafe_code)]

#[path = "support/wasmtime_corpus.rs"]
mod corpus;

use corpus::{Which, run_all};

/// `p2_*` runs that do not pass hosted, with why.
const P2_KNOWN_FAILING: &[(&str, &str)] = &[
    (
        "p2_api_time",
        "wasmtime's harness gives it fake clocks (wall clock at 42 s): a host hook, not a CLI option",
    ),
    (
        "p2_cli_hostcall_fuel",
        "needs wasmtime's -Shostcall-fuel (a budget of bytes a host call may copy) and wasi:sockets",
    ),
    (
        "p2_cli_initial_cwd",
        "needs wasmtime's -Scwd (an initial working directory); Basalt has no working directory",
    ),
    (
        "p2_cli_many_resources",
        "needs -S max-resources (WasiCtx::set_max_resources exists; the CLI option comes with -S)",
    ),
    (
        "p2_cli_stdin_eisdir",
        "needs a directory as stdin to be reported as is-directory; Basalt's stdin reads give end of stream",
    ),
    (
        "p2_cli_stdout_epipe",
        "needs stdout to report a closed pipe (stream-error closed); the Stdio service cannot tell",
    ),
    (
        "p2_cli_stdio_write_flushes",
        "needs a stdin pipe the harness holds open while it reads the prompt",
    ),
    (
        "p2_random",
        "needs -S max-random-size, and the insecure seed to be the same on each call as wasmtime keeps it",
    ),
];

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
