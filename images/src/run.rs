//! `basalt run`: from a `.wasm` file to a finished VM.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use basalt_runtime::engine::Instrumentation;
use basalt_runtime::{Arch, Config, Engine, Module, Target};

use crate::CliError;
use crate::accel::{self, AccelChoice};
use crate::bundle::{Entry, Manifest, Preopen, PreopenSource, write_bundle};
use crate::guest::{self, GuestArch};
use crate::vm::{
    self, Accel, FirmwareBoot, HostShare, Machine, UserNetwork, VmIo, VmOptions, VmReport,
};

/// A host directory shared with the program (`--dir`, `--dir-ro`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SharedDir {
    /// the host directory
    pub host: PathBuf,
    /// the path the program sees it as (`fd_prestat_dir_name`)
    pub guest: String,
    /// the program may read and list it but change nothing in it
    /// (`--dir-ro`): every change is `EPERM`, as in wasmtime's read-only
    /// preopens
    pub read_only: bool,
}

impl SharedDir {
    /// `host`, shared read-write as `guest`.
    pub fn new(host: impl Into<PathBuf>, guest: impl Into<String>) -> SharedDir {
        SharedDir {
            host: host.into(),
            guest: guest.into(),
            read_only: false,
        }
    }

    /// `host`, shared read-only as `guest`.
    pub fn read_only(host: impl Into<PathBuf>, guest: impl Into<String>) -> SharedDir {
        SharedDir {
            read_only: true,
            ..SharedDir::new(host, guest)
        }
    }
}

/// Everything `basalt run` was asked to do.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// the module to run
    pub wasm: PathBuf,
    /// `argv` after the program name
    pub args: Vec<Vec<u8>>,
    /// the program's whole environment (`NAME=VALUE`)
    pub env: Vec<Vec<u8>>,
    /// host directories shared with the program, preopened in this order
    pub dirs: Vec<SharedDir>,
    /// how a VM sees `dirs`
    pub dir_mode: DirMode,
    /// addresses to listen on, preopened as sockets after `dirs`
    /// (`--tcplisten`; in a VM, the guest's addresses)
    pub tcplisten: Vec<String>,
    /// what `wasi:sockets` may do (`-S inherit-network`, `-S tcp`, …)
    pub sockets: basalt_wasi::preview2::SocketGrants,
    /// the most WASI 0.2 resources the program may hold (`-S max-resources`)
    pub max_resources: Option<usize>,
    /// `-S max-random-size` and `-S cwd`
    pub wasi: crate::wasi_flags::Settings,
    /// host ports forwarded to guest ports: (host, guest) (`-p`)
    pub publish: Vec<(u16, u16)>,
    /// guest ISA
    pub arch: GuestArch,
    /// QEMU machine model
    pub machine: Machine,
    /// accelerator choice
    pub accel: AccelChoice,
    /// guest RAM in MiB
    pub memory_mib: u64,
    /// compile in the guest rather than on the host
    pub jit: bool,
    /// report what happens on stderr
    pub verbose: bool,
    /// kill the VM after this long
    pub timeout: Option<Duration>,
    /// fuel the program may spend (`--fuel`): one unit per operator
    pub fuel: Option<u64>,
    /// the kernel stops the program after this long from its start
    /// (`--timeout`: its code gets interrupt checks, the kernel's timer
    /// raises them, and the program ends with exit code 124 and a
    /// message, also in an image); `timeout` then stops QEMU from the
    /// host [`DEADLINE_GRACE`] later, should the kernel fail to end the run
    pub deadline: Option<Duration>,
    /// the kernel command line (diagnostics; see `docs/guest-protocol.md`)
    pub kernel_cmdline: Option<String>,
    /// give the VM QEMU's `isa-debug-exit` device (see [`VmOptions::exit_device`])
    pub exit_device: bool,
    /// the QEMU CPU model (see [`VmOptions::cpu`])
    pub cpu: Option<String>,
    /// give an AArch64 VM a virtio-rng device (see [`VmOptions::virtio_rng`])
    pub virtio_rng: bool,
    /// AArch64: load the kernel elsewhere (see [`VmOptions::image_text_offset`])
    pub image_text_offset: Option<u64>,
    /// more QEMU arguments (see [`VmOptions::extra_qemu_args`])
    pub extra_qemu_args: Vec<String>,
    /// give the VM a user-mode network with TCP forwards (see
    /// [`VmOptions::network`])
    pub network: Option<UserNetwork>,
    /// put the VM's card on a host tap interface instead: (interface,
    /// the guest's address `A.B.C.D/N`) (`--net tap:IFNAME:CIDR`)
    pub net_tap: Option<(String, String)>,
    /// boot through firmware (`--firmware uefi`, `--boot pxe`) instead of
    /// QEMU's `-kernel`
    pub firmware: Option<FirmwareBoot>,
    /// AArch64 under firmware: ACPI tables only, or a device tree only
    /// (see [`VmOptions::acpi`])
    pub acpi: bool,
    /// serve HTTP with the component instead of running it (`basalt
    /// serve` in a VM)
    pub serve: Option<crate::bundle::ServeManifest>,
    /// what to print on stderr once the VM serves (see
    /// [`VmOptions::serve_banner`])
    pub serve_banner: Option<String>,
}

