//! The official WASI test suite (`shared/testsuite/wasi`): reading each
//! program's JSON, preparing its directories and judging what it did,
//! shared by every way of running it (hosted, and booted in a VM per
//! program).
//!
//! Conventions (the suite's README): for `NAME.wasm` an optional
//! `NAME.json` gives `args`, `env` (the whole environment), `dirs`
//! (preopened under their own names) or `root` (preopened as `/`),
//! `exit_code`, `stdout`, `stderr`; or a list of `operations` (`run`,
//! `wait`, `read`, and network steps with `proposals`). Programs write
//! into their directories, so every run gets a fresh copy of the fixtures,
//! with `*.cleanup` leftovers of earlier runs removed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Programs that do not pass hosted yet, with the reason. The suite test
/// fails if one of them passes (tighten the list) or another one fails.
pub const KNOWN_FAILING: &[(&str, &str)] = &[];

/// Programs that do not pass in a VM (either ISA) yet, with the reason;
/// judged as [`KNOWN_FAILING`] is.
pub const KNOWN_FAILING_IN_VM: &[(&str, &str)] = &[];

/// The suite's directory: `BASALT_WASI_TESTSUITE`, or
/// `shared/testsuite/wasi/rust/wasm32-wasip1` next to the repository (or
/// its worktree).
pub fn suite_dir() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("BASALT_WASI_TESTSUITE") {
        return Some(PathBuf::from(dir));
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent()?;
    [
        root.join("../shared/testsuite/wasi/rust/wasm32-wasip1"),
        root.join("../../shared/testsuite/wasi/rust/wasm32-wasip1"),
    ]
    .into_iter()
    .find(|p| p.is_dir())
}

// ---- a small JSON reader ---------------------------------------------------

/// A JSON value.
#[derive(Clone, Debug, PartialEq)]
pub enum Json {
    /// `null`
    Null,
    /// `true` / `false`
    Bool(bool),
    /// a number
    Number(f64),
    /// a string
    String(String),
    /// an array
    Array(Vec<Json>),
    /// an object
    Object(BTreeMap<String, Json>),
}

impl Json {
    /// Parses a whole document.
    pub fn parse(text: &str) -> Result<Json, String> {
        let mut p = Parser {
            s: text.as_bytes(),
            i: 0,
        };
        let v = p.value()?;
        p.ws();
        if p.i != p.s.len() {
            return Err(format!("trailing characters at byte {}", p.i));
        }
        Ok(v)
    }

    /// Member `key` of an object.
    pub fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(m) => m.get(key),
            _ => None,
        }
    }

    /// The string, if it is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Json::String(s) => Some(s),
            _ => None,
        }
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> Result<(), String> {
        self.ws();
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            Ok(())
        } else {
            Err(format!("expected `{}` at byte {}", c as char, self.i))
        }
    }

    fn value(&mut self) -> Result<Json, String> {
        self.ws();
        match self.s.get(self.i) {
            Some(b'{') => {
                self.i += 1;
                let mut m = BTreeMap::new();
                self.ws();
                if self.s.get(self.i) == Some(&b'}') {
                    self.i += 1;
                    return Ok(Json::Object(m));
                }
                loop {
                    self.ws();
                    let k = self.string()?;
                    self.eat(b':')?;
                    m.insert(k, self.value()?);
                    self.ws();
                    match self.s.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {
                            self.i += 1;
                            return Ok(Json::Object(m));
                        }
                        _ => return Err(format!("bad object at byte {}", self.i)),
                    }
                }
            }
            Some(b'[') => {
                self.i += 1;
                let mut v = Vec::new();
                self.ws();
                if self.s.get(self.i) == Some(&b']') {
                    self.i += 1;
                    return Ok(Json::Array(v));
                }
                loop {
                    v.push(self.value()?);
                    self.ws();
                    match self.s.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(Json::Array(v));
                        }
                        _ => return Err(format!("bad array at byte {}", self.i)),
                    }
                }
            }
            Some(b'"') => Ok(Json::String(self.string()?)),
            Some(b't') if self.s[self.i..].starts_with(b"true") => {
                self.i += 4;
                Ok(Json::Bool(true))
            }
            Some(b'f') if self.s[self.i..].starts_with(b"false") => {
                self.i += 5;
                Ok(Json::Bool(false))
            }
            Some(b'n') if self.s[self.i..].starts_with(b"null") => {
                self.i += 4;
                Ok(Json::Null)
            }
            _ => {
                let start = self.i;
                while self.i < self.s.len() && b"+-.eE0123456789".contains(&self.s[self.i]) {
                    self.i += 1;
                }
                std::str::from_utf8(&self.s[start..self.i])
                    .ok()
                    .and_then(|t| t.parse().ok())
                    .map(Json::Number)
                    .ok_or_else(|| format!("bad value at byte {start}"))
            }
        }
    }

    fn string(&mut self) -> Result<String, String> {
        self.eat(b'"')?;
        let mut out = Vec::new();
        loop {
            let Some(&c) = self.s.get(self.i) else {
                return Err("unterminated string".into());
            };
            self.i += 1;
            match c {
                b'"' => return String::from_utf8(out).map_err(|e| e.to_string()),
                b'\\' => {
                    let Some(&e) = self.s.get(self.i) else {
                        return Err("unterminated escape".into());
                    };
                    self.i += 1;
                    let ch = match e {
                        b'n' => '\n',
                        b't' => '\t',
                        b'r' => '\r',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'u' => {
                            let hex = self
                                .s
                                .get(self.i..self.i + 4)
                                .and_then(|h| std::str::from_utf8(h).ok())
                                .and_then(|h| u32::from_str_radix(h, 16).ok())
                                .ok_or("bad \\u escape")?;
                            self.i += 4;
                            char::from_u32(hex).unwrap_or('\u{fffd}')
                        }
                        other => other as char,
                    };
                    let mut buf = [0; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                }
                _ => out.push(c),
            }
        }
    }
}

