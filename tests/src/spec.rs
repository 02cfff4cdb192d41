//! The Wasm 1.0/2.0 part of the official spec test suite (and the Wasm 3.0
//! proposals Basalt supports), shared by the
//! hosted run (`tests/tests/spec.rs`) and the AArch64 run under user-mode
//! QEMU (`tests/tests/spec_aarch64.rs`): where the suite is, which files are
//! in scope, and which of them may fail (and why).

use std::path::{Path, PathBuf};

use basalt::wast::Counts;

/// Files in scope that do not pass yet: the file, how many of its commands
/// fail today (more is a regression), and why. A file that fails less also
/// fails the test, so the entry gets tightened or removed. Empty: every
/// file passes.
pub const KNOWN_FAILING: &[(&str, usize, &str)] = &[];

/// File-name prefixes of Wasm 3.0 groups Basalt does not support yet (see
/// the suite's README): none. Every group is in scope: tail calls,
/// extended constants, multiple memories, 64-bit memories and tables,
/// exception handling, typed function references, GC and relaxed SIMD.
pub const WASM3_PREFIXES: &[&str] = &[];

/// Whether `file` belongs to the Wasm 1.0/2.0 groups (SIMD included) or to
/// a supported Wasm 3.0 proposal.
pub fn in_scope(file: &str) -> bool {
    let Some(stem) = file.strip_suffix(".wast") else {
        return false;
    };
    !WASM3_PREFIXES.iter().any(|p| stem.starts_with(p))
}

/// The spec suite's directory: `BASALT_SPEC_TESTSUITE`, or
/// `shared/testsuite/spec` next to the repository (or its worktree).
pub fn suite_dir() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("BASALT_SPEC_TESTSUITE") {
        return Some(PathBuf::from(dir));
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent()?;
    [
        root.join("../shared/testsuite/spec"),
        root.join("../../shared/testsuite/spec"),
    ]
    .into_iter()
    .find(|p| p.is_dir())
}

/// The in-scope `.wast` files of the suite and of its `legacy/` folder (the
/// legacy exception-handling instructions, named `legacy/…`), sorted by
/// name, optionally only
/// those whose name contains `only` (`BASALT_SPEC_ONLY`). `None`, after saying
/// so, when the suite is missing; under `CI=true` that is a failure instead.
pub fn scope_files(only: Option<&str>) -> Option<(PathBuf, Vec<String>)> {
    let Some(dir) = suite_dir().filter(|d| d.is_dir()) else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "spec test suite not found (set BASALT_SPEC_TESTSUITE)"
        );
        eprintln!("spec test suite not found; skipping (set BASALT_SPEC_TESTSUITE)");
        return None;
    };
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .expect("read suite dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|f| in_scope(f))
        .collect();
    // The legacy exception-handling scripts, as `legacy/NAME.wast`.
    if let Ok(legacy) = std::fs::read_dir(dir.join("legacy")) {
        files.extend(
            legacy
                .filter_map(|e| e.ok()?.file_name().into_string().ok())
                .filter(|f| f.ends_with(".wast"))
                .map(|f| format!("legacy/{f}")),
        );
    }
    files.retain(|f| only.is_none_or(|o| f.contains(o)));
    files.sort();
    Some((dir, files))
}

/// The failures `file` may have today (0 unless it is in [`KNOWN_FAILING`]).
pub fn allowed_failures(file: &str) -> Option<usize> {
    KNOWN_FAILING
        .iter()
        .find(|(f, _, _)| *f == file)
        .map(|(_, n, _)| *n)
}

/// Per-file results of one run of the suite, judged against
/// [`KNOWN_FAILING`]: every run (hosted, AArch64 under qemu-user, in each
/// kernel) prints and judges the same way.
#[derive(Default)]
pub struct Tally {
    total: Counts,
    regressions: Vec<String>,
    now_passing: Vec<String>,
}

impl Tally {
    /// Records `file`'s counts (`None`: the run gave no result for it) and
    /// prints them, with up to ten of its `failures` when it fails more
    /// than allowed (`all_failures`: print them whenever there are any).
    pub fn record(
        &mut self,
        file: &str,
        counts: Option<Counts>,
        failures: &[String],
        all_failures: bool,
    ) {
        let Some(counts) = counts else {
            println!("{file}: no result");
            self.regressions.push(format!("{file} (no result)"));
            return;
        };
        let known = allowed_failures(file);
        let mark = if known.is_some() {
            " (known failing)"
        } else {
            ""
        };
        println!("{file}: {counts}{mark}");
        self.total.add(counts);
        let (failed, allowed) = (counts.failed, known.unwrap_or(0));
        if all_failures || failed > allowed {
            for f in failures.iter().take(10) {
                println!("  {file}:{f}");
            }
        }
        if failed > allowed {
            self.regressions
                .push(format!("{file} ({failed} failures, {allowed} allowed)"));
        }
        if failed < allowed {
            self.now_passing
                .push(format!("{file} ({failed} failures, {allowed} allowed)"));
        }
    }

    /// Prints the total for `what` (`files` files) and fails the test on any
    /// file failing more than allowed, or less (then [`KNOWN_FAILING`] is to
    /// be tightened).
    pub fn finish(self, what: &str, files: usize) {
        println!("{what}: {} over {files} files", self.total);
        assert!(
            self.regressions.is_empty(),
            "failing spec files ({what}): {:?}",
            self.regressions
        );
        assert!(
            self.now_passing.is_empty(),
            "fewer failures than KNOWN_FAILING allows ({what}), tighten it: {:?}",
            self.now_passing
        );
    }
}
