//! wasmtime's WASI test programs (`shared/testsuite/wasi-p2`): reading the
//! corpus's manifest, setting each run up as wasmtime's harness does
//! (fresh directories with their files, argv with argv[0], the whole
//! environment, stdin: a file, a directory, or a pipe held open until the
//! program's first output; `-S` limits and `-S cwd`; a stdout the runner
//! closes after its first read), running `basalt run` on it, and judging
//! the outcome against the run's `expect`. [`Which`] picks the programs: the
//! `p1_*` core modules, the same programs as components (through
//! wasmtime's preview1 adapter), or the `p2_*` components.

// Each test binary uses its own subset.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

/// The corpus: `BASALT_WASI_P2_TESTSUITE`, or `shared/testsuite/wasi-p2`
/// next to the repository (or to its worktree).
pub fn corpus_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("BASALT_WASI_P2_TESTSUITE") {
        return Some(PathBuf::from(dir));
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent()?;
    [
        root.join("../shared/testsuite/wasi-p2"),
        root.join("../../shared/testsuite/wasi-p2"),
    ]
    .into_iter()
    .find(|p| p.join("manifest.jsonl").is_file())
}

/// A file a run's preopen starts with.
#[derive(Clone, Debug)]
pub enum Fixture {
    /// a directory
    Dir,
    /// a file with these contents; `extreme_mtime`: its times are set as
    /// far in the past as the host allows (the harness's
    /// `prepare_extreme_mtime_fixture`)
    File {
        /// the file's text
        content: String,
        /// set its access and modification times far in the past
        extreme_mtime: bool,
    },
}

/// One preopened directory of a run.
#[derive(Clone, Debug)]
pub struct Preopen {
    /// the name the program sees
    pub guest: String,
    /// `FsPerms::ReadOnly` upstream: `--dir-ro`
    pub read_only: bool,
    /// what it holds at the start, by relative path
    pub contents: BTreeMap<String, Fixture>,
}

/// What a run's stdin is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StdinSpec {
    /// closed (`/dev/null`)
    Closed,
    /// a file holding this text
    Text(String),
    /// an open directory (reads fail with `EISDIR`)
    Directory,
    /// a pipe the runner holds open until it has read the program's first
    /// output, then closes
    HeldOpen,
}

/// One run of a program, as the manifest describes it.
#[derive(Clone, Debug)]
pub struct CorpusRun {
    /// the program's name (`p1_…`)
    pub name: String,
    /// the program's name, and for a program with several runs `#K`, the
    /// run's place in the manifest (from 1): what the known-failing lists
    /// name
    pub label: String,
    /// the module
    pub wasm: PathBuf,
    /// argv, argv[0] first
    pub args: Vec<String>,
    /// the whole environment
    pub env: Vec<(String, String)>,
    /// the preopened directories, in descriptor order
    pub preopens: Vec<Preopen>,
    /// the harness runs it only where stdin, stdout and stderr are
    /// terminals: it runs under `script`, which gives it a pseudo-terminal
    pub terminal: bool,
    /// what must come out
    pub expect: serde_json::Map<String, Value>,
    /// what the program's stdin is
    pub stdin: StdinSpec,
    /// stdout is a pipe the runner reads this many bytes from at most,
    /// once, and then closes (the harness's `p2_cli_stdout_epipe`)
    pub stdout_closed_after: Option<usize>,
    /// `-S max-resources` (the manifest's `limits.max_resources`)
    pub max_resources: Option<u64>,
    /// `-S max-random-size` (the manifest's `limits.max_random_size`)
    pub max_random_size: Option<u64>,
    /// `-S hostcall-fuel` (the manifest's `limits.hostcall_fuel`)
    pub hostcall_fuel: Option<u64>,
    /// `-S cwd` (the manifest's `cwd`, which only wasmtime's `-Scwd` sets)
    pub cwd: Option<String>,
}

