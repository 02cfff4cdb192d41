//! `basalt image`: every format is what its reader expects (`qemu-img` for
//! the disk containers, GNU tar for GCP, the PE section for `efi`); a raw
//! image boots by hand under real firmware with the plain console a cloud
//! shows; and broken images — no bundle, cut short, built for the other
//! ISA — say what is wrong on the console and power the machine off.

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use basalt::guest::GuestArch;
use basalt::image::Format;
use basalt::run::RunOptions;
use basalt_tests::example;
use basalt_tests::firmware::{ConsoleRun, boot_raw_image};
use basalt_tests::wasi_suite::Scratch;

/// A boot by hand may take this long (firmware under TCG is slow).
const DEADLINE: Duration = Duration::from_secs(240);

fn make_image(arch: GuestArch, format: Format, out: &Path, program: &str, args: &[&str]) {
    let mut opts = RunOptions::new(example(program));
    opts.arch = arch;
    opts.args = args.iter().map(|a| a.as_bytes().to_vec()).collect();
    match basalt::run::make_image(&opts, format, out) {
        Ok(0) => {}
        other => panic!("basalt image --format {} failed: {other:?}", format.name()),
    }
}

fn tool(cmd: &mut Command, package: &str) -> String {
    match cmd.output() {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).into_owned(),
        Ok(o) => panic!("{cmd:?} failed: {}", String::from_utf8_lossy(&o.stderr)),
        Err(e) => panic!("{cmd:?}: {e} (scripts/setup.sh installs {package})"),
    }
}

#[test]
fn every_format_is_what_its_reader_expects() {
    let scratch = Scratch::new("image-formats").expect("scratch");
    let path = |f: Format| scratch.0.join(format!("hello.{}", f.extension()));
    for f in [
        Format::Raw,
        Format::Qcow2,
        Format::Vhd,
        Format::Gce,
        Format::Efi,
    ] {
        make_image(GuestArch::X86_64, f, &path(f), "hello", &[]);
    }
    let raw = std::fs::read(path(Format::Raw)).expect("raw image");
    assert_eq!(&raw[510..512], &[0x55, 0xaa], "protective MBR");
    assert_eq!(&raw[512..520], b"EFI PART", "GPT header");
    assert_eq!(raw.len() % (1 << 20), 0, "whole MiB");
    let info = |f: Format, fmt: &str| {
        tool(
            Command::new("qemu-img")
                .args(["info", "--output=json", "-f", fmt])
                .arg(path(f)),
            "qemu-utils",
        )
    };
    let qcow2 = info(Format::Qcow2, "qcow2");
    assert!(qcow2.contains("\"format\": \"qcow2\""), "{qcow2}");
    assert!(
        qcow2.contains(&format!("\"virtual-size\": {}", raw.len())),
        "{qcow2}"
    );
    // The raw disk and its containers hold the same bytes (Azure sizes a
    // fixed VHD by its current size, as force_size_calc=current_size does).
    tool(
        Command::new("qemu-img")
            .args(["compare", "-f", "raw", "-F", "qcow2"])
            .arg(path(Format::Raw))
            .arg(path(Format::Qcow2)),
        "qemu-utils",
    );
    let vhd = info(Format::Vhd, "vpc");
    assert!(vhd.contains("\"format\": \"vpc\""), "{vhd}");
    let vhd_len = std::fs::metadata(path(Format::Vhd)).expect("vhd").len();
    assert_eq!((vhd_len - 512) % (1 << 20), 0, "a fixed VHD of whole MiB");
    let listing = tool(
        Command::new("tar").arg("-tvzf").arg(path(Format::Gce)),
        "tar",
    );
    let entries: Vec<&str> = listing.lines().collect();
    assert_eq!(entries.len(), 1, "{listing}");
    assert!(entries[0].ends_with(" disk.raw"), "{listing}");
    let size: u64 = entries[0]
        .split_whitespace()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .expect("a size");
    assert_eq!(size % (1 << 30), 0, "GCP wants whole GiB: {listing}");
    let gnu = tool(
        Command::new("sh")
            .arg("-c")
            .arg(format!("gzip -dc {} | file -", path(Format::Gce).display())),
        "file",
    );
    assert!(gnu.contains("GNU"), "{gnu}");
    let efi = std::fs::read(path(Format::Efi)).expect("efi");
    let payload = basalt_disk::find_payload(&efi).expect("a .basalt section");
    let header = basalt_handoff::PayloadHeader::parse(payload).expect("a payload header");
    assert!(header.kernel(payload).starts_with(b"\x7fELF"));
    assert!(header.bundle(payload).len() > 512);
}