/// How a program sees the directories of `--dir`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DirMode {
    /// live (over virtio-9p in a VM, the host's own calls hosted): reads
    /// see the host's files as they are now, writes reach the host as they
    /// happen (as under wasmtime); the default
    Live,
    /// copied at start (into the bundle, or hosted into memory), kept in
    /// the program's memory; its changes are not written back
    Copy,
}

impl RunOptions {
    /// Defaults for running `wasm`.
    pub fn new(wasm: impl Into<PathBuf>) -> RunOptions {
        RunOptions {
            wasm: wasm.into(),
            args: Vec::new(),
            env: Vec::new(),
            dirs: Vec::new(),
            dir_mode: DirMode::Live,
            tcplisten: Vec::new(),
            sockets: basalt_wasi::preview2::SocketGrants::default(),
            max_resources: None,
            wasi: crate::wasi_flags::Settings::default(),
            publish: Vec::new(),
            arch: GuestArch::X86_64,
            machine: Machine::Q35,
            accel: AccelChoice::Auto,
            memory_mib: 1024,
            jit: false,
            verbose: false,
            timeout: None,
            fuel: None,
            deadline: None,
            kernel_cmdline: None,
            exit_device: true,
            cpu: None,
            virtio_rng: true,
            image_text_offset: None,
            serve: None,
            serve_banner: None,
            extra_qemu_args: Vec::new(),
            network: None,
            net_tap: None,
            firmware: None,
            acpi: true,
        }
    }
}

/// The CPU features code compiled on the host may use in the guest for a
/// run: [`guest_target`]'s, except on the Raspberry Pi 4, whose Cortex-A72
/// (Armv8.0) has none of the optional features.
fn machine_target(opts: &RunOptions, accel: Accel) -> Target {
    if opts.arch == GuestArch::Aarch64 && opts.machine == Machine::Raspi4b {
        return Target {
            arch: Arch::Aarch64,
            features: Default::default(),
        };
    }
    guest_target(opts.arch, accel)
}

/// The CPU features code compiled on the host may use in the guest: QEMU's
/// `max` CPU under TCG is given the x86-64-v2 level on x86-64 and LSE,
/// FP16, dot product and I8MM on AArch64 (the kernel checks them and says
/// so if the CPU lacks any); under KVM the guest CPU is the host's.
pub fn guest_target(arch: GuestArch, accel: Accel) -> Target {
    match (arch, accel) {
        (GuestArch::Aarch64, _) => Target {
            arch: Arch::Aarch64,
            features: ["has_lse", "has_fp16", "has_dotprod", "has_i8mm"]
                .into_iter()
                .collect(),
        },
        (GuestArch::X86_64, Accel::Kvm) => Target::host(),
        (GuestArch::X86_64, Accel::Tcg) => Target {
            arch: Arch::X86_64,
            features: [
                "has_sse3",
                "has_ssse3",
                "has_sse41",
                "has_sse42",
                "has_popcnt",
            ]
            .into_iter()
            .collect(),
        },
    }
}