/// Which programs of the corpus to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Which {
    /// the `p1_*` programs as core modules (`_start`)
    P1Modules,
    /// the `p1_*` programs as components (module + wasmtime's adapter)
    P1Components,
    /// the `p2_*` components that need neither HTTP nor sockets
    P2,
}

/// What the manifest holds for this test.
pub struct Corpus {
    /// the runs of the programs asked for
    pub runs: Vec<CorpusRun>,
    /// the programs that have none Basalt can make, with why
    pub without: Vec<(String, String)>,
}

/// Programs whose run needs plumbing of wasmtime's harness this runner
/// does not build, with what.
const NEEDS_HARNESS: &[(&str, &str)] = &[];

/// Reads the runs of `which` programs from the corpus's manifest.
pub fn runs(corpus: &Path, which: Which) -> Result<Corpus, String> {
    let text = std::fs::read_to_string(corpus.join("manifest.jsonl"))
        .map_err(|e| format!("manifest.jsonl: {e}"))?;
    let mut runs = Vec::new();
    let mut without = Vec::new();
    let prefix = if which == Which::P2 { "p2_" } else { "p1_" };
    for (n, line) in text.lines().enumerate() {
        let program: Value =
            serde_json::from_str(line).map_err(|e| format!("manifest line {}: {e}", n + 1))?;
        let name = str_of(&program, "name")?;
        if !name.starts_with(prefix) {
            continue;
        }
        if program.get("status").and_then(Value::as_str) == Some("skipped") {
            let why = program.get("reason").and_then(Value::as_str).unwrap_or("");
            without.push((name, format!("not built: {why}")));
            continue;
        }
        let needs: Vec<&str> = program
            .get("needs")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        if which == Which::P2 {
            let world = program.get("world").and_then(Value::as_str).unwrap_or("");
            if world.starts_with("http-proxy")
                || needs.contains(&"http-outgoing")
                || name.starts_with("p2_http_")
                || name.contains("serve")
            {
                without.push((name, "uses wasi:http: wasi_http.rs runs it".into()));
                continue;
            }
            if !needs.is_empty() {
                without.push((
                    name,
                    format!(
                        "uses wasi:sockets ({}): wasi_sockets.rs runs it",
                        needs.join(", ")
                    ),
                ));
                continue;
            }
        }
        let file = match which {
            Which::P1Components => str_of(&program, "component_file")?,
            _ => str_of(&program, "file")?,
        };
        let chosen: Vec<&Value> = program
            .get("runs")
            .and_then(Value::as_array)
            .map(|r| {
                r.iter()
                    // `wasmtime run --invoke` prints the result, and
                    // `-Wtimeout` takes sub-second deadlines: wasmtime's
                    // own CLI, left to the known-failing lists below
                    .filter(|run| {
                        !run.get("host")
                            .and_then(Value::as_str)
                            .is_some_and(|h| h.contains("--invoke") || h.contains("-Wtimeout"))
                    })
                    .filter(|run| {
                        let variant = run.get("variant").and_then(Value::as_str).unwrap_or("");
                        match which {
                            Which::P1Modules => variant.starts_with("core module"),
                            Which::P1Components => variant.starts_with("component"),
                            Which::P2 => true,
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
        if chosen.is_empty() {
            without.push((name, "no run of this kind".into()));
            continue;
        }
        if let Some((_, why)) = NEEDS_HARNESS.iter().find(|(n, _)| *n == name) {
            without.push((name, why.to_string()));
            continue;
        }
        if program
            .get("world")
            .and_then(Value::as_str)
            .is_some_and(|w| w.starts_with("other"))
        {
            without.push((
                name,
                "a reactor: wasmtime's harness calls its exports itself".into(),
            ));
            continue;
        }
        let all = program
            .get("runs")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let several = chosen.len() > 1;
        for run in chosen {
            let label = match all.iter().position(|r| std::ptr::eq(r, run)) {
                Some(k) if several => format!("{name}#{}", k + 1),
                _ => name.clone(),
            };
            let mut parsed = parse_run(&name, &corpus.join(&file), run)?;
            parsed.label = label;
            runs.push(parsed);
        }
    }
    Ok(Corpus { runs, without })
}

/// The first `"quoted"` text in `s`.
fn quoted(s: &str) -> Option<String> {
    let start = s.find('"')? + 1;
    let end = start + s[start..].find('"')?;
    Some(s[start..end].to_string())
}

/// What a manifest `stdin` gives the program: the text of a pipe
/// (`pipe: "TEXT" … then EOF`, `pipe containing "TEXT" then EOF`), a
/// directory (`an open DIRECTORY fd …`), a pipe `kept OPEN until the test
/// has read stdout`, or nothing (closed, `/dev/null`).
fn stdin_of(run: &Value) -> StdinSpec {
    let Some(s) = run.get("stdin").and_then(Value::as_str) else {
        return StdinSpec::Closed;
    };
    if s.contains("DIRECTORY") {
        StdinSpec::Directory
    } else if s.starts_with("pipe") && s.contains("kept OPEN") {
        StdinSpec::HeldOpen
    } else if s.starts_with("pipe") {
        quoted(s).map_or(StdinSpec::Closed, StdinSpec::Text)
    } else {
        StdinSpec::Closed
    }
}

/// The note's `reads <=N bytes then closes its end`: the harness reads at
/// most N bytes of stdout, once, and closes the pipe.
fn stdout_closed_after(note: &str) -> Option<usize> {
    let rest = note.split_once("reads <=")?.1;
    let (n, rest) = rest.split_once(" bytes")?;
    rest.trim_start()
        .starts_with("then closes")
        .then(|| n.parse().ok())?
}

fn str_of(v: &Value, key: &str) -> Result<String, String> {
    v.get(key)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| format!("manifest: no `{key}` in {v}"))
}

/// The manifest's shorthand for long text: `<'a' repeated 1024 times>` in
/// an argument, `'a' repeated 262144 times (…)` as expected output.
fn expand(s: &str) -> String {
    let t = s.trim_start_matches('<');
    let Some(rest) = t.strip_prefix('\'') else {
        return s.to_string();
    };
    let Some((unit, rest)) = rest.split_once("' repeated ") else {
        return s.to_string();
    };
    let Some((n, _)) = rest.split_once(" times") else {
        return s.to_string();
    };
    match n.parse::<usize>() {
        Ok(n) => unit.repeat(n),
        Err(_) => s.to_string(),
    }
}

fn parse_run(name: &str, wasm: &Path, run: &Value) -> Result<CorpusRun, String> {
    let bad = |what: &str| format!("{name}: bad `{what}` in the manifest");
    let args = run
        .get("args")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("args"))?
        .iter()
        .map(|a| a.as_str().map(expand).ok_or_else(|| bad("args")))
        .collect::<Result<Vec<_>, _>>()?;
    // The library harness runs some commands with no argv at all; argv[0]
    // is the program's name here.
    let args = if args.is_empty() {
        vec![name.to_string()]
    } else {
        args
    };
    let env = run
        .get("env")
        .and_then(Value::as_object)
        .ok_or_else(|| bad("env"))?
        .iter()
        .map(|(k, v)| Ok((k.clone(), v.as_str().ok_or_else(|| bad("env"))?.to_string())))
        .collect::<Result<Vec<_>, String>>()?;
    let mut preopens = Vec::new();
    for p in run
        .get("preopens")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("preopens"))?
    {
        let guest = str_of(p, "guest")?;
        let perms = str_of(p, "perms")?;
        let mut contents = BTreeMap::new();
        if let Some(c) = p.get("contents").and_then(Value::as_object) {
            for (path, what) in c {
                let fixture = match what {
                    Value::String(s) => Fixture::File {
                        content: s.clone(),
                        extreme_mtime: false,
                    },
                    Value::Object(o) if o.get("dir").and_then(Value::as_bool) == Some(true) => {
                        Fixture::Dir
                    }
                    Value::Object(o) => Fixture::File {
                        content: o
                            .get("content")
                            .and_then(Value::as_str)
                            .ok_or_else(|| bad("contents"))?
                            .to_string(),
                        extreme_mtime: o.contains_key("mtime"),
                    },
                    _ => return Err(bad("contents")),
                };
                contents.insert(path.trim_end_matches('/').to_string(), fixture);
            }
        }
        preopens.push(Preopen {
            guest,
            read_only: perms.starts_with("read-only"),
            contents,
        });
    }
    let note = run.get("note").and_then(Value::as_str).unwrap_or("");
    let object = |key: &str| {
        run.get(key)
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    };
    let limit = |key: &str| {
        run.get("limits")
            .and_then(|l| l.get(key))
            .and_then(Value::as_u64)
    };
    Ok(CorpusRun {
        name: name.to_string(),
        label: name.to_string(),
        wasm: wasm.to_path_buf(),
        args,
        env,
        preopens,
        terminal: note.contains("are all terminals"),
        expect: object("expect"),
        stdin: stdin_of(run),
        stdout_closed_after: stdout_closed_after(note),
        max_resources: limit("max_resources"),
        max_random_size: limit("max_random_size"),
        hostcall_fuel: limit("hostcall_fuel"),
        cwd: run.get("cwd").and_then(Value::as_str).map(str::to_string),
    })
}

/// How one run ended.
#[derive(Debug)]
pub struct Ran {
    /// the exit code (`None`: killed by a signal or by the time limit)
    pub code: Option<i32>,
    /// what it printed on stdout
    pub stdout: String,
    /// what the first read of its stdout gave, for a run whose stdout the
    /// runner reads while the program runs
    pub first_read: Option<Vec<u8>>,
    /// what it printed on stderr
    pub stderr: String,
    /// how long it took
    pub took: Duration,
}

/// The mtime wasmtime's harness gives `extreme.dat`: outside the range of
/// a WASI timestamp when the host can represent it, else 1601.
fn extreme_time() -> SystemTime {
    let far = Duration::from_secs((i64::MAX as u64).saturating_add(1));
    SystemTime::UNIX_EPOCH
        .checked_sub(far)
        .or_else(|| SystemTime::UNIX_EPOCH.checked_sub(Duration::from_secs(11_644_473_600)))
        .unwrap_or(SystemTime::UNIX_EPOCH)
}

/// Makes the run's directories under `scratch` (fresh: `pre0`, `pre1`, …)
/// and a link named argv[0] to the module in `scratch/bin`.
fn prepare(run: &CorpusRun, scratch: &Path) -> std::io::Result<Vec<PathBuf>> {
    let bin = scratch.join("bin");
    std::fs::create_dir_all(&bin)?;
    std::os::unix::fs::symlink(&run.wasm, bin.join(&run.args[0]))?;
    let mut dirs = Vec::new();
    for (i, p) in run.preopens.iter().enumerate() {
        let dir = scratch.join(format!("pre{i}"));
        std::fs::create_dir_all(&dir)?;
        for (path, fixture) in &p.contents {
            let at = dir.join(path);
            match fixture {
                Fixture::Dir => std::fs::create_dir_all(&at)?,
                Fixture::File {
                    content,
                    extreme_mtime,
                } => {
                    std::fs::write(&at, content)?;
                    if *extreme_mtime {
                        // best effort, as the harness: the host may refuse
                        let t = extreme_time();
                        let times = std::fs::FileTimes::new().set_accessed(t).set_modified(t);
                        let _ = std::fs::File::options()
                            .write(true)
                            .open(&at)
                            .and_then(|f| f.set_times(times));
                    }
                }
            }
        }
        dirs.push(dir);
    }
    Ok(dirs)
}

/// Quotes `s` for `sh`.
fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Runs `run` with `basalt run MODE…` in `scratch` (a fresh directory),
/// stopping it after `limit`.
pub fn execute(
    basalt: &Path,
    mode: &[&str],
    run: &CorpusRun,
    scratch: &Path,
    limit: Duration,
) -> Result<Ran, String> {
    let dirs = prepare(run, scratch).map_err(|e| format!("setting up: {e}"))?;
    let mut argv: Vec<String> = vec!["run".into()];
    argv.extend(mode.iter().map(|m| m.to_string()));
    for (k, v) in &run.env {
        argv.push("--env".into());
        argv.push(format!("{k}={v}"));
    }
    for (p, dir) in run.preopens.iter().zip(&dirs) {
        argv.push(if p.read_only { "--dir-ro" } else { "--dir" }.into());
        argv.push(format!("{}::{}", dir.display(), p.guest));
    }
    for (key, value) in [
        ("max-resources", run.max_resources.map(|n| n.to_string())),
        (
            "max-random-size",
            run.max_random_size.map(|n| n.to_string()),
        ),
        ("hostcall-fuel", run.hostcall_fuel.map(|n| n.to_string())),
        ("cwd", run.cwd.clone()),
    ] {
        if let Some(v) = value {
            argv.push("-S".into());
            argv.push(format!("{key}={v}"));
        }
    }
    argv.extend(run.args.iter().cloned());
    let out_path = scratch.join("stdout");
    let err_path = scratch.join("stderr");
    let file = |p: &Path| std::fs::File::create(p).map_err(|e| format!("{}: {e}", p.display()));
    let mut cmd = if run.terminal {
        // `script` (util-linux) gives the command a pseudo-terminal as
        // stdin, stdout and stderr; what it printed comes out on stdout
        let line = std::iter::once(basalt.display().to_string())
            .chain(argv)
            .map(|a| quote(&a))
            .collect::<Vec<_>>()
            .join(" ");
        let mut c = Command::new("script");
        c.args(["-qec", &line, "/dev/null"]);
        c
    } else {
        let mut c = Command::new(basalt);
        c.args(argv);
        c
    };
    let stdin = match &run.stdin {
        StdinSpec::Text(text) => {
            let path = scratch.join("stdin");
            std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
            Stdio::from(std::fs::File::open(&path).map_err(|e| format!("stdin: {e}"))?)
        }
        StdinSpec::Directory => {
            let path = scratch.join("stdin-dir");
            std::fs::create_dir_all(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            Stdio::from(std::fs::File::open(&path).map_err(|e| format!("stdin: {e}"))?)
        }
        StdinSpec::HeldOpen => Stdio::piped(),
        StdinSpec::Closed => Stdio::null(),
    };
    // Read while it runs: the first read of a held-open stdin's run, or
    // the bytes before the runner closes stdout.
    let watched = run.stdin == StdinSpec::HeldOpen || run.stdout_closed_after.is_some();
    let stdout = if watched {
        Stdio::piped()
    } else {
        Stdio::from(file(&out_path)?)
    };
    cmd.current_dir(scratch.join("bin"))
        .stdin(stdin)
        .stdout(stdout)
        .stderr(file(&err_path)?);
    let t = Instant::now();
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {:?}: {e}", cmd.get_program()))?;
    let reader = child
        .stdout
        .take()
        .map(|out| watch_stdout(out, run.stdout_closed_after));
    let mut first_read = None;
    if let Some((first, _)) = &reader {
        // The harness waits on its blocking read as long as it takes.
        first_read = first.recv_timeout(limit).ok();
        // then closes stdin: the program's next read is end of stream
        drop(child.stdin.take());
    }
    let code = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status.code(),
            Ok(None) if t.elapsed() > limit => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("waiting: {e}")),
        }
    };
    let took = t.elapsed();
    let read = |p: &Path| {
        std::fs::read(p)
            .map(|b| String::from_utf8_lossy(&b).replace("\r\n", "\n"))
            .unwrap_or_default()
    };
    let stdout = match reader {
        Some((_, rest)) => {
            let mut all = first_read.clone().unwrap_or_default();
            all.extend(rest.join().unwrap_or_default());
            String::from_utf8_lossy(&all).into_owned()
        }
        None => read(&out_path),
    };
    Ok(Ran {
        code,
        stdout,
        first_read,
        stderr: read(&err_path),
        took,
    })
}

