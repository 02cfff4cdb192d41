//! wasmtime's WASI preview1 test programs (`shared/testsuite/wasi-p2`, the
//! `p1_*` core modules): reading the corpus's manifest, setting each run
//! up as wasmtime's harness does (fresh directories with their files,
//! argv with argv[0], the whole environment, stdin), running `basalt run`
//! on it, and judging the outcome against the run's `expect`.
//!
//! Only the runs whose `variant` starts with `core module` are read: the
//! component variants are the component model's.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
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

/// One core-module run of a program, as the manifest describes it.
#[derive(Clone, Debug)]
pub struct P1Run {
    /// the program's name (`p1_…`)
    pub name: String,
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
}

/// What the manifest holds for this test.
pub struct Corpus {
    /// the core-module runs of every `p1_*` program
    pub runs: Vec<P1Run>,
    /// the `p1_*` programs that have none, with why
    pub without: Vec<(String, String)>,
}

/// Reads the core-module runs of the corpus's manifest.
pub fn runs(corpus: &Path) -> Result<Corpus, String> {
    let text = std::fs::read_to_string(corpus.join("manifest.jsonl"))
        .map_err(|e| format!("manifest.jsonl: {e}"))?;
    let mut runs = Vec::new();
    let mut without = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let program: Value =
            serde_json::from_str(line).map_err(|e| format!("manifest line {}: {e}", n + 1))?;
        let name = str_of(&program, "name")?;
        if !name.starts_with("p1_") {
            continue;
        }
        if program.get("status").and_then(Value::as_str) == Some("skipped") {
            let why = program.get("reason").and_then(Value::as_str).unwrap_or("");
            without.push((name, format!("not built: {why}")));
            continue;
        }
        let file = str_of(&program, "file")?;
        let core: Vec<&Value> = program
            .get("runs")
            .and_then(Value::as_array)
            .map(|r| {
                r.iter()
                    .filter(|run| {
                        run.get("variant")
                            .and_then(Value::as_str)
                            .is_some_and(|v| v.starts_with("core module"))
                    })
                    .collect()
            })
            .unwrap_or_default();
        if core.is_empty() {
            without.push((name, "no core-module run (components only)".into()));
            continue;
        }
        for run in core {
            runs.push(parse_run(&name, &corpus.join(&file), run)?);
        }
    }
    Ok(Corpus { runs, without })
}

fn str_of(v: &Value, key: &str) -> Result<String, String> {
    v.get(key)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| format!("manifest: no `{key}` in {v}"))
}

fn parse_run(name: &str, wasm: &Path, run: &Value) -> Result<P1Run, String> {
    let bad = |what: &str| format!("{name}: bad `{what}` in the manifest");
    let args = run
        .get("args")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("args"))?
        .iter()
        .map(|a| a.as_str().map(str::to_string).ok_or_else(|| bad("args")))
        .collect::<Result<Vec<_>, _>>()?;
    if args.is_empty() {
        return Err(bad("args"));
    }
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
    Ok(P1Run {
        name: name.to_string(),
        wasm: wasm.to_path_buf(),
        args,
        env,
        preopens,
        terminal: note.contains("are all terminals"),
        expect: object("expect"),
    })
}

/// How one run ended.
#[derive(Debug)]
pub struct Ran {
    /// the exit code (`None`: killed by a signal or by the time limit)
    pub code: Option<i32>,
    /// what it printed on stdout
    pub stdout: String,
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
fn prepare(run: &P1Run, scratch: &Path) -> std::io::Result<Vec<PathBuf>> {
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
    run: &P1Run,
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
    cmd.current_dir(scratch.join("bin"))
        .stdin(Stdio::null())
        .stdout(file(&out_path)?)
        .stderr(file(&err_path)?);
    let t = Instant::now();
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {:?}: {e}", cmd.get_program()))?;
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
    Ok(Ran {
        code,
        stdout: read(&out_path),
        stderr: read(&err_path),
        took,
    })
}

/// Why `ran` does not meet the run's `expect` (`None`: it passes);
/// `scratch` holds the run's directories, for `host_files_after`.
pub fn judge(run: &P1Run, ran: &Ran, scratch: &Path) -> Option<String> {
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
            "exit" => {
                let code = want.as_i64().and_then(|c| i32::try_from(c).ok());
                if ran.code != code || code.is_none() {
                    why.push(format!("exit code {:?}, expected {want}", ran.code));
                }
            }
            "trap" => {
                if ran.code != Some(134) {
                    why.push(format!(
                        "exit code {:?}, expected a trap ({want})",
                        ran.code
                    ));
                }
            }
            "stdout_exact" => {
                if Some(ran.stdout.as_str()) != want.as_str() {
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
fn host_file_differs(run: &P1Run, scratch: &Path, path: &str, want: &Value) -> Option<String> {
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

    /// Records how `name` went (`failure`: why it failed).
    pub fn record(&mut self, name: &str, failure: Option<String>) {
        let known = self.known.iter().find(|(n, _)| *n == name);
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
            let seen = self.passed.iter().any(|n| n == name)
                || self.known_failing.iter().any(|(n, _)| n == name)
                || self
                    .problems
                    .iter()
                    .any(|p| p.starts_with(&format!("{name} ")));
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
