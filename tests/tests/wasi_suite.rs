//! The official WASI test suite (preview1, Rust programs) run hosted
//! (`basalt run --hosted` in this process): every program of
//! `shared/testsuite/wasi/rust/wasm32-wasip1` follows its JSON, on a fresh
//! copy of its fixtures shared through `--dir`, and must pass unless it is
//! in [`KNOWN_FAILING`](basalt_tests::wasi_suite::KNOWN_FAILING).

#![forbid(unsafe_code)]

use std::sync::Mutex;

use basalt::hosted::Hosted;
use basalt::run::DirMode;
use basalt_tests::Captured;
use basalt_tests::wasi_suite::{
    KNOWN_FAILING, Ran, Scratch, Spec, Tally, judge, prepare_dirs, programs, suite_dir,
};

/// Runs `name` hosted as `spec` says; `Err` when it could not be run.
fn run_hosted(suite: &std::path::Path, name: &str, spec: &Spec) -> Result<Ran, String> {
    let scratch = Scratch::new(name).map_err(|e| e.to_string())?;
    let dirs = prepare_dirs(suite, spec, &scratch.0).map_err(|e| format!("fixtures: {e}"))?;
    let wasm = std::fs::read(suite.join(format!("{name}.wasm"))).map_err(|e| e.to_string())?;
    let args = std::iter::once(format!("{name}.wasm"))
        .chain(spec.args.iter().cloned())
        .map(String::into_bytes)
        .collect();
    let env = spec
        .env
        .iter()
        .map(|(k, v)| format!("{k}={v}").into_bytes())
        .collect();
    let io = Captured::default();
    let run = Hosted {
        name,
        wasm: &wasm,
        args,
        env,
        dirs: &dirs,
        dir_mode: DirMode::Live,
        timeout: None,
        fuel: None,
        tcplisten: &[],
        sockets: Default::default(),
        max_resources: None,
        wasi: Default::default(),
        verbose: false,
    };
    let code =
        basalt::hosted::run_with_stdio(run, Box::new(io.clone())).map_err(|e| e.to_string())?;
    let take = |m: &Mutex<Vec<u8>>| m.lock().map(|b| b.clone()).unwrap_or_default();
    Ok(Ran {
        exit_code: code,
        stdout: take(&io.stdout),
        stderr: take(&io.stderr),
    })
}

#[test]
fn wasi_testsuite_hosted() {
    let Some(suite) = suite_dir().filter(|d| d.is_dir()) else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "WASI test suite not found (set BASALT_WASI_TESTSUITE)"
        );
        eprintln!("WASI test suite not found; skipping (set BASALT_WASI_TESTSUITE)");
        return;
    };
    let mut tally = Tally::new(KNOWN_FAILING);
    for name in programs(&suite) {
        let failure = match Spec::of(&suite, &name) {
            Err(e) => Some(format!("unreadable JSON: {e}")),
            Ok(spec) => match &spec.unsupported {
                Some(why) => Some(format!("cannot run: {why}")),
                None => match run_hosted(&suite, &name, &spec) {
                    Ok(ran) => judge(&spec, &ran),
                    Err(e) => Some(format!("not run: {e}")),
                },
            },
        };
        tally.record(&name, failure);
    }
    tally.finish("WASI test suite, hosted");
}

/// A program's changes to a `--dir` reach the host directory when it ends:
/// a new file, a removed one, a rewritten one; untouched files stay as
/// they were.
#[test]
fn writes_through_a_dir_reach_the_host() {
    let scratch = Scratch::new("write-back").expect("scratch dir");
    let dir = scratch.0.join("shared");
    std::fs::create_dir_all(dir.join("sub")).expect("mkdir");
    std::fs::write(dir.join("old.txt"), b"old").expect("write");
    std::fs::write(dir.join("keep.txt"), b"keep").expect("write");
    std::fs::write(dir.join("sub/gone.txt"), b"gone").expect("write");
    let wasm = wat::parse_str(
        r#"(module
          (import "wasi_snapshot_preview1" "path_open" (func $open (param i32 i32 i32 i32 i32 i64 i64 i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "path_unlink_file" (func $unlink (param i32 i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "path_rename" (func $rename (param i32 i32 i32 i32 i32 i32) (result i32)))
          (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
          (memory (export "memory") 1)
          (data (i32.const 100) "new.txt")
          (data (i32.const 120) "hello")
          (data (i32.const 140) "sub/gone.txt")
          (data (i32.const 160) "old.txt")
          (data (i32.const 180) "sub/moved.txt")
          (func $check (param i32) (if (local.get 0) (then (call $exit (local.get 0)))))
          (func (export "_start")
            ;; create new.txt (creat|trunc) with fd_read|fd_write|fd_seek rights, write "hello"
            (call $check (call $open (i32.const 3) (i32.const 0) (i32.const 100) (i32.const 7)
              (i32.const 9) (i64.const 70) (i64.const 0) (i32.const 0) (i32.const 200)))
            (i32.store (i32.const 208) (i32.const 120))
            (i32.store (i32.const 212) (i32.const 5))
            (call $check (call $write (i32.load (i32.const 200)) (i32.const 208) (i32.const 1) (i32.const 216)))
            (call $check (call $unlink (i32.const 3) (i32.const 140) (i32.const 12)))
            (call $check (call $rename (i32.const 3) (i32.const 160) (i32.const 7)
              (i32.const 3) (i32.const 180) (i32.const 13)))))"#,
    )
    .expect("wat");
    let keep_before = std::fs::metadata(dir.join("keep.txt")).expect("stat");
    let run = Hosted {
        name: "write-back",
        wasm: &wasm,
        args: vec![b"write-back".to_vec()],
        env: Vec::new(),
        dirs: &[basalt::run::SharedDir::new(dir.clone(), "/data")],
        dir_mode: DirMode::Live,
        timeout: None,
        fuel: None,
        tcplisten: &[],
        sockets: Default::default(),
        max_resources: None,
        wasi: Default::default(),
        verbose: false,
    };
    let code = basalt::hosted::run_with_stdio(run, Box::new(Captured::default())).expect("run");
    assert_eq!(code, 0, "errno of the failing call");
    assert_eq!(std::fs::read(dir.join("new.txt")).expect("new"), b"hello");
    assert!(!dir.join("sub/gone.txt").exists());
    assert!(!dir.join("old.txt").exists());
    assert_eq!(
        std::fs::read(dir.join("sub/moved.txt")).expect("moved"),
        b"old"
    );
    let keep_after = std::fs::metadata(dir.join("keep.txt")).expect("stat");
    assert_eq!(
        keep_before.modified().expect("mtime"),
        keep_after.modified().expect("mtime")
    );
}
