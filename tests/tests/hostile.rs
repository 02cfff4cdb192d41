//! Hostile programs in a VM (issue "Hardening"): what a program can ask of
//! the kernel must end in an errno, a short count or a trap, never a kernel
//! panic or a hang. The same programs run hosted in the crates' own tests
//! (`wasi/tests/preview1.rs`, `runtime/tests/hosted.rs`).

#![forbid(unsafe_code)]

use basalt::guest::GuestArch;
use basalt::run::RunOptions;
use basalt_tests::{boot, wat_file};

basalt_tests::on_every_isa!(a_gather_of_64_gib_is_a_short_write);

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
