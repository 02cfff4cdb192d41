//! The `basalt` binary as a user runs it: real processes, real QEMU, exit
//! codes and the separation of stdout and stderr.

#![forbid(unsafe_code)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn example(name: &str) -> String {
    match basalt::guest::examples() {
        Ok(dir) => dir.join(format!("{name}.wasm")).display().to_string(),
        Err(e) => panic!("{e}"),
    }
}

fn basalt(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_basalt"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start basalt");
    let mut input = child.stdin.take().expect("stdin");
    input.write_all(stdin).expect("write stdin");
    drop(input);
    child.wait_with_output().expect("wait for basalt")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn run_hello_in_a_vm() {
    let out = basalt(&["run", "--timeout", "240", &example("hello")], b"");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "Hello from Basalt!\n");
    assert_eq!(text(&out.stderr), "");
}

#[test]
fn exit_code_and_separate_streams() {
    let out = basalt(
        &["run", "--timeout", "240", &example("exit-code"), "42"],
        b"",
    );
    assert_eq!(out.status.code(), Some(42), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "exiting with 42\n");
    assert_eq!(text(&out.stderr), "to stderr before exit\n");
}

#[test]
fn stdin_through_the_binary() {
    let out = basalt(
        &["run", "--timeout", "240", &example("cat")],
        b"piped \xff\x00 bytes\n",
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(out.stdout, b"piped \xff\x00 bytes\n");
}

#[test]
fn a_trap_exits_134_with_the_message_on_stderr() {
    let out = basalt(
        &["run", "--timeout", "240", &example("exit-code"), "panic"],
        b"",
    );
    assert_eq!(out.status.code(), Some(134));
    let err = text(&out.stderr);
    assert!(err.contains("asked to panic"), "{err}");
    assert!(err.contains("wasm trap: unreachable"), "{err}");
}

#[test]
fn hosted_mode_runs_the_same_program() {
    let out = basalt(&["run", "--hosted", &example("exit-code"), "7"], b"");
    assert_eq!(out.status.code(), Some(7), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "exiting with 7\n");
    assert_eq!(text(&out.stderr), "to stderr before exit\n");
}

#[test]
fn user_errors_have_distinct_codes() {
    let out = basalt(&["run", "/no/such.wasm"], b"");
    assert_eq!(out.status.code(), Some(66));
    assert!(text(&out.stderr).contains("cannot read /no/such.wasm"));
    let out = basalt(&["run", "--memory", "lots", "x.wasm"], b"");
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--memory wants MiB"));
    let out = basalt(&["frobnicate"], b"");
    assert_eq!(out.status.code(), Some(2));
}

/// An endless loop as a command module, written to a scratch file.
fn endless_loop() -> String {
    scratch_module(
        "loop.wasm",
        r#"(module (memory (export "memory") 1)
            (func (export "_start") (loop $forever (br $forever))))"#,
    )
}

/// `wat` assembled into `name` in this process's scratch folder; its path.
fn scratch_module(name: &str, wat: &str) -> String {
    let wasm = wat::parse_str(wat).expect("valid wat");
    let dir = std::env::temp_dir().join(format!("basalt-cli-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("scratch dir");
    let path = dir.join(name);
    std::fs::write(&path, wasm).expect("write the module");
    path.display().to_string()
}

/// A program that sleeps an hour in one `poll_oneoff` on the monotonic
/// clock (no code runs meanwhile, so no interrupt check either).
fn hour_long_sleep() -> String {
    scratch_module(
        "sleep.wasm",
        r#"(module
            (import "wasi_snapshot_preview1" "poll_oneoff"
              (func $poll (param i32 i32 i32 i32) (result i32)))
            (memory (export "memory") 1)
            ;; one subscription at 0: userdata 0, tag 0 (clock), clock 1
            ;; (monotonic) at 16, timeout 3600 s at 24, relative (flags 0)
            (data (i32.const 16) "\01")
            (data (i32.const 24) "\00\a0\b8\30\46\03\00\00")
            (func (export "_start")
              (drop (call $poll (i32.const 0) (i32.const 64) (i32.const 1) (i32.const 128)))))"#,
    )
}

#[test]
fn a_timeout_that_is_not_a_finite_number_is_a_usage_error() {
    for bad in ["inf", "NaN", "-1", "0", "1e300"] {
        let out = basalt(&["run", "--timeout", bad, "x.wasm"], b"");
        assert_eq!(out.status.code(), Some(2), "--timeout {bad}");
        let err = text(&out.stderr);
        assert!(err.contains("--timeout wants"), "--timeout {bad}: {err}");
        assert!(!err.contains("panicked"), "--timeout {bad}: {err}");
    }
}

#[test]
fn a_hosted_timeout_stops_an_endless_loop_with_124() {
    let started = std::time::Instant::now();
    let out = basalt(&["run", "--hosted", "--timeout", "1", &endless_loop()], b"");
    assert_eq!(out.status.code(), Some(124), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("stopped after 1s (--timeout)"));
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
}

/// In a VM, `--timeout` is the kernel's own deadline: the program's
/// interrupt checks, raised by the kernel's timer, stop it with exit 124
/// and the kernel's message (QEMU is not killed from outside), on both
/// ISAs.
#[test]
fn a_vm_timeout_is_the_kernels_own_deadline() {
    for arch in ["x86_64", "aarch64"] {
        let out = basalt(
            &["run", "--arch", arch, "--timeout", "2", &endless_loop()],
            b"",
        );
        stopped_by_the_kernel(&out, "2.000s", arch);
    }
}

/// `out` is a run the kernel itself ended at its `--timeout` of `limit`:
/// exit 124 and the kernel's message, not the host's backstop (which
/// says "the VM was stopped").
fn stopped_by_the_kernel(out: &Output, limit: &str, what: &str) {
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(124), "{what}: {err}");
    assert!(
        err.contains(&format!(
            "the program was stopped after {limit} (--timeout)"
        )) && !err.contains("the VM was stopped"),
        "{what}: {err}"
    );
}

