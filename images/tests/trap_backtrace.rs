//! A trap's wasm backtrace: a module whose `_start` calls `middle`, which
//! calls `inner`, which divides by zero. `basalt run` prints the trap and,
//! under it, the wasm functions on the stack by name, innermost first —
//! hosted (the signal handler walks the frame pointers) and in a VM of
//! each ISA (the kernel's fault handler does, and logs the frames for the
//! CLI). Traps raised by host functions list their wasm callers too
//! (`wasmtime_p2.rs`: `p2_random`'s limit runs need them).

#![forbid(unsafe_code)]

use std::process::Command;

const WAT: &str = r#"(module
  (func $inner (param i32) (result i32) local.get 0 i32.const 0 i32.div_u)
  (func $middle (result i32) i32.const 7 call $inner)
  (func $_start (export "_start") call $middle drop)
  (memory (export "memory") 1))"#;

fn check(args: &[&str]) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let wasm = dir.path().join("trap.wasm");
    std::fs::write(&wasm, wat::parse_str(WAT).expect("the module")).expect("writing it");
    let out = Command::new(env!("CARGO_BIN_EXE_basalt"))
        .arg("run")
        .args(args)
        .arg(&wasm)
        .output()
        .expect("running basalt");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(134), "{err}");
    assert!(err.contains("integer divide by zero"), "{err}");
    let at = |name: &str| {
        err.find(&format!("- {name}\n"))
            .unwrap_or_else(|| panic!("no frame {name}:\n{err}"))
    };
    let start = err.find("wasm backtrace:\n").expect("a backtrace");
    assert!(start < at("inner") && at("inner") < at("middle") && at("middle") < at("_start"));
}

#[test]
fn a_trap_lists_its_wasm_frames_hosted() {
    check(&["--hosted"]);
}

#[test]
fn a_trap_lists_its_wasm_frames_in_x86_64_vm() {
    check(&["--arch", "x86_64", "--timeout", "120"]);
}

#[test]
fn a_trap_lists_its_wasm_frames_in_aarch64_vm() {
    check(&["--arch", "aarch64", "--timeout", "120"]);
}
