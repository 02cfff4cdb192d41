//! Booting a bundle in QEMU and relaying what comes out.
//!
//! The guest's three channels are Unix sockets here, one per channel
//! (`docs/guest-protocol.md`): the first (COM1, or the first PL011 on
//! AArch64) carries the program's stdout (and our framed stdin the other
//! way), the second (COM2, the second PL011) its stderr, the third (COM3, the
//! semihosting console) the kernel log with the final status marker. Program
//! output is copied byte for byte as it comes.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::CliError;
use crate::guest::GuestArch;

/// The machine model QEMU emulates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Machine {
    /// PC with PCIe (`-machine q35`), the default
    Q35,
    /// the older i440FX PC (`-machine pc`)
    Pc,
    /// QEMU's minimal `microvm` (Firecracker-like: no PCI, no firmware tables needed)
    Microvm,
    /// Firecracker's machine: on x86-64 reproduced on `microvm` (no ACPI,
    /// virtio-mmio named on the command line, COM1 alone as the one
    /// console, leaving by an i8042 reset); on AArch64 on `virt`
    /// ([`crate::firecracker_aarch64`]: RAM at `0x8000_0000`, an
    /// `ns16550a` as the one console, leaving by PSCI)
    Firecracker,
    /// Cloud Hypervisor's x86-64 machine reproduced on `microvm`:
    /// hardware-reduced ACPI, virtio over PCIe only (the ECAM window named
    /// by the host bridge in the DSDT), COM1 alone (one console), leaving
    /// through the ACPI sleep control register
    CloudHypervisor,
    /// AArch64: QEMU's Raspberry Pi 4 Model B (`-machine raspi4b`, 2 GiB,
    /// Cortex-A72) booted as the Pi's firmware would: the arm64 Image
    /// loaded at RAM base 0 with the Pi's own device tree (from Debian's
    /// kernel package, [`RASPI4B_DTB`]), the first PL011 as the one
    /// console, no PSCI, no RTC, no virtio (so `--dir-mode copy` only),
    /// leaving by a watchdog reset
    Raspi4b,
}

/// The Raspberry Pi 4 Model B's device tree, as Debian's arm64 kernel
/// package ships it (`scripts/setup.sh` extracts it here).
pub const RASPI4B_DTB: &str = "/usr/local/share/basalt/bcm2711-rpi-4-b.dtb";

/// How the guest CPU is run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accel {
    /// QEMU's software emulation
    Tcg,
    /// hardware virtualisation through `/dev/kvm`
    Kvm,
}

impl Accel {
    /// The name QEMU and our reports use.
    pub fn name(self) -> &'static str {
        match self {
            Accel::Tcg => "tcg",
            Accel::Kvm => "kvm",
        }
    }
}

/// Everything about one VM except its bundle and streams.
#[derive(Clone, Debug)]
pub struct VmOptions {
    /// guest ISA
    pub arch: GuestArch,
    /// machine model (x86-64; AArch64 guests run on `virt` unless this is
    /// [`Machine::Raspi4b`])
    pub machine: Machine,
    /// accelerator
    pub accel: Accel,
    /// guest RAM in MiB
    pub memory_mib: u64,
    /// the kernel ELF
    pub kernel: PathBuf,
    /// echo the kernel log to our stderr
    pub verbose: bool,
    /// kill the VM after this long
    pub timeout: Option<Duration>,
    /// the kernel command line (diagnostics, e.g. `basalt.crash=panic`)
    pub kernel_cmdline: Option<String>,
    /// give the VM QEMU's exit device: `isa-debug-exit` on x86-64,
    /// semihosting on AArch64 (off: the kernel must power off through ACPI,
    /// PSCI or a reset, as on other VMMs and real machines; on AArch64 the
    /// kernel log, which semihosting carries, is then lost too)
    pub exit_device: bool,
    /// the QEMU CPU model instead of `max` (TCG) or `host` (KVM), e.g.
    /// `cortex-a57`, a CPU without FEAT_RNG; code compiled on the host
    /// assumes `max`'s features, so such runs want the in-guest compiler
    pub cpu: Option<String>,
    /// give the VM a virtio entropy device (`-device virtio-rng-device` on
    /// a modern virtio-mmio transport on AArch64 `virt` and x86-64
    /// `microvm`, `-device virtio-rng-pci` on `q35` and `pc`), the
    /// kernel's seed when the CPU has no FEAT_RNG or RDRAND; on by default
    pub virtio_rng: bool,
    /// AArch64: boot a copy of the arm64 Image whose header asks for this
    /// `text_offset` instead of the built one's 2 MiB, so QEMU loads the
    /// kernel at RAM base + this offset rather than at its link address
    /// (checks that the kernel runs wherever it is placed); `None`: the
    /// Image as built. Ignored on x86-64.
    pub image_text_offset: Option<u64>,
    /// host directories shared live over virtio-9p (`-fsdev local` with a
    /// `virtio-9p-pci` or `virtio-9p-device` naming each's mount tag)
    pub shares: Vec<HostShare>,
    /// more QEMU arguments, appended as they are (tests add devices
    /// through this, e.g. `-device virtio-rng-pci` on AArch64 `virt`)
    pub extra_qemu_args: Vec<String>,
    /// give the VM a network card on QEMU's user-mode network (the host
    /// is 10.0.2.2, the VM gets 10.0.2.15 by DHCP), with these TCP ports
    /// forwarded from the host's loopback to the VM; `None`: no network
    pub network: Option<UserNetwork>,
    /// put the card on the host's tap interface of this name instead of
    /// QEMU's user-mode network (`-netdev tap,…,script=no`): real
    /// throughput, for users with the rights to make a tap; the guest's
    /// address then comes from `basalt.ip=` (no DHCP server on a tap)
    pub network_tap: Option<String>,
    /// boot through firmware instead of QEMU's `-kernel`: UEFI (OVMF on
    /// x86-64 `q35`, AAVMF on AArch64 `virt`) from a disk image or the
    /// network, or U-Boot (AArch64 `virt`) from a disk image; `None`:
    /// direct kernel boot
    pub firmware: Option<FirmwareBoot>,
    /// AArch64 `virt` under firmware: describe the machine with ACPI
    /// tables only (`acpi=on`, as AWS Graviton and Arm servers do; the
    /// default) or with a device tree only (`acpi=off`)
    pub acpi: bool,
    /// `basalt serve`: printed on our stderr when the kernel logs that it
    /// serves (`BASALT-SERVE PORT`), e.g. `Serving HTTP on http://…/`
    pub serve_banner: Option<String>,
}

