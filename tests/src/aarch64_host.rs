//! Running the `basalt` CLI built for AArch64 Linux under user-mode QEMU
//! (`qemu-aarch64`), so hosted suites exercise the AArch64 code generator,
//! entry and trap-landing assembly and signal handling on an x86-64 host.
//! `scripts/setup.sh` installs the Rust target, the cross linker and libc
//! and `qemu-aarch64`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use basalt::guest::{clean_cargo, source_root};
use basalt::wast::Counts;

/// The Rust target of the cross-built CLI.
pub const TARGET: &str = "aarch64-unknown-linux-gnu";
/// The user-mode emulator.
pub const QEMU: &str = "qemu-aarch64";
/// The AArch64 libc the emulator loads.
pub const SYSROOT: &str = "/usr/aarch64-linux-gnu";
/// The cross linker.
pub const LINKER: &str = "aarch64-linux-gnu-gcc";
/// The whole suite takes a few minutes under QEMU on a loaded 2-core machine.
pub const DEADLINE: Duration = Duration::from_secs(900);

/// Whether `tool --version` runs.
pub fn runs(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Whether the pinned toolchain has the Rust standard library for [`TARGET`].
pub fn has_rust_target() -> bool {
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
pub fn cross_build() -> std::path::PathBuf {
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
pub fn run_under_qemu(bin: &Path, dir: &Path, files: &[String]) -> String {
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

/// The last `lines` lines of `text`.
pub fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Parses `N passed, M failed, K skipped`.
pub fn parse_counts(s: &str) -> Option<Counts> {
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

/// What the AArch64 runs lack on this machine (empty: nothing).
pub fn missing() -> Vec<&'static str> {
    let mut missing: Vec<&str> = [QEMU, LINKER].into_iter().filter(|t| !runs(t)).collect();
    if !Path::new(SYSROOT).is_dir() {
        missing.push(SYSROOT);
    }
    if !has_rust_target() {
        missing.push(TARGET);
    }
    missing
}

/// Splits `basalt wast -v` output into per-file counts and failures
/// (`FILE: counts`, then `  FILE:line:col: reason` per failure).
pub fn parse_report<'f>(
    out: &str,
    files: &'f [String],
) -> (
    std::collections::HashMap<&'f str, Counts>,
    std::collections::HashMap<&'f str, Vec<String>>,
) {
    let mut results = std::collections::HashMap::new();
    let mut failures: std::collections::HashMap<&str, Vec<String>> =
        std::collections::HashMap::new();
    for line in out.lines() {
        if let Some(rest) = line.strip_prefix("  ")
            && let Some(file) = files.iter().find(|f| {
                rest.strip_prefix(f.as_str())
                    .is_some_and(|r| r.starts_with(':'))
            })
        {
            failures
                .entry(file.as_str())
                .or_default()
                .push(rest[file.len() + 1..].to_string());
        } else if let Some((file, counts)) = line.split_once(": ")
            && let Some(file) = files.iter().find(|f| *f == file)
            && let Some(counts) = parse_counts(counts)
        {
            results.insert(file.as_str(), counts);
        }
    }
    (results, failures)
}