/// What the guest's code carries besides the program: fuel metering for
/// `--fuel`, and interrupt checks when the program listens on sockets or
/// may use the network (the kernel raises them from its timer), so a
/// program that computes without socket calls does not starve its
/// connections (the kernel drives the network from the checks).
pub fn instrumentation(opts: &RunOptions) -> Instrumentation {
    Instrumentation {
        interruptible: !opts.tcplisten.is_empty()
            || opts.deadline.is_some()
            || opts.sockets.inherit_network
            || opts.serve.is_some(),
        consume_fuel: opts.fuel.is_some(),
    }
}

/// Compiles `wasm` for `target` without running it (the host half of `run`).
/// `instrumentation`: interrupt checks, fuel metering (see
/// [`instrumentation`]).
pub fn compile_for_guest(
    name: &str,
    wasm: &[u8],
    target: Target,
    instrumentation: Instrumentation,
) -> Result<Vec<u8>, CliError> {
    let engine = Engine::new(Config {
        target,
        platform: None,
        max_wasm_stack: 1 << 20,
        max_memory_bytes: 4 << 30,
        interruptible: instrumentation.interruptible,
        consume_fuel: instrumentation.consume_fuel,
    })
    .map_err(|e| CliError::Module(format!("{name}: {e}")))?;
    Module::compile_artifact(&engine, wasm).map_err(|e| CliError::Module(format!("{name}: {e}")))
}

/// The largest bundle QEMU loads as the initrd of a VM with `ram` bytes:
/// on AArch64 `virt` it goes at RAM start + min(RAM / 2, 128 MiB) and must
/// end within RAM; on x86-64 it must fit in RAM (QEMU reports a tighter
/// limit itself).
pub fn initrd_limit(arch: GuestArch, ram: u64) -> u64 {
    match arch {
        GuestArch::Aarch64 => ram - (ram / 2).min(128 << 20),
        GuestArch::X86_64 => ram,
    }
}

