//! Booting machines with one console (`docs/guest-protocol.md`, "One
//! console"), whose stream [`crate::console::Demux`] splits back into
//! stdout, stderr and the kernel log:
//! - through UEFI firmware: OVMF on x86-64 `q35`, AAVMF on AArch64 `virt`
//!   (ACPI tables only, or a device tree only), from a disk image on a virtio-blk
//!   disk or over the network (PXE: QEMU's user network serves the
//!   self-contained EFI executable by TFTP);
//! - through U-Boot on AArch64 `virt`, from a disk: its UEFI runs Basalt's
//!   loader (`bootefi`), or its extlinux support `booti`s the arm64 Image
//!   (both found by U-Boot's distro boot, which scans the disk by itself);
//! - the x86-64 Firecracker machine reproduced on QEMU's `microvm`: no
//!   ACPI, virtio-mmio devices named on the kernel command line, COM1
//!   alone, an i8042 whose reset ends the VM;
//! - the x86-64 Cloud Hypervisor machine, on `microvm` too: hardware-reduced
//!   ACPI, virtio over PCIe only, COM1 alone, power-off through the ACPI
//!   sleep control register;
//! - the Raspberry Pi 4 Model B (QEMU's `raspi4b`), booted as its firmware
//!   boots a `kernel=` Image: no UEFI, the Pi's own device tree, the
//!   first PL011 alone, the BCM2835 watchdog's reset ending the VM.

use std::io::{Read, Write};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::CliError;
use crate::console::{Demux, Piece};
use crate::guest::GuestArch;
use crate::vm::{self, FirmwareBoot, LogState, Machine, RunDir, VmIo, VmOptions, VmReport};

/// The file name the TFTP server offers for netboot.
const PXE_BOOTFILE: &str = "basalt.efi";

/// The QEMU command line for a firmware boot; `dir` holds the disk image
/// (`disk.raw`) or the TFTP root (`tftp/`), and UEFI firmware's variable
/// store (`vars.fd`; U-Boot keeps none).
pub fn firmware_command(
    opts: &VmOptions,
    boot: FirmwareBoot,
    dir: &Path,
    console: &Path,
) -> Command {
    let uboot = boot.is_uboot();
    let pci_card = |kind: &str| match opts.arch {
        GuestArch::X86_64 => format!("virtio-{kind}-pci"),
        GuestArch::Aarch64 => format!("virtio-{kind}-device"),
    };
    let machine = match opts.arch {
        GuestArch::X86_64 => "q35",
        // U-Boot hands the kernel QEMU's device tree, never ACPI tables.
        GuestArch::Aarch64 if uboot => "virt",
        GuestArch::Aarch64 if opts.acpi => "virt,acpi=on",
        GuestArch::Aarch64 => "virt,acpi=off",
    };
    let mut cmd = vm::base_command(opts, machine);
    if uboot {
        cmd.args(["-bios", vm::UBOOT_QEMU_ARM64]);
    } else {
        let (code, _) = vm::uefi_firmware(opts.arch);
        cmd.arg("-drive").arg(format!(
            "if=pflash,format=raw,unit=0,readonly=on,file={code}"
        ));
        cmd.arg("-drive").arg(format!(
            "if=pflash,format=raw,unit=1,file={}",
            dir.join("vars.fd").display()
        ));
    }
    if opts.arch == GuestArch::Aarch64 {
        // The kernel drives modern virtio-mmio only; U-Boot drives both.
        cmd.args(["-global", "virtio-mmio.force-legacy=false"]);
    }
    match boot {
        FirmwareBoot::UefiDisk | FirmwareBoot::UbootEfi | FirmwareBoot::UbootBooti => {
            // snapshot=on: the firmware may write to the disk (boot
            // variables, logs); the image on the host stays as built.
            cmd.arg("-drive").arg(format!(
                "if=none,id=disk0,format=raw,snapshot=on,file={}",
                dir.join("disk.raw").display()
            ));
            cmd.arg("-device")
                .arg(format!("{},drive=disk0,bootindex=1", pci_card("blk")));
        }
        FirmwareBoot::UefiPxe => {}
    }
    cmd.arg("-chardev")
        .arg(format!("socket,id=com1,path={}", console.display()));
    cmd.args(["-serial", "chardev:com1"]);
    if opts.virtio_rng {
        cmd.args(["-device", &pci_card("rng")]);
    }
    vm::share_args(&mut cmd, &opts.shares, &pci_card("9p"));
    let mut net = opts.network.clone();
    if boot == FirmwareBoot::UefiPxe {
        // The card the firmware netboots from; the kernel uses it after.
        net.get_or_insert_with(Default::default);
    }
    if let Some(net) = &net {
        let extra = (boot == FirmwareBoot::UefiPxe).then(|| {
            format!(
                ",tftp={},bootfile={PXE_BOOTFILE}",
                dir.join("tftp").display()
            )
        });
        vm::network_args_with(&mut cmd, net, &pci_card("net"), extra.as_deref(), true);
    }
    if let Some(ifname) = &opts.network_tap {
        vm::tap_args(&mut cmd, ifname, &pci_card("net"));
    }
    cmd.args(&opts.extra_qemu_args);
    cmd
}

