//! Boots the real kernel in QEMU with the example programs and judges
//! stdout, stderr and exit codes — the same test code for every guest ISA
//! (`x86_64::…` and `aarch64::…`), so the outputs must be identical.

#![forbid(unsafe_code)]

use basalt::guest::GuestArch;
use basalt::run::RunOptions;
use basalt::vm::Machine;
use basalt_tests::{boot, example, native_example_output};

basalt_tests::on_every_isa!(
    hello_prints_and_exits_zero,
    arguments_and_exactly_the_given_environment,
    exit_codes_reach_the_host,
    stdin_is_relayed_byte_for_byte,
    clocks_and_random_behave,
    real_crates_give_the_native_output,
    cpu_heavy_gives_the_native_output,
    a_rust_panic_is_a_trap_with_its_message_on_stderr,
    jit_compiles_in_the_guest,
);

fn options(arch: GuestArch, name: &str) -> RunOptions {
    let mut opts = RunOptions::new(example(name));
    opts.arch = arch;
    opts
}

fn boot_example(arch: GuestArch, name: &str, args: &[&str]) -> basalt_tests::Outcome {
    let mut opts = options(arch, name);
    opts.args = args.iter().map(|a| a.as_bytes().to_vec()).collect();
    boot(opts, b"")
}

fn hello_prints_and_exits_zero(arch: GuestArch) {
    let out = boot_example(arch, "hello", &[]);
    out.assert_exit(0);
    assert_eq!(
        out.stdout_text(),
        "Hello from Basalt!\n",
        "{}",
        out.describe()
    );
    assert_eq!(out.stderr_text(), "");
}

fn arguments_and_exactly_the_given_environment(arch: GuestArch) {
    let mut opts = options(arch, "args-env");
    opts.args = vec![
        b"one".to_vec(),
        b"two words".to_vec(),
        "ünï".as_bytes().to_vec(),
    ];
    opts.env = vec![b"GREETING=hi there".to_vec(), b"EMPTY=".to_vec()];
    let out = boot(opts, b"");
    out.assert_exit(0);
    let argv0 = example("args-env").display().to_string();
    let want = format!(
        "arg[0] = {argv0}\narg[1] = one\narg[2] = two words\narg[3] = ünï\nenv count = 2\nenv EMPTY=\nenv GREETING=hi there\n"
    );
    assert_eq!(out.stdout_text(), want, "{}", out.describe());
    assert_eq!(out.stderr_text(), "args-env: done\n");
}

fn exit_codes_reach_the_host(arch: GuestArch) {
    for code in [0, 3, 42, 255] {
        let out = boot_example(arch, "exit-code", &[&code.to_string()]);
        out.assert_exit(code);
        assert_eq!(
            out.stdout_text(),
            format!("exiting with {code}\n"),
            "{}",
            out.describe()
        );
        assert_eq!(out.stderr_text(), "to stderr before exit\n");
        assert_eq!(out.report.exit_code(), code);
    }
}

fn stdin_is_relayed_byte_for_byte(arch: GuestArch) {
    let input: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
    let out = boot(options(arch, "cat"), &input);
    out.assert_exit(0);
    assert_eq!(out.stdout, input, "{}", out.describe());
    assert_eq!(out.stderr_text(), "cat: 5000 bytes\n");
}

fn clocks_and_random_behave(arch: GuestArch) {
    let out = boot_example(arch, "clock-random", &[]);
    out.assert_exit(0);
    let want = "wall clock year plausible: true\nslept at least 50 ms: true\nmonotonic: true\n\
                cpu time advances while computing: true\n\
                cpu time stands still while sleeping: true\n\
                random non-zero: true\nrandom differs: true\n";
    assert_eq!(out.stdout_text(), want, "{}", out.describe());
}

fn real_crates_give_the_native_output(arch: GuestArch) {
    let out = boot_example(arch, "realworld", &[]);
    out.assert_exit(0);
    assert_eq!(
        out.stdout,
        native_example_output("realworld", &[]),
        "{}",
        out.describe()
    );
}

fn cpu_heavy_gives_the_native_output(arch: GuestArch) {
    let out = boot_example(arch, "cpu-heavy", &["1"]);
    out.assert_exit(0);
    assert_eq!(
        out.stdout,
        native_example_output("cpu-heavy", &["1"]),
        "{}",
        out.describe()
    );
}

fn a_rust_panic_is_a_trap_with_its_message_on_stderr(arch: GuestArch) {
    let out = boot_example(arch, "exit-code", &["panic"]);
    assert_eq!(out.report.exit_code(), 134, "{}", out.describe());
    assert!(
        out.stderr_text().contains("asked to panic"),
        "{}",
        out.describe()
    );
}