/// Reads `out` as the harness does: one read (of at most `close_after`
/// bytes, then the pipe is closed; else of up to 4 KiB, then the rest to
/// its end). The first read comes on the channel, the rest from the
/// thread.
fn watch_stdout(
    mut out: std::process::ChildStdout,
    close_after: Option<usize>,
) -> (
    std::sync::mpsc::Receiver<Vec<u8>>,
    std::thread::JoinHandle<Vec<u8>>,
) {
    use std::io::Read;
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        let mut buf = vec![0u8; close_after.unwrap_or(4096)];
        let n = out.read(&mut buf).unwrap_or(0);
        buf.truncate(n);
        let _ = tx.send(buf);
        let mut rest = Vec::new();
        if close_after.is_none() {
            let _ = out.read_to_end(&mut rest);
        }
        // dropping `out` closes the pipe
        rest
    });
    (rx, thread)
}

/// Why `ran` does not meet the run's `expect` (`None`: it passes);
/// `scratch` holds the run's directories, for `host_files_after`.
pub fn judge(run: &CorpusRun, ran: &Ran, scratch: &Path) -> Option<String> {
    let mut why = Vec::new();
    let tail = |s: &str| {
        let start = s.len().saturating_sub(1500);
        let start = (start..s.len())
            .find(|i| s.is_char_boundary(*i))
            .unwrap_or(0);
        s[start..].to_string()
    };
    for (key, want) in &run.expect {
        match key.as_str() {
            "exit" if want.as_str().is_some_and(|w| w.starts_with("non-zero")) => {
                if matches!(ran.code, Some(0) | None) {
                    why.push(format!("exit code {:?}, expected {want}", ran.code));
                }
            }
            "exit" => {
                let code = want.as_i64().and_then(|c| i32::try_from(c).ok());
                if ran.code != code || code.is_none() {
                    why.push(format!("exit code {:?}, expected {want}", ran.code));
                }
            }
            "interrupted" => {
                if ran.code != Some(124) {
                    why.push(format!(
                        "exit code {:?}, expected an interruption (124)",
                        ran.code
                    ));
                }
            }
            "error_contains" | "trap_message" => {
                // one text, or a list of texts that must all be there
                let wants: Vec<&Value> = match want {
                    Value::Array(all) => all.iter().collect(),
                    one => vec![one],
                };
                for w in wants {
                    if !w.as_str().is_some_and(|w| ran.stderr.contains(w)) {
                        why.push(format!("stderr lacks {w}"));
                    }
                }
            }
            "stdout_first_read" => {
                let expected = want.as_str().and_then(quoted);
                let got = ran.first_read.as_deref();
                if expected.is_none() || got != expected.as_deref().map(str::as_bytes) {
                    why.push(format!(
                        "the first read of stdout gave {:?}, expected {want}",
                        got.map(String::from_utf8_lossy)
                    ));
                }
            }
            // what wasmtime's harness does not check, or prose
            "stderr" | "meaning" | "stdout" => {}
            "trap" => {
                if ran.code != Some(134) {
                    why.push(format!(
                        "exit code {:?}, expected a trap ({want})",
                        ran.code
                    ));
                }
            }
            "stdout_exact" => {
                if Some(ran.stdout.as_str()) != want.as_str().map(expand).as_deref() {
                    why.push(format!("stdout {:?}, expected {want}", tail(&ran.stdout)));
                }
            }
            "stderr_contains" => {
                if !want.as_str().is_some_and(|w| ran.stderr.contains(w)) {
                    why.push(format!("stderr lacks {want}"));
                }
            }
            "host_files_after" => {
                for (path, content) in want.as_object().into_iter().flatten() {
                    if let Some(e) = host_file_differs(run, scratch, path, content) {
                        why.push(e);
                    }
                }
            }
            other => why.push(format!("cannot judge the expectation `{other}`: {want}")),
        }
    }
    if why.is_empty() {
        None
    } else {
        Some(format!(
            "{}\n--- stderr ---\n{}",
            why.join("; "),
            tail(&ran.stderr)
        ))
    }
}

