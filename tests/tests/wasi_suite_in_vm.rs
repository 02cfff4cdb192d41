//! The official WASI test suite (preview1, Rust programs) booted in the
//! kernel, one VM per program, on both ISAs: each program follows its JSON
//! on a fresh copy of its fixtures shared through `--dir` (packed into the
//! bundle; code compiled on the host, the CLI's default), and is judged
//! on exit code, stdout and stderr as the hosted runner judges it, against
//! [`KNOWN_FAILING_IN_VM`](basalt_tests::wasi_suite::KNOWN_FAILING_IN_VM).
//! A failing program's report carries the kernel log.
//!
//! `BASALT_WASI_ACCEL=tcg|kvm|auto` picks the accelerator (default `auto`,
//! the CLI's: KVM for x86-64 guests when it works; AArch64 guests always
//! run under TCG); `BASALT_WASI_ONLY=a,b` runs only the named programs.

#![forbid(unsafe_code)]

use std::path::Path;
use std::time::{Duration, Instant};

use basalt::accel::AccelChoice;
use basalt::guest::GuestArch;
use basalt::run::{RunOptions, run_vm};
use basalt::vm::VmIo;
use basalt_tests::Capture;
use basalt_tests::wasi_suite::{
    KNOWN_FAILING_IN_VM, Ran, Scratch, Spec, Tally, judge, prepare_dirs, programs, suite_dir,
};

basalt_tests::on_every_isa!(wasi_testsuite_in_vm);

/// How long one program's VM may run (TCG, a loaded 2-core machine).
const PER_BOOT: Duration = Duration::from_secs(120);

/// Boots `name` as `spec` says; `Err` when the VM could not run it. The
/// kernel log is appended to the captured stderr for the failure report.
fn run_in_vm(
    suite: &Path,
    arch: GuestArch,
    name: &str,
    spec: &Spec,
) -> Result<(Ran, String), String> {
    let scratch = Scratch::new(&format!("vm-{}-{name}", arch.name())).map_err(|e| e.to_string())?;
    let dirs = prepare_dirs(suite, spec, &scratch.0).map_err(|e| format!("fixtures: {e}"))?;
    let mut opts = RunOptions::new(suite.join(format!("{name}.wasm")));
    opts.arch = arch;
    opts.args = spec.args.iter().map(|a| a.clone().into_bytes()).collect();
    opts.env = spec
        .env
        .iter()
        .map(|(k, v)| format!("{k}={v}").into_bytes())
        .collect();
    opts.dirs = dirs;
    opts.timeout = Some(PER_BOOT);
    opts.accel = match std::env::var("BASALT_WASI_ACCEL").as_deref() {
        Ok("tcg") => AccelChoice::Tcg,
        Ok("kvm") => AccelChoice::Kvm,
        _ => AccelChoice::Auto,
    };
    let (out, err) = (Capture::default(), Capture::default());
    let io = VmIo {
        stdin: Some(Box::new(std::io::empty())),
        stdout: Box::new(out.clone()),
        stderr: Box::new(err.clone()),
    };
    let report = run_vm(&opts, io).map_err(|e| e.to_string())?;
    let log = format!(
        "status {:?}\n--- kernel log ---\n{}",
        report.status,
        report.log_text()
    );
    Ok((
        Ran {
            exit_code: report.exit_code(),
            stdout: out.bytes(),
            stderr: err.bytes(),
        },
        log,
    ))
}

fn wasi_testsuite_in_vm(arch: GuestArch) {
    let Some(suite) = suite_dir().filter(|d| d.is_dir()) else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "WASI test suite not found (set BASALT_WASI_TESTSUITE)"
        );
        eprintln!("WASI test suite not found; skipping (set BASALT_WASI_TESTSUITE)");
        return;
    };
    let only = std::env::var("BASALT_WASI_ONLY").ok();
    let started = Instant::now();
    let mut tally = Tally::new(KNOWN_FAILING_IN_VM);
    for name in programs(&suite) {
        if only
            .as_deref()
            .is_some_and(|o| !o.split(',').any(|n| n == name))
        {
            continue;
        }
        let t = Instant::now();
        let failure = match Spec::of(&suite, &name) {
            Err(e) => Some(format!("unreadable JSON: {e}")),
            Ok(spec) => match &spec.unsupported {
                Some(why) => Some(format!("cannot run: {why}")),
                None => match run_in_vm(&suite, arch, &name, &spec) {
                    Ok((ran, log)) => judge(&spec, &ran).map(|why| format!("{why}\n{log}")),
                    Err(e) => Some(format!("not run: {e}")),
                },
            },
        };
        println!("{:>6.1} s  {name}", t.elapsed().as_secs_f64());
        tally.record(&name, failure);
    }
    println!(
        "WASI test suite in a {} VM: {:.0} s for the whole suite",
        arch.name(),
        started.elapsed().as_secs_f64()
    );
    tally.finish(&format!("WASI test suite, {} VM", arch.name()));
}
