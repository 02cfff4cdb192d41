//! Where the kernel's random numbers come from, judged by booting the real
//! kernel in QEMU: on AArch64 `virt`, RNDRRS on a CPU with FEAT_RNG; on one
//! without (`cortex-a57`), the virtio-rng device the CLI adds; with
//! neither, cycle-counter jitter — and the kernel log says which, never
//! silently. x86-64 `microvm` (virtio-mmio described in its DSDT) and
//! `q35` (virtio-rng on PCI) do the same on a CPU without RDRAND/RDSEED
//! (`Nehalem`), and AArch64 `virt` finds a virtio-rng on its PCIe bus
//! too. Runs on CPUs other than `max` use the in-guest compiler:
//! host-compiled code assumes `max`'s features.

#![forbid(unsafe_code)]

use basalt::guest::GuestArch;
use basalt::run::RunOptions;
use basalt::vm::Machine;
use basalt_tests::{Outcome, boot, example};

/// A QEMU CPU model without FEAT_RNG (ID_AA64ISAR0_EL1.RNDR = 0).
const NO_FEAT_RNG: &str = "cortex-a57";
/// A QEMU x86-64 CPU model with SSE4.1 (which generated code needs) but
/// without RDRAND and RDSEED.
const NO_RDRAND: &str = "Nehalem";

/// Random bytes drawn before the printed ones: past the 4 MiB after which
/// the kernel reseeds its generator.
const PAST_A_RESEED: &str = "5000000";

/// Boots `clock-random hex 5000000` (5 MB from `random_get`, then 32
/// random bytes in hex) on AArch64 `virt`.
fn random_bytes(cpu: Option<&str>, virtio_rng: bool) -> Outcome {
    random_bytes_on(GuestArch::Aarch64, cpu, virtio_rng)
}

/// As [`random_bytes`], on `arch` (x86-64: `microvm`).
fn random_bytes_on(arch: GuestArch, cpu: Option<&str>, virtio_rng: bool) -> Outcome {
    random_bytes_with(arch, Machine::Microvm, cpu, virtio_rng, &[])
}

/// As [`random_bytes`], on `arch` and (x86-64) `machine`, with more QEMU
/// arguments.
fn random_bytes_with(
    arch: GuestArch,
    machine: Machine,
    cpu: Option<&str>,
    virtio_rng: bool,
    qemu_args: &[&str],
) -> Outcome {
    let mut opts = RunOptions::new(example("clock-random"));
    opts.arch = arch;
    opts.machine = machine;
    opts.extra_qemu_args = qemu_args.iter().map(|a| a.to_string()).collect();
    opts.args = vec![b"hex".to_vec(), PAST_A_RESEED.as_bytes().to_vec()];
    opts.virtio_rng = virtio_rng;
    if let Some(model) = cpu {
        opts.cpu = Some(model.into());
        opts.jit = true;
    }
    boot(opts, b"")
}

/// The program's random bytes, after checking the run and the line's form.
#[track_caller]
fn hex_of(out: &Outcome) -> String {
    out.assert_exit(0);
    let text = out.stdout_text();
    let hex = text
        .strip_prefix("random bytes: ")
        .and_then(|t| t.strip_suffix('\n'))
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .unwrap_or_else(|| panic!("not 32 random bytes in hex\n{}", out.describe()));
    assert_ne!(hex, "0".repeat(64), "{}", out.describe());
    hex.to_string()
}

#[track_caller]
fn assert_log_has(out: &Outcome, needle: &str) {
    assert!(
        out.report.kernel_log.iter().any(|l| l.contains(needle)),
        "the kernel log lacks `{needle}`\n{}",
        out.describe()
    );
}

#[test]
fn without_feat_rng_the_seed_comes_from_virtio_rng() {
    let first = random_bytes(Some(NO_FEAT_RNG), true);
    let a = hex_of(&first);
    assert_log_has(&first, "entropy: seeded from virtio-rng");
    assert_log_has(&first, "virtio-mmio: entropy (id 4) device at 0x");
    assert_log_has(&first, "virtio-rng ready");
    assert_log_has(&first, "virtio-mmio: 32 transports probed, 31 empty");
    assert_log_has(&first, "entropy: reseeded from virtio-rng");
    let second = random_bytes(Some(NO_FEAT_RNG), true);
    let b = hex_of(&second);
    assert_log_has(&second, "entropy: seeded from virtio-rng");
    assert_ne!(
        a,
        b,
        "two boots gave the same random bytes\n{}\n{}",
        first.describe(),
        second.describe()
    );
}

