//! The `basalt` binary as a user runs it: real processes, real QEMU, exit
//! codes and the separation of stdout and stderr.

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