/// Runs the program in a VM with the given streams and returns the report.
pub fn run_vm(opts: &RunOptions, io: VmIo) -> Result<VmReport, CliError> {
    let name = opts.wasm.display().to_string();
    let wasm = std::fs::read(&opts.wasm)
        .map_err(|e| CliError::Input(format!("cannot read {name}: {e}")))?;
    let kernel = guest::kernel(opts.arch, opts.verbose)?;
    let mut vm_opts = VmOptions {
        machine: opts.machine,
        memory_mib: opts.memory_mib,
        verbose: opts.verbose,
        timeout: opts.timeout.map(|t| match opts.deadline {
            Some(_) => t + DEADLINE_GRACE,
            None => t,
        }),
        kernel_cmdline: opts.kernel_cmdline.clone(),
        exit_device: opts.exit_device,
        cpu: opts.cpu.clone(),
        virtio_rng: opts.virtio_rng,
        image_text_offset: opts.image_text_offset,
        extra_qemu_args: opts.extra_qemu_args.clone(),
        acpi: opts.acpi,
        serve_banner: opts.serve_banner.clone(),
        ..VmOptions::new(opts.arch, kernel.clone())
    };
    let (accel, why) = accel::choose(opts.accel, &vm_opts)?;
    vm_opts.accel = accel;
    // After the probe boot, which must not take the forwarded ports.
    match &opts.net_tap {
        None => {
            let component = basalt_runtime::component::def::is_component(&wasm);
            vm_opts.network = user_network(opts, component, component && imports_http(&wasm));
        }
        Some((ifname, cidr)) => {
            if !opts.publish.is_empty() {
                return Err(CliError::Usage(String::from(
                    "-p forwards through QEMU's user-mode network; with --net tap reach the guest at its own address",
                )));
            }
            vm_opts.network_tap = Some(ifname.clone());
            let word = format!("basalt.ip={cidr}");
            vm_opts.kernel_cmdline = Some(match &vm_opts.kernel_cmdline {
                Some(line) => format!("{line} {word}"),
                None => word,
            });
        }
    }
    if opts.verbose {
        eprintln!("basalt: accelerator: {} ({why})", accel.name());
        eprintln!("basalt: kernel: {}", kernel.display());
    }
    let Packed {
        bundle,
        shares,
        files,
    } = pack(
        opts,
        &name,
        wasm,
        &kernel,
        machine_target(opts, accel),
        host_terminals(),
    )?;
    vm_opts.shares = shares;
    if let Some(boot) = opts.firmware {
        // The same image `basalt image` writes, with the console framed
        // so stdout, stderr and the kernel log come apart again here.
        let parts = image_parts(
            opts.arch,
            &kernel,
            bundle,
            vm_opts.framed_cmdline(),
            opts.verbose,
        )?;
        let media = match boot {
            FirmwareBoot::UefiDisk | FirmwareBoot::UbootEfi => crate::image::raw_disk(&parts)?,
            FirmwareBoot::UefiPxe => crate::image::efi_executable(&parts)?,
            FirmwareBoot::UbootBooti => crate::image::extlinux_disk(&parts)?,
        };
        let report = crate::vm_console::boot_firmware(&vm_opts, boot, &media, io)?;
        report_timeline(opts, &report);
        return Ok(report);
    }
    let limit = initrd_limit(opts.arch, opts.memory_mib << 20);
    if bundle.len() as u64 > limit {
        return Err(CliError::Input(format!(
            "the bundle ({} MiB with the --dir files) does not fit in the VM's {} MiB of memory (QEMU can load at most {} MiB there); the kernel also copies the files into its own memory, so give the VM more than twice their size (--memory) or share less",
            (bundle.len() as u64).div_ceil(1 << 20),
            opts.memory_mib,
            limit >> 20
        )));
    }
    if opts.verbose && !files.is_empty() {
        eprintln!(
            "basalt: packed {} --dir entries; bundle {} KiB",
            files.len(),
            bundle.len() / 1024
        );
    }
    let report = vm::boot(&vm_opts, &bundle, io)?;
    report_timeline(opts, &report);
    Ok(report)
}

/// With `--verbose`, the host's view of the run's timeline.
fn report_timeline(opts: &RunOptions, report: &VmReport) {
    if opts.verbose {
        let ms = |d: Option<Duration>| {
            d.map(|d| format!("{:.1} ms", d.as_secs_f64() * 1e3))
                .unwrap_or("-".into())
        };
        eprintln!(
            "basalt: host timeline: first kernel log line {}, status marker {}, QEMU exited {}",
            ms(report.to_first_log),
            ms(report.to_marker),
            ms(Some(report.total))
        );
    }
}

/// The parts of a bootable image for the kernel ELF `kernel`.
pub fn image_parts(
    arch: GuestArch,
    kernel: &Path,
    bundle: Vec<u8>,
    cmdline: String,
    verbose: bool,
) -> Result<crate::image::ImageParts, CliError> {
    let file = guest::boot_image(arch, kernel);
    let kernel =
        std::fs::read(&file).map_err(|e| CliError::Build(format!("{}: {e}", file.display())))?;
    let kernel = match arch {
        GuestArch::X86_64 => guest::loadable_elf(&kernel)?,
        GuestArch::Aarch64 => kernel,
    };
    Ok(crate::image::ImageParts {
        arch,
        kernel,
        bundle,
        cmdline,
        verbose,
    })
}

