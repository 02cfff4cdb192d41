//! `basalt run --dir` in a VM, on both ISAs: the shared directories are
//! packed into the bundle, preopened in `--dir` order, listed and read by
//! the program; its writes stay in the VM; files the VM cannot hold are a
//! clear error.

use std::path::PathBuf;

use basalt::guest::GuestArch;
use basalt::run::RunOptions;
use basalt::vm::Status;
use basalt_tests::wasi_suite::Scratch;
use basalt_tests::{boot, example};

basalt_tests::on_every_isa!(
    a_shared_directory_is_listed_and_read,
    files_the_vm_cannot_hold_are_a_clear_error,
);

fn a_shared_directory_is_listed_and_read(arch: GuestArch) {
    let scratch = Scratch::new(&format!("files-{}", arch.name())).expect("scratch");
    let (a, b): (PathBuf, PathBuf) = (scratch.0.join("a"), scratch.0.join("b"));
    std::fs::create_dir_all(a.join("sub")).expect("mkdir");
    std::fs::create_dir_all(&b).expect("mkdir");
    std::fs::write(a.join("hello.txt"), "hello from the host\n").expect("write");
    std::fs::write(a.join("sub/deep.txt"), "deep\n").expect("write");
    std::os::unix::fs::symlink("hello.txt", a.join("link")).expect("symlink");
    std::fs::write(b.join("other.txt"), "second share\n").expect("write");
    let mut opts = RunOptions::new(example("ls"));
    opts.arch = arch;
    opts.dirs = vec![(a.clone(), "/data".into()), (b.clone(), "/other".into())];
    opts.args = vec![b"/data".to_vec(), b"/other/other.txt".to_vec()];
    let out = boot(opts, b"");
    out.assert_exit(0);
    assert_eq!(
        out.stdout_text(),
        "hello.txt 20\nlink@\nsub/\nsecond share\nwrote 21 bytes to /other/other.txt.new\n",
        "{}",
        out.describe()
    );
    // What the program wrote stayed in the VM.
    assert!(!b.join("other.txt.new").exists());
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
    opts.memory_mib = 128;
    opts.dirs = vec![(dir.clone(), "/big".into())];
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