/// Checks one `host_files_after` entry: `GUEST/PATH` is in the preopen
/// named `GUEST`, a bare name in the `.` or `/` one; `TEXT (unchanged)`
/// means the file still holds what it started with.
fn host_file_differs(run: &CorpusRun, scratch: &Path, path: &str, want: &Value) -> Option<String> {
    let (guest, rel) = match path.split_once('/') {
        Some((g, r)) if run.preopens.iter().any(|p| p.guest == g) => (g, r),
        _ => (
            run.preopens
                .iter()
                .map(|p| p.guest.as_str())
                .find(|g| *g == "." || *g == "/")
                .unwrap_or("."),
            path,
        ),
    };
    let Some(i) = run.preopens.iter().position(|p| p.guest == guest) else {
        return Some(format!("host_files_after: no preopen for {path}"));
    };
    let Some(want) = want.as_str() else {
        return Some(format!("host_files_after: {path}: not a string"));
    };
    let want = want.strip_suffix(" (unchanged)").unwrap_or(want);
    match std::fs::read(scratch.join(format!("pre{i}")).join(rel)) {
        Ok(got) if got == want.as_bytes() => None,
        Ok(got) => Some(format!(
            "{path} holds {:?}, expected {want:?}",
            String::from_utf8_lossy(&got)
        )),
        Err(e) => Some(format!("{path}: {e}")),
    }
}