/// How a VM boots through firmware.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FirmwareBoot {
    /// UEFI firmware boots the disk image's EFI system partition
    UefiDisk,
    /// UEFI firmware netboots the self-contained EFI executable over
    /// QEMU's user network (TFTP)
    UefiPxe,
    /// U-Boot (AArch64 `virt`) runs the disk image's UEFI loader through
    /// its own UEFI implementation (`bootefi`), found by its distro boot
    UbootEfi,
    /// U-Boot (AArch64 `virt`) reads `extlinux/extlinux.conf` from a disk
    /// and `booti`s the arm64 Image with the bundle as its initrd and
    /// U-Boot's device tree (QEMU's), as on a board
    UbootBooti,
}

impl FirmwareBoot {
    /// The firmware is U-Boot's.
    pub fn is_uboot(self) -> bool {
        matches!(self, FirmwareBoot::UbootEfi | FirmwareBoot::UbootBooti)
    }
}

/// U-Boot for QEMU's AArch64 `virt` (Debian's `u-boot-qemu`), loaded with
/// `-bios`.
pub const UBOOT_QEMU_ARM64: &str = "/usr/lib/u-boot/qemu_arm64/u-boot.bin";

/// Where the firmware code and a template of its variable store are.
pub fn uefi_firmware(arch: GuestArch) -> (&'static str, &'static str) {
    match arch {
        GuestArch::X86_64 => (
            "/usr/share/OVMF/OVMF_CODE_4M.fd",
            "/usr/share/OVMF/OVMF_VARS_4M.fd",
        ),
        GuestArch::Aarch64 => (
            "/usr/share/AAVMF/AAVMF_CODE.fd",
            "/usr/share/AAVMF/AAVMF_VARS.fd",
        ),
    }
}

impl VmOptions {
    /// A VM of `arch` booting `kernel` with the defaults `basalt run`
    /// uses: `q35` (x86-64), TCG, 1 GiB, QEMU's exit device and a
    /// virtio-rng, no deadline, no shares, no network.
    pub fn new(arch: GuestArch, kernel: PathBuf) -> VmOptions {
        VmOptions {
            arch,
            machine: Machine::Q35,
            accel: Accel::Tcg,
            memory_mib: 1024,
            kernel,
            verbose: false,
            timeout: None,
            kernel_cmdline: None,
            exit_device: true,
            cpu: None,
            virtio_rng: true,
            image_text_offset: None,
            shares: Vec::new(),
            extra_qemu_args: Vec::new(),
            network: None,
            network_tap: None,
            firmware: None,
            acpi: true,
            serve_banner: None,
        }
    }

    /// The kernel command line of a machine with one console: the CLI's
    /// own words first (`basalt.console=framed`, so [`crate::console::Demux`]
    /// can split the stream), then the caller's.
    pub fn framed_cmdline(&self) -> String {
        match &self.kernel_cmdline {
            Some(line) => format!("basalt.console=framed {line}"),
            None => "basalt.console=framed".to_string(),
        }
    }
}

