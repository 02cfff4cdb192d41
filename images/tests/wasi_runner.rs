//! The official wasi-testsuite runner (`shared/testsuite/wasi/runner`, the
//! way outside users test a WASI runtime) run against the `basalt` CLI
//! through Basalt's adapter, `tests/wasi-testsuite/basalt.py`, over the
//! preview1 Rust suite (`shared/testsuite/wasi/rust/wasm32-wasip1`).
//!
//! `tests/wasi-testsuite/run.py` loads the runner (giving Python 3.11 the
//! one 3.12 behaviour it needs) on a scratch copy of the suite. Every
//! program must pass, except those in [`KNOWN_FAILING`] /
//! [`KNOWN_FAILING_IN_VM`], which must fail: the lists become the runner's
//! expectation file, so a listed program that passes fails the run as a
//! program that fails unlisted does, and this test checks the outcomes
//! once more from the runner's JSON report.
//!
//! The whole suite runs hosted (`basalt run --hosted`, about 10 s), and a
//! few programs of each kind run in a VM of each ISA (one `basalt run`
//! boot per program, code compiled on the host): `wasi_suite_in_vm`
//! already boots every program in a VM. `BASALT_WASI_RUNNER_VM_ONLY=all`
//! runs the whole suite in VMs (about 40 s per ISA under TCG), `=a,b` the
//! named programs.
//!
//! Without the runner, the suite or a Python 3.11+ the test says so and
//! passes. `BASALT_WASI_RUNNER`, `BASALT_WASI_TESTSUITE` and
//! `BASALT_PYTHON` point at other ones. When the runner's dependency
//! (`colorama`) is missing, it is installed into a virtual environment
//! under the target directory.

#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use basalt::guest::GuestArch;

/// Programs that fail through the runner hosted, with the reason.
const KNOWN_FAILING: &[(&str, &str)] = &[];

/// Programs that fail through the runner in a VM (either ISA), with the
/// reason.
const KNOWN_FAILING_IN_VM: &[(&str, &str)] = &[];

/// The checkout's root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(".."))
}

/// `var`, or the first of `relative` (to the checkout's parent or, for a
/// worktree beside it, grandparent) that is a directory.
fn shared(var: &str, relative: &str) -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os(var) {
        return Some(PathBuf::from(dir));
    }
    let root = root();
    [
        root.join("..").join(relative),
        root.join("../..").join(relative),
    ]
    .into_iter()
    .find(|p| p.is_dir())
}

