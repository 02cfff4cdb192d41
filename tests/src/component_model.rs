//! The component model's reference tests (`shared/testsuite/component-model/test`):
//! which scripts run, and which of their commands are known not to pass.
//!
//! The groups of WASI 0.2's component model run: `binary`, `validation`,
//! `values`, `resources` and `linking`, minus the scripts the suite's own
//! `nyi.txt` lists. `async` belongs to WASI 0.3.

use std::path::{Path, PathBuf};

/// The groups that run.
pub const GROUPS: &[&str] = &["binary", "validation", "values", "resources", "linking"];

/// Commands known not to pass, as `file:line`, with the reason. The test
/// fails when one of them passes (shrink the list) or another one fails.
pub const KNOWN_FAILING: &[(&str, &str)] = &[
    (
        "binary/binary.wast:974",
        "the suite is ahead of wasmparser 0.263, the newest release: it still rejects the \
         byte that component-model#716 made valid",
    ),
    (
        "validation/kebab.wast:4",
        "the suite is ahead of wasmparser 0.263, the newest release: it still treats `a1` and \
         `a-1` as conflicting names",
    ),
    (
        "values/variants.wast:186",
        "`task.return` and async lowering are component-model async (WASI 0.3)",
    ),
];

/// The suite's `test/` directory: `BASALT_COMPONENT_TESTSUITE`, or
/// `shared/testsuite/component-model/test` next to the repository.
pub fn suite_dir() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("BASALT_COMPONENT_TESTSUITE") {
        return Some(PathBuf::from(dir));
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent()?;
    [
        root.join("../shared/testsuite/component-model/test"),
        root.join("../../shared/testsuite/component-model/test"),
    ]
    .into_iter()
    .find(|p| p.is_dir())
}

/// The scripts to run, relative to [`suite_dir`], sorted.
pub fn files(dir: &Path) -> Vec<String> {
    let nyi: Vec<String> = std::fs::read_to_string(dir.join("nyi.txt"))
        .unwrap_or_default()
        .lines()
        .map(|l| l.trim().trim_start_matches("./").to_string())
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let mut files = Vec::new();
    for g in GROUPS {
        let Ok(entries) = std::fs::read_dir(dir.join(g)) else {
            continue;
        };
        for e in entries.flatten() {
            let name = format!("{g}/{}", e.file_name().to_string_lossy());
            if name.ends_with(".wast") && !nyi.contains(&name) {
                files.push(name);
            }
        }
    }
    files.sort();
    files
}

/// Judges one script's failures (`line:col: reason`): returns the
/// unexpected ones and the known ones that did not fail.
pub fn judge(file: &str, failures: &[String]) -> (Vec<String>, Vec<&'static str>) {
    let failed_lines: Vec<String> = failures
        .iter()
        .map(|f| format!("{file}:{}", f.split(':').next().unwrap_or("")))
        .collect();
    let unexpected = failures
        .iter()
        .zip(&failed_lines)
        .filter(|(_, at)| !KNOWN_FAILING.iter().any(|(k, _)| k == at))
        .map(|(f, _)| format!("{file}:{f}"))
        .collect();
    let fixed = KNOWN_FAILING
        .iter()
        .filter(|(k, _)| k.starts_with(&format!("{file}:")) && !failed_lines.iter().any(|l| l == k))
        .map(|(k, _)| *k)
        .collect();
    (unexpected, fixed)
}