/// A VM's user-mode network: `-netdev user` with a virtio-net device
/// (`virtio-net-device` on virtio-mmio machines, `virtio-net-pci` on PCI
/// ones).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserNetwork {
    /// TCP forwards: (port on the host, port in the VM)
    pub forwards: Vec<(u16, u16)>,
    /// the host address the forwards listen on (`None`: 127.0.0.1)
    pub forward_host: Option<std::net::IpAddr>,
    /// also join the card to a raw Ethernet tap (a QEMU hub joins the
    /// user-mode network, a `dgram` backend and the card): tests inject
    /// raw, hostile frames this way and see what the card sends
    pub tap: Option<FrameTap>,
    /// forward the host's loopback port of each listener the kernel
    /// reports (`BASALT-LISTEN tcp PORT`) to the VM, through QEMU's QMP
    /// socket (`crate::forward`): what a WASI 0.2 program's own listeners
    /// need to be reachable from the host
    pub forward_listeners: bool,
}

impl VmOptions {
    /// Whether listeners the kernel reports are forwarded from the host.
    fn forwards_listeners(&self) -> bool {
        self.network.as_ref().is_some_and(|n| n.forward_listeners)
    }
}

/// Where QEMU's QMP socket of a run is: beside its serial sockets.
fn qmp_path(sockets: &[PathBuf; 3]) -> PathBuf {
    sockets[0].with_file_name("qmp")
}

/// The monitor flags of a VM whose listeners are forwarded.
fn qmp_args(cmd: &mut Command, opts: &VmOptions, sockets: &[PathBuf; 3]) {
    if opts.forwards_listeners() {
        cmd.arg("-qmp").arg(format!(
            "unix:{},server=on,wait=off",
            qmp_path(sockets).display()
        ));
    }
}

/// A raw Ethernet tap on the host's 127.0.0.1: one frame per UDP
/// datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameTap {
    /// frames sent to this port reach the card
    pub inject_port: u16,
    /// frames the card sends are also sent to this port
    pub sink_port: u16,
}

/// The network flags for `net`: the user-mode backend with its forwards
/// and the card, `device`.
fn network_args(cmd: &mut Command, net: &UserNetwork, device: &str) {
    network_args_with(cmd, net, device, None, false);
}

/// [`network_args`] with more `-netdev user` options (`tftp=`, …) and, for
/// firmware boots, the card without QEMU's iPXE option ROM (the firmware's
/// own virtio-net driver and network stack serve) as the first boot
/// device when `netdev_extra` asks for netboot.
pub(crate) fn network_args_with(
    cmd: &mut Command,
    net: &UserNetwork,
    device: &str,
    netdev_extra: Option<&str>,
    firmware: bool,
) {
    let mut netdev = String::from("user,id=net0");
    let bind = net
        .forward_host
        .unwrap_or(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
    for (host, guest) in &net.forwards {
        netdev.push_str(&format!(",hostfwd=tcp:{bind}:{host}-:{guest}"));
    }
    if let Some(extra) = netdev_extra {
        netdev.push_str(extra);
    }
    let card_extra = match (firmware && device.ends_with("-pci"), netdev_extra.is_some()) {
        (true, true) => ",romfile=,bootindex=1",
        (true, false) => ",romfile=",
        (false, true) => ",bootindex=1",
        (false, false) => "",
    };
    match net.tap {
        None => {
            cmd.arg("-netdev").arg(netdev);
            cmd.arg("-device")
                .arg(format!("{device},netdev=net0{card_extra}"));
        }
        Some(tap) => {
            // user-mode network, tap and card on one hub
            cmd.arg("-netdev").arg(netdev);
            cmd.arg("-netdev").arg(format!(
                "dgram,id=tap0,local.type=inet,local.host=127.0.0.1,local.port={},remote.type=inet,remote.host=127.0.0.1,remote.port={}",
                tap.inject_port, tap.sink_port
            ));
            for (i, backend) in ["net0", "tap0"].iter().enumerate() {
                cmd.arg("-netdev")
                    .arg(format!("hubport,id=hub{i},hubid=0,netdev={backend}"));
            }
            cmd.arg("-netdev").arg("hubport,id=hubcard,hubid=0");
            cmd.arg("-device")
                .arg(format!("{device},netdev=hubcard{card_extra}"));
        }
    }
}

/// The flags that put the card, `device`, on host tap interface `ifname`
/// (made and configured by the user; QEMU runs no scripts).
pub(crate) fn tap_args(cmd: &mut Command, ifname: &str, device: &str) {
    cmd.arg("-netdev").arg(format!(
        "tap,id=net0,ifname={},script=no,downscript=no",
        ifname.replace(',', ",,")
    ));
    cmd.arg("-device").arg(format!("{device},netdev=net0"));
}

/// A host directory the VM sees live over virtio-9p.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostShare {
    /// the host directory
    pub host: PathBuf,
    /// the device's mount tag, which the manifest's `share` line names
    pub tag: String,
    /// QEMU refuses every change (`readonly=on`), beneath the kernel's
    /// own refusal (`--dir-ro`)
    pub read_only: bool,
}