/// `basalt image`: writes the bootable artifact of a run's inputs
/// (`--dir` copied into the image) to `out`; returns the exit code.
pub fn make_image(
    opts: &RunOptions,
    format: crate::image::Format,
    out: &Path,
) -> Result<i32, CliError> {
    let t = Instant::now();
    let name = opts.wasm.display().to_string();
    let wasm = std::fs::read(&opts.wasm)
        .map_err(|e| CliError::Input(format!("cannot read {name}: {e}")))?;
    if opts.verbose {
        eprintln!("basalt: building the kernel and the UEFI loaders");
    }
    let kernel = guest::kernel(opts.arch, opts.verbose)?;
    let mut copy = opts.clone();
    copy.dir_mode = DirMode::Copy;
    // The baseline CPU of the guest ISA, as under TCG: a cloud's CPU is
    // not known here, and every current one has these features.
    let packed = pack(
        &copy,
        &name,
        wasm,
        &kernel,
        guest_target(opts.arch, Accel::Tcg),
        // Where an image boots, nobody here knows what its console is.
        [false; 3],
    )?;
    let mut cmdline = opts.kernel_cmdline.clone().unwrap_or_default();
    if let Some((_, cidr)) = &opts.net_tap {
        cmdline = format!("{cmdline} basalt.ip={cidr}").trim().to_string();
    }
    if opts.verbose {
        cmdline = format!("{cmdline} basalt.log=console").trim().to_string();
    }
    let parts = image_parts(opts.arch, &kernel, packed.bundle, cmdline, opts.verbose)?;
    crate::image::write(&parts, format, out)?;
    let size = std::fs::metadata(out).map(|m| m.len()).unwrap_or(0);
    eprintln!(
        "basalt: wrote {} ({} KiB, {}) in {:.1} s",
        out.display(),
        size / 1024,
        format.name(),
        t.elapsed().as_secs_f64()
    );
    Ok(0)
}

/// A packed bundle and the live shares its manifest names.
pub struct Packed {
    /// the bundle (`-initrd`'s tar)
    pub bundle: Vec<u8>,
    /// host directories the VM must share over virtio-9p
    pub shares: Vec<HostShare>,
    /// the `--dir-mode copy` entries packed
    pub files: Vec<crate::bundle::FileEntry>,
}

/// Which of this process's stdin, stdout and stderr are terminals: the
/// program is told the same (hosted, and in a VM through the manifest),
/// so it writes colours and picks line buffering only where wasmtime's
/// programs would.
pub fn host_terminals() -> [bool; 3] {
    use std::io::IsTerminal;
    [
        std::io::stdin().is_terminal(),
        std::io::stdout().is_terminal(),
        std::io::stderr().is_terminal(),
    ]
}

