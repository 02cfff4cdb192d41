//! Every way Basalt boots besides QEMU's `-kernel` on its default machines
//! (`docs/guest-protocol.md`, "One console" and "Basalt's UEFI loader"):
//! UEFI firmware from a disk image and over the network, U-Boot (its UEFI,
//! and `booti` of the arm64 Image), the machine shapes of other VMMs
//! reproduced in QEMU, and a board without UEFI (QEMU's Raspberry Pi 4 with
//! the Pi's own device tree). Each path boots the hello
//! example and a `--dir` example once and checks their output, stderr and
//! exit code, read back through the one console these machines have.

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

use basalt::guest::GuestArch;
use basalt::run::{DirMode, RunOptions};
use basalt::vm::{FirmwareBoot, Machine};
use basalt_tests::wasi_suite::Scratch;
use basalt_tests::{Outcome, boot, example};

/// Boots `hello`, then `ls` over a `--dir` share (`mode`), on `opts`'s
/// machine, and checks both.
fn hello_and_a_share(name: &str, base: RunOptions, mode: DirMode) -> (Outcome, Outcome) {
    let mut opts = base.clone();
    opts.wasm = example("hello");
    let hello = boot(opts, b"");
    hello.assert_exit(0);
    assert_eq!(
        hello.stdout_text(),
        "Hello from Basalt!\n",
        "{}",
        hello.describe()
    );
    assert_eq!(hello.stderr_text(), "", "{}", hello.describe());

    let scratch = Scratch::new(&format!("boot-path-{name}")).expect("scratch");
    let data: PathBuf = scratch.0.join("data");
    std::fs::create_dir_all(data.join("sub")).expect("mkdir");
    std::fs::write(data.join("hello.txt"), "hello from the host\n").expect("write");
    let mut opts = base;
    opts.wasm = example("ls");
    opts.dir_mode = mode;
    opts.dirs = vec![basalt::run::SharedDir::new(data.clone(), "/data")];
    opts.args = vec![b"/data".to_vec(), b"/data/hello.txt".to_vec()];
    let ls = boot(opts, b"");
    ls.assert_exit(0);
    assert_eq!(
        ls.stdout_text(),
        "hello.txt 20\nsub/\nhello from the host\nwrote 21 bytes to /data/hello.txt.new\n",
        "{}",
        ls.describe()
    );
    (hello, ls)
}

/// The log line the kernel wrote as it powered the machine off.
fn assert_log_has(out: &Outcome, needle: &str) {
    assert!(
        out.report.log_text().contains(needle),
        "the kernel log lacks `{needle}`\n{}",
        out.describe()
    );
}

#[test]
fn x86_64_firecracker_shape() {
    let mut opts = RunOptions::new("");
    opts.machine = Machine::Firecracker;
    let (hello, ls) = hello_and_a_share("firecracker-x86_64", opts, DirMode::Copy);
    for out in [&hello, &ls] {
        // No debug-exit device, no ACPI: the keyboard controller's reset
        // ends the VM, and QEMU (-no-reboot) exits by itself.
        assert_log_has(out, "power: resetting through the keyboard controller");
        assert_eq!(out.report.qemu_exit, Some(0), "{}", out.describe());
        assert_log_has(out, "virtio-mmio: entropy");
    }
}

/// Firecracker's AArch64 machine: RAM from 0x8000_0000, the console an
/// `ns16550a` the device tree names (no PL011, no semihosting), virtio on
/// virtio-mmio, PSCI power-off.
#[test]
fn aarch64_firecracker_shape() {
    let mut opts = RunOptions::new("");
    opts.arch = GuestArch::Aarch64;
    opts.machine = Machine::Firecracker;
    let (hello, ls) = hello_and_a_share("firecracker-aarch64", opts, DirMode::Copy);
    for out in [&hello, &ls] {
        assert_log_has(out, "console 0x3eff1000 (16550)");
        assert_log_has(out, "kernel image at 0x80200000");
        assert_log_has(out, "virtio-mmio: entropy");
        assert_log_has(out, "power: powering off via PSCI SYSTEM_OFF (Hvc)");
        assert_eq!(out.report.qemu_exit, Some(0), "{}", out.describe());
    }
}

/// Stdin reaches the program through the 16550's receiver, byte for byte.
#[test]
fn aarch64_firecracker_console_relays_every_byte() {
    let input: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
    let mut opts = RunOptions::new(example("cat"));
    opts.arch = GuestArch::Aarch64;
    opts.machine = Machine::Firecracker;
    let out = boot(opts, &input);
    out.assert_exit(0);
    assert!(out.stdout == input, "{}", out.describe());
    assert_eq!(out.stderr_text(), "cat: 3000 bytes\n", "{}", out.describe());
}