/// The 9P share flags for `shares`: an `-fsdev` for each directory (the
/// `local` backend, files owned by whoever runs QEMU, inode numbers
/// remapped so that a tree spanning host file systems stays unique) and
/// its virtio device, `device` (`virtio-9p-pci` on PCI machines,
/// `virtio-9p-device` on virtio-mmio ones).
pub(crate) fn share_args(cmd: &mut Command, shares: &[HostShare], device: &str) {
    for (i, s) in shares.iter().enumerate() {
        // QEMU's option syntax doubles a comma inside a value.
        let path = s.host.to_string_lossy().replace(',', ",,");
        let readonly = if s.read_only { ",readonly=on" } else { "" };
        cmd.arg("-fsdev").arg(format!(
            "local,id=share{i},path={path},security_model=none,multidevs=remap{readonly}"
        ));
        cmd.arg("-device")
            .arg(format!("{device},fsdev=share{i},mount_tag={}", s.tag));
    }
}

/// Where the program's streams go.
pub struct VmIo {
    /// the program's stdin (`None`: end of file at once)
    pub stdin: Option<Box<dyn Read + Send>>,
    /// the program's stdout
    pub stdout: Box<dyn Write + Send>,
    /// the program's stderr
    pub stderr: Box<dyn Write + Send>,
}

/// How a VM run ended, from the kernel's status marker.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Status {
    /// `BASALT-EXIT n`: the program exited
    Exit(i32),
    /// `BASALT-TRAP kind message`: the program trapped
    Trap {
        /// the trap kind's identifier
        kind: String,
        /// what the kernel said about it
        message: String,
    },
    /// `BASALT-PANIC message`: the kernel failed
    Panic(String),
    /// `BASALT-ERROR message`: the bundle or module could not be loaded
    LoadError(String),
    /// no marker: QEMU ended on its own (status, if any)
    NoStatus(Option<i32>),
    /// the run took longer than [`VmOptions::timeout`]
    TimedOut(Duration),
}

/// Everything a run produced besides the program's streams.
#[derive(Clone, Debug)]
pub struct VmReport {
    /// how it ended
    pub status: Status,
    /// the kernel's log lines
    pub kernel_log: Vec<String>,
    /// QEMU's own stderr (its error messages)
    pub qemu_stderr: String,
    /// host time from starting QEMU to the first kernel log line
    pub to_first_log: Option<Duration>,
    /// host time from starting QEMU to the status marker
    pub to_marker: Option<Duration>,
    /// host time from starting QEMU to its exit
    pub total: Duration,
    /// QEMU's own exit status (`None` when it was killed at the timeout
    /// or after [`POWER_OFF_GRACE`])
    pub qemu_exit: Option<i32>,
    /// the kernel reported a status but the machine kept running (neither
    /// power-off nor reset worked), so QEMU was stopped from outside
    pub stopped_after_status: bool,
}

/// How long QEMU may run on after the kernel's status marker before it is
/// stopped from outside: the kernel powers off within milliseconds of it.
pub const POWER_OFF_GRACE: Duration = Duration::from_secs(10);

impl VmReport {
    /// The exit code the CLI ends with (see the protocol document).
    pub fn exit_code(&self) -> i32 {
        match &self.status {
            Status::Exit(n) => *n & 0xff,
            Status::Trap { .. } => 134,
            Status::Panic(_) => 70,
            Status::LoadError(_) => 65,
            Status::NoStatus(_) => 71,
            Status::TimedOut(_) => 124,
        }
    }

    /// The kernel log as text, for error reports.
    pub fn log_text(&self) -> String {
        let mut s = self.kernel_log.join("\n");
        if !self.qemu_stderr.is_empty() {
            s.push_str("\n[qemu stderr]\n");
            s.push_str(&self.qemu_stderr);
        }
        s
    }
}

/// Parses a status marker line.
pub fn parse_marker(line: &str) -> Option<Status> {
    let (key, rest) = line.split_once(' ').unwrap_or((line, ""));
    match key {
        "BASALT-EXIT" => rest.trim().parse().ok().map(Status::Exit),
        "BASALT-TRAP" => {
            let (kind, message) = rest.split_once(' ').unwrap_or((rest, ""));
            Some(Status::Trap {
                kind: kind.to_string(),
                message: message.to_string(),
            })
        }
        "BASALT-PANIC" => Some(Status::Panic(rest.to_string())),
        "BASALT-ERROR" => Some(Status::LoadError(rest.to_string())),
        _ => None,
    }
}

/// A private directory for one run's files, removed when dropped.
pub(crate) struct RunDir(
    pub(crate) PathBuf,
    /// removes the directory when dropped
    #[expect(dead_code, reason = "held for its Drop")]
    tempfile::TempDir,
);