/// How a set of runs went, against the lists of runs that do not pass yet.
pub struct Tally {
    what: String,
    known: &'static [(&'static str, &'static str)],
    ran: Vec<(String, String)>,
    passed: Vec<String>,
    known_failing: Vec<(String, String)>,
    skipped: Vec<(String, String)>,
    problems: Vec<String>,
}

impl Tally {
    /// An empty tally of `what`, judged against `known` (program, reason).
    pub fn new(what: &str, known: &'static [(&'static str, &'static str)]) -> Tally {
        Tally {
            what: what.to_string(),
            known,
            ran: Vec::new(),
            passed: Vec::new(),
            known_failing: Vec::new(),
            skipped: Vec::new(),
            problems: Vec::new(),
        }
    }

    /// Records that `name` was not run, and why.
    pub fn skip(&mut self, name: &str, why: &str) {
        self.skipped.push((name.to_string(), why.to_string()));
    }

    /// Records how run `label` of program `name` went (`failure`: why it
    /// failed); a listed program name stands for all its runs.
    pub fn record(&mut self, name: &str, label: &str, failure: Option<String>) {
        self.ran.push((name.to_string(), label.to_string()));
        let known = self.known.iter().find(|(n, _)| *n == label || *n == name);
        let name = label;
        match (failure, known) {
            (None, None) => self.passed.push(name.to_string()),
            (None, Some(_)) => self.problems.push(format!(
                "{name} passes but is listed as failing: take it off the list"
            )),
            (Some(_), Some((_, reason))) => self
                .known_failing
                .push((name.to_string(), reason.to_string())),
            (Some(why), None) => self.problems.push(format!("{name} FAILS: {why}")),
        }
    }

