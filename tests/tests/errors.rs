//! Bad input and guest failures: every trap kind, malformed modules,
//! missing files. Each gives a clear message and a distinct exit code.

#![forbid(unsafe_code)]

use basalt::CliError;
use basalt::guest::GuestArch;
use basalt::run::{RunOptions, run_vm};
use basalt::vm::{Status, VmIo};
use basalt_tests::{boot, wat_file, write_temp};

basalt_tests::on_every_isa!(
    unreachable,
    memory_out_of_bounds,
    integer_divide_by_zero,
    integer_overflow,
    bad_conversion_to_integer,
    indirect_call_type_mismatch,
    indirect_call_out_of_table,
    indirect_call_to_null,
    stack_overflow,
    uncaught_exception,
    a_module_without_start_is_a_load_error_from_the_kernel,
    memory_grows_to_hundreds_of_mib,
    a_kernel_panic_reports_its_cause_and_a_symbolised_backtrace,
    kernel_faults_are_reported_not_hung,
);

/// Options to run `wasm` on `arch`.
fn options(arch: GuestArch, wasm: impl Into<std::path::PathBuf>) -> RunOptions {
    let mut opts = RunOptions::new(wasm);
    opts.arch = arch;
    opts
}

/// Boots a command module and returns its trap's kind and message.
fn trap_of(arch: GuestArch, name: &str, wat: &str) -> (String, String) {
    let out = boot(options(arch, wat_file(name, wat)), b"");
    match out.report.status {
        Status::Trap {
            ref kind,
            ref message,
        } => (kind.clone(), message.clone()),
        _ => panic!("{name}: expected a trap\n{}", out.describe()),
    }
}

#[track_caller]
fn assert_trap(arch: GuestArch, name: &str, wat: &str, kind: &str, text: &str) {
    let (k, message) = trap_of(arch, name, wat);
    assert_eq!(k, kind, "{name}: {message}");
    assert!(message.contains(text), "{name}: `{message}` lacks `{text}`");
    assert!(
        message.contains("$victim") || message.contains("victim"),
        "{name}: `{message}` names no function"
    );
}

fn unreachable(arch: GuestArch) {
    let wat = r#"(module (func $victim unreachable) (func (export "_start") call $victim) (memory (export "memory") 1))"#;
    assert_trap(
        arch,
        "unreachable",
        wat,
        "unreachable",
        "wasm trap: unreachable",
    );
}

fn memory_out_of_bounds(arch: GuestArch) {
    let wat = r#"(module (memory (export "memory") 1)
        (func $victim (drop (i32.load (i32.const 0x7fff0000))))
        (func (export "_start") call $victim))"#;
    assert_trap(
        arch,
        "oob",
        wat,
        "memory-out-of-bounds",
        "out of bounds memory access",
    );
}

fn integer_divide_by_zero(arch: GuestArch) {
    let wat = r#"(module (memory (export "memory") 1)
        (func $victim (param i32) (drop (i32.div_u (i32.const 1) (local.get 0))))
        (func (export "_start") (call $victim (i32.const 0))))"#;
    assert_trap(
        arch,
        "div0",
        wat,
        "integer-divide-by-zero",
        "integer divide by zero",
    );
}

fn integer_overflow(arch: GuestArch) {
    let wat = r#"(module (memory (export "memory") 1)
        (func $victim (param i32) (drop (i32.div_s (i32.const 0x80000000) (local.get 0))))
        (func (export "_start") (call $victim (i32.const -1))))"#;
    assert_trap(
        arch,
        "overflow",
        wat,
        "integer-overflow",
        "integer overflow",
    );
}

fn bad_conversion_to_integer(arch: GuestArch) {
    let wat = r#"(module (memory (export "memory") 1)
        (func $victim (param f32) (drop (i32.trunc_f32_s (local.get 0))))
        (func (export "_start") (call $victim (f32.const nan))))"#;
    assert_trap(
        arch,
        "badconv",
        wat,
        "bad-conversion-to-integer",
        "invalid conversion to integer",
    );
}

fn indirect_call_type_mismatch(arch: GuestArch) {
    let wat = r#"(module (memory (export "memory") 1)
        (type $t (func (param i32)))
        (table 1 funcref) (elem (i32.const 0) $other)
        (func $other)
        (func $victim (call_indirect (type $t) (i32.const 7) (i32.const 0)))
        (func (export "_start") call $victim))"#;
    assert_trap(
        arch,
        "mismatch",
        wat,
        "indirect-call-type-mismatch",
        "indirect call type mismatch",
    );
}

fn indirect_call_out_of_table(arch: GuestArch) {
    let wat = r#"(module (memory (export "memory") 1)
        (table 1 funcref)
        (func $victim (call_indirect (i32.const 5)))
        (func (export "_start") call $victim))"#;
    assert_trap(
        arch,
        "tableoob",
        wat,
        "table-out-of-bounds",
        "undefined element",
    );
}

