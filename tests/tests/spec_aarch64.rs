//! The Wasm 1.0/2.0 spec suite (SIMD included) on AArch64: the `basalt`
//! CLI is cross-built for `aarch64-unknown-linux-gnu` and `basalt wast` runs
//! the scripts under user-mode QEMU (`qemu-aarch64`), so the AArch64 code
//! generator, the entry and trap-landing assembly and the hosted signal
//! handling are executed, not just compiled.
//!
//! The expectations are the hosted run's ([`basalt_tests::spec`]): a file in
//! `KNOWN_FAILING` may fail up to its recorded count, every other one must
//! pass completely. `scripts/setup.sh` installs the Rust target, the cross
//! linker and libc and `qemu-aarch64`; without them the test says so and
//! skips, or fails under `CI=true`. The cross build goes to
//! `target/aarch64-host`. `BASALT_SPEC_ONLY=simd_` picks files by name;
//! `cargo test -p basalt-tests --test spec_aarch64 -- --nocapture` prints
//! per-file counts and a total. An AArch64 host runs the suite natively in
//! `spec.rs` instead.

#![forbid(unsafe_code)]
#![cfg(not(target_arch = "aarch64"))]

use basalt_tests::aarch64_host::{
    LINKER, QEMU, SYSROOT, TARGET, cross_build, missing, parse_report, run_under_qemu,
};
use basalt_tests::spec::{Tally, scope_files};

#[test]
fn spec_suite_on_aarch64_under_qemu() {
    let ci = std::env::var("CI").as_deref() == Ok("true");
    let missing = missing();
    if !missing.is_empty() {
        let msg = format!(
            "the AArch64 spec run needs {QEMU}, {LINKER}, {SYSROOT} and the Rust target \
             {TARGET} (missing: {missing:?}); run scripts/setup.sh"
        );
        assert!(!ci, "{msg}");
        eprintln!("{msg}; skipping");
        return;
    }
    let only = std::env::var("BASALT_SPEC_ONLY").ok();
    let Some((dir, files)) = scope_files(only.as_deref()) else {
        return;
    };
    assert!(!files.is_empty(), "no in-scope spec scripts in {dir:?}");

    let bin = cross_build();
    let out = run_under_qemu(&bin, &dir, &files);
    let (results, failures) = parse_report(&out, &files);

    let mut tally = Tally::default();
    for file in &files {
        let none = Vec::new();
        let file_failures = failures.get(file.as_str()).unwrap_or(&none);
        tally.record(
            file,
            results.get(file.as_str()).copied(),
            file_failures,
            false,
        );
    }
    tally.finish("spec total on AArch64 (qemu-user)", files.len());
}
