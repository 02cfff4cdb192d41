//! WASI preview1 through the real runtime (hosted): each test runs a small
//! command module and checks the errno or output it gets. Standard streams
//! are captured in memory; clocks and entropy are the host's.

#![forbid(unsafe_code)]
#![allow(
    clippy::unwrap_used,
    reason = "test helpers: a failure is a test failure"
)]

use std::sync::{Arc, Mutex};

use basalt_runtime::{Config, Engine, Module};
use basalt_wasi::host::{HostClocks, HostEntropy};
use basalt_wasi::{Outcome, Services, Stdio, StdioError, WasiCtx, run_command};

#[derive(Clone, Default)]
struct Captured {
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    stdin: Arc<Mutex<Vec<u8>>>,
}

impl Stdio for Captured {
    fn write_stdout(&self, b: &[u8]) -> Result<(), StdioError> {
        self.stdout.lock().unwrap().extend_from_slice(b);
        Ok(())
    }
    fn write_stderr(&self, b: &[u8]) -> Result<(), StdioError> {
        self.stderr.lock().unwrap().extend_from_slice(b);
        Ok(())
    }
    fn read_stdin(&self, buf: &mut [u8]) -> Result<usize, StdioError> {
        let mut input = self.stdin.lock().unwrap();
        let n = buf.len().min(input.len());
        buf[..n].copy_from_slice(&input[..n]);
        input.drain(..n);
        Ok(n)
    }
}

fn run(wat: &str, args: &[&str], env: &[&str], stdin: &[u8]) -> (Outcome, Captured) {
    let wasm = wat::parse_str(wat).unwrap();
    let engine = Engine::new(Config::hosted()).unwrap();
    let module = Module::new(&engine, &wasm).unwrap();
    let io = Captured::default();
    io.stdin.lock().unwrap().extend_from_slice(stdin);
    let services = Services {
        stdio: Box::new(io.clone()),
        clocks: Box::new(HostClocks::default()),
        entropy: Box::new(HostEntropy),
    };
    let ctx = WasiCtx::new(
        args.iter().map(|a| a.as_bytes().to_vec()).collect(),
        env.iter().map(|a| a.as_bytes().to_vec()).collect(),
        services,
    );
    (run_command(&engine, &module, ctx), io)
}

/// Runs `body` (which leaves an i32 errno on the stack) after `imports`
/// and returns that errno as the exit code.
fn errno_of(imports: &str, body: &str) -> i32 {
    let wat = format!(
        r#"(module {imports}
            (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
            (memory (export "memory") 1)
            (func (export "_start") {body} call $exit))"#
    );
    match run(&wat, &[], &[], b"").0 {
        Outcome::Exit(code) => code,
        other => panic!("{other:?}"),
    }
}

const FD_WRITE: &str = r#"(import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))"#;

#[test]
fn fd_write_gathers_iovecs_and_reports_the_count() {
    let wat = format!(
        r#"(module {FD_WRITE}
            (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
            (memory (export "memory") 1)
            (data (i32.const 100) "Hello, ")
            (data (i32.const 200) "world\n")
            (func (export "_start")
              (i32.store (i32.const 0) (i32.const 100)) (i32.store (i32.const 4) (i32.const 7))
              (i32.store (i32.const 8) (i32.const 200)) (i32.store (i32.const 12) (i32.const 6))
              (drop (call $fd_write (i32.const 1) (i32.const 0) (i32.const 2) (i32.const 16)))
              (call $exit (i32.load (i32.const 16)))))"#
    );
    let (outcome, io) = run(&wat, &[], &[], b"");
    assert!(matches!(outcome, Outcome::Exit(13)), "{outcome:?}");
    assert_eq!(&*io.stdout.lock().unwrap(), b"Hello, world\n");
}

#[test]
fn pointers_outside_memory_are_efault() {
    let body = "(i32.store (i32.const 0) (i32.const 65530)) (i32.store (i32.const 4) (i32.const 100)) \
                (call $fd_write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 16))";
    assert_eq!(errno_of(FD_WRITE, body), 21);
    let body = "(call $fd_write (i32.const 1) (i32.const 65532) (i32.const 1) (i32.const 16))";
    assert_eq!(errno_of(FD_WRITE, body), 21);
}