    /// Prints the summary; panics on an unlisted failure, a listed pass, or
    /// a listed program that was not run.
    pub fn finish(mut self, started: Instant) {
        for (name, _) in self.known {
            let seen = self.ran.iter().any(|(n, l)| n == name || l == name);
            if !seen {
                self.problems
                    .push(format!("{name} is listed as failing but was not run"));
            }
        }
        println!(
            "{}: {} passed, {} known failing, {} skipped, {} problems, in {:.1} s",
            self.what,
            self.passed.len(),
            self.known_failing.len(),
            self.skipped.len(),
            self.problems.len(),
            started.elapsed().as_secs_f64()
        );
        for (name, why) in &self.known_failing {
            println!("  known failing: {name}: {why}");
        }
        for (name, why) in &self.skipped {
            println!("  skipped: {name}: {why}");
        }
        assert!(
            self.problems.is_empty(),
            "{}:\n{}",
            self.what,
            self.problems.join("\n\n")
        );
    }
}

// ---- running a set ---------------------------------------------------------

/// How long one run may take (a VM under TCG on a loaded 2-core machine
/// included).
const LIMIT: Duration = Duration::from_secs(180);

fn basalt() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_basalt"))
}

/// Whether `script` (util-linux) can give a run a terminal.
fn have_script() -> bool {
    Command::new("script")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Runs every run of `which` programs with `basalt run MODE…`, `jobs` at
/// a time (`BASALT_P1_JOBS`, default one per CPU, at most 4), and judges
/// them against `known` (`BASALT_P1_ONLY=a,b` runs only those programs).
pub fn run_all(
    what: &str,
    which: Which,
    mode: &[&str],
    known: &'static [(&'static str, &'static str)],
) {
    let only = std::env::var("BASALT_P1_ONLY").ok();
    run_selected(what, which, mode, known, only.as_deref());
}

/// [`run_all`] for the programs `only` names (separated by commas), all
/// of which must pass.
pub fn run_selected(
    what: &str,
    which: Which,
    mode: &[&str],
    known: &'static [(&'static str, &'static str)],
    only: Option<&str>,
) {
    let Some(dir) = corpus_dir() else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "wasmtime's WASI test programs not found (set BASALT_WASI_P2_TESTSUITE)"
        );
        eprintln!(
            "{what}: wasmtime's WASI test programs not found; skipped (set BASALT_WASI_P2_TESTSUITE)"
        );
        return;
    };
    let Corpus { runs, without } = runs(&dir, which).unwrap_or_else(|e| panic!("{e}"));
    let wanted = |name: &str| only.is_none_or(|o| o.split(',').any(|n| n == name));
    let started = Instant::now();
    let mut tally = Tally::new(what, if only.is_some() { &[] } else { known });
    for (name, why) in &without {
        tally.skip(name, why);
    }
    let script = have_script();
    let mut todo: Vec<&CorpusRun> = Vec::new();
    for run in runs.iter().filter(|r| wanted(&r.name)) {
        if run.terminal && !script {
            tally.skip(
                &run.name,
                "needs a terminal, and `script` (util-linux) is missing",
            );
        } else {
            todo.push(run);
        }
    }
    let jobs = std::env::var("BASALT_P1_JOBS")
        .ok()
        .and_then(|j| j.parse().ok())
        .filter(|j| *j > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get().min(4)));
    let next = AtomicUsize::new(0);
    let results = Mutex::new(Vec::new());
    let scratch = tempfile::Builder::new()
        .prefix("basalt-p1-")
        .tempdir()
        .expect("scratch directory");
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| {
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(run) = todo.get(i) else { break };
                    let dir = scratch.path().join(format!("{i}-{}", run.name));
                    let failure = match execute(basalt(), mode, run, &dir, LIMIT) {
                        Ok(ran) => {
                            println!("{what}: {:>6.1} s  {}", ran.took.as_secs_f64(), run.label);
                            judge(run, &ran, &dir)
                        }
                        Err(e) => Some(format!("not run: {e}")),
                    };
                    if let Ok(mut r) = results.lock() {
                        r.push((i, failure));
                    }
                }
            });
        }
    });
    let mut results = results.into_inner().unwrap_or_default();
    results.sort_by_key(|(i, _)| *i);
    for (i, failure) in results {
        tally.record(&todo[i].name, &todo[i].label, failure);
    }
    tally.finish(started);
}
