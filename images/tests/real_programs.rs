//! Programs built by real toolchains, run by `basalt` as a user runs them
//! and judged against wasmtime: the same stdout, stderr and exit code.
//!
//! The corpus (`tests/programs/`) is built with zig's clang (PyPI
//! `ziglang`, pinned) in both exception encodings: C whose setjmp/longjmp
//! wasi-libc lowers onto exception handling, and C++ with exceptions.
//! wasmtime (PyPI `wasmtime`, pinned) runs the standard encoding, which it
//! supports; Basalt runs both, hosted and in a VM of each ISA. When a
//! registry cannot be reached the test says what it skipped, and fails
//! under `CI=true`.

#![forbid(unsafe_code)]

#[path = "support/toolchains.rs"]
mod toolchains;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use toolchains::{Encoding, Wasmtime, Zig};

/// What a run printed and how it ended.
#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn outcome(mut cmd: Command) -> Outcome {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    Outcome {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The toolchain and the oracle, or `None` after saying why (a failure
/// under `CI=true`).
fn tools() -> Option<(Zig, Wasmtime)> {
    let why = match (Zig::new(), Wasmtime::new()) {
        (Ok(zig), Ok(wasmtime)) => return Some((zig, wasmtime)),
        (Err(e), _) | (_, Err(e)) => e,
    };
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "real-program corpus: {why}"
    );
    eprintln!("skipped: the real-program corpus ({why})");
    None
}

fn program(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/programs")
        .join(name)
}

/// The ways Basalt runs each module.
const MODES: [&[&str]; 3] = [&["--hosted"], &["--arch", "x86_64"], &["--arch", "aarch64"]];

fn check(zig: &Zig, wasmtime: &Wasmtime, source: &str) {
    let source = program(source);
    let standard = zig
        .build(&source, Encoding::Standard)
        .unwrap_or_else(|e| panic!("{e}"));
    let expected = outcome(wasmtime.command(&standard, &[]));
    assert_eq!(
        expected.code,
        Some(0),
        "wasmtime: {}: {}",
        source.display(),
        expected.stderr
    );
    for enc in [Encoding::Standard, Encoding::Legacy] {
        let wasm = zig.build(&source, enc).unwrap_or_else(|e| panic!("{e}"));
        if enc == Encoding::Legacy {
            // wasmtime refuses the legacy instructions: proof that the
            // build really uses them.
            let refused = outcome(wasmtime.command(&wasm, &[]));
            assert!(
                refused.stderr.contains("legacy_exceptions"),
                "{}: the legacy build has no legacy instructions? wasmtime said {refused:?}",
                source.display()
            );
        }
        for mode in MODES {
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_basalt"));
            cmd.arg("run")
                .args(mode)
                .args(["--timeout", "240"])
                .arg(&wasm);
            let got = outcome(cmd);
            assert_eq!(
                got,
                expected,
                "{} ({} encoding, {mode:?}) differs from wasmtime",
                source.display(),
                enc.name()
            );
        }
    }
}

#[test]
fn setjmp_and_longjmp_match_wasmtime() {
    let Some((zig, wasmtime)) = tools() else {
        return;
    };
    check(&zig, &wasmtime, "setjmp.c");
}

#[test]
fn cxx_exceptions_match_wasmtime() {
    let Some((zig, wasmtime)) = tools() else {
        return;
    };
    check(&zig, &wasmtime, "exceptions.cpp");
}