// ---- what a test asks -------------------------------------------------------

/// How to run one program and what must come out.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Spec {
    /// arguments after the program name
    pub args: Vec<String>,
    /// the whole environment
    pub env: Vec<(String, String)>,
    /// fixture directories preopened under their own names
    pub dirs: Vec<String>,
    /// a fixture directory preopened as `/`
    pub root: Option<String>,
    /// the expected exit code
    pub exit_code: i32,
    /// expected standard output, if checked
    pub stdout: Option<String>,
    /// expected standard error, if checked
    pub stderr: Option<String>,
    /// why the runner cannot run it (network steps, proposals)
    pub unsupported: Option<String>,
}

fn strings(v: Option<&Json>) -> Vec<String> {
    match v {
        Some(Json::Array(a)) => a
            .iter()
            .filter_map(|s| s.as_str().map(String::from))
            .collect(),
        _ => Vec::new(),
    }
}

fn apply_run(spec: &mut Spec, j: &Json) {
    spec.args = strings(j.get("args"));
    if let Some(Json::Object(m)) = j.get("env") {
        spec.env = m
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
            .collect();
    }
    spec.dirs = strings(j.get("dirs"));
    spec.root = j.get("root").and_then(Json::as_str).map(String::from);
}

impl Spec {
    /// The spec of a JSON document (flat or `operations`).
    pub fn from_json(j: &Json) -> Spec {
        let mut spec = Spec::default();
        if let Some(Json::Array(ops)) = j.get("operations") {
            let mut out = String::new();
            let mut err = String::new();
            for op in ops {
                match op.get("type").and_then(Json::as_str) {
                    Some("run") => apply_run(&mut spec, op),
                    Some("wait") => {
                        if let Some(Json::Number(n)) = op.get("exit_code") {
                            spec.exit_code = *n as i32;
                        }
                    }
                    Some("read") => {
                        let payload = op.get("payload").and_then(Json::as_str).unwrap_or("");
                        match op.get("id").and_then(Json::as_str) {
                            Some("stderr") => err.push_str(payload),
                            _ => out.push_str(payload),
                        }
                    }
                    other => {
                        spec.unsupported =
                            Some(format!("operation {other:?} needs a network runner"));
                    }
                }
            }
            if !out.is_empty() {
                spec.stdout = Some(out);
            }
            if !err.is_empty() {
                spec.stderr = Some(err);
            }
            if let Some(Json::Array(p)) = j.get("proposals")
                && !p.is_empty()
            {
                spec.unsupported = Some(format!("proposals {p:?}"));
            }
        } else {
            apply_run(&mut spec, j);
            if let Some(Json::Number(n)) = j.get("exit_code") {
                spec.exit_code = *n as i32;
            }
            spec.stdout = j.get("stdout").and_then(Json::as_str).map(String::from);
            spec.stderr = j.get("stderr").and_then(Json::as_str).map(String::from);
        }
        spec
    }

