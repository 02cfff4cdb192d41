//! The spec suite inside the booted kernel (x86-64 and AArch64) under QEMU
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

#![forbid(unsafe_code)]

use basalt::guest::GuestArch;
use basalt::spec_batch;
use basalt_tests::spec::{Tally, scope_files};

#[test]
fn spec_suite_in_vm() {
    spec_suite_in_vm_on(GuestArch::X86_64);
}

#[test]
fn spec_suite_in_vm_aarch64() {
    spec_suite_in_vm_on(GuestArch::Aarch64);
}

fn spec_suite_in_vm_on(arch: GuestArch) {
    let only = std::env::var("BASALT_SPEC_ONLY").ok();
    let Some((dir, files)) = scope_files(only.as_deref()) else {
        return;
    };
    assert!(!files.is_empty(), "no spec files selected in {dir:?}");
    let kernel = basalt::guest::kernel(arch, false).expect("build the kernel");
    let engine = spec_batch::guest_engine(arch).expect("guest engine");
    let started = std::time::Instant::now();
    let mut tally = Tally::default();
    for file in &files {
        let report = spec_batch::run_file_in_vm(&engine, arch, &kernel, &dir.join(file));
        tally.record(file, Some(report.counts), &report.failures, true);
    }
    tally.finish(
        &format!(
            "spec in {} VM ({:.1} s)",
            arch.name(),
            started.elapsed().as_secs_f64()
        ),
        files.len(),
    );
}

/// A batch of another format version is refused with a load error that
/// names the version the kernel reads.
#[test]
fn a_batch_of_another_version_is_a_load_error() {
    use basalt::bundle::{Entry, write_tar};
    use basalt::guest;
    use basalt::vm::{self, Status, VmIo, VmOptions};
    let kernel = guest::kernel(GuestArch::X86_64, false).expect("build the kernel");
    let bundle = write_tar(&[
        Entry {
            path: "manifest".into(),
            data: b"version 1\nspec-batch spec.batch\n".to_vec(),
        },
        Entry {
            path: "spec.batch".into(),
            data: b"spec-batch 2\n".to_vec(),
        },
    ]);
    let opts = VmOptions {
        memory_mib: 256,
        timeout: Some(std::time::Duration::from_secs(120)),
        ..VmOptions::new(GuestArch::X86_64, kernel)
    };
    let io = VmIo {
        stdin: None,
        stdout: Box::new(std::io::sink()),
        stderr: Box::new(std::io::sink()),
    };
    let report = vm::boot(&opts, &bundle, io).expect("boot");
    match &report.status {
        Status::LoadError(m) => assert!(m.contains("`spec-batch 1`"), "{m}"),
        other => panic!(
            "expected a load error, got {other:?}\n{}",
            report.log_text()
        ),
    }
}
