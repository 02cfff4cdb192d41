//! A program made of two components, one calling the other through a
//! compiled fused adapter (`runtime/src/component/adapter/`): component
//! `B` lifts `greet: func(name: string, counts: list<u32>) -> tuple<string,
//! u32>`, component `A` lowers it and calls it with a string and a list
//! from its own memory, then checks the string and the sum it gets back
//! (results in memory: more than one flat value). Its `wasi:cli/run`
//! returns `ok` only if they are right. It runs hosted and in a VM of each
//! ISA, where the kernel compiles the adapter itself.
//! (`programs/composed.wat`; the component-model reference tests check
//! the adapters' every type and trap hosted.)

#![forbid(unsafe_code)]

use std::process::Command;

fn composed() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let text = include_str!("programs/composed.wat");
    let wasm = wat::parse_str(text).expect("composed.wat is a component");
    std::fs::write(dir.path().join("composed.wasm"), wasm).expect("writing the component");
    dir
}

fn run(args: &[&str]) {
    let dir = composed();
    let out = Command::new(env!("CARGO_BIN_EXE_basalt"))
        .arg("run")
        .args(args)
        .arg(dir.path().join("composed.wasm"))
        .output()
        .expect("running basalt");
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn composed_components_hosted() {
    run(&["--hosted"]);
}

#[test]
fn composed_components_in_x86_64_vm() {
    run(&["--arch", "x86_64", "--timeout", "120"]);
}

#[test]
fn composed_components_in_aarch64_vm() {
    run(&["--arch", "aarch64", "--timeout", "120"]);
}