/// The QEMU command line of the x86-64 microVM shapes, both on QEMU's
/// `microvm` with the PVH kernel, the bundle as its module, COM1 alone
/// and an i8042 (whose reset `-no-reboot` turns into QEMU's exit); no exit
/// device:
/// - [`Machine::Firecracker`]: no ACPI (so QEMU names the virtio-mmio
///   transports on the kernel command line, as Firecracker does), no CMOS
///   RTC; the i8042's reset ends the VM;
/// - [`Machine::CloudHypervisor`]: hardware-reduced ACPI, virtio over PCIe
///   only, a CMOS RTC; the ACPI sleep control register powers off.
pub fn microvm_shape_command(opts: &VmOptions, bundle: &Path, console: &Path) -> Command {
    let pci = opts.machine == Machine::CloudHypervisor;
    let (machine, card) = if pci {
        (vm::CLOUD_HYPERVISOR_MACHINE, "pci")
    } else {
        ("microvm,acpi=off,rtc=off,isa-serial=off", "device")
    };
    let mut cmd = vm::base_command(opts, machine);
    cmd.args(["-device", "i8042"]);
    if !pci {
        cmd.args(["-global", "virtio-mmio.force-legacy=false"]);
    }
    if opts.virtio_rng {
        cmd.arg("-device").arg(format!("virtio-rng-{card}"));
    }
    vm::share_args(&mut cmd, &opts.shares, &format!("virtio-9p-{card}"));
    let net_card = format!("virtio-net-{card}");
    if let Some(net) = &opts.network {
        vm::network_args_with(&mut cmd, net, &net_card, None, false);
    }
    if let Some(ifname) = &opts.network_tap {
        vm::tap_args(&mut cmd, ifname, &net_card);
    }
    cmd.arg("-kernel")
        .arg(&opts.kernel)
        .arg("-initrd")
        .arg(bundle);
    cmd.arg("-append").arg(opts.framed_cmdline());
    cmd.arg("-chardev")
        .arg(format!("socket,id=com1,path={}", console.display()));
    cmd.args([
        "-device",
        "isa-serial,chardev=com1,iobase=0x3f8,irq=4,index=0",
    ]);
    cmd.args(&opts.extra_qemu_args);
    cmd
}

/// The QEMU command line of the Raspberry Pi 4 shape: `raspi4b` (its
/// 2 GiB and Cortex-A72s are fixed: no `-m`, no `-cpu`), the arm64 Image
/// by `-kernel` (QEMU loads it at RAM base 0 + its `text_offset`, enters
/// at EL2 with the DTB's address in x0, parks the other cores on the spin
/// table at 0xd8), the Pi's device tree by `-dtb` (QEMU fills in
/// `/memory` and `/chosen`), the bundle by `-initrd`, the first PL011
/// (`uart0`, the first `-serial`) as the one console; no semihosting, no
/// virtio (the board has none).
pub fn raspi4b_command(
    opts: &VmOptions,
    image: &Path,
    dtb: &Path,
    bundle: &Path,
    console: &Path,
) -> Command {
    let mut cmd = Command::new(vm::qemu_binary(opts.arch));
    cmd.args(["-machine", "raspi4b", "-accel", "tcg"]);
    cmd.args([
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-no-reboot",
    ]);
    cmd.arg("-kernel")
        .arg(image)
        .arg("-dtb")
        .arg(dtb)
        .arg("-initrd")
        .arg(bundle);
    cmd.arg("-append").arg(opts.framed_cmdline());
    cmd.arg("-chardev")
        .arg(format!("socket,id=com1,path={}", console.display()));
    cmd.args(["-serial", "chardev:com1"]);
    cmd.args(&opts.extra_qemu_args);
    cmd
}