impl RunDir {
    /// A new private directory for one VM's files (sockets, bundle, disk
    /// images): a random name under the temporary directory, mode 0700,
    /// removed with everything in it when dropped.
    pub(crate) fn new() -> Result<RunDir, CliError> {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::Builder::new()
            .prefix("basalt-")
            .permissions(std::fs::Permissions::from_mode(0o700))
            .tempdir()
            .map_err(|e| {
                CliError::Io(format!(
                    "cannot make a run directory in {}: {e}",
                    std::env::temp_dir().display()
                ))
            })?;
        Ok(RunDir(dir.path().to_path_buf(), dir))
    }
}

/// Feeds `stdin`, framed ([`frame_stdin`]), to the guest's console
/// through `writer`, then the end-of-file frame, once `wait_for` (if any)
/// is set. The thread is never joined: a program that never reads must
/// not keep the CLI waiting for its own stdin.
pub(crate) fn feed_stdin(
    mut writer: impl Write + Send + 'static,
    stdin: Option<Box<dyn Read + Send>>,
    wait_for: Option<Arc<std::sync::atomic::AtomicBool>>,
) {
    std::thread::spawn(move || {
        if let Some(flag) = wait_for {
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        let mut framed = Vec::new();
        if let Some(mut input) = stdin {
            let mut buf = [0u8; 4096];
            loop {
                match input.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        framed.clear();
                        frame_stdin(&buf[..n], &mut framed);
                        if writer.write_all(&framed).is_err() {
                            return;
                        }
                    }
                }
            }
        }
        let _ = writer.write_all(&[0xff, 0x01]);
    });
}

/// Frames stdin for COM1: `0xff` → `0xff 0x00`, end of file → `0xff 0x01`.
pub fn frame_stdin(data: &[u8], out: &mut Vec<u8>) {
    for &b in data {
        out.push(b);
        if b == 0xff {
            out.push(0x00);
        }
    }
}

pub(crate) fn qemu_binary(arch: GuestArch) -> &'static str {
    match arch {
        GuestArch::X86_64 => "qemu-system-x86_64",
        GuestArch::Aarch64 => "qemu-system-aarch64",
    }
}

/// What every VM's QEMU command line starts with: the machine model
/// `machine`, the accelerator, the CPU (`--cpu`, else `max` under TCG and
/// the host's under KVM), the memory, one vCPU, no default devices or
/// display, and no reboot (a reset ends QEMU).
pub(crate) fn base_command(opts: &VmOptions, machine: &str) -> Command {
    let mut cmd = Command::new(qemu_binary(opts.arch));
    cmd.args(["-machine", machine, "-accel", opts.accel.name()]);
    match (&opts.cpu, opts.accel, opts.arch) {
        (Some(model), _, _) => cmd.args(["-cpu", model]),
        (None, Accel::Tcg, _) => cmd.args(["-cpu", "max"]),
        (None, Accel::Kvm, GuestArch::X86_64) => cmd.args(["-cpu", "host,-arch-capabilities"]),
        (None, Accel::Kvm, GuestArch::Aarch64) => cmd.args(["-cpu", "host"]),
    };
    cmd.arg("-m").arg(format!("{}M", opts.memory_mib));
    cmd.args([
        "-smp",
        "1",
        "-nodefaults",
        "-no-user-config",
        "-display",
        "none",
        "-no-reboot",
    ]);
    cmd
}

/// QEMU's machine for [`Machine::CloudHypervisor`]: `microvm` with its
/// hardware-reduced ACPI (a GED whose sleep control register powers off)
/// and a PCIe host bridge, whose ECAM only the DSDT names (`_CBA`).
pub(crate) const CLOUD_HYPERVISOR_MACHINE: &str = "microvm,isa-serial=off,acpi=on,pcie=on";