#[test]
fn without_feat_rng_or_a_device_the_kernel_says_it_fell_back_to_jitter() {
    let out = random_bytes(Some(NO_FEAT_RNG), false);
    hex_of(&out);
    assert_log_has(&out, "entropy: seeded from cycle-counter jitter");
    assert_log_has(&out, "virtio-mmio: 32 transports probed, 32 empty");
}

#[test]
fn with_feat_rng_the_cpu_seeds_and_the_buses_are_reported() {
    let out = random_bytes(None, true);
    hex_of(&out);
    assert_log_has(&out, "entropy: seeded from RNDRRS");
    assert_log_has(&out, "entropy: reseeded from RNDRRS");
    // The device is probed and driven all the same.
    assert_log_has(&out, "virtio-rng ready");
    assert_log_has(
        &out,
        "pcie: ECAM host bridge at 0x4010000000 (256 MiB, buses 0-255)",
    );
    assert_log_has(
        &out,
        "64-bit memory window: CPU 0x8000000000..0x10000000000",
    );
}

#[test]
fn microvm_without_rdrand_seeds_from_virtio_rng_found_in_acpi() {
    let first = random_bytes_on(GuestArch::X86_64, Some(NO_RDRAND), true);
    let a = hex_of(&first);
    assert_log_has(&first, "entropy: seeded from virtio-rng");
    assert_log_has(&first, "entropy: reseeded from virtio-rng");
    assert_log_has(&first, "virtio-mmio: entropy (id 4) device at 0xfeb0");
    assert_log_has(&first, "virtio-mmio: 1 transports probed, 0 empty");
    let second = random_bytes_on(GuestArch::X86_64, Some(NO_RDRAND), true);
    assert_ne!(
        a,
        hex_of(&second),
        "two boots gave the same random bytes\n{}\n{}",
        first.describe(),
        second.describe()
    );
}

#[test]
fn microvm_without_rdrand_or_a_device_says_it_fell_back_to_jitter() {
    let out = random_bytes_on(GuestArch::X86_64, Some(NO_RDRAND), false);
    hex_of(&out);
    assert_log_has(&out, "entropy: seeded from cycle-counter jitter");
    assert_log_has(&out, "virtio-mmio: no transports described");
}

#[test]
fn q35_without_rdrand_seeds_from_virtio_rng_on_pci() {
    let out = random_bytes_with(GuestArch::X86_64, Machine::Q35, Some(NO_RDRAND), true, &[]);
    hex_of(&out);
    assert_log_has(&out, "entropy: seeded from virtio-rng");
    assert_log_has(&out, "entropy: reseeded from virtio-rng");
    assert_log_has(&out, "pci: 00:00.0 8086:29c0 class 060000");
    assert_log_has(&out, "1af4:1005 class 00ff00: virtio entropy (id 4)");
    assert_log_has(&out, "virtio-pci: entropy (id 4) device at 00:");
    assert_log_has(&out, "virtio-rng ready");
    assert_log_has(
        &out,
        "functions on buses 0-255 (configuration ports 0xcf8/0xcfc)",
    );
}

#[test]
fn q35_without_rdrand_or_a_device_says_it_fell_back_to_jitter() {
    let out = random_bytes_with(GuestArch::X86_64, Machine::Q35, Some(NO_RDRAND), false, &[]);
    hex_of(&out);
    assert_log_has(&out, "entropy: seeded from cycle-counter jitter");
    assert_log_has(&out, "pci: 4 functions on buses 0-255");
}

#[test]
fn virt_finds_virtio_rng_on_its_pcie_bus_and_assigns_its_bars() {
    // No virtio-mmio device: the only entropy source is the PCI one.
    let out = random_bytes_with(
        GuestArch::Aarch64,
        Machine::Q35,
        Some(NO_FEAT_RNG),
        false,
        &["-device", "virtio-rng-pci"],
    );
    hex_of(&out);
    assert_log_has(&out, "entropy: seeded from virtio-rng");
    assert_log_has(&out, "entropy: reseeded from virtio-rng");
    assert_log_has(&out, "virtio-mmio: 32 transports probed, 32 empty");
    assert_log_has(&out, "pci: 00:00.0 1b36:0008 class 060000");
    assert_log_has(&out, "pci: 00:01.0: 2 memory BARs assigned, 0 without room");
    assert_log_has(&out, "virtio-pci: entropy (id 4) device at 00:01.0");
    assert_log_has(&out, "virtio-rng ready");
    assert_log_has(&out, "pci: 2 functions on buses 0-15 (ECAM)");
}