/// A Python of version 3.11 or later: `BASALT_PYTHON`, or the first one
/// found on `PATH`.
fn python() -> Option<String> {
    let candidates = match std::env::var("BASALT_PYTHON") {
        Ok(p) => vec![p],
        Err(_) => ["python3.13", "python3.12", "python3.11", "python3"]
            .map(String::from)
            .to_vec(),
    };
    candidates.into_iter().find(|p| {
        Command::new(p)
            .args(["-c", "import sys; sys.exit(sys.version_info < (3, 11))"])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

/// Whether `python` can import `module`.
fn imports(python: &str, module: &str) -> bool {
    Command::new(python)
        .args(["-c", &format!("import {module}")])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A Python that has the runner's dependencies: `python` itself, or a
/// virtual environment under the target directory into which they are
/// installed from the runner's `requirements.txt`.
fn python_with_dependencies(python: &str, runner: &Path) -> Result<String, String> {
    if imports(python, "colorama") {
        return Ok(python.to_string());
    }
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR")).join("wasi-runner-venv");
    let venv_python = venv.join("bin/python");
    let venv_python_text = venv_python.display().to_string();
    if imports(&venv_python_text, "colorama") {
        return Ok(venv_python_text);
    }
    let steps: [(&str, Vec<String>); 2] = [
        (
            python,
            vec!["-m".into(), "venv".into(), venv.display().to_string()],
        ),
        (
            &venv_python_text,
            vec![
                "-m".into(),
                "pip".into(),
                "install".into(),
                "--quiet".into(),
                "-r".into(),
                runner
                    .join("test-runner/requirements.txt")
                    .display()
                    .to_string(),
            ],
        ),
    ];
    for (program, args) in steps {
        let out = Command::new(program)
            .args(&args)
            .output()
            .map_err(|e| format!("{program}: {e}"))?;
        if !out.status.success() {
            return Err(format!(
                "{program} {}: {}\n{}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr)
            ));
        }
    }
    Ok(venv_python_text)
}

/// What is needed to run the runner, or why it cannot run here.
struct Setup {
    python: String,
    runner: PathBuf,
    suite: PathBuf,
}

/// Finds the runner, the suite and Python; `None` (after a note) when
/// one is missing.
fn setup() -> Option<Setup> {
    let Some(runner) = shared("BASALT_WASI_RUNNER", "shared/testsuite/wasi/runner")
        .filter(|d| d.join("test-runner/wasi_test_runner").is_dir())
    else {
        eprintln!("wasi-testsuite runner not found; skipping (set BASALT_WASI_RUNNER)");
        return None;
    };
    let Some(suite) = shared(
        "BASALT_WASI_TESTSUITE",
        "shared/testsuite/wasi/rust/wasm32-wasip1",
    )
    .filter(|d| d.is_dir()) else {
        eprintln!("WASI test suite not found; skipping (set BASALT_WASI_TESTSUITE)");
        return None;
    };
    let Some(python) = python() else {
        eprintln!("no Python 3.11 or later found; skipping (set BASALT_PYTHON)");
        return None;
    };
    let python = match python_with_dependencies(&python, &runner) {
        Ok(p) => p,
        Err(e) => panic!("cannot give the runner its Python dependencies: {e}"),
    };
    Some(Setup {
        python,
        runner,
        suite,
    })
}

/// The names of the suite's programs.
fn programs(suite: &Path) -> Vec<String> {
    let mut names: Vec<String> = match std::fs::read_dir(suite) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .filter_map(|e| {
                e.file_name()
                    .to_str()
                    .and_then(|n| n.strip_suffix(".wasm"))
                    .map(String::from)
            })
            .collect(),
        Err(e) => panic!("{}: {e}", suite.display()),
    };
    names.sort();
    names
}

/// What the Python `script` prints given `file` as its argument.
fn python_output(setup: &Setup, script: &str, file: &Path) -> String {
    match Command::new(&setup.python)
        .args(["-c", script])
        .arg(file)
        .output()
    {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).into_owned(),
        Ok(o) => panic!(
            "reading {} ({}): {}",
            file.display(),
            o.status,
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) => panic!("{}: {e}", setup.python),
    }
}

/// One run of the runner: which mode, options, programs and expectations.
struct Run<'a> {
    /// a name for the scratch folder and the report
    label: &'a str,
    /// `BASALT_ADAPTER_MODE`
    mode: &'a str,
    /// `BASALT_ADAPTER_ARGS`
    extra_args: &'a str,
    /// the programs to run; `None`: all
    only: Option<&'a [String]>,
    /// the programs expected to fail, with the reason
    known_failing: &'a [(&'a str, &'a str)],
}

/// Runs the runner as `run` says and judges its outcomes.
fn run_runner(setup: &Setup, run: &Run<'_>) {
    let scratch = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("wasi-runner-{}", run.label));
    let _ = std::fs::remove_dir_all(&scratch);
    if let Err(e) = std::fs::create_dir_all(&scratch) {
        panic!("{}: {e}", scratch.display());
    }
    let all = programs(&setup.suite);
    let chosen: Vec<&String> = all
        .iter()
        .filter(|n| run.only.is_none_or(|o| o.contains(n)))
        .collect();
    for name in run.only.into_iter().flatten() {
        assert!(all.contains(name), "program {name} is not in the suite");
    }
    for (name, _) in run.known_failing {
        assert!(
            all.iter().any(|n| n == name),
            "known-failing program {name} is not in the suite"
        );
    }

    // The runner's expectations: programs not chosen are skipped, listed
    // ones must fail.
    let suite_name = python_output(
        setup,
        "import json, sys; print(json.load(open(sys.argv[1]))['name'])",
        &setup.suite.join("manifest.json"),
    );
    let mut toml = format!(
        "version = 1\n\n[[suite]]\nname = \"{}\"\n",
        suite_name.trim()
    );
    for name in &all {
        if !chosen.contains(&name) {
            toml.push_str(&format!(
                "\n[[suite.test]]\nname = \"{name}\"\naction = \"skip\"\n"
            ));
        } else if let Some((_, why)) = run.known_failing.iter().find(|(n, _)| n == name) {
            toml.push_str(&format!(
                "\n# {why}\n[[suite.test]]\nname = \"{name}\"\nexpected = \"fail\"\n"
            ));
        }
    }
    let expectations = scratch.join("expectations.toml");
    let report = scratch.join("report.json");
    if let Err(e) = std::fs::write(&expectations, toml) {
        panic!("{}: {e}", expectations.display());
    }

    let started = Instant::now();
    let tests = root().join("tests/wasi-testsuite");
    let out = Command::new(&setup.python)
        .arg(tests.join("run.py"))
        .arg("--runner")
        .arg(&setup.runner)
        .arg("--scratch")
        .arg(scratch.join("suite"))
        .arg("--disable-colors")
        .arg("-r")
        .arg(tests.join("basalt.py"))
        .arg("-e")
        .arg(&expectations)
        .arg("--json-output-location")
        .arg(&report)
        .arg("-t")
        .arg(&setup.suite)
        .env("BASALT_BIN", env!("CARGO_BIN_EXE_basalt"))
        .env("BASALT_ADAPTER_MODE", run.mode)
        .env("BASALT_ADAPTER_ARGS", run.extra_args)
        .env_remove("BASALT_ADAPTER_TIMEOUT")
        .output();
    let out = match out {
        Ok(o) => o,
        Err(e) => panic!("{}: {e}", setup.python),
    };
    let console = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{console}");

    // Every program's outcome, as the runner's JSON report has it.
    let outcomes: BTreeMap<String, String> = python_output(
        setup,
        "import json, sys\n\
         for suite in json.load(open(sys.argv[1]))['results']:\n\
         \x20   for t in suite['tests']:\n\
         \x20       print(t['outcome'], t['name'])",
        &report,
    )
    .lines()
    .filter_map(|l| l.split_once(' '))
    .map(|(outcome, name)| (name.to_string(), outcome.to_string()))
    .collect();
    let mut wrong = Vec::new();
    let mut tally: BTreeMap<&str, usize> = BTreeMap::new();
    for name in &all {
        let expected = if !chosen.contains(&name) {
            "skip"
        } else if run.known_failing.iter().any(|(n, _)| n == name) {
            "xfail"
        } else {
            "pass"
        };
        let got = outcomes.get(name).map_or("missing", String::as_str);
        *tally.entry(got).or_default() += 1;
        if got != expected {
            wrong.push(format!("{name}: {got} (expected {expected})"));
        }
    }
    println!(
        "wasi-testsuite runner, {}: {tally:?} of {} programs in {:.1} s",
        run.label,
        all.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        wrong.is_empty() && out.status.success(),
        "the runner ({}) disagrees with the expectations:\n{}",
        out.status,
        wrong.join("\n")
    );
}

