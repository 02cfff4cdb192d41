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

use basalt::guest::GuestArch;
use basalt::spec_batch;
use basalt::wast::Counts;
use basalt_tests::spec::{allowed_failures, scope_files};

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
    let mut total = Counts::default();
    let mut regressions = Vec::new();
    let mut now_passing = Vec::new();
    for file in &files {
        let report = spec_batch::run_file_in_vm(&engine, arch, &kernel, &dir.join(file));
        let known = allowed_failures(file);
        println!(
            "{file} (in {} VM): {}{}",
            arch.name(),
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
        "spec in {} VM: {total} over {} files in {:.1} s",
        arch.name(),
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

/// A batch of another format version is refused with a load error that
/// names the version the kernel reads.
#[test]
fn a_batch_of_another_version_is_a_load_error() {
    use basalt::bundle::{Entry, write_tar};
    use basalt::guest;
    use basalt::vm::{self, Accel, Machine, Status, VmIo, VmOptions};
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
        arch: GuestArch::X86_64,
        machine: Machine::Q35,
        accel: Accel::Tcg,
        memory_mib: 256,
        kernel,
        verbose: false,
        timeout: Some(std::time::Duration::from_secs(120)),
        kernel_cmdline: None,
        exit_device: true,
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