/// Boots `bundle` on QEMU's Raspberry Pi 4 and relays its one console
/// until the VM ends.
pub fn boot_raspi4b(opts: &VmOptions, bundle: &[u8], io: VmIo) -> Result<VmReport, CliError> {
    if !opts.shares.is_empty() {
        return Err(CliError::Usage(
            "the raspi4b machine has no virtio: share directories with --dir-mode copy".into(),
        ));
    }
    if opts.network.is_some() || opts.network_tap.is_some() {
        return Err(CliError::Usage(
            "the raspi4b machine has no network card the kernel drives".into(),
        ));
    }
    let dtb = Path::new(vm::RASPI4B_DTB);
    if !dtb.is_file() {
        return Err(CliError::Qemu(format!(
            "the Raspberry Pi 4 device tree is not at {} (run scripts/setup.sh)",
            dtb.display()
        )));
    }
    let dir = RunDir::new()?;
    let path = dir.0.join("bundle.tar");
    std::fs::write(&path, bundle).map_err(|e| CliError::Io(format!("{}: {e}", path.display())))?;
    let socket = dir.0.join("console");
    let listener = UnixListener::bind(&socket)
        .map_err(|e| CliError::Io(format!("{}: {e}", socket.display())))?;
    let image = crate::guest::boot_image(opts.arch, &opts.kernel);
    let cmd = raspi4b_command(opts, &image, dtb, &path, &socket);
    relay(opts, cmd, listener, io)
}

/// Boots `bundle` on the x86-64 Firecracker or Cloud Hypervisor shape
/// ([`microvm_shape_command`]) and relays its one console until the VM
/// ends.
pub fn boot_microvm_shape(opts: &VmOptions, bundle: &[u8], io: VmIo) -> Result<VmReport, CliError> {
    let dir = RunDir::new()?;
    let path = dir.0.join("bundle.tar");
    std::fs::write(&path, bundle).map_err(|e| CliError::Io(format!("{}: {e}", path.display())))?;
    let socket = dir.0.join("console");
    let listener = UnixListener::bind(&socket)
        .map_err(|e| CliError::Io(format!("{}: {e}", socket.display())))?;
    let cmd = microvm_shape_command(opts, &path, &socket);
    relay(opts, cmd, listener, io)
}

/// Boots `media` (the raw disk image, or for netboot the self-contained
/// EFI executable; for U-Boot's `booti` the extlinux disk) through
/// firmware and relays the one console until the VM ends.
pub fn boot_firmware(
    opts: &VmOptions,
    boot: FirmwareBoot,
    media: &[u8],
    io: VmIo,
) -> Result<VmReport, CliError> {
    let dir = RunDir::new()?;
    let io_err = |p: &Path, e: std::io::Error| CliError::Io(format!("{}: {e}", p.display()));
    if boot.is_uboot() && opts.arch != GuestArch::Aarch64 {
        return Err(CliError::Usage(
            "U-Boot boots aarch64 guests (QEMU virt): use --arch aarch64".into(),
        ));
    }
    let media_path = match boot {
        FirmwareBoot::UefiDisk | FirmwareBoot::UbootEfi | FirmwareBoot::UbootBooti => {
            dir.0.join("disk.raw")
        }
        FirmwareBoot::UefiPxe => {
            let tftp = dir.0.join("tftp");
            std::fs::create_dir(&tftp).map_err(|e| io_err(&tftp, e))?;
            tftp.join(PXE_BOOTFILE)
        }
    };
    std::fs::write(&media_path, media).map_err(|e| io_err(&media_path, e))?;
    if boot.is_uboot() {
        if !Path::new(vm::UBOOT_QEMU_ARM64).is_file() {
            return Err(CliError::Qemu(format!(
                "U-Boot is not at {} (run scripts/setup.sh to install u-boot-qemu)",
                vm::UBOOT_QEMU_ARM64
            )));
        }
    } else {
        let (_, vars) = vm::uefi_firmware(opts.arch);
        let vars_copy = dir.0.join("vars.fd");
        std::fs::copy(vars, &vars_copy).map_err(|e| {
            CliError::Qemu(format!(
                "cannot copy the UEFI variable store {vars}: {e} (run scripts/setup.sh to install {})",
                match opts.arch {
                    GuestArch::X86_64 => "ovmf",
                    GuestArch::Aarch64 => "qemu-efi-aarch64",
                }
            ))
        })?;
    }
    let socket = dir.0.join("console");
    let listener = UnixListener::bind(&socket).map_err(|e| io_err(&socket, e))?;
    let cmd = firmware_command(opts, boot, &dir.0, &socket);
    relay(opts, cmd, listener, io)
}