/// Packs the bundle of a run: manifest, module, code compiled on the host
/// for `target` (unless `--jit`), the kernel's symbols, and the `--dir`
/// shares (live ones as manifest lines, copied ones as entries).
pub fn pack(
    opts: &RunOptions,
    name: &str,
    wasm: Vec<u8>,
    kernel: &Path,
    target: Target,
    terminals: [bool; 3],
) -> Result<Packed, CliError> {
    let mut shares = Vec::new();
    let mut entries = Vec::new();
    let mut manifest = Manifest {
        args: std::iter::once(name.to_string().into_bytes())
            .chain(opts.args.iter().cloned())
            .collect(),
        env: opts.env.clone(),
        jit: opts.jit,
        verbose: opts.verbose,
        artifact: false,
        component_artifacts: None,
        preopens: Vec::new(),
        tcplisten: opts.tcplisten.clone(),
        fuel: opts.fuel,
        interrupt_checks: instrumentation(opts).interruptible,
        deadline_ms: opts
            .deadline
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)),
        terminals,
        sockets: opts.sockets,
        max_resources: opts.max_resources,
        max_random_size: opts.wasi.max_random_size,
        hostcall_fuel: opts.wasi.hostcall_fuel,
        cwd: opts.wasi.cwd.clone(),
        serve: opts.serve,
    };
    // Shared directories, preopened in --dir order: live over virtio-9p,
    // or packed under fs/N/.
    let mut files = Vec::new();
    for (i, dir) in opts.dirs.iter().enumerate() {
        let host = &dir.host;
        let source = match opts.dir_mode {
            DirMode::Live => {
                let tag = format!("basalt{i}");
                shares.push(HostShare {
                    host: live_share_path(host)?,
                    tag: tag.clone(),
                    read_only: dir.read_only,
                });
                PreopenSource::Host(tag)
            }
            DirMode::Copy => {
                let prefix = crate::share::prefix(i);
                let mut warn = |w: String| eprintln!("basalt: warning: {w}");
                files.extend(crate::share::pack_dir(host, &prefix, &mut warn)?);
                PreopenSource::Bundle(prefix)
            }
        };
        manifest.preopens.push(Preopen {
            source,
            guest: dir.guest.clone().into_bytes(),
            read_only: dir.read_only,
        });
    }
    let component = basalt_runtime::component::def::is_component(&wasm);
    if component {
        // Validated here, with the same message as hosted, before a VM starts.
        basalt_runtime::component::validate(&wasm)
            .map_err(|e| CliError::Module(format!("{name}: {e}")))?;
    }
    if !opts.jit && component {
        let t = Instant::now();
        let parsed = basalt_runtime::component::def::parse(&wasm)
            .map_err(|e| CliError::Module(format!("{name}: {e}")))?;
        for (i, range) in parsed.modules.iter().enumerate() {
            let core = wasm.get(range.clone()).ok_or_else(|| {
                CliError::Module(format!(
                    "{name}: core module {i} past the end of the component"
                ))
            })?;
            let artifact = compile_for_guest(name, core, target.clone(), instrumentation(opts))?;
            entries.push(Entry {
                path: format!("app.cwasm.{i}"),
                data: artifact,
            });
        }
        if opts.verbose {
            eprintln!(
                "basalt: compiled a component of {} core modules ({} KiB of wasm) on the host in {:.1} ms",
                parsed.modules.len(),
                wasm.len() / 1024,
                t.elapsed().as_secs_f64() * 1e3
            );
        }
        manifest.component_artifacts = Some(parsed.modules.len());
    } else if !opts.jit {
        let t = Instant::now();
        let artifact = compile_for_guest(name, &wasm, target, instrumentation(opts))?;
        if opts.verbose {
            eprintln!(
                "basalt: compiled {} KiB of wasm on the host in {:.1} ms",
                wasm.len() / 1024,
                t.elapsed().as_secs_f64() * 1e3
            );
        }
        manifest.artifact = true;
        entries.push(Entry {
            path: "app.cwasm".into(),
            data: artifact,
        });
    } else if !component {
        // Validate on the host anyway: a malformed module is reported here,
        // with the same message, before a VM is started.
        let mut v = wasmparser::Validator::new();
        v.validate_all(&wasm)
            .map_err(|e| CliError::Module(format!("{name}: invalid module: {e}")))?;
    }
    // the manifest goes first: a reader of the archive sees it before anything else
    entries.insert(
        0,
        Entry {
            path: "manifest".into(),
            data: manifest.render().into_bytes(),
        },
    );
    entries.push(Entry {
        path: "app.wasm".into(),
        data: wasm,
    });
    if let Ok(elf) = std::fs::read(kernel)
        && let Some(syms) = crate::symbols::kernel_syms(&elf)
    {
        entries.push(Entry {
            path: "kernel.syms".into(),
            data: syms.into_bytes(),
        });
    }
    Ok(Packed {
        bundle: write_bundle(&entries, &files),
        shares,
        files,
    })
}

/// How long after the kernel's own deadline (`--timeout`) the host stops
/// QEMU: the kernel's deadline counts from the program's start, the
/// host's from QEMU's (the kernel's waits end the run at its deadline
/// themselves: this catches a kernel that cannot, e.g. on a hung device).
pub const DEADLINE_GRACE: Duration = Duration::from_secs(5);

