//! CPU limits (issue "Hardening"): `--fuel N` stops a program at the same
//! operator hosted and in a VM of either ISA, with the trap `all fuel
//! consumed` and exit code 134.

#![forbid(unsafe_code)]

use basalt::guest::GuestArch;
use basalt::hosted::Hosted;
use basalt::run::{DirMode, RunOptions};
use basalt::vm::Status;
use basalt_tests::{Captured, boot, wat_file};

basalt_tests::on_every_isa!(fuel_stops_a_vm_where_it_stops_hosted);

/// Writes one `.` per iteration, forever.
const DOTS: &str = r#"(module
    (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
    (memory (export "memory") 1)
    (data (i32.const 16) ".")
    (func (export "_start") (local $i i32)
      (i32.store (i32.const 0) (i32.const 16))
      (i32.store (i32.const 4) (i32.const 1))
      (loop $l
        (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $l))))"#;

/// The fuel both runs get: 500 iterations.
const FUEL: u64 = 5_000;

/// How many dots the program writes hosted with [`FUEL`], and its exit code.
fn hosted_dots() -> (usize, i32, String) {
    let wasm = wat::parse_str(DOTS).expect("valid wat");
    let io = Captured::default();
    let run = Hosted {
        name: "dots",
        wasm: &wasm,
        args: vec![b"dots".to_vec()],
        env: Vec::new(),
        dirs: &[],
        dir_mode: DirMode::Live,
        timeout: None,
        fuel: Some(FUEL),
        tcplisten: &[],
        verbose: false,
    };
    let code = basalt::hosted::run_with_stdio(run, Box::new(io.clone())).expect("run");
    let dots = io.stdout.lock().expect("stdout").len();
    let stderr = String::from_utf8_lossy(&io.stderr.lock().expect("stderr")).into_owned();
    (dots, code, stderr)
}

/// Hosted, the program stops with exit 134 after a number of dots that
/// only the fuel decides; in a VM it writes exactly as many and the host
/// reports the same trap.
fn fuel_stops_a_vm_where_it_stops_hosted(arch: GuestArch) {
    let (dots, code, _) = hosted_dots();
    assert_eq!(code, 134);
    // 6 units before the loop, then 10 per iteration (four constants and
    // the call, the increment's four operators and `br`; `drop` is free):
    // the 500th iteration spends the last units and writes its dot, the
    // loop header after it traps.
    assert_eq!(dots, 500, "dots hosted");
    assert_eq!(hosted_dots().0, dots, "the same every run");
    let mut opts = RunOptions::new(wat_file(&format!("dots-{arch:?}"), DOTS));
    opts.arch = arch;
    opts.fuel = Some(FUEL);
    let out = boot(opts, b"");
    assert!(
        matches!(&out.report.status, Status::Trap { kind, message }
            if kind == "out-of-fuel" && message.contains("all fuel consumed")),
        "{}",
        out.describe()
    );
    assert_eq!(out.report.exit_code(), 134);
    assert_eq!(out.stdout.len(), dots, "{}", out.describe());
}