/// A program blocked in a host call runs no interrupt check: in a VM the
/// kernel's waits end at the deadline themselves — an hour-long sleep
/// and a read of a stdin that stays open without input — with the same
/// exit 124 and message, not the host's backstop (which says "the VM was
/// stopped").
#[test]
fn a_vm_timeout_reaches_a_program_blocked_in_a_host_call() {
    for arch in ["x86_64", "aarch64"] {
        for (what, program) in [("sleep", hour_long_sleep()), ("stdin", example("cat"))] {
            let mut child = Command::new(env!("CARGO_BIN_EXE_basalt"))
                .args(["run", "--arch", arch, "--timeout", "3", &program])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("start basalt");
            // Held open, never written: `cat` waits for its first byte.
            let stdin = child.stdin.take();
            let out = child.wait_with_output().expect("wait for basalt");
            drop(stdin);
            stopped_by_the_kernel(&out, "3.000s", &format!("{arch} {what}"));
        }
    }
}

#[test]
fn hosted_fuel_stops_an_endless_loop_with_a_trap() {
    let out = basalt(
        &["run", "--hosted", "--fuel", "100000", &endless_loop()],
        b"",
    );
    assert_eq!(out.status.code(), Some(134), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("all fuel consumed"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn fuel_that_is_not_a_whole_number_is_a_usage_error() {
    for bad in ["-1", "1.5", "many", "18446744073709551616"] {
        let out = basalt(&["run", "--hosted", "--fuel", bad, "x.wasm"], b"");
        assert_eq!(out.status.code(), Some(2), "--fuel {bad}");
        let err = text(&out.stderr);
        assert!(err.contains("--fuel wants"), "--fuel {bad}: {err}");
    }
}

/// The children of process `pid` (from /proc).
fn children_of(pid: u32) -> Vec<u32> {
    let path = format!("/proc/{pid}/task/{pid}/children");
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect()
}

/// SIGTERM and SIGHUP to `basalt run` stop its QEMU and end `basalt` with
/// 128 + the signal, the run directory removed.
#[test]
fn stop_signals_end_the_vm() {
    for (signal, code) in [("TERM", 143), ("HUP", 129)] {
        let child = Command::new(env!("CARGO_BIN_EXE_basalt"))
            .args(["run", "--timeout", "240", &endless_loop()])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start basalt");
        // Wait for its QEMU (on a clean clone `basalt` first builds the
        // kernel, while other tests may build the other ISA's).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(900);
        let qemu = loop {
            let qemu = children_of(child.id()).into_iter().find(|c| {
                std::fs::read_to_string(format!("/proc/{c}/comm"))
                    .is_ok_and(|comm| comm.starts_with("qemu"))
            });
            if let Some(q) = qemu {
                break q;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no QEMU started within 900 s"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        std::thread::sleep(std::time::Duration::from_millis(500));
        let sent = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(child.id().to_string())
            .status()
            .expect("kill");
        assert!(sent.success());
        let out = child.wait_with_output().expect("wait for basalt");
        assert_eq!(out.status.code(), Some(code), "{}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains(&format!("stopped by SIG{signal}")),
            "{}",
            text(&out.stderr)
        );
        assert!(
            !std::path::Path::new(&format!("/proc/{qemu}")).exists(),
            "QEMU (pid {qemu}) outlived basalt"
        );
    }
}

/// A QEMU that dies is reported with what it said (exit code 71).
#[test]
fn a_qemu_that_dies_is_reported_with_its_stderr() {
    let out = basalt(
        &[
            "run",
            "--cpu",
            "no-such-cpu",
            "--timeout",
            "240",
            &example("hello"),
        ],
        b"",
    );
    assert_eq!(out.status.code(), Some(71), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert!(err.contains("stopped without reporting a status"), "{err}");
    assert!(
        err.contains("unable to find CPU model 'no-such-cpu'"),
        "{err}"
    );
}
