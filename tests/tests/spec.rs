//! The official WebAssembly spec test suite (Wasm 1.0/2.0, SIMD included),
//! run hosted through `basalt wast`'s runner ([`basalt::wast`]).
//!
//! The suite is read from `BASALT_SPEC_TESTSUITE`, or from
//! `shared/testsuite/spec` next to the repository. Every `.wast` file of the
//! 1.0/2.0 groups runs; the files in [`basalt_tests::spec::KNOWN_FAILING`]
//! (shared with the AArch64 run, `spec_aarch64.rs`) may fail up to their
//! recorded count (each with the reason), every other one must pass
//! completely. Per-file counts and a total are printed
//! (`cargo test -p basalt-tests --test spec -- --nocapture`;
//! `BASALT_SPEC_ONLY=simd_` picks files by name).

#![forbid(unsafe_code)]

use basalt::wast::{self, Counts};
use basalt_tests::spec::{Tally, in_scope, scope_files, suite_dir};

#[test]
fn spec_suite() {
    let only = std::env::var("BASALT_SPEC_ONLY").ok();
    let Some((dir, files)) = scope_files(only.as_deref()) else {
        return;
    };
    assert!(
        only.is_some() || files.iter().any(|f| f.starts_with("simd_")),
        "no SIMD scripts in {dir:?}"
    );

    let engine = wast::engine().expect("hosted engine");
    let mut tally = Tally::default();
    for file in &files {
        let report = wast::run_file(&engine, &dir.join(file));
        tally.record(file, Some(report.counts), &report.failures, true);
    }
    tally.finish("spec total", files.len());
}

/// The SIMD scripts again with code for the oldest x86-64 CPU Basalt
/// supports (SSE4.1, no AVX): the hosted run above uses this machine's
/// features, which take other instruction selections.
#[cfg(target_arch = "x86_64")]
#[test]
fn simd_on_baseline_x86_64() {
    let Some(dir) = suite_dir().filter(|d| d.is_dir()) else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "spec test suite not found (set BASALT_SPEC_TESTSUITE)"
        );
        return;
    };
    let engine = wast::baseline_engine().expect("baseline engine");
    let mut files: Vec<String> = std::fs::read_dir(&dir)
        .expect("read suite dir")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|f| f.starts_with("simd_") && in_scope(f))
        .collect();
    files.sort();
    let mut total = Counts::default();
    let mut failing = Vec::new();
    for file in &files {
        let report = wast::run_file(&engine, &dir.join(file));
        if report.counts.failed > 0 {
            println!("{file} (baseline x86-64): {}", report.counts);
            for f in report.failures.iter().take(10) {
                println!("  {file}:{f}");
            }
            failing.push(file.clone());
        }
        total.add(report.counts);
    }
    println!(
        "SIMD on baseline x86-64: {total} over {} files",
        files.len()
    );
    assert!(
        failing.is_empty(),
        "failing on baseline x86-64: {failing:?}"
    );
}