/// Runs the program in a VM on this process's streams; returns the exit code.
pub fn run_on_stdio(opts: &RunOptions) -> Result<i32, CliError> {
    let io = VmIo {
        stdin: Some(Box::new(std::io::stdin())),
        stdout: Box::new(std::io::stdout()),
        stderr: Box::new(std::io::stderr()),
    };
    let report = run_vm(opts, io)?;
    let name = opts.wasm.display();
    if report.stopped_after_status {
        eprintln!(
            "basalt: warning: the VM neither powered off nor reset within {:?} of the program's end; QEMU was stopped from outside\n--- kernel log ---\n{}",
            vm::POWER_OFF_GRACE,
            report.log_text()
        );
    }
    match &report.status {
        vm::Status::Exit(_) => {}
        vm::Status::Trap { message, .. } => {
            eprintln!("basalt: {name}: {message}");
            let frames = crate::symbols::wasm_frames_in_log(&report.kernel_log);
            eprint!(
                "{}",
                crate::symbols::wasm_backtrace(frames.iter().map(|(f, n)| (*f, n.as_deref())))
            );
        }
        vm::Status::LoadError(m) => eprintln!("basalt: {name}: {m}"),
        vm::Status::Panic(m) => {
            eprintln!(
                "basalt: the kernel panicked: {m}\n--- kernel log ---\n{}",
                report.log_text()
            )
        }
        // (The log ends with QEMU's own stderr.)
        vm::Status::NoStatus(code) => eprintln!(
            "basalt: the VM stopped without reporting a status (QEMU exit status {code:?})\n--- kernel log ---\n{}",
            report.log_text()
        ),
        vm::Status::TimedOut(limit) => eprintln!(
            "basalt: the VM was stopped after {:?} (--timeout)\n--- kernel log ---\n{}",
            opts.deadline.unwrap_or(*limit),
            report.log_text()
        ),
    }
    Ok(report.exit_code())
}

/// The absolute path of a live `--dir`, checked to be a directory QEMU can
/// open (QEMU's own message would come after the VM started).
fn live_share_path(host: &Path) -> Result<PathBuf, CliError> {
    let err =
        |e: std::io::Error| CliError::Input(format!("cannot share --dir {}: {e}", host.display()));
    let path = std::fs::canonicalize(host).map_err(err)?;
    if !path.is_dir() {
        return Err(CliError::Input(format!(
            "--dir {}: not a directory",
            host.display()
        )));
    }
    std::fs::read_dir(&path).map_err(err)?;
    Ok(path)
}

/// Whether component `wasm` imports `wasi:http/outgoing-handler` (its
/// requests go out through the VM's card, whatever the socket grants).
fn imports_http(wasm: &[u8]) -> bool {
    basalt_runtime::component::def::parse(wasm).is_ok_and(|p| {
        p.root.defs.iter().any(|d| {
            matches!(d, basalt_runtime::component::def::Def::Import(n, _)
                if n.starts_with("wasi:http/outgoing-handler@"))
        })
    })
}

/// The VM's network: none unless the program listens (`--tcplisten`),
/// ports are forwarded (`-p`, or [`RunOptions::network`]'s forwards), or
/// a component may use the network (`-S inherit-network`: its sockets
/// reach the host's networks through the card, and the listeners it
/// makes on the VM's loopback are forwarded from the host's), or it
/// imports `wasi:http/outgoing-handler`.
fn user_network(opts: &RunOptions, component: bool, http: bool) -> Option<UserNetwork> {
    let program_sockets = component && opts.sockets.inherit_network && opts.tcplisten.is_empty();
    if opts.tcplisten.is_empty()
        && opts.publish.is_empty()
        && opts.network.is_none()
        && !program_sockets
        && !http
    {
        return None;
    }
    let mut net = opts.network.clone().unwrap_or_default();
    net.forwards.extend(opts.publish.iter().copied());
    net.forward_listeners |= program_sockets;
    Some(net)
}
