//! The spec suite inside the booted x86-64 kernel under QEMU
//! (`basalt wast --in-vm`, [`basalt::spec_batch`]): out-of-bounds accesses
//! and stack overflows fault into the kernel's guard pages and come back as
//! traps through its fault handler, not through the hosted signal handler.
//!
//! One VM per file, every in-scope file (about a minute under TCG);
//! `BASALT_SPEC_ONLY` picks files by name. Modules are compiled on the host
//! and shipped in the bundle. The same known failures as the hosted run
//! apply ([`basalt_tests::spec::KNOWN_FAILING`]), with the same counts.
//! `assert_invalid` and `assert_malformed` are checked on the host (no code
//! runs for them), as are modules that do not compile.

use basalt::spec_batch;
use basalt::wast::Counts;
use basalt_tests::spec::{allowed_failures, scope_files};

#[test]
fn spec_suite_in_vm() {
    let only = std::env::var("BASALT_SPEC_ONLY").ok();
    let Some((dir, files)) = scope_files(only.as_deref()) else {
        return;
    };
    assert!(!files.is_empty(), "no spec files selected in {dir:?}");
    let kernel =
        basalt::guest::kernel(basalt::guest::GuestArch::X86_64, false).expect("build the kernel");
    let engine = spec_batch::guest_engine().expect("guest engine");
    let started = std::time::Instant::now();
    let mut total = Counts::default();
    let mut regressions = Vec::new();
    let mut now_passing = Vec::new();
    for file in &files {
        let report = spec_batch::run_file_in_vm(&engine, &kernel, &dir.join(file));
        let known = allowed_failures(file);
        println!(
            "{file} (in VM): {}{}",
            report.counts,
            if known.is_some() {
                " (known failing)"
            } else {
                ""
            }
        );
        for f in report.failures.iter().take(10) {
            println!("  {file}:{f}");
        }
        total.add(report.counts);
        let (failed, allowed) = (report.counts.failed, known.unwrap_or(0));
        if failed > allowed {
            regressions.push(format!("{file} ({failed} failures, {allowed} allowed)"));
        }
        if failed < allowed {
            now_passing.push(format!("{file} ({failed} failures, {allowed} allowed)"));
        }
    }
    println!(
        "spec in VM: {total} over {} files in {:.1} s",
        files.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        regressions.is_empty(),
        "failing spec files in the VM: {regressions:?}"
    );
    assert!(
        now_passing.is_empty(),
        "fewer failures than KNOWN_FAILING allows in the VM: {now_passing:?}"
    );
}