#[test]
fn wasi_testsuite_runner_hosted() {
    let Some(setup) = setup() else { return };
    run_runner(
        &setup,
        &Run {
            label: "hosted",
            mode: "hosted",
            extra_args: "",
            only: None,
            known_failing: KNOWN_FAILING,
        },
    );
}

/// The programs the VM runs take by default: the adapter's VM mode on a
/// few programs of each kind (files, links, clocks, random, terminals).
/// `wasi_suite_in_vm` already boots every program of the suite in a VM.
const VM_DEFAULT: &[&str] = &[
    "big_random_buf",
    "clock_time_get",
    "fd_readdir",
    "file_pread_pwrite",
    "isatty",
    "path_link",
];

/// The programs to run in a VM: [`VM_DEFAULT`], all of them
/// (`BASALT_WASI_RUNNER_VM_ONLY=all`), or those `BASALT_WASI_RUNNER_VM_ONLY`
/// names (separated by commas).
fn vm_programs() -> Option<Vec<String>> {
    match std::env::var("BASALT_WASI_RUNNER_VM_ONLY") {
        Ok(only) if only == "all" => None,
        Ok(only) => Some(only.split(',').map(String::from).collect()),
        Err(_) => Some(VM_DEFAULT.iter().map(|s| s.to_string()).collect()),
    }
}

/// Runs the suite through the runner in VMs of `arch`.
fn in_vm(arch: GuestArch) {
    let Some(setup) = setup() else { return };
    // Build the kernel first, so that its build does not count against
    // the first program's time.
    if let Err(e) = basalt::guest::kernel(arch, false) {
        panic!("building the {} kernel: {e}", arch.name());
    }
    let only = vm_programs();
    run_runner(
        &setup,
        &Run {
            label: &format!("vm-{}", arch.name()),
            mode: "vm",
            extra_args: &format!("--arch {}", arch.name()),
            only: only.as_deref(),
            known_failing: KNOWN_FAILING_IN_VM,
        },
    );
}

#[test]
fn wasi_testsuite_runner_in_x86_64_vm() {
    in_vm(GuestArch::X86_64);
}

#[test]
fn wasi_testsuite_runner_in_aarch64_vm() {
    in_vm(GuestArch::Aarch64);
}
