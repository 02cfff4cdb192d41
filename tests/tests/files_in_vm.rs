//! `basalt run --dir` in a VM, on both ISAs. Live (the default, virtio-9p):
//! the shared directories are preopened in `--dir` order, listed and read
//! by the program, and its writes reach the host; no path trick leaves a
//! share (`examples/confinement`, judged against wasmtime's errnos); a
//! missing directory is a clear error. Copied
//! (`--dir-mode copy`): the same program sees the same files, its writes
//! stay in the VM, and files the VM cannot hold are a clear error.

#![forbid(unsafe_code)]

use std::path::PathBuf;

use basalt::guest::GuestArch;
use basalt::run::{DirMode, RunOptions, SharedDir};
use basalt::vm::Status;
use basalt_tests::wasi_suite::Scratch;
use basalt_tests::{boot, confinement, example};

basalt_tests::on_every_isa!(
    a_live_share_is_listed_read_and_written_through,
    a_copied_share_keeps_its_changes_in_the_vm,
    hostile_paths_cannot_leave_a_live_share,
    a_missing_share_is_a_clear_error,
    files_the_vm_cannot_hold_are_a_clear_error,
);

fn a_live_share_is_listed_read_and_written_through(arch: GuestArch) {
    list_read_and_write(arch, DirMode::Live);
}

fn a_copied_share_keeps_its_changes_in_the_vm(arch: GuestArch) {
    list_read_and_write(arch, DirMode::Copy);
}

fn list_read_and_write(arch: GuestArch, mode: DirMode) {
    let scratch = Scratch::new(&format!("files-{mode:?}-{}", arch.name())).expect("scratch");
    let (a, b): (PathBuf, PathBuf) = (scratch.0.join("a"), scratch.0.join("b"));
    std::fs::create_dir_all(a.join("sub")).expect("mkdir");
    std::fs::create_dir_all(&b).expect("mkdir");
    std::fs::write(a.join("hello.txt"), "hello from the host\n").expect("write");
    std::fs::write(a.join("sub/deep.txt"), "deep\n").expect("write");
    std::os::unix::fs::symlink("hello.txt", a.join("link")).expect("symlink");
    std::fs::write(b.join("other.txt"), "second share\n").expect("write");
    let mut opts = RunOptions::new(example("ls"));
    opts.arch = arch;
    opts.dir_mode = mode;
    opts.dirs = vec![
        SharedDir::new(a.clone(), "/data"),
        SharedDir::new(b.clone(), "/other"),
    ];
    opts.args = vec![b"/data".to_vec(), b"/other/other.txt".to_vec()];
    let out = boot(opts, b"");
    out.assert_exit(0);
    assert_eq!(
        out.stdout_text(),
        "hello.txt 20\nlink@\nsub/\nsecond share\nwrote 21 bytes to /other/other.txt.new\n",
        "{}",
        out.describe()
    );
    let written = std::fs::read_to_string(b.join("other.txt.new"));
    match mode {
        // What the program wrote is on the host.
        DirMode::Live => assert_eq!(
            written.as_deref().ok(),
            Some("written in the guest\n"),
            "{}",
            out.describe()
        ),
        // What the program wrote stayed in the VM.
        DirMode::Copy => assert!(written.is_err()),
    }
}

fn hostile_paths_cannot_leave_a_live_share(arch: GuestArch) {
    let scratch = Scratch::new(&format!("files-escape-{}", arch.name())).expect("scratch");
    let (share, outside) = confinement::fixture(&scratch.0).expect("fixture");
    let mut opts = RunOptions::new(example("confinement"));
    opts.arch = arch;
    opts.dirs = vec![SharedDir::new(share.clone(), "/data")];
    opts.args = vec![b"/data".to_vec()];
    let out = boot(opts, b"");
    out.assert_exit(0);
    assert_eq!(
        out.stdout_text(),
        confinement::CONFINED,
        "{}",
        out.describe()
    );
    confinement::assert_outside_untouched(&outside);
}

fn a_missing_share_is_a_clear_error(arch: GuestArch) {
    let scratch = Scratch::new(&format!("files-missing-{}", arch.name())).expect("scratch");
    let mut opts = RunOptions::new(example("ls"));
    opts.arch = arch;
    opts.dirs = vec![SharedDir::new(scratch.0.join("no-such-dir"), "/data")];
    let r = basalt::run::run_vm(
        &opts,
        basalt::vm::VmIo {
            stdin: None,
            stdout: Box::new(std::io::sink()),
            stderr: Box::new(std::io::sink()),
        },
    );
    match r {
        Err(e) => assert!(
            e.to_string().contains("cannot share --dir") && e.to_string().contains("no-such-dir"),
            "{e}"
        ),
        Ok(r) => panic!("expected the CLI to refuse, got {:?}", r.status),
    }
}

fn files_the_vm_cannot_hold_are_a_clear_error(arch: GuestArch) {
    let scratch = Scratch::new(&format!("files-big-{}", arch.name())).expect("scratch");
    let dir = scratch.0.join("big");
    std::fs::create_dir_all(&dir).expect("mkdir");
    // 48 MiB in a 128 MiB VM: QEMU loads the bundle (on AArch64 `virt`
    // into the upper 64 MiB), but the kernel cannot also copy it into its
    // heap.
    std::fs::write(dir.join("big.bin"), vec![0x5a; 48 << 20]).expect("write");
    let mut opts = RunOptions::new(example("ls"));
    opts.arch = arch;
    opts.dir_mode = DirMode::Copy;
    opts.memory_mib = 128;
    opts.dirs = vec![SharedDir::new(dir.clone(), "/big")];
    let out = boot(opts.clone(), b"");
    match &out.report.status {
        Status::LoadError(m) => assert!(
            m.contains("--dir") && m.contains("--memory"),
            "{}",
            out.describe()
        ),
        _ => panic!("expected a load error\n{}", out.describe()),
    }
    // More than the VM's RAM: refused before booting.
    std::fs::write(dir.join("big2.bin"), vec![0xa5; 96 << 20]).expect("write");
    match basalt::run::run_vm(
        &opts,
        basalt::vm::VmIo {
            stdin: None,
            stdout: Box::new(std::io::sink()),
            stderr: Box::new(std::io::sink()),
        },
    ) {
        Err(e) => assert!(e.to_string().contains("--memory"), "{e}"),
        Ok(r) => panic!("expected the CLI to refuse, got {:?}", r.status),
    }
}