/// The QEMU command line for a run.
pub fn qemu_command(opts: &VmOptions, bundle: &Path, sockets: &[PathBuf; 3]) -> Command {
    if opts.arch == GuestArch::Aarch64 {
        return qemu_command_virt(opts, bundle, sockets);
    }
    let machine = match opts.machine {
        // Raspi4b is AArch64's: `boot` refuses it for x86-64.
        Machine::Q35 | Machine::Raspi4b => "q35",
        Machine::Pc => "pc",
        // microvm's built-in serial port would take COM1 alone: all three
        // ports are added explicitly below instead.
        Machine::Microvm | Machine::Firecracker => "microvm,isa-serial=off",
        Machine::CloudHypervisor => CLOUD_HYPERVISOR_MACHINE,
    };
    let mut cmd = base_command(opts, machine);
    if opts.exit_device {
        cmd.args(["-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]);
    }
    // microvm's virtio-mmio transports (named in its DSDT or on the kernel
    // command line) take a virtio-rng as `virt`'s do; the PCs get one on
    // PCI (transitional, which the kernel drives through its modern
    // interface).
    match opts.machine {
        Machine::Microvm | Machine::Firecracker => {
            cmd.args(["-global", "virtio-mmio.force-legacy=false"]);
            if opts.virtio_rng {
                cmd.args(["-device", "virtio-rng-device"]);
            }
        }
        Machine::Q35 | Machine::Pc | Machine::Raspi4b | Machine::CloudHypervisor => {
            if opts.virtio_rng {
                cmd.args(["-device", "virtio-rng-pci"]);
            }
        }
    }
    let share_device = match opts.machine {
        Machine::Microvm | Machine::Firecracker => "virtio-9p-device",
        Machine::Q35 | Machine::Pc | Machine::Raspi4b | Machine::CloudHypervisor => "virtio-9p-pci",
    };
    share_args(&mut cmd, &opts.shares, share_device);
    if let Some(net) = &opts.network {
        let card = match opts.machine {
            Machine::Microvm | Machine::Firecracker => "virtio-net-device",
            Machine::Q35 | Machine::Pc | Machine::Raspi4b | Machine::CloudHypervisor => {
                "virtio-net-pci"
            }
        };
        network_args(&mut cmd, net, card);
    }
    if let Some(ifname) = &opts.network_tap {
        let card = match opts.machine {
            Machine::Microvm | Machine::Firecracker => "virtio-net-device",
            Machine::Q35 | Machine::Pc | Machine::Raspi4b | Machine::CloudHypervisor => {
                "virtio-net-pci"
            }
        };
        tap_args(&mut cmd, ifname, card);
    }
    cmd.arg("-kernel")
        .arg(&opts.kernel)
        .arg("-initrd")
        .arg(bundle);
    if let Some(line) = &opts.kernel_cmdline {
        cmd.arg("-append").arg(line);
    }
    // COM1, COM2, COM3 at their ISA addresses and IRQs.
    for (i, (path, (iobase, irq))) in sockets
        .iter()
        .zip([(0x3f8, 4), (0x2f8, 3), (0x3e8, 4)])
        .enumerate()
    {
        cmd.arg("-chardev")
            .arg(format!("socket,id=com{},path={}", i + 1, path.display()));
        cmd.arg("-device").arg(format!(
            "isa-serial,chardev=com{},iobase={iobase:#x},irq={irq},index={i}",
            i + 1
        ));
    }
    qmp_args(&mut cmd, opts, sockets);
    cmd.args(&opts.extra_qemu_args);
    cmd
}

/// The QEMU command line for an AArch64 run on `virt`: two PL011 UARTs for
/// stdout/stdin and stderr, the semihosting console for the kernel log,
/// semihosting's exit for the status, and (unless turned off) a virtio-rng
/// device. `virt`'s virtio-mmio transports are legacy (version 1) unless
/// told otherwise; the kernel drives only modern ones.
fn qemu_command_virt(opts: &VmOptions, bundle: &Path, sockets: &[PathBuf; 3]) -> Command {
    let mut cmd = base_command(opts, "virt");
    let image = match opts.image_text_offset {
        Some(_) => moved_image_path(bundle),
        None => crate::guest::boot_image(opts.arch, &opts.kernel),
    };
    cmd.arg("-kernel").arg(image).arg("-initrd").arg(bundle);
    if let Some(line) = &opts.kernel_cmdline {
        cmd.arg("-append").arg(line);
    }
    for (i, path) in sockets.iter().enumerate() {
        cmd.arg("-chardev")
            .arg(format!("socket,id=com{},path={}", i + 1, path.display()));
    }
    cmd.args(["-serial", "chardev:com1", "-serial", "chardev:com2"]);
    cmd.args(["-global", "virtio-mmio.force-legacy=false"]);
    if opts.virtio_rng {
        cmd.args(["-device", "virtio-rng-device"]);
    }
    share_args(&mut cmd, &opts.shares, "virtio-9p-device");
    if let Some(net) = &opts.network {
        network_args(&mut cmd, net, "virtio-net-device");
    }
    if let Some(ifname) = &opts.network_tap {
        tap_args(&mut cmd, ifname, "virtio-net-device");
    }
    if opts.exit_device {
        cmd.args([
            "-semihosting-config",
            "enable=on,target=native,chardev=com3",
        ]);
    }
    qmp_args(&mut cmd, opts, sockets);
    cmd.args(&opts.extra_qemu_args);
    cmd
}

/// Where [`boot`] writes the copy of the Image that
/// [`VmOptions::image_text_offset`] asks for: beside the run's bundle.
fn moved_image_path(bundle: &Path) -> PathBuf {
    bundle.with_file_name("kernel.Image")
}

/// Accepts the one connection QEMU makes to `listener`, giving up once
/// `done` is set (QEMU exited without connecting).
pub(crate) fn accept_one(listener: UnixListener, done: Arc<Mutex<bool>>) -> Option<UnixStream> {
    listener.set_nonblocking(true).ok()?;
    loop {
        match listener.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(false).ok()?;
                return Some(s);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if *done.lock().ok()? {
                    return None;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            Err(_) => return None,
        }
    }
}

/// The kernel log as it arrives, and what it said about the run.
#[derive(Default)]
pub(crate) struct LogState {
    pub(crate) lines: Vec<String>,
    /// printed on stderr when the kernel logs `BASALT-SERVE` (once)
    pub(crate) serve_banner: Option<String>,
    status: Option<Status>,
    first_line: Option<Duration>,
    marker: Option<Duration>,
}

/// Boots `bundle` and relays the streams until the VM ends.
pub fn boot(opts: &VmOptions, bundle: &[u8], io: VmIo) -> Result<VmReport, CliError> {
    if opts.arch == GuestArch::X86_64
        && matches!(
            opts.machine,
            Machine::Firecracker | Machine::CloudHypervisor
        )
    {
        return crate::vm_console::boot_microvm_shape(opts, bundle, io);
    }
    if opts.arch == GuestArch::Aarch64 && opts.machine == Machine::Firecracker {
        return crate::firecracker_aarch64::boot(opts, bundle, io);
    }
    if opts.machine == Machine::Raspi4b {
        if opts.arch != GuestArch::Aarch64 {
            return Err(CliError::Usage(
                "the raspi4b machine is AArch64's: use --arch aarch64".into(),
            ));
        }
        return crate::vm_console::boot_raspi4b(opts, bundle, io);
    }
    let dir = RunDir::new()?;
    let bundle_path = dir.0.join("bundle.tar");
    std::fs::write(&bundle_path, bundle)
        .map_err(|e| CliError::Io(format!("{}: {e}", bundle_path.display())))?;
    if opts.arch == GuestArch::Aarch64
        && let Some(text_offset) = opts.image_text_offset
    {
        let built = crate::guest::boot_image(opts.arch, &opts.kernel);
        let image =
            std::fs::read(&built).map_err(|e| CliError::Io(format!("{}: {e}", built.display())))?;
        let moved = moved_image_path(&bundle_path);
        std::fs::write(&moved, crate::guest::with_text_offset(&image, text_offset)?)
            .map_err(|e| CliError::Io(format!("{}: {e}", moved.display())))?;
    }
    let sockets = [dir.0.join("com1"), dir.0.join("com2"), dir.0.join("com3")];
    let mut listeners = Vec::new();
    for s in &sockets {
        listeners.push(
            UnixListener::bind(s).map_err(|e| CliError::Io(format!("{}: {e}", s.display())))?,
        );
    }
    let mut cmd = qemu_command(opts, &bundle_path, &sockets);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let start = Instant::now();
    let mut child = cmd.spawn().map_err(|e| {
        CliError::Qemu(format!(
            "cannot start {}: {e} (run scripts/setup.sh to install QEMU)",
            qemu_binary(opts.arch)
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

    let mut listeners = listeners.into_iter();
    let (l1, l2, l3) = match (listeners.next(), listeners.next(), listeners.next()) {
        (Some(a), Some(b), Some(c)) => (a, b, c),
        _ => return Err(CliError::Io("socket setup".into())),
    };
    let VmIo {
        stdin,
        mut stdout,
        mut stderr,
    } = io;

    let log = Arc::new(Mutex::new(LogState {
        serve_banner: opts.serve_banner.clone(),
        ..LogState::default()
    }));
    let verbose = opts.verbose;
    let forwarder = opts.forwards_listeners().then(|| {
        let taken = opts
            .network
            .iter()
            .flat_map(|n| n.forwards.iter().map(|f| f.1))
            .collect();
        crate::forward::Forwarder::new(qmp_path(&sockets), taken)
    });
    // The log's socket goes to the relay when listeners are forwarded,
    // else to a thread of its own.
    let (l3_relay, l3_log) = match forwarder {
        Some(_) => (Some(l3), None),
        None => (None, Some(l3)),
    };
    let d = done.clone();
    let log1 = log.clone();
    let com1: JoinHandle<()> = std::thread::spawn(move || {
        let Some(stream) = accept_one(l1, d.clone()) else {
            return;
        };
        if let Ok(writer) = stream.try_clone() {
            feed_stdin(writer, stdin, None);
        }
        match forwarder {
            // The log and stdout in one thread, the log first.
            Some(f) => {
                if let Some(com3) = l3_relay.and_then(|l3| accept_one(l3, d)) {
                    crate::forward::relay(stream, com3, &mut *stdout, log1, f, start, verbose);
                }
            }
            None => copy_stream(stream, &mut *stdout),
        }
    });
    let d = done.clone();
    let com2: JoinHandle<()> = std::thread::spawn(move || {
        if let Some(stream) = accept_one(l2, d) {
            copy_stream(stream, &mut *stderr);
        }
    });
    let d = done.clone();
    let log2 = log.clone();
    let com3: Option<JoinHandle<()>> = l3_log.map(|l3| {
        std::thread::spawn(move || {
            let Some(stream) = accept_one(l3, d) else {
                return;
            };
            let mut reader = BufReader::new(stream);
            let mut raw = Vec::new();
            loop {
                raw.clear();
                match reader.read_until(b'\n', &mut raw) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {}
                }
                let line = String::from_utf8_lossy(&raw)
                    .trim_end_matches(['\n', '\r'])
                    .to_string();
                let Ok(mut st) = log2.lock() else { break };
                st.push_line(line, start, verbose);
            }
        })
    });

    let (qemu_status, timed_out, stopped_after_status) =
        wait_for_vm(&mut child, &log, opts, start)?;
    let total = start.elapsed();
    if let Ok(mut d) = done.lock() {
        *d = true;
    }
    let _ = com1.join();
    let _ = com2.join();
    if let Some(com3) = com3 {
        let _ = com3.join();
    }
    let qemu_stderr = qemu_err_thread.join().unwrap_or_default();
    report(
        &log,
        qemu_stderr,
        qemu_status,
        timed_out,
        stopped_after_status,
        total,
    )
}

/// Waits for QEMU to end: by itself, [`POWER_OFF_GRACE`] after the status
/// marker (killed), or at the deadline (killed). Returns QEMU's status, the
/// deadline if it struck, and whether the VM was stopped after its status.
pub(crate) fn wait_for_vm(
    child: &mut std::process::Child,
    log: &Arc<Mutex<LogState>>,
    opts: &VmOptions,
    start: Instant,
) -> Result<(Option<i32>, Option<Duration>, bool), CliError> {
    let mut timed_out = None;
    let mut stopped_after_status = false;
    let _waiting = crate::signals::VmWait::begin();
    let qemu_status = loop {
        if let Some(sig) = crate::signals::received() {
            let _ = child.kill();
            let _ = child.wait();
            return Err(CliError::Interrupted(sig));
        }
        match child.try_wait() {
            Ok(Some(status)) => break status.code(),
            Ok(None) => {}
            Err(e) => return Err(CliError::Qemu(format!("waiting for QEMU: {e}"))),
        }
        let status_since = log.lock().ok().and_then(|st| st.marker);
        if let Some(at) = status_since
            && start.elapsed() > at + POWER_OFF_GRACE
        {
            // The program's status is known; a machine the kernel could
            // neither power off nor reset must not hold the caller until
            // the deadline.
            let _ = child.kill();
            let _ = child.wait();
            stopped_after_status = true;
            break None;
        }
        if let Some(limit) = opts.timeout
            && start.elapsed() > limit
        {
            let _ = child.kill();
            let _ = child.wait();
            timed_out = Some(limit);
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Ok((qemu_status, timed_out, stopped_after_status))
}

/// The report of a finished run.
pub(crate) fn report(
    log: &Arc<Mutex<LogState>>,
    qemu_stderr: String,
    qemu_status: Option<i32>,
    timed_out: Option<Duration>,
    stopped_after_status: bool,
    total: Duration,
) -> Result<VmReport, CliError> {
    let st = log
        .lock()
        .map_err(|_| CliError::Io("kernel log reader failed".into()))?;
    let status = match (timed_out, &st.status) {
        (Some(limit), _) => Status::TimedOut(limit),
        (None, Some(s)) => s.clone(),
        (None, None) => Status::NoStatus(qemu_status),
    };
    Ok(VmReport {
        status,
        kernel_log: st.lines.clone(),
        qemu_stderr,
        to_first_log: st.first_line,
        to_marker: st.marker,
        total,
        qemu_exit: qemu_status,
        stopped_after_status,
    })
}

impl LogState {
    /// Takes one kernel log line (`\n` and `\r` already cut off): notes
    /// the first line's and the marker's times, and echoes it when asked.
    pub(crate) fn push_line(&mut self, line: String, start: Instant, verbose: bool) {
        if self.first_line.is_none() {
            self.first_line = Some(start.elapsed());
        }
        if let Some(s) = parse_marker(&line)
            && self.status.is_none()
        {
            self.status = Some(s);
            self.marker = Some(start.elapsed());
        }
        if verbose {
            eprintln!("basalt: kernel: {line}");
        }
        if line.starts_with("BASALT-SERVE ")
            && let Some(banner) = self.serve_banner.take()
        {
            eprintln!("{banner}");
        }
        self.lines.push(line);
    }
}

fn copy_stream(mut from: UnixStream, to: &mut dyn Write) {
    let mut buf = [0u8; 8192];
    loop {
        match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if to.write_all(&buf[..n]).is_err() {
                    break;
                }
                let _ = to.flush();
            }
        }
    }
}

#[cfg(test)]
#[path = "vm_tests.rs"]
mod tests;