    /// The spec of `NAME.wasm` in `suite` (defaults when it has no JSON).
    pub fn of(suite: &Path, name: &str) -> Result<Spec, String> {
        match std::fs::read_to_string(suite.join(format!("{name}.json"))) {
            Ok(text) => Json::parse(&text).map(|j| Spec::from_json(&j)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Spec::default()),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// The test programs of `suite`, sorted.
pub fn programs(suite: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(suite)
        .map(|d| {
            d.filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter_map(|f| f.strip_suffix(".wasm").map(String::from))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

// ---- fixtures ---------------------------------------------------------------

/// Copies `from` to `to` (files, directories, symbolic links), leaving out
/// `*.cleanup` leftovers; the copy is writable whatever the source's modes.
pub fn copy_fixture(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        if name.to_string_lossy().ends_with(".cleanup") {
            continue;
        }
        let (src, dst) = (entry.path(), to.join(&name));
        let t = entry.file_type()?;
        if t.is_dir() {
            copy_fixture(&src, &dst)?;
        } else if t.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src)?, &dst)?;
        } else {
            std::fs::write(&dst, std::fs::read(&src)?)?;
        }
    }
    Ok(())
}

/// A scratch directory for one run, removed when dropped.
pub struct Scratch(pub PathBuf);

impl Scratch {
    /// A fresh, empty directory named after `name`.
    pub fn new(name: &str) -> std::io::Result<Scratch> {
        let dir =
            std::env::temp_dir().join(format!("basalt-wasi-suite-{}-{name}", std::process::id()));
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        std::fs::create_dir_all(&dir)?;
        Ok(Scratch(dir))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The `--dir`s of `spec`, after copying its fixtures from `suite` into
/// `scratch`.
pub fn prepare_dirs(
    suite: &Path,
    spec: &Spec,
    scratch: &Path,
) -> std::io::Result<Vec<basalt::run::SharedDir>> {
    let mut dirs = Vec::new();
    for d in &spec.dirs {
        let copy = scratch.join(d);
        copy_fixture(&suite.join(d), &copy)?;
        dirs.push(basalt::run::SharedDir::new(copy, d.clone()));
    }
    if let Some(r) = &spec.root {
        let copy = scratch.join("root").join(r);
        copy_fixture(&suite.join(r), &copy)?;
        dirs.push(basalt::run::SharedDir::new(copy, "/"));
    }
    Ok(dirs)
}

/// What one run produced.
pub struct Ran {
    /// the exit code
    pub exit_code: i32,
    /// standard output
    pub stdout: Vec<u8>,
    /// standard error
    pub stderr: Vec<u8>,
}

/// Why `ran` does not meet `spec` (`None`: it passes).
pub fn judge(spec: &Spec, ran: &Ran) -> Option<String> {
    if ran.exit_code != spec.exit_code {
        let err = String::from_utf8_lossy(&ran.stderr);
        let last = err.lines().rev().take(4).collect::<Vec<_>>();
        return Some(format!(
            "exit code {} (expected {}); stderr ends: {:?}",
            ran.exit_code, spec.exit_code, last
        ));
    }
    if let Some(out) = &spec.stdout
        && out.as_bytes() != ran.stdout
    {
        return Some(format!(
            "stdout {:?} (expected {out:?})",
            String::from_utf8_lossy(&ran.stdout)
        ));
    }
    if let Some(err) = &spec.stderr
        && err.as_bytes() != ran.stderr
    {
        return Some(format!(
            "stderr {:?} (expected {err:?})",
            String::from_utf8_lossy(&ran.stderr)
        ));
    }
    None
}

/// Results of a whole run, judged against a known-failing list.
pub struct Tally {
    known: &'static [(&'static str, &'static str)],
    passed: usize,
    total: usize,
    regressions: Vec<String>,
    now_passing: Vec<String>,
}

impl Tally {
    /// An empty tally judged against `known` (program, reason).
    pub fn new(known: &'static [(&'static str, &'static str)]) -> Tally {
        Tally {
            known,
            passed: 0,
            total: 0,
            regressions: Vec::new(),
            now_passing: Vec::new(),
        }
    }

    /// Records and prints one program's result (`Some(reason)`: it failed).
    pub fn record(&mut self, name: &str, failure: Option<String>) {
        self.total += 1;
        let known = self.known.iter().find(|(n, _)| *n == name);
        match (&failure, known) {
            (None, None) => {
                self.passed += 1;
                println!("pass  {name}");
            }
            (None, Some(_)) => {
                self.passed += 1;
                println!("pass  {name} (listed in KNOWN_FAILING: tighten it)");
                self.now_passing.push(name.to_string());
            }
            (Some(why), Some((_, reason))) => {
                println!("fail  {name} (known: {reason}): {why}");
            }
            (Some(why), None) => {
                println!("FAIL  {name}: {why}");
                self.regressions.push(name.to_string());
            }
        }
    }

    /// Prints the total and fails on regressions or on known failures
    /// that now pass.
    pub fn finish(self, what: &str) {
        println!("{what}: {} of {} programs pass", self.passed, self.total);
        assert!(
            self.regressions.is_empty(),
            "failing WASI programs ({what}): {:?}",
            self.regressions
        );
        assert!(
            self.now_passing.is_empty(),
            "passing programs listed in KNOWN_FAILING ({what}), tighten it: {:?}",
            self.now_passing
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_both_shapes() {
        let flat = Json::parse(r#"{"root": "fs-tests.dir", "args": ["a"], "env": {"K": "V"}, "exit_code": 3, "stdout": "x\n"}"#).unwrap();
        let s = Spec::from_json(&flat);
        assert_eq!(s.root.as_deref(), Some("fs-tests.dir"));
        assert_eq!(s.args, ["a"]);
        assert_eq!(s.env, [("K".to_string(), "V".to_string())]);
        assert_eq!((s.exit_code, s.stdout.as_deref()), (3, Some("x\n")));
        let ops = Json::parse(r#"{"operations": [{"type": "run", "args": ["b"]}, {"type": "read", "id": "stdout", "payload": "hi\u0021"}, {"type": "wait", "exit_code": 1}]}"#).unwrap();
        let s = Spec::from_json(&ops);
        assert_eq!(
            (s.args.clone(), s.exit_code, s.stdout.as_deref()),
            (vec!["b".to_string()], 1, Some("hi!"))
        );
        assert!(s.unsupported.is_none());
    }
}
