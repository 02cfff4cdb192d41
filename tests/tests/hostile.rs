//! Hostile programs in a VM (issue "Hardening"): what a program can ask of
//! the kernel must end in an errno, a short count or a trap, never a kernel
//! panic or a hang. The same programs run hosted in the crates' own tests
//! (`wasi/tests/preview1.rs`, `runtime/tests/hosted.rs`).

#![forbid(unsafe_code)]

use basalt::guest::GuestArch;
use basalt::run::RunOptions;
use basalt_tests::{boot, wat_file};

basalt_tests::on_every_isa!(
    a_gather_of_64_gib_is_a_short_write,
    a_program_that_takes_every_frame_leaves_the_kernel_its_reserve,
);

/// `fd_write` with 4096 iovecs, a 1-byte one then 4095 naming the same
/// 16 MiB (64 GiB asked for), was a kernel panic (the iovecs were joined
/// into one allocation): now the write is short, the first byte, since
/// the next iovec would take it past 16 MiB, and the count says so.
fn a_gather_of_64_gib_is_a_short_write(arch: GuestArch) {
    let wat = r#"(module
        (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
        (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
        (memory (export "memory") 258)
        (data (i32.const 0) "!")
        (func (export "_start") (local $i i32)
          (loop $fill
            (i32.store (i32.add (i32.const 0x1000000) (i32.shl (local.get $i) (i32.const 3)))
              (i32.const 0))
            (i32.store (i32.add (i32.const 0x1000004) (i32.shl (local.get $i) (i32.const 3)))
              (select (i32.const 1) (i32.const 0x1000000) (i32.eqz (local.get $i))))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br_if $fill (i32.lt_u (local.get $i) (i32.const 4096))))
          (call $fd_write (i32.const 2) (i32.const 0x1000000) (i32.const 4096) (i32.const 0x1010000))
          (if (then (call $exit (i32.const 99))))
          (call $exit (i32.load (i32.const 0x1010000)))))"#;
    let mut opts = RunOptions::new(wat_file("gather", wat));
    opts.arch = arch;
    let out = boot(opts, b"");
    out.assert_exit(1);
    assert_eq!(out.stderr, b"!", "{}", out.describe());
}

/// A program grows its memory until `memory.grow` fails (RAM is
/// exhausted), then keeps calling the kernel: the kernel's heap and page
/// tables still have their reserve, so the program gets -1 from
/// `memory.grow` and the calls after it work; no kernel panic.
fn a_program_that_takes_every_frame_leaves_the_kernel_its_reserve(arch: GuestArch) {
    let wat = r#"(module
        (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
        (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
        (memory (export "memory") 1)
        (data (i32.const 16) "still running\n")
        (func (export "_start") (local $grown i32)
          ;; 16 MiB at a time until it fails
          (block $full
            (loop $more
              (br_if $full (i32.eq (memory.grow (i32.const 256)) (i32.const -1)))
              (local.set $grown (i32.add (local.get $grown) (i32.const 16)))
              (br $more)))
          ;; the kernel still serves calls: write 100 times
          (i32.store (i32.const 0) (i32.const 16))
          (i32.store (i32.const 4) (i32.const 14))
          (block $done
            (loop $again
              (br_if $done (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
              (i32.store (i32.const 12) (i32.add (i32.load (i32.const 12)) (i32.const 1)))
              (br_if $again (i32.lt_u (i32.load (i32.const 12)) (i32.const 100)))))
          ;; exit with the MiB grown / 16 (fits a status byte for 1 GiB VMs)
          (call $exit (i32.shr_u (local.get $grown) (i32.const 4)))))"#;
    let mut opts = RunOptions::new(wat_file("exhaust", wat));
    opts.arch = arch;
    opts.memory_mib = 512;
    let out = boot(opts, b"");
    let lines = out
        .stdout_text()
        .lines()
        .filter(|l| *l == "still running")
        .count();
    assert_eq!(lines, 100, "{}", out.describe());
    match out.report.status {
        basalt::vm::Status::Exit(n) => {
            // Most of the 512 MiB went to the program, the reserve did not.
            let grown_mib = n * 16;
            assert!(
                (300..512).contains(&grown_mib),
                "grew {grown_mib} MiB\n{}",
                out.describe()
            );
        }
        _ => panic!("expected an exit\n{}", out.describe()),
    }
}