#[test]
fn descriptors_are_checked() {
    assert_eq!(
        errno_of(
            FD_WRITE,
            "(call $fd_write (i32.const 7) (i32.const 0) (i32.const 0) (i32.const 16))"
        ),
        8
    );
    // stdin is not writable
    assert_eq!(
        errno_of(
            FD_WRITE,
            "(call $fd_write (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 16))"
        ),
        8
    );
    let seek = r#"(import "wasi_snapshot_preview1" "fd_seek" (func $f (param i32 i64 i32 i32) (result i32)))"#;
    assert_eq!(
        errno_of(
            seek,
            "(call $f (i32.const 1) (i64.const 0) (i32.const 0) (i32.const 16))"
        ),
        70
    );
    let open = r#"(import "wasi_snapshot_preview1" "path_open" (func $f (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))"#;
    let call = |fd: i32| {
        format!(
            "(call $f (i32.const {fd}) (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 0) (i64.const 0) (i64.const 0) (i32.const 0) (i32.const 16))"
        )
    };
    assert_eq!(errno_of(open, &call(3)), 8);
    assert_eq!(errno_of(open, &call(1)), 54);
    let prestat = r#"(import "wasi_snapshot_preview1" "fd_prestat_get" (func $f (param i32 i32) (result i32)))"#;
    assert_eq!(
        errno_of(prestat, "(call $f (i32.const 3) (i32.const 16))"),
        8
    );
    let sock = r#"(import "wasi_snapshot_preview1" "sock_accept" (func $f (param i32 i32 i32) (result i32)))"#;
    assert_eq!(
        errno_of(sock, "(call $f (i32.const 1) (i32.const 0) (i32.const 16))"),
        57
    );
    let raise =
        r#"(import "wasi_snapshot_preview1" "proc_raise" (func $f (param i32) (result i32)))"#;
    assert_eq!(errno_of(raise, "(call $f (i32.const 9))"), 52);
}

#[test]
fn clocks() {
    let time = r#"(import "wasi_snapshot_preview1" "clock_time_get" (func $f (param i32 i64 i32) (result i32)))"#;
    assert_eq!(
        errno_of(time, "(call $f (i32.const 0) (i64.const 1) (i32.const 16))"),
        0
    );
    assert_eq!(
        errno_of(time, "(call $f (i32.const 1) (i64.const 1) (i32.const 16))"),
        0
    );
    // Process and thread CPU time (the host's clocks know them).
    for clock in [2, 3] {
        assert_eq!(
            errno_of(
                time,
                &format!("(call $f (i32.const {clock}) (i64.const 1) (i32.const 16))")
            ),
            0
        );
    }
    assert_eq!(
        errno_of(time, "(call $f (i32.const 4) (i64.const 1) (i32.const 16))"),
        28
    );
    assert_eq!(
        errno_of(
            time,
            "(call $f (i32.const 1) (i64.const 1) (i32.const 65535))"
        ),
        21
    );
}

#[test]
fn poll_oneoff_sleeps_on_a_relative_clock() {
    let poll = r#"(import "wasi_snapshot_preview1" "poll_oneoff" (func $f (param i32 i32 i32 i32) (result i32)))"#;
    assert_eq!(
        errno_of(
            poll,
            "(call $f (i32.const 0) (i32.const 1024) (i32.const 0) (i32.const 2048))"
        ),
        28
    );
    // one subscription: userdata 77, clock monotonic, 30 ms relative
    let body = "(i64.store (i32.const 0) (i64.const 77)) (i32.store8 (i32.const 8) (i32.const 0)) \
                (i32.store (i32.const 16) (i32.const 1)) (i64.store (i32.const 24) (i64.const 30000000)) \
                (drop (call $f (i32.const 0) (i32.const 1024) (i32.const 1) (i32.const 2048))) \
                (i32.add (i32.load (i32.const 2048)) (i32.wrap_i64 (i64.load (i32.const 1024))))";
    let t = std::time::Instant::now();
    assert_eq!(errno_of(poll, body), 78);
    assert!(t.elapsed() >= std::time::Duration::from_millis(30));
}

