//! The component model's reference tests (`basalt_tests::component_model`)
//! through `basalt wast`: hosted on this machine, with the CLI built for
//! AArch64 under user-mode QEMU, and inside the booted kernel of each ISA
//! (`basalt wast --in-vm`: every script in one VM, the kernel's component
//! runtime and its compiled fused adapters). Every command passes but the
//! [`KNOWN_FAILING`] ones, each with its reason; one of those passing
//! fails the test too, so the list only shrinks.
//! `cargo test -p basalt-tests --test component_model -- --nocapture`
//! prints per-file counts.

#![forbid(unsafe_code)]

use basalt::wast::{self, Counts};
use basalt_tests::aarch64_host;
use basalt_tests::component_model::{KNOWN_FAILING, files, judge, suite_dir};

fn suite() -> Option<(std::path::PathBuf, Vec<String>)> {
    let Some(dir) = suite_dir() else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "component-model test suite not found (set BASALT_COMPONENT_TESTSUITE)"
        );
        eprintln!("component-model test suite not found; skipping");
        return None;
    };
    let files = files(&dir);
    assert!(!files.is_empty(), "no component-model scripts in {dir:?}");
    Some((dir, files))
}

fn finish(what: &str, unexpected: Vec<String>, fixed: Vec<&str>, total: Counts) {
    println!("{what}: {total}; known failing: {}", KNOWN_FAILING.len());
    assert!(
        unexpected.is_empty(),
        "{what}: unexpected failures:\n{}",
        unexpected.join("\n")
    );
    assert!(
        fixed.is_empty(),
        "{what}: these pass now, remove them from KNOWN_FAILING: {fixed:?}"
    );
}

#[test]
fn component_model_reference_tests() {
    let Some((dir, files)) = suite() else {
        return;
    };
    let engine = wast::engine().expect("hosted engine");
    let (mut unexpected, mut fixed, mut total) = (Vec::new(), Vec::new(), Counts::default());
    for file in &files {
        let report = wast::run_file(&engine, &dir.join(file));
        println!("{file}: {}", report.counts);
        let (u, f) = judge(file, &report.failures);
        unexpected.extend(u);
        fixed.extend(f);
        total.add(report.counts);
    }
    finish("component model (hosted)", unexpected, fixed, total);
}

#[cfg(not(target_arch = "aarch64"))]
#[test]
fn component_model_reference_tests_on_aarch64_under_qemu() {
    let missing = aarch64_host::missing();
    if !missing.is_empty() {
        let msg = format!("the AArch64 run needs {missing:?}; run scripts/setup.sh");
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg}");
        eprintln!("{msg}; skipping");
        return;
    }
    let Some((dir, files)) = suite() else {
        return;
    };
    let bin = aarch64_host::cross_build();
    let out = aarch64_host::run_under_qemu(&bin, &dir, &files);
    let (results, failures) = aarch64_host::parse_report(&out, &files);
    let (mut unexpected, mut fixed, mut total) = (Vec::new(), Vec::new(), Counts::default());
    for file in &files {
        let Some(counts) = results.get(file.as_str()) else {
            unexpected.push(format!("{file}: no result"));
            continue;
        };
        let none = Vec::new();
        let (u, f) = judge(file, failures.get(file.as_str()).unwrap_or(&none));
        unexpected.extend(u);
        fixed.extend(f);
        total.add(*counts);
    }
    finish(
        "component model (AArch64, qemu-user)",
        unexpected,
        fixed,
        total,
    );
}

/// Every script in one VM of `arch`.
fn in_vm(arch: basalt::guest::GuestArch) {
    let Some((dir, files)) = suite() else {
        return;
    };
    let kernel = basalt::guest::kernel(arch, false).expect("build the kernel");
    let engine = basalt::spec_batch::guest_engine(arch).expect("guest engine");
    let paths: Vec<std::path::PathBuf> = files.iter().map(|f| dir.join(f)).collect();
    let reports = basalt::spec_batch::run_component_files_in_vm(&engine, arch, &kernel, &paths);
    let (mut unexpected, mut fixed, mut total) = (Vec::new(), Vec::new(), Counts::default());
    for (file, report) in files.iter().zip(&reports) {
        println!("{file} (in VM): {}", report.counts);
        let (u, f) = judge(file, &report.failures);
        unexpected.extend(u);
        fixed.extend(f);
        total.add(report.counts);
    }
    finish(
        &format!("component model (in a {} VM)", arch.name()),
        unexpected,
        fixed,
        total,
    );
}

#[test]
fn component_model_reference_tests_in_x86_64_vm() {
    in_vm(basalt::guest::GuestArch::X86_64);
}

#[test]
fn component_model_reference_tests_in_aarch64_vm() {
    in_vm(basalt::guest::GuestArch::Aarch64);
}
