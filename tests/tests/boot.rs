//! Boots the real kernel in QEMU with the example programs and judges
//! stdout, stderr and exit codes.

use basalt::run::RunOptions;
use basalt::vm::Machine;
use basalt_tests::{boot, boot_example, example, native_example_output};

#[test]
fn hello_prints_and_exits_zero() {
    let out = boot_example("hello", &[]);
    out.assert_exit(0);
    assert_eq!(
        out.stdout_text(),
        "Hello from Basalt!\n",
        "{}",
        out.describe()
    );
    assert_eq!(out.stderr_text(), "");
}

#[test]
fn arguments_and_exactly_the_given_environment() {
    let mut opts = RunOptions::new(example("args-env"));
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

#[test]
fn exit_codes_reach_the_host() {
    for code in [0, 3, 42, 255] {
        let out = boot_example("exit-code", &[&code.to_string()]);
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

#[test]
fn stdin_is_relayed_byte_for_byte() {
    let input: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
    let out = boot(RunOptions::new(example("cat")), &input);
    out.assert_exit(0);
    assert_eq!(out.stdout, input, "{}", out.describe());
    assert_eq!(out.stderr_text(), "cat: 5000 bytes\n");
}

#[test]
fn clocks_and_random_behave() {
    let out = boot_example("clock-random", &[]);
    out.assert_exit(0);
    let want = "wall clock year plausible: true\nslept at least 50 ms: true\nmonotonic: true\n\
                random non-zero: true\nrandom differs: true\n";
    assert_eq!(out.stdout_text(), want, "{}", out.describe());
}

#[test]
fn real_crates_give_the_native_output() {
    let out = boot_example("realworld", &[]);
    out.assert_exit(0);
    assert_eq!(
        out.stdout,
        native_example_output("realworld", &[]),
        "{}",
        out.describe()
    );
}

#[test]
fn cpu_heavy_gives_the_native_output() {
    let out = boot_example("cpu-heavy", &["1"]);
    out.assert_exit(0);
    assert_eq!(
        out.stdout,
        native_example_output("cpu-heavy", &["1"]),
        "{}",
        out.describe()
    );
}

#[test]
fn a_rust_panic_is_a_trap_with_its_message_on_stderr() {
    let out = boot_example("exit-code", &["panic"]);
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

#[test]
fn jit_compiles_in_the_guest() {
    let mut opts = RunOptions::new(example("hello"));
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