#[test]
fn microvm_machine_boots() {
    let mut opts = RunOptions::new(example("hello"));
    opts.machine = Machine::Microvm;
    let out = boot(opts, b"");
    out.assert_exit(0);
    assert_eq!(
        out.stdout_text(),
        "Hello from Basalt!\n",
        "{}",
        out.describe()
    );
}

fn jit_compiles_in_the_guest(arch: GuestArch) {
    let mut opts = options(arch, "hello");
    opts.jit = true;
    let out = boot(opts, b"");
    out.assert_exit(0);
    assert_eq!(
        out.stdout_text(),
        "Hello from Basalt!\n",
        "{}",
        out.describe()
    );
}

/// Boots example `name` on AArch64 from a copy of the Image whose header
/// asks for `text_offset`, with `memory_mib` of RAM. QEMU's `-M virt
/// -kernel` loads an arm64 Image at RAM base (1 GiB) + its `text_offset`,
/// so the kernel lands `text_offset - 2 MiB` above its link address, and
/// the bundle and device tree go above it.
fn boot_moved(
    text_offset: u64,
    memory_mib: u64,
    name: &str,
    args: &[&str],
) -> basalt_tests::Outcome {
    let mut opts = options(GuestArch::Aarch64, name);
    opts.args = args.iter().map(|a| a.as_bytes().to_vec()).collect();
    opts.memory_mib = memory_mib;
    opts.image_text_offset = Some(text_offset);
    boot(opts, b"")
}

/// Asserts the kernel said it ran at `at`.
#[track_caller]
fn assert_loaded_at(out: &basalt_tests::Outcome, at: u64) {
    let needle = format!("kernel image at {at:#x}..");
    assert!(
        out.report.kernel_log.iter().any(|l| l.contains(&needle)),
        "the kernel did not run at {at:#x}\n{}",
        out.describe()
    );
}

/// The kernel runs wherever a loader puts it: here 1 GiB above its link
/// address, at 0x80200000 (Firecracker's RAM base + 2 MiB), with 3 GiB of
/// RAM so that RAM above 2 GiB exists.
#[test]
fn aarch64_kernel_runs_at_firecrackers_ram_base() {
    let out = boot_moved(0x4020_0000, 3072, "exit-code", &["42"]);
    out.assert_exit(42);
    assert_eq!(out.stdout_text(), "exiting with 42\n", "{}", out.describe());
    assert_eq!(out.stderr_text(), "to stderr before exit\n");
    assert_eq!(out.report.exit_code(), 42);
    assert_loaded_at(&out, 0x8020_0000);
}

/// … and above 4 GiB (0x140200000, with 5 GiB of RAM), where the device
/// tree lands above 4 GiB too; the program is compiled in the guest, so the
/// compiler's tables and W^X code mapping are exercised there as well.
#[test]
fn aarch64_kernel_runs_above_4_gib() {
    let mut opts = options(GuestArch::Aarch64, "hello");
    opts.memory_mib = 5120;
    opts.image_text_offset = Some(0x1_0020_0000);
    opts.jit = true;
    let out = boot(opts, b"");
    out.assert_exit(0);
    assert_eq!(
        out.stdout_text(),
        "Hello from Basalt!\n",
        "{}",
        out.describe()
    );
    assert_eq!(out.stderr_text(), "");
    assert_loaded_at(&out, 0x1_4020_0000);
}

/// A kernel moved away from its link address still symbolises its
/// backtraces (`kernel.syms` has link addresses) and keeps its text
/// read-only.
#[test]
fn aarch64_moved_kernel_symbolises_backtraces_and_keeps_text_read_only() {
    for (crash, symbolised) in [("panic", true), ("wx", false)] {
        let mut opts = options(GuestArch::Aarch64, "hello");
        opts.memory_mib = 3072;
        opts.image_text_offset = Some(0x4020_0000);
        opts.kernel_cmdline = Some(format!("basalt.crash={crash}"));
        let out = boot(opts, b"");
        assert!(
            matches!(out.report.status, basalt::vm::Status::Panic(_)),
            "{crash}: {}",
            out.describe()
        );
        assert_eq!(out.report.exit_code(), 70, "{}", out.describe());
        assert_loaded_at(&out, 0x8020_0000);
        let log = out.report.log_text();
        assert!(
            log.contains("0x40000000 above its link address"),
            "{crash}: no load offset in the report:\n{log}"
        );
        if symbolised {
            assert!(
                log.contains("basalt_kernel::"),
                "no symbol names in the backtrace:\n{log}"
            );
        } else {
            assert!(
                log.contains("data abort"),
                "{crash}: the store into kernel text did not fault:\n{log}"
            );
        }
    }
}