/// Cloud Hypervisor's machine: hardware-reduced ACPI without an MCFG,
/// virtio over PCIe only (the share live over virtio-9p-pci), COM1 alone,
/// power-off through the FADT's sleep control register.
#[test]
fn x86_64_cloud_hypervisor_shape() {
    let mut opts = RunOptions::new("");
    opts.machine = Machine::CloudHypervisor;
    let (hello, ls) = hello_and_a_share("cloud-hypervisor-x86_64", opts, DirMode::Live);
    for out in [&hello, &ls] {
        assert_log_has(out, "pcie: ECAM at 0xe0000000 (the host bridge's _CBA)");
        assert_log_has(out, "virtio-pci: entropy");
        assert_log_has(
            out,
            "power: powering off via ACPI S5 (sleep control register",
        );
        assert_eq!(out.report.qemu_exit, Some(0), "{}", out.describe());
    }
    assert_log_has(&ls, "virtio-9p: virtio-pci device");
}

#[test]
fn x86_64_uefi_disk_image() {
    let mut opts = RunOptions::new("");
    opts.firmware = Some(FirmwareBoot::UefiDisk);
    let (hello, ls) = hello_and_a_share("uefi-x86_64", opts, DirMode::Live);
    for out in [&hello, &ls] {
        assert_log_has(out, "booting via UEFI");
        assert_log_has(out, "power: powering off via ACPI S5");
        assert_eq!(out.report.qemu_exit, Some(0), "{}", out.describe());
    }
}

/// Without ACPI tables (`q35` with `acpi=off`: no S5 to enter) a kernel
/// booted through UEFI powers off through the firmware's ResetSystem,
/// not a reset that would boot the image again.
#[test]
fn x86_64_uefi_reset_system_powers_off_without_acpi() {
    let mut opts = RunOptions::new(example("hello"));
    opts.firmware = Some(FirmwareBoot::UefiDisk);
    opts.extra_qemu_args = vec!["-machine".into(), "acpi=off".into()];
    let out = boot(opts, b"");
    out.assert_exit(0);
    assert_log_has(&out, "power: no ACPI power-off: no RSDP");
    assert_log_has(&out, "power: powering off via UEFI ResetSystem");
    let log = out.report.log_text();
    assert!(
        !log.contains("ResetSystem failed") && !log.contains("keyboard controller"),
        "{}",
        out.describe()
    );
    assert_eq!(out.report.qemu_exit, Some(0), "{}", out.describe());
}

/// An AArch64 machine under AAVMF, described by ACPI alone (`acpi`) or
/// by a device tree alone, booted from the disk image or the network.
fn aarch64_uefi(name: &str, boot: FirmwareBoot, acpi: bool) {
    let mut opts = RunOptions::new("");
    opts.arch = GuestArch::Aarch64;
    opts.firmware = Some(boot);
    opts.acpi = acpi;
    let (hello, ls) = hello_and_a_share(name, opts, DirMode::Live);
    let source = if acpi {
        "firmware tables: ACPI: console 0x9000000, GICv"
    } else {
        "firmware tables: device tree: console 0x9000000, GICv"
    };
    for out in [&hello, &ls] {
        assert_log_has(out, "booting via UEFI");
        assert_log_has(out, source);
        assert_log_has(out, "power: powering off via PSCI SYSTEM_OFF (Hvc)");
        assert_eq!(out.report.qemu_exit, Some(0), "{}", out.describe());
    }
}

#[test]
fn aarch64_uefi_disk_image_acpi_only() {
    aarch64_uefi("uefi-aarch64-acpi", FirmwareBoot::UefiDisk, true);
}

#[test]
fn aarch64_uefi_disk_image_device_tree_only() {
    aarch64_uefi("uefi-aarch64-dt", FirmwareBoot::UefiDisk, false);
}

#[test]
fn aarch64_pxe_netboot() {
    aarch64_uefi("pxe-aarch64", FirmwareBoot::UefiPxe, true);
}

#[test]
fn x86_64_pxe_netboot() {
    let mut opts = RunOptions::new("");
    opts.firmware = Some(FirmwareBoot::UefiPxe);
    let (hello, ls) = hello_and_a_share("pxe-x86_64", opts, DirMode::Live);
    for out in [&hello, &ls] {
        assert_log_has(out, "[firmware]   NBP file downloaded successfully");
        assert_log_has(out, "booting via UEFI");
        assert_log_has(out, "power: powering off via ACPI S5");
        assert_eq!(out.report.qemu_exit, Some(0), "{}", out.describe());
    }
}