/// The console after the kernel took over, or a panic with all of it.
fn program_console(run: &ConsoleRun) -> String {
    match run.after_start() {
        Some(t) => t.replace("\r\n", "\n"),
        None => panic!("the kernel never started\n{}", run.describe()),
    }
}

fn a_raw_image_boots_by_hand_with_a_plain_console(arch: GuestArch, power_line: &str) {
    let scratch = Scratch::new(&format!("image-plain-{}", arch.name())).expect("scratch");
    let image = scratch.0.join("exit.raw");
    make_image(arch, Format::Raw, &image, "exit-code", &["3"]);
    let run = boot_raw_image(arch, &image, DEADLINE);
    assert_eq!(run.qemu_exit, Some(0), "{}", run.describe());
    let console = program_console(&run);
    // stdout and stderr as written, the marker on its own line, then how
    // the machine powered off; no kernel log without basalt.log=console.
    let want = "exiting with 3\nto stderr before exit\nBASALT-EXIT 3\n";
    assert!(console.starts_with(want), "{}", run.describe());
    assert!(console.contains(power_line), "{}", run.describe());
    assert!(!console.contains("booting via"), "{}", run.describe());
}

#[test]
fn x86_64_raw_image_boots_by_hand_with_a_plain_console() {
    a_raw_image_boots_by_hand_with_a_plain_console(
        GuestArch::X86_64,
        "power: powering off via ACPI S5",
    );
}

#[test]
fn aarch64_raw_image_boots_by_hand_with_a_plain_console() {
    a_raw_image_boots_by_hand_with_a_plain_console(
        GuestArch::Aarch64,
        "power: powering off via PSCI SYSTEM_OFF",
    );
}

/// Asserts the loader explained itself and the machine powered off.
fn assert_loader_refused(run: &ConsoleRun, why: &str) {
    let text = run.text();
    assert!(
        text.contains("basalt loader: ") && text.contains(why),
        "expected the loader to say `{why}`\n{}",
        run.describe()
    );
    assert!(run.after_start().is_none(), "{}", run.describe());
    assert_eq!(run.qemu_exit, Some(0), "{}", run.describe());
}

#[test]
fn an_image_without_its_bundle_says_so_and_powers_off() {
    let scratch = Scratch::new("image-no-bundle").expect("scratch");
    let mut opts = RunOptions::new(example("hello"));
    opts.args = vec![];
    let kernel = basalt::guest::kernel(GuestArch::X86_64, false).expect("kernel");
    let parts =
        basalt::run::image_parts(GuestArch::X86_64, &kernel, Vec::new(), String::new(), false)
            .expect("parts");
    let files: Vec<_> = basalt::image::esp_files(&parts)
        .expect("ESP files")
        .into_iter()
        .filter(|f| f.path != basalt_handoff::esp::BUNDLE)
        .collect();
    let esp = basalt_disk::fat32_esp(&files).expect("ESP");
    let image: PathBuf = scratch.0.join("no-bundle.raw");
    std::fs::write(&image, basalt_disk::gpt_disk(&esp).expect("disk")).expect("write");
    let run = boot_raw_image(GuestArch::X86_64, &image, DEADLINE);
    assert_loader_refused(&run, "bundle");
}

#[test]
fn an_image_cut_short_says_so_and_powers_off() {
    let scratch = Scratch::new("image-cut").expect("scratch");
    let image = scratch.0.join("cut.raw");
    make_image(GuestArch::X86_64, Format::Raw, &image, "hello", &[]);
    let mut bytes = std::fs::read(&image).expect("image");
    // Cut the disk inside the bundle: its first tar header (`manifest`,
    // ustar magic at 257) is where the file's data starts.
    let at = (0..bytes.len() - 512)
        .step_by(512)
        .find(|&i| bytes[i..].starts_with(b"manifest\0") && &bytes[i + 257..i + 262] == b"ustar")
        .expect("the bundle in the image");
    bytes.truncate(at + 4096);
    std::fs::write(&image, &bytes).expect("write");
    let run = boot_raw_image(GuestArch::X86_64, &image, DEADLINE);
    assert_loader_refused(&run, "the image was cut short; write the image again");
}

#[test]
fn an_image_for_the_other_isa_says_so_and_powers_off() {
    let scratch = Scratch::new("image-wrong-isa").expect("scratch");
    let image = scratch.0.join("x86.raw");
    make_image(GuestArch::X86_64, Format::Raw, &image, "hello", &[]);
    let run = boot_raw_image(GuestArch::Aarch64, &image, DEADLINE);
    assert_loader_refused(
        &run,
        "this image holds a kernel for x86_64 but this machine is aarch64",
    );
}