#[test]
fn args_and_environment() {
    let wat = r#"(module
        (import "wasi_snapshot_preview1" "args_sizes_get" (func $as (param i32 i32) (result i32)))
        (import "wasi_snapshot_preview1" "environ_get" (func $eg (param i32 i32) (result i32)))
        (import "wasi_snapshot_preview1" "environ_sizes_get" (func $es (param i32 i32) (result i32)))
        (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
        (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
        (memory (export "memory") 1)
        (func (export "_start")
          (drop (call $es (i32.const 0) (i32.const 4)))
          (drop (call $eg (i32.const 100) (i32.const 200)))
          ;; write the environment block (NULs included) to stdout
          (i32.store (i32.const 16) (i32.const 200)) (i32.store (i32.const 20) (i32.load (i32.const 4)))
          (drop (call $w (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 24)))
          (drop (call $as (i32.const 8) (i32.const 12)))
          (call $exit (i32.add (i32.mul (i32.load (i32.const 8)) (i32.const 100)) (i32.load (i32.const 12))))))"#;
    let (outcome, io) = run(wat, &["prog", "x"], &["A=1", "BB=two"], b"");
    assert!(matches!(outcome, Outcome::Exit(207)), "{outcome:?}");
    assert_eq!(&*io.stdout.lock().unwrap(), b"A=1\0BB=two\0");
}

#[test]
fn stdin_reads_then_end_of_file() {
    let wat = r#"(module
        (import "wasi_snapshot_preview1" "fd_read" (func $r (param i32 i32 i32 i32) (result i32)))
        (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
        (memory (export "memory") 1)
        (func (export "_start")
          (i32.store (i32.const 0) (i32.const 100)) (i32.store (i32.const 4) (i32.const 64))
          (drop (call $r (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 8)))
          (drop (call $r (i32.const 0) (i32.const 0) (i32.const 1) (i32.const 12)))
          (call $exit (i32.add (i32.mul (i32.load (i32.const 8)) (i32.const 10)) (i32.load (i32.const 12))))))"#;
    let (outcome, _) = run(wat, &[], &[], b"abcde");
    assert!(matches!(outcome, Outcome::Exit(50)), "{outcome:?}");
}

#[test]
fn a_command_without_start_is_an_error_not_a_crash() {
    let (outcome, _) = run(r#"(module (memory (export "memory") 1))"#, &[], &[], b"");
    match outcome {
        Outcome::Error(e) => assert!(e.to_string().contains("_start"), "{e}"),
        other => panic!("{other:?}"),
    }
}

/// 4096 iovecs all naming the same 16 MiB (64 GiB asked for) are written
/// in place, without joining them, and the write is short: the first
/// 16 MiB, as `writev` stops at its limit.
#[test]
fn a_huge_gather_is_a_short_write_not_a_copy() {
    let wat = format!(
        r#"(module {FD_WRITE}
            (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
            (memory (export "memory") 258)
            (func (export "_start") (local $i i32)
              ;; iovecs at 16 MiB: (0, 16 MiB) x 4096
              (loop $fill
                (i32.store (i32.add (i32.const 0x1000000) (i32.shl (local.get $i) (i32.const 3)))
                  (i32.const 0))
                (i32.store (i32.add (i32.const 0x1000004) (i32.shl (local.get $i) (i32.const 3)))
                  (i32.const 0x1000000))
                (local.set $i (i32.add (local.get $i) (i32.const 1)))
                (br_if $fill (i32.lt_u (local.get $i) (i32.const 4096))))
              (call $fd_write (i32.const 1) (i32.const 0x1000000) (i32.const 4096) (i32.const 0x1010000))
              (if (then (call $exit (i32.const 99))))
              (call $exit (i32.shr_u (i32.load (i32.const 0x1010000)) (i32.const 20)))))"#
    );
    let started = std::time::Instant::now();
    let (outcome, io) = run(&wat, &[], &[], b"");
    assert!(matches!(outcome, Outcome::Exit(16)), "{outcome:?}");
    assert_eq!(io.stdout.lock().unwrap().len(), 16 << 20);
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
}

/// Standard streams that fail as the host's do: stdout's reader is gone,
/// stdin is a directory.
struct Broken;

impl Stdio for Broken {
    fn write_stdout(&self, _: &[u8]) -> Result<(), StdioError> {
        Err(StdioError::Closed)
    }
    fn write_stderr(&self, _: &[u8]) -> Result<(), StdioError> {
        Ok(())
    }
    fn read_stdin(&self, _: &mut [u8]) -> Result<usize, StdioError> {
        Err(StdioError::IsDirectory)
    }
}

/// Runs `wat` on [`Broken`] streams with random requests capped at
/// `max_random`.
fn run_broken(wat: &str, max_random: u64) -> Outcome {
    let wasm = wat::parse_str(wat).unwrap();
    let engine = Engine::new(Config::hosted()).unwrap();
    let module = Module::new(&engine, &wasm).unwrap();
    let services = Services {
        stdio: Box::new(Broken),
        clocks: Box::new(HostClocks::default()),
        entropy: Box::new(HostEntropy),
    };
    let mut ctx = WasiCtx::new(vec![b"t".to_vec()], Vec::new(), services);
    ctx.set_max_random_size(max_random);
    run_command(&engine, &module, ctx)
}

#[test]
fn failing_streams_give_wasmtimes_errnos() {
    // a closed stdout is EIO (29), as wasmtime's preview1 says; stdin from
    // a directory is EISDIR (31)
    for (call, errno) in [("fd_write", 29), ("fd_read", 31)] {
        let wat = format!(
            r#"(module
                (import "wasi_snapshot_preview1" "{call}" (func $f (param i32 i32 i32 i32) (result i32)))
                (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
                (memory (export "memory") 1)
                (func (export "_start")
                  (i32.store (i32.const 0) (i32.const 100)) (i32.store (i32.const 4) (i32.const 8))
                  (call $exit (call $f (i32.const {fd}) (i32.const 0) (i32.const 1) (i32.const 16)))))"#,
            fd = if call == "fd_write" { 1 } else { 0 },
        );
        let outcome = run_broken(&wat, 64);
        assert!(
            matches!(outcome, Outcome::Exit(e) if e == errno),
            "{call}: {outcome:?}"
        );
    }
}

#[test]
fn random_requests_beyond_the_limit_trap() {
    let wat = |len: u32| {
        format!(
            r#"(module
                (import "wasi_snapshot_preview1" "random_get" (func $r (param i32 i32) (result i32)))
                (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
                (memory (export "memory") 1)
                (func (export "_start") (call $exit (call $r (i32.const 0) (i32.const {len})))))"#
        )
    };
    assert!(matches!(run_broken(&wat(64), 64), Outcome::Exit(0)));
    match run_broken(&wat(65), 64) {
        Outcome::Trap(t) => assert_eq!(
            t.message.as_deref(),
            Some("requested len 65 exceeds limit 64")
        ),
        other => panic!("{other:?}"),
    }
}
