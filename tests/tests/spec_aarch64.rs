//! The Wasm 1.0/2.0 spec suite (SIMD included) on AArch64: the `basalt`
//! CLI is cross-built for `aarch64-unknown-linux-gnu` and `basalt wast` runs
//! the scripts under user-mode QEMU (`qemu-aarch64`), so the AArch64 code
//! generator, the entry and trap-landing assembly and the hosted signal
//! handling are executed, not just compiled.
//!
//! The expectations are the hosted run's ([`basalt_tests::spec`]): a file in
//! `KNOWN_FAILING` may fail up to its recorded count, every other one must
//! pass completely. `scripts/setup.sh` installs the Rust target, the cross
//! linker and libc and `qemu-aarch64`; without them the test says so and
//! skips, or fails under `CI=true`. The cross build goes to
//! `target/aarch64-host`. `BASALT_SPEC_ONLY=simd_` picks files by name;
//! `cargo test -p basalt-tests --test spec_aarch64 -- --nocapture` prints
//! per-file counts and a total. An AArch64 host runs the suite natively in
//! `spec.rs` instead.

#![forbid(unsafe_code)]
#![cfg(not(target_arch = "aarch64"))]

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use basalt::guest::{clean_cargo, source_root};
use basalt::wast::Counts;
use basalt_tests::spec::{Tally, scope_files};

const TARGET: &str = "aarch64-unknown-linux-gnu";
const QEMU: &str = "qemu-aarch64";
const SYSROOT: &str = "/usr/aarch64-linux-gnu";
const LINKER: &str = "aarch64-linux-gnu-gcc";
/// The whole suite takes a few minutes under QEMU on a loaded 2-core machine.
const DEADLINE: Duration = Duration::from_secs(900);

/// Whether `tool --version` runs.
fn runs(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether the pinned toolchain has the Rust standard library for [`TARGET`].
fn has_rust_target() -> bool {
    Command::new("rustc")
        .current_dir(source_root())
        .env_remove("RUSTC")
        .args(["--print", "target-libdir", "--target", TARGET])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .is_some_and(|dir| Path::new(dir.trim()).is_dir())
}

/// Cross-builds the `basalt` CLI for AArch64 Linux and returns its path.
fn cross_build() -> std::path::PathBuf {
    let root = source_root();
    let target_dir = root.join("target").join("aarch64-host");
    let started = Instant::now();
    let out = clean_cargo()
        .current_dir(&root)
        .args(["build", "--quiet", "-p", "basalt", "--target", TARGET])
        .arg("--target-dir")
        .arg(&target_dir)
        .output()
        .expect("run cargo to cross-build basalt");
    assert!(
        out.status.success(),
        "cross-building basalt for {TARGET} failed ({}; scripts/setup.sh installs the target \
         and the cross linker):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    println!("cross build: {:.1?}", started.elapsed());
    target_dir.join(TARGET).join("debug").join("basalt")
}

/// Runs `basalt wast -v FILES` under QEMU in `dir`; returns its stdout.
fn run_under_qemu(bin: &Path, dir: &Path, files: &[String]) -> String {
    let started = Instant::now();
    let mut child = Command::new(QEMU)
        .args(["-L", SYSROOT])
        .arg(bin)
        .args(["wast", "-v"])
        .args(files)
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start qemu-aarch64");
    // Drain both pipes on threads so a chatty run cannot block on a full pipe.
    let mut stdout = child.stdout.take().expect("stdout pipe");
    let mut stderr = child.stderr.take().expect("stderr pipe");
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut s).map(|_| s)
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stderr, &mut s).map(|_| s)
    });
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait for qemu-aarch64") {
            break s;
        }
        if started.elapsed() > DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            panic!("basalt wast under {QEMU} took longer than {DEADLINE:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let out = out.join().expect("stdout reader").expect("read stdout");
    let err = err.join().expect("stderr reader").expect("read stderr");
    println!("suite under {QEMU}: {:.1?}", started.elapsed());
    // Exit code 1 means "some command failed", which the counts judge; a
    // signal or any other code means the runner itself broke.
    assert!(
        matches!(status.code(), Some(0 | 1)),
        "basalt wast under {QEMU} ended with {status}; stderr:\n{err}\nlast output:\n{}",
        tail(&out, 40)
    );
    out
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Parses `N passed, M failed, K skipped`.
fn parse_counts(s: &str) -> Option<Counts> {
    let mut it = s.split(", ").map(|part| {
        let (n, what) = part.split_once(' ')?;
        Some((n.parse::<usize>().ok()?, what))
    });
    match (it.next()??, it.next()??, it.next()??) {
        ((passed, "passed"), (failed, "failed"), (skipped, "skipped")) => Some(Counts {
            passed,
            failed,
            skipped,
        }),
        _ => None,
    }
}

#[test]
fn spec_suite_on_aarch64_under_qemu() {
    let ci = std::env::var("CI").as_deref() == Ok("true");
    let mut missing: Vec<&str> = [QEMU, LINKER].into_iter().filter(|t| !runs(t)).collect();
    if !Path::new(SYSROOT).is_dir() {
        missing.push(SYSROOT);
    }
    if !has_rust_target() {
        missing.push(TARGET);
    }
    if !missing.is_empty() {
        let msg = format!(
            "the AArch64 spec run needs {QEMU}, {LINKER}, {SYSROOT} and the Rust target \
             {TARGET} (missing: {missing:?}); run scripts/setup.sh"
        );
        assert!(!ci, "{msg}");
        eprintln!("{msg}; skipping");
        return;
    }
    let only = std::env::var("BASALT_SPEC_ONLY").ok();
    let Some((dir, files)) = scope_files(only.as_deref()) else {
        return;
    };
    assert!(!files.is_empty(), "no in-scope spec scripts in {dir:?}");

    let bin = cross_build();
    let out = run_under_qemu(&bin, &dir, &files);

    // `FILE: counts` per script, then `  FILE:line:col: reason` per failure.
    let mut results: HashMap<&str, Counts> = HashMap::new();
    let mut failures: HashMap<&str, Vec<String>> = HashMap::new();
    for line in out.lines() {
        if let Some(rest) = line.strip_prefix("  ")
            && let Some(file) = files.iter().find(|f| {
                rest.strip_prefix(f.as_str())
                    .is_some_and(|r| r.starts_with(':'))
            })
        {
            failures
                .entry(file)
                .or_default()
                .push(rest[file.len() + 1..].to_string());
        } else if let Some((file, counts)) = line.split_once(": ")
            && let Some(file) = files.iter().find(|f| *f == file)
            && let Some(counts) = parse_counts(counts)
        {
            results.insert(file, counts);
        }
    }

    let mut tally = Tally::default();
    for file in &files {
        let none = Vec::new();
        let file_failures = failures.get(file.as_str()).unwrap_or(&none);
        tally.record(
            file,
            results.get(file.as_str()).copied(),
            file_failures,
            false,
        );
    }
    tally.finish("spec total on AArch64 (qemu-user)", files.len());
}
