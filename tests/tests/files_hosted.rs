//! `basalt run --hosted --dir`: live, as in a VM and under wasmtime. The
//! program's writes reach the host at once; what other processes change
//! while it runs is seen and never undone (the old copy-in / write-back
//! put edited files back and deleted new ones at exit); the same hostile
//! paths as in a VM get the same errnos.

#![forbid(unsafe_code)]

use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use basalt::hosted::{Hosted, run_with_stdio};
use basalt::run::DirMode;
use basalt_tests::wasi_suite::Scratch;
use basalt_tests::{confinement, example};
use basalt_wasi::{Stdio, StdioError};

/// Streams in memory; stdin blocks until the test sends a chunk or hangs
/// up, and the first read says the program is running.
struct Streams {
    stdout: Arc<Mutex<Vec<u8>>>,
    stdin: Mutex<mpsc::Receiver<Vec<u8>>>,
    started: Mutex<Option<mpsc::Sender<()>>>,
}

impl Stdio for Streams {
    fn write_stdout(&self, b: &[u8]) -> Result<(), StdioError> {
        if let Ok(mut o) = self.stdout.lock() {
            o.extend_from_slice(b);
        }
        Ok(())
    }
    fn write_stderr(&self, _: &[u8]) -> Result<(), StdioError> {
        Ok(())
    }
    fn read_stdin(&self, buf: &mut [u8]) -> Result<usize, StdioError> {
        if let Some(tx) = self.started.lock().ok().and_then(|mut s| s.take()) {
            let _ = tx.send(());
        }
        let Ok(rx) = self.stdin.lock() else {
            return Ok(0);
        };
        Ok(match rx.recv() {
            Ok(chunk) => {
                let n = chunk.len().min(buf.len());
                buf[..n].copy_from_slice(&chunk[..n]);
                n
            }
            Err(_) => 0,
        })
    }
}

fn run(
    wasm: &std::path::Path,
    args: &[&str],
    dirs: &[basalt::run::SharedDir],
    mode: DirMode,
    streams: Streams,
) -> i32 {
    let bytes = std::fs::read(wasm).expect("read wasm");
    let argv = std::iter::once("prog")
        .chain(args.iter().copied())
        .map(|a| a.as_bytes().to_vec())
        .collect();
    let run = Hosted {
        name: "prog",
        wasm: &bytes,
        args: argv,
        env: Vec::new(),
        dirs,
        dir_mode: mode,
        timeout: None,
        fuel: None,
        tcplisten: &[],
        sockets: Default::default(),
        max_resources: None,
        wasi: Default::default(),
        verbose: false,
    };
    run_with_stdio(run, Box::new(streams)).expect("run")
}

/// A user edits a file and creates another in the shared directory while
/// the program runs (it waits on stdin): both survive the program's end,
/// under the live default and under `--dir-mode copy` alike.
#[test]
fn changes_made_during_a_run_are_never_undone() {
    for mode in [DirMode::Live, DirMode::Copy] {
        let scratch = Scratch::new(&format!("hosted-live-{mode:?}")).expect("scratch");
        let dir = scratch.0.join("d");
        std::fs::create_dir_all(&dir).expect("mkdir");
        std::fs::write(dir.join("edited.txt"), "before\n").expect("write");
        let (tx, rx) = mpsc::channel();
        let (started_tx, started) = mpsc::channel();
        let streams = Streams {
            stdout: Arc::default(),
            stdin: Mutex::new(rx),
            started: Mutex::new(Some(started_tx)),
        };
        let dirs = vec![basalt::run::SharedDir::new(dir.clone(), "/d")];
        let program = std::thread::spawn(move || run(&example("cat"), &[], &dirs, mode, streams));
        started
            .recv_timeout(std::time::Duration::from_secs(120))
            .expect("the program started");
        std::fs::write(dir.join("edited.txt"), "edited by the user\n").expect("edit");
        std::fs::write(dir.join("new.txt"), "made by the user\n").expect("create");
        drop(tx);
        assert_eq!(program.join().expect("program"), 0);
        assert_eq!(
            std::fs::read_to_string(dir.join("edited.txt")).expect("read"),
            "edited by the user\n",
            "{mode:?}"
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("new.txt")).expect("read"),
            "made by the user\n",
            "{mode:?}"
        );
    }
}

/// The program sees the host's files as they are now, and its writes are
/// on the host before it ends; with `--dir-mode copy` they stay in memory.
#[test]
fn a_live_dir_is_read_and_written_through() {
    for mode in [DirMode::Live, DirMode::Copy] {
        let scratch = Scratch::new(&format!("hosted-through-{mode:?}")).expect("scratch");
        let dir = scratch.0.join("data");
        std::fs::create_dir_all(dir.join("sub")).expect("mkdir");
        std::fs::write(dir.join("hello.txt"), "hello from the host\n").expect("write");
        let out = Arc::new(Mutex::new(Vec::new()));
        let (_tx, rx) = mpsc::channel();
        let streams = Streams {
            stdout: out.clone(),
            stdin: Mutex::new(rx),
            started: Mutex::new(None),
        };
        let dirs = vec![basalt::run::SharedDir::new(dir.clone(), "/data")];
        let code = run(
            &example("ls"),
            &["/data", "/data/hello.txt"],
            &dirs,
            mode,
            streams,
        );
        assert_eq!(code, 0);
        let text = String::from_utf8_lossy(&out.lock().expect("stdout")).into_owned();
        assert!(text.starts_with("hello.txt 20\nsub/\n"), "{text}");
        let written = std::fs::read_to_string(dir.join("hello.txt.new"));
        match mode {
            DirMode::Live => assert_eq!(written.expect("written"), "written in the guest\n"),
            DirMode::Copy => assert!(written.is_err(), "copy mode wrote back"),
        }
    }
}

/// Every way out of the preopen fails with wasmtime's errnos, and nothing
/// outside changes.
#[test]
fn hostile_paths_cannot_leave_a_live_dir() {
    let scratch = Scratch::new("hosted-escape").expect("scratch");
    let (share, outside) = confinement::fixture(&scratch.0).expect("fixture");
    let out = Arc::new(Mutex::new(Vec::new()));
    let (_tx, rx) = mpsc::channel();
    let streams = Streams {
        stdout: out.clone(),
        stdin: Mutex::new(rx),
        started: Mutex::new(None),
    };
    let dirs = vec![basalt::run::SharedDir::new(share, "/data")];
    let code = run(
        &example("confinement"),
        &["/data"],
        &dirs,
        DirMode::Live,
        streams,
    );
    let text = String::from_utf8_lossy(&out.lock().expect("stdout")).into_owned();
    assert_eq!(code, 0, "{text}");
    assert_eq!(text, confinement::CONFINED);
    confinement::assert_outside_untouched(&outside);
}
