//! Leaving the VM without QEMU's debug-exit device, as on other VMMs and
//! real machines: the kernel powers off through ACPI where the machine has
//! it, and resets otherwise (`docs/guest-protocol.md`, "Status markers and
//! exit codes"). QEMU must end by itself with status 0: a run stopped at
//! the test deadline is reported as timed out, not as an exit. On AArch64
//! the kernel calls PSCI `SYSTEM_OFF`.

#![forbid(unsafe_code)]

use basalt::guest::GuestArch;
use basalt::run::RunOptions;
use basalt::vm::Machine;
use basalt_tests::{Outcome, boot, example};

fn hello_without_exit_device(machine: Machine) -> Outcome {
    let mut opts = RunOptions::new(example("hello"));
    opts.machine = machine;
    opts.exit_device = false;
    boot(opts, b"")
}

/// The program ran, the marker came, and QEMU ended by itself with status
/// 0 (power-off or reset under `-no-reboot`), not at the test's deadline.
fn assert_ended_by_itself(out: &Outcome) {
    out.assert_exit(0);
    assert_eq!(
        out.stdout_text(),
        "Hello from Basalt!\n",
        "{}",
        out.describe()
    );
    assert_eq!(out.report.qemu_exit, Some(0), "{}", out.describe());
    let log = out.report.log_text();
    let marker = log.find("BASALT-EXIT 0").unwrap_or(usize::MAX);
    let power = log.find("power: ").unwrap_or(0);
    assert!(
        marker < power,
        "the marker must come before the power-off lines\n{}",
        out.describe()
    );
}

fn assert_acpi_power_off(machine: Machine) {
    let out = hello_without_exit_device(machine);
    assert_ended_by_itself(&out);
    let log = out.report.log_text();
    assert!(
        log.contains("power: powering off via ACPI S5 (PM1a control"),
        "{}",
        out.describe()
    );
    assert!(
        !log.contains("resetting"),
        "ACPI power-off did not end the VM\n{}",
        out.describe()
    );
}

#[test]
fn q35_without_debug_exit_powers_off_through_acpi() {
    assert_acpi_power_off(Machine::Q35);
}

#[test]
fn pc_without_debug_exit_powers_off_through_acpi() {
    assert_acpi_power_off(Machine::Pc);
}

/// microvm's ACPI (on by default) is hardware-reduced: no PM1 blocks, a
/// sleep control register in the generic event device instead.
#[test]
fn microvm_without_debug_exit_powers_off_through_its_sleep_register() {
    let out = hello_without_exit_device(Machine::Microvm);
    assert_ended_by_itself(&out);
    let log = out.report.log_text();
    assert!(
        log.contains("power: powering off via ACPI S5 (sleep control register"),
        "{}",
        out.describe()
    );
    assert!(!log.contains("resetting"), "{}", out.describe());
}

/// The fault path ends the same way, without allocating.
#[test]
fn a_kernel_fault_without_debug_exit_still_powers_off() {
    let mut opts = RunOptions::new(example("hello"));
    opts.exit_device = false;
    opts.kernel_cmdline = Some("basalt.crash=null".into());
    let out = boot(opts, b"");
    assert!(
        matches!(out.report.status, basalt::vm::Status::Panic(_)),
        "{}",
        out.describe()
    );
    assert_eq!(out.report.qemu_exit, Some(0), "{}", out.describe());
    assert!(
        out.report
            .log_text()
            .contains("power: powering off via ACPI S5 (PM1a control"),
        "{}",
        out.describe()
    );
}

/// AArch64 without semihosting (which carries both the exit status and the
/// kernel log on `virt`): the program's output still arrives and PSCI
/// `SYSTEM_OFF` ends the VM with status 0; with no log there is no marker,
/// so the host sees a VM that stopped without a status.
#[test]
fn aarch64_without_semihosting_powers_off_through_psci() {
    let mut opts = RunOptions::new(example("hello"));
    opts.arch = GuestArch::Aarch64;
    opts.exit_device = false;
    let out = boot(opts, b"");
    assert_eq!(
        out.stdout_text(),
        "Hello from Basalt!\n",
        "{}",
        out.describe()
    );
    assert_eq!(
        out.report.status,
        basalt::vm::Status::NoStatus(Some(0)),
        "{}",
        out.describe()
    );
    assert_eq!(out.report.qemu_exit, Some(0), "{}", out.describe());
}