fn indirect_call_to_null(arch: GuestArch) {
    let wat = r#"(module (memory (export "memory") 1)
        (table 2 funcref)
        (func $victim (call_indirect (i32.const 1)))
        (func (export "_start") call $victim))"#;
    assert_trap(
        arch,
        "null",
        wat,
        "indirect-call-to-null",
        "uninitialized element",
    );
}

fn stack_overflow(arch: GuestArch) {
    let wat = r#"(module (memory (export "memory") 1)
        (func $victim (param i64) (result i64) (i64.add (call $victim (local.get 0)) (i64.const 1)))
        (func (export "_start") (drop (call $victim (i64.const 0)))))"#;
    assert_trap(arch, "stack", wat, "stack-overflow", "call stack exhausted");
}

/// A caught exception is business as usual; one nothing catches ends the
/// program like a trap, naming the function that threw.
fn uncaught_exception(arch: GuestArch) {
    let wat = r#"(module (memory (export "memory") 1)
        (tag $oops (param i32))
        (func $victim (throw $oops (i32.const 7)))
        (func (export "_start")
          (block $caught (try_table (catch_all $caught) (call $victim)))
          (call $victim)))"#;
    assert_trap(
        arch,
        "exception",
        wat,
        "uncaught-exception",
        "uncaught wasm exception",
    );
}

#[test]
fn malformed_module_is_refused_on_the_host() {
    let path = write_temp("malformed.wasm", b"\0asm\x01\0\0\0\x01\xff\xff");
    let io = VmIo {
        stdin: None,
        stdout: Box::new(std::io::sink()),
        stderr: Box::new(std::io::sink()),
    };
    match run_vm(&RunOptions::new(&path), io) {
        Err(e @ CliError::Module(_)) => {
            let msg = e.to_string();
            assert!(msg.contains("malformed.wasm"), "{msg}");
            assert_eq!(e.exit_code(), 65);
        }
        Err(e) => panic!("wrong error: {e}"),
        Ok(r) => panic!("a malformed module ran: {:?}", r.status),
    }
}

fn a_module_without_start_is_a_load_error_from_the_kernel(arch: GuestArch) {
    // A valid module that is not a WASI command: the kernel loads it
    // (compiling in the guest) and reports why it cannot run it.
    let path = wat_file("nostart", r#"(module (memory (export "memory") 1))"#);
    let mut opts = options(arch, path);
    opts.jit = true;
    let out = boot(opts, b"");
    match &out.report.status {
        Status::LoadError(m) => assert!(m.contains("_start"), "{m}"),
        _ => panic!("expected a load error\n{}", out.describe()),
    }
    assert_eq!(out.report.exit_code(), 65);
}

#[test]
fn missing_file_is_a_clear_error() {
    let io = VmIo {
        stdin: None,
        stdout: Box::new(std::io::sink()),
        stderr: Box::new(std::io::sink()),
    };
    match run_vm(&RunOptions::new("/nonexistent/app.wasm"), io) {
        Err(e @ CliError::Input(_)) => {
            assert!(
                e.to_string().contains("cannot read /nonexistent/app.wasm"),
                "{e}"
            );
            assert_eq!(e.exit_code(), 66);
        }
        Err(e) => panic!("wrong error: {e}"),
        Ok(r) => panic!("ran: {:?}", r.status),
    }
}

fn memory_grows_to_hundreds_of_mib(arch: GuestArch) {
    let wat = r#"(module
        (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
        (memory (export "memory") 1)
        (func (export "_start")
          (if (i32.ne (memory.grow (i32.const 3200)) (i32.const 1)) (then (call $exit (i32.const 1))))
          (i32.store (i32.const 0xc7fff00) (i32.const 7))
          (call $exit (i32.load (i32.const 0xc7fff00)))))"#;
    let out = boot(options(arch, wat_file("grow", wat)), b"");
    out.assert_exit(7);
}

/// Boots hello with the kernel told to crash on purpose.
fn crash(arch: GuestArch, kind: &str) -> basalt_tests::Outcome {
    let mut opts = options(arch, basalt_tests::example("hello"));
    opts.kernel_cmdline = Some(format!("basalt.crash={kind}"));
    boot(opts, b"")
}

fn a_kernel_panic_reports_its_cause_and_a_symbolised_backtrace(arch: GuestArch) {
    let out = crash(arch, "panic");
    match &out.report.status {
        Status::Panic(m) => assert!(!m.is_empty(), "{}", out.describe()),
        _ => panic!("expected a kernel panic\n{}", out.describe()),
    }
    assert_eq!(out.report.exit_code(), 70);
    let log = out.report.log_text();
    assert!(
        log.contains("basalt_kernel"),
        "no symbol names in the backtrace:\n{log}"
    );
}

fn kernel_faults_are_reported_not_hung(arch: GuestArch) {
    for kind in ["null", "ud", "wx", "codewx", "tablewx", "stack"] {
        let out = crash(arch, kind);
        assert!(
            matches!(out.report.status, Status::Panic(_)),
            "{kind}: {}",
            out.describe()
        );
        let log = out.report.log_text();
        assert!(
            log.contains("RIP") || log.contains("ELR"),
            "{kind}: no registers:\n{log}"
        );
    }
}