/// Whether Debian's `u-boot-qemu` is installed; without it the U-Boot
/// tests skip, or fail under `CI=true`.
fn uboot_installed() -> bool {
    if Path::new(basalt::vm::UBOOT_QEMU_ARM64).is_file() {
        return true;
    }
    let msg = format!(
        "U-Boot is not at {} (scripts/setup.sh installs u-boot-qemu)",
        basalt::vm::UBOOT_QEMU_ARM64
    );
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg}");
    eprintln!("{msg}; skipping");
    false
}

#[test]
fn aarch64_uboot_bootefi() {
    if !uboot_installed() {
        return;
    }
    let mut opts = RunOptions::new("");
    opts.arch = GuestArch::Aarch64;
    opts.firmware = Some(FirmwareBoot::UbootEfi);
    let (hello, ls) = hello_and_a_share("uboot-bootefi", opts, DirMode::Live);
    for out in [&hello, &ls] {
        assert_log_has(out, "booting via UEFI");
        assert_log_has(out, "loaded by UEFI Das U-Boot");
        // U-Boot's UEFI passes its device tree (QEMU's), no ACPI tables.
        assert_log_has(out, "firmware tables: device tree");
        assert_log_has(out, "power: powering off via PSCI SYSTEM_OFF");
        assert_eq!(out.report.qemu_exit, Some(0), "{}", out.describe());
    }
}

#[test]
fn aarch64_uboot_booti() {
    if !uboot_installed() {
        return;
    }
    let mut opts = RunOptions::new("");
    opts.arch = GuestArch::Aarch64;
    opts.firmware = Some(FirmwareBoot::UbootBooti);
    // With EL2 and EL3, as on a board: U-Boot runs at EL2 and enters the
    // kernel there, and PSCI is QEMU's EL3 firmware's, called by SMC.
    opts.extra_qemu_args = vec!["-machine".into(), "virtualization=on".into()];
    let (hello, ls) = hello_and_a_share("uboot-booti", opts, DirMode::Copy);
    for out in [&hello, &ls] {
        assert_log_has(out, "booting via arm64 Image");
        assert_log_has(out, "firmware tables: device tree");
        assert_log_has(out, "power: powering off via PSCI SYSTEM_OFF (Smc)");
        assert_eq!(out.report.qemu_exit, Some(0), "{}", out.describe());
    }
}

/// Whether the Raspberry Pi 4's device tree (from Debian's arm64 kernel
/// package) is where `scripts/setup.sh` puts it; without it the test
/// skips, or fails under `CI=true`.
fn raspi4b_dtb_present() -> bool {
    if Path::new(basalt::vm::RASPI4B_DTB).is_file() {
        return true;
    }
    let msg = format!(
        "the Raspberry Pi 4 device tree is not at {} (scripts/setup.sh extracts it)",
        basalt::vm::RASPI4B_DTB
    );
    assert!(std::env::var("CI").as_deref() != Ok("true"), "{msg}");
    eprintln!("{msg}; skipping");
    false
}

/// A board without UEFI: QEMU's Raspberry Pi 4 with the Pi's own device
/// tree, RAM from 0, peripherals behind `/soc`'s `ranges`, a GIC-400, no
/// PSCI (the watchdog's reset ends the VM), no RTC, no virtio (so the
/// share is copied in).
#[test]
fn aarch64_raspi4b() {
    if !raspi4b_dtb_present() {
        return;
    }
    let mut opts = RunOptions::new("");
    opts.arch = GuestArch::Aarch64;
    opts.machine = Machine::Raspi4b;
    let (hello, ls) = hello_and_a_share("raspi4b", opts, DirMode::Copy);
    for out in [&hello, &ls] {
        assert_log_has(out, "booting via arm64 Image");
        assert_log_has(
            out,
            "firmware tables: device tree: console 0xfe201000, GICv2 at 0xff841000 and 0xff842000, virtual timer Some(27), PSCI None, BCM2835 watchdog 0xfe100000",
        );
        assert_log_has(out, "kernel image at 0x200000..");
        assert_log_has(out, "no PL031 real-time clock: the wall clock starts at 0");
        assert_log_has(
            out,
            "power: no PSCI; resetting through the BCM2835 watchdog at 0xfe100000",
        );
        assert_eq!(out.report.qemu_exit, Some(0), "{}", out.describe());
    }
}

/// On a shared console every byte of the program's streams and of stdin
/// is framed: all 256 byte values (0xff, the escape, among them) pass
/// through stdin and stdout unchanged, and stderr stays apart.
#[test]
fn x86_64_one_console_relays_every_byte() {
    let input: Vec<u8> = (0..=255u8).cycle().take(3000).collect();
    let mut opts = RunOptions::new(example("cat"));
    opts.machine = Machine::Firecracker;
    let out = boot(opts, &input);
    out.assert_exit(0);
    assert!(out.stdout == input, "{}", out.describe());
    assert_eq!(out.stderr_text(), "cat: 3000 bytes\n", "{}", out.describe());
}