/// Starts QEMU with `cmd`, whose one console connects to `listener`, and
/// relays the console's streams until the VM ends.
pub(crate) fn relay(
    opts: &VmOptions,
    mut cmd: Command,
    listener: UnixListener,
    io: VmIo,
) -> Result<VmReport, CliError> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd.spawn().map_err(|e| {
        CliError::Qemu(format!(
            "cannot start {}: {e} (run scripts/setup.sh to install QEMU)",
            vm::qemu_binary(opts.arch)
        ))
    })?;
    let done = Arc::new(Mutex::new(false));
    let mut qemu_err = child.stderr.take();
    let qemu_err_thread = std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(e) = qemu_err.as_mut() {
            let _ = e.read_to_string(&mut s);
        }
        s
    });
    let log = Arc::new(Mutex::new(LogState::default()));
    let VmIo {
        stdin,
        mut stdout,
        mut stderr,
    } = io;
    let (d, log2, verbose) = (done.clone(), log.clone(), opts.verbose);
    let console = std::thread::spawn(move || {
        let Some(mut stream) = vm::accept_one(listener, d) else {
            return;
        };
        let started = Arc::new(AtomicBool::new(false));
        if let Ok(writer) = stream.try_clone() {
            // stdin waits for the kernel: until then the firmware reads the
            // console, and would take the bytes as key presses.
            vm::feed_stdin(writer, stdin, Some(started.clone()));
        }
        let mut demux = Demux::new();
        let (mut firmware_line, mut log_line) = (Vec::new(), Vec::new());
        let mut buf = [0u8; 8192];
        loop {
            let n = match stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            demux.feed(&buf[..n], &mut |piece| match piece {
                Piece::Stdout(b) => {
                    let _ = stdout.write_all(b);
                    let _ = stdout.flush();
                }
                Piece::Stderr(b) => {
                    let _ = stderr.write_all(b);
                    let _ = stderr.flush();
                }
                Piece::Firmware(b) => firmware_line.extend_from_slice(b),
                Piece::Log(b) => log_line.extend_from_slice(b),
            });
            started.store(demux.started(), Ordering::Relaxed);
            let Ok(mut st) = log2.lock() else { break };
            for (text, prefix) in [(&mut firmware_line, "[firmware] "), (&mut log_line, "")] {
                while let Some(end) = text.iter().position(|b| *b == b'\n') {
                    let line: Vec<u8> = text.drain(..=end).collect();
                    let line = String::from_utf8_lossy(&line);
                    let line = line.trim_end_matches(['\n', '\r']);
                    if prefix.is_empty() {
                        st.push_line(line.to_string(), start, verbose);
                    } else {
                        // Firmware text is kept for failure reports, not
                        // timed: the kernel's first line is.
                        let clean = strip_terminal_codes(line);
                        if verbose && !clean.trim().is_empty() {
                            eprintln!("basalt: firmware: {clean}");
                        }
                        if !clean.trim().is_empty() {
                            st.lines.push(format!("{prefix}{clean}"));
                        }
                    }
                }
            }
        }
    });
    let (qemu_status, timed_out, stopped_after_status) =
        vm::wait_for_vm(&mut child, &log, opts, start)?;
    let total = start.elapsed();
    if let Ok(mut d) = done.lock() {
        *d = true;
    }
    let _ = console.join();
    let qemu_stderr = qemu_err_thread.join().unwrap_or_default();
    vm::report(
        &log,
        qemu_stderr,
        qemu_status,
        timed_out,
        stopped_after_status,
        total,
    )
}

/// Firmware text without its terminal control sequences (`ESC [ … letter`,
/// `ESC` and one more byte) and other control characters.
fn strip_terminal_codes(line: &str) -> String {
    let mut out = String::new();
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            if chars.peek() == Some(&'[') {
                chars.next();
                // Parameters and intermediates, up to the final letter.
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            } else {
                chars.next();
            }
        } else if !c.is_control() {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raspi4b_boots_the_image_with_the_pis_device_tree_on_one_console() {
        let mut opts = VmOptions::new(GuestArch::Aarch64, "k".into());
        opts.machine = Machine::Raspi4b;
        opts.kernel_cmdline = Some("basalt.crash=ud".into());
        let cmd = raspi4b_command(
            &opts,
            Path::new("k.Image"),
            Path::new("pi.dtb"),
            Path::new("bundle.tar"),
            Path::new("console"),
        );
        let a: Vec<String> = cmd
            .get_args()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        let pair = |f: &str, v: &str| a.windows(2).any(|w| w[0] == f && w[1] == v);
        assert!(pair("-machine", "raspi4b"), "{a:?}");
        assert!(
            pair("-kernel", "k.Image") && pair("-dtb", "pi.dtb"),
            "{a:?}"
        );
        assert!(pair("-initrd", "bundle.tar"), "{a:?}");
        assert!(
            pair("-append", "basalt.console=framed basalt.crash=ud"),
            "{a:?}"
        );
        assert!(pair("-serial", "chardev:com1"), "{a:?}");
        // Fixed by the board: no RAM size, no CPU model, no virtio.
        assert!(!a.iter().any(|x| x == "-m" || x == "-cpu"), "{a:?}");
        assert!(!a.iter().any(|x| x.contains("virtio")), "{a:?}");
    }

    #[test]
    fn terminal_codes_are_stripped_from_firmware_text() {
        assert_eq!(
            strip_terminal_codes("\x1b[2J\x1b[01;01H\x1b[=3h\x1b[2JBdsDxe: loading\r"),
            "BdsDxe: loading"
        );
    }
}
