//! What a program is told about its standard streams: a terminal only
//! where the `basalt` process has one, hosted and in a VM on both ISAs,
//! answered as wasmtime answers (`examples/stdio-kinds` prints what
//! `fd_fdstat_get` and `fd_filestat_get` say and wasi-libc's `isatty`
//! rule). The expected lines are checked against wasmtime (PyPI, pinned,
//! see `support/toolchains.rs`) under the same redirections.

#![forbid(unsafe_code)]

#[allow(dead_code)]
#[path = "support/toolchains.rs"]
mod toolchains;

use std::process::{Command, Stdio};

/// wasmtime, or `None` after saying why (a failure under `CI=true`).
fn wasmtime() -> Option<toolchains::Wasmtime> {
    match toolchains::Wasmtime::new() {
        Ok(w) => Some(w),
        Err(e) => {
            assert!(std::env::var("CI").as_deref() != Ok("true"), "{e}");
            eprintln!("not compared with wasmtime: {e}");
            None
        }
    }
}

fn example(name: &str) -> String {
    match basalt::guest::examples() {
        Ok(dir) => dir.join(format!("{name}.wasm")).display().to_string(),
        Err(e) => panic!("{e}"),
    }
}

/// The ways the tests run the program: hosted, and in a VM of each ISA.
const MODES: [&[&str]; 3] = [&["--hosted"], &["--arch", "x86_64"], &["--arch", "aarch64"]];

fn line(stream: &str, terminal: bool) -> String {
    let (kind, yes) = if terminal {
        ("character-device", "yes")
    } else {
        ("unknown", "no")
    };
    format!(
        "{stream}: fdstat {kind} (errno 0), filestat {kind} (errno 0), seek/tell no, terminal {yes}"
    )
}

fn expected(terminals: [bool; 3]) -> String {
    ["stdin", "stdout", "stderr"]
        .iter()
        .zip(terminals)
        .map(|(s, t)| line(s, t) + "\n")
        .collect()
}

#[test]
fn pipes_and_files_are_not_terminals() {
    let wasm = example("stdio-kinds");
    let dir = tempfile::tempdir().expect("scratch directory");
    if let Some(wasmtime) = wasmtime() {
        let out_path = dir.path().join("wasmtime.txt");
        let out_file = std::fs::File::create(&out_path).expect("create wasmtime.txt");
        let run = wasmtime
            .command(std::path::Path::new(&wasm), &[])
            .stdin(Stdio::piped())
            .stdout(out_file)
            .stderr(Stdio::piped())
            .output()
            .expect("run wasmtime");
        assert_eq!(run.status.code(), Some(0));
        let stdout = std::fs::read_to_string(&out_path).expect("read wasmtime.txt");
        assert_eq!(stdout, expected([false; 3]), "wasmtime says otherwise");
    }
    for mode in MODES {
        // stdin and stderr pipes, stdout a regular file.
        let out_path = dir.path().join("out.txt");
        let out_file = std::fs::File::create(&out_path).expect("create out.txt");
        let run = Command::new(env!("CARGO_BIN_EXE_basalt"))
            .arg("run")
            .args(mode)
            .args(["--timeout", "240", &wasm])
            .stdin(Stdio::piped())
            .stdout(out_file)
            .stderr(Stdio::piped())
            .output()
            .expect("run basalt");
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert_eq!(run.status.code(), Some(0), "{mode:?}: {stderr}");
        let stdout = std::fs::read_to_string(&out_path).expect("read out.txt");
        assert_eq!(stdout, expected([false; 3]), "{mode:?}: {stderr}");
    }
}

#[test]
fn a_terminal_is_a_terminal() {
    // `script` (util-linux, in every Debian) gives the command a
    // pseudo-terminal as stdin, stdout and stderr.
    let wasm = example("stdio-kinds");
    let mut commands: Vec<(String, String)> = MODES
        .iter()
        .map(|mode| {
            (
                format!("{mode:?}"),
                format!(
                    "{} run {} --timeout 240 {wasm}",
                    env!("CARGO_BIN_EXE_basalt"),
                    mode.join(" ")
                ),
            )
        })
        .collect();
    if let Some(wasmtime) = wasmtime() {
        let cmd = wasmtime.command(std::path::Path::new(&wasm), &[]);
        let line = std::iter::once(cmd.get_program())
            .chain(cmd.get_args())
            .map(|a| a.to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join(" ");
        let python_path = cmd
            .get_envs()
            .find(|(k, _)| *k == "PYTHONPATH")
            .and_then(|(_, v)| v)
            .map(|v| v.to_string_lossy().into_owned())
            .unwrap_or_default();
        commands.push((
            "wasmtime".into(),
            format!("PYTHONPATH={python_path} {line}"),
        ));
    }
    for (mode, command) in commands {
        let run = Command::new("script")
            .args(["-qec", &command, "/dev/null"])
            .stdin(Stdio::null())
            .output();
        let run = match run {
            Ok(run) => run,
            Err(e) if std::env::var_os("CI").is_none() => {
                eprintln!("skipped: cannot start `script` ({e}); install util-linux");
                return;
            }
            Err(e) => panic!("cannot start `script` ({e}); install util-linux"),
        };
        let stdout = String::from_utf8_lossy(&run.stdout).replace("\r\n", "\n");
        assert_eq!(run.status.code(), Some(0), "{mode:?}: {stdout}");
        assert!(
            stdout.contains(&expected([true; 3])),
            "{mode:?}: expected three terminals, got:\n{stdout}"
        );
    }
}
