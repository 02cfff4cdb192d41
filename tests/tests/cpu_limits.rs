//! CPU limits (issue "Hardening"): `--fuel N` stops a program at the same
//! operator hosted and in a VM of either ISA, with the trap `all fuel
//! consumed` and exit code 134; a program with sockets that computes
//! without socket calls still has its network driven, from the timer's
//! ticks.

#![forbid(unsafe_code)]

use basalt::guest::GuestArch;
use basalt::hosted::Hosted;
use basalt::run::{DirMode, RunOptions};
use basalt::vm::Status;
use basalt_tests::{Captured, boot, wat_file};

basalt_tests::on_every_isa!(
    fuel_stops_a_vm_where_it_stops_hosted,
    a_computing_program_with_sockets_is_interrupted_by_ticks,
);

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
        sockets: Default::default(),
        max_resources: None,
        wasi: Default::default(),
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

/// A program that listens (`--tcplisten`) and then computes for a while
/// without a socket call: its code has interrupt checks, the timer (the
/// local APIC's, the generic timer through the GIC) raises them every
/// 10 ms, and each drives the network stack. The kernel reports how often
/// they ran; the program's result is right.
fn a_computing_program_with_sockets_is_interrupted_by_ticks(arch: GuestArch) {
    let wat = r#"(module
        (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
        (memory (export "memory") 1)
        (func $work (param $n i32) (result i32) (local $i i32) (local $x i32)
          (loop $l
            (local.set $x (i32.add (i32.mul (local.get $x) (i32.const 31)) (local.get $i)))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br_if $l (i32.lt_u (local.get $i) (local.get $n))))
          (local.get $x))
        (func (export "_start")
          ;; 2^26 iterations: about a second under TCG
          (call $exit (i32.and (call $work (i32.const 0x4000000)) (i32.const 0x7f)))))"#;
    let mut opts = RunOptions::new(wat_file(&format!("busy-listener-{arch:?}"), wat));
    opts.arch = arch;
    opts.tcplisten = vec!["0.0.0.0:8080".into()];
    let out = boot(opts, b"");
    // x = x * 31 + i over 2^26 iterations, mod 2^32, low 7 bits.
    let mut x: u32 = 0;
    for i in 0..0x400_0000u32 {
        x = x.wrapping_mul(31).wrapping_add(i);
    }
    out.assert_exit((x & 0x7f) as i32);
    let log = out.report.log_text();
    let ran = log
        .lines()
        .find_map(|l| l.strip_prefix("ticks: the program's interrupt checks ran "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("no tick count in the log\n{}", out.describe()));
    assert!(ran >= 5, "only {ran} ticks\n{}", out.describe());
}
