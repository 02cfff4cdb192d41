//! Command-line parsing and dispatch.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::time::Duration;

use crate::CliError;
use crate::accel::AccelChoice;
use crate::guest::GuestArch;
use crate::run::{DirMode, RunOptions, SharedDir};
use crate::vm::{FirmwareBoot, Machine};

/// The help text.
pub const USAGE: &str = "\
usage: basalt run [OPTIONS] FILE.wasm [ARGS...]
       basalt serve [--addr HOST:PORT] [SERVE OPTIONS] [OPTIONS] APP.wasm
       basalt image [--arch ARCH] [--format F] -o OUT [OPTIONS] FILE.wasm [ARGS...]
       basalt compile [--host | --arch ARCH] FILE.wasm [-o FILE.cwasm]
       basalt wast [--arch x86_64] [--in-vm] [-v] FILE.wast...

Runs a WASI command (a preview1 module, or a WASI 0.2 component exporting
wasi:cli/run) in a Basalt VM (QEMU) and exits with its exit code.
The program's stdout and stderr are ours; our stdin is its stdin.

options:
  --env NAME=VALUE      add to the program's environment (nothing is inherited)
  --dir HOST[::GUEST]   share host directory HOST as GUEST (default: HOST);
                        may be repeated (descriptors 3, 4, ... in order)
  --dir-ro HOST[::GUEST]
                        as --dir, read-only: the program may read and list
                        it, and every change is refused with EPERM (as
                        wasmtime's read-only preopens); in --dir order
  --dir-mode live|copy  how a VM sees --dir: live (default) over virtio-9p,
                        so changes reach HOST as they happen, as under
                        wasmtime; copy packs HOST into the VM's memory at
                        start and writes nothing back (with --hosted too:
                        the copy is in memory)
  --tcplisten ADDR      listen on ADDR (HOST:PORT, e.g. 0.0.0.0:8080) and give
                        the program the socket as a descriptor after the
                        --dir ones; may be repeated. In a VM ADDR is the
                        guest's; reach it from the host with -p
  -S KEY[=y|n][,...]    WASI settings, as wasmtime's: inherit-network (the
                        program may bind, connect and send to any address;
                        default: none), allow-ip-name-lookup (resolve names;
                        default off), tcp, udp (the wasi:sockets protocols;
                        default on), max-resources=N (the most WASI 0.2
                        resources the program may hold; default 2^20),
                        max-random-size=N (the most bytes one request for
                        random bytes may ask for, more traps; default 64
                        MiB), hostcall-fuel=N (the most bytes of guest
                        memory one preview1 call may touch, more fails with
                        ENOMEM; default: no limit), cwd=PATH (what
                        wasi:cli/environment's
                        initial-cwd reports; a name only, it grants
                        nothing). -Sinherit-network,tcp=n works too
  -p, --publish HOST:GUEST
                        forward host port HOST (on 127.0.0.1) to guest port
                        GUEST (QEMU user networking); may be repeated
  --net user|tap:IFNAME:A.B.C.D/N
                        the VM's network: QEMU's user-mode network (default,
                        DHCP, reached through -p) or host tap IFNAME (made
                        and configured by you) with the guest at A.B.C.D/N
  --memory MIB          guest RAM (default 1024)
  --arch ARCH           guest ISA: x86_64 (default) or aarch64 (QEMU virt, TCG)
  --machine MODEL       QEMU machine for x86_64: q35 (default), pc, microvm,
                        firecracker (Firecracker's machine on microvm: no ACPI,
                        virtio-mmio on the command line, one console, i8042
                        reset) or cloud-hypervisor (Cloud Hypervisor's machine
                        on microvm: hardware-reduced ACPI, virtio over PCIe
                        only, one console, ACPI power-off); for aarch64: virt
                        (default, no flag), firecracker (Firecracker's machine
                        on virt: RAM at 0x80000000, an ns16550a console named
                        by the device tree, virtio-mmio, PSCI power-off) or
                        raspi4b (QEMU's Raspberry Pi 4 with the Pi's device
                        tree from scripts/setup.sh; one console, no virtio:
                        --dir-mode copy only, no network)
  --accel auto|tcg|kvm  accelerator (default auto: KVM after a probe boot passes)
  --cpu MODEL           QEMU CPU model instead of max (TCG) / host (KVM), e.g.
                        cortex-a57; older models than max want --jit
  --jit                 compile in the guest instead of on the host
  --hosted              run in this process on Linux instead of in a VM
  --timeout SECONDS     stop the program this long after it starts (exit code
                        124): in a VM (and in an image) the kernel does it
  --fuel N              let the program run N wasm operators (one unit each
                        but nop, drop, block, loop, else, end, unreachable and
                        return, as wasmtime counts) and then stop it with the
                        trap `all fuel consumed` (exit code 134): the same
                        program and input stop at the same point every time,
                        hosted and in any VM
  -v, --verbose         report the accelerator, compile time and boot timeline
  --kernel-cmdline TEXT the kernel command line (diagnostics, see docs/guest-protocol.md)
  --firmware uefi|u-boot|none
                        boot through UEFI firmware (OVMF on x86_64 q35, AAVMF on
                        aarch64 virt) from the disk image `basalt image` makes,
                        or through U-Boot (aarch64 virt; its UEFI runs the
                        image's loader), instead of QEMU's -kernel (none, the
                        default)
  --acpi on|off         aarch64 under firmware: describe the machine with ACPI
                        tables only (on, the default, as AWS Graviton and Arm
                        servers) or with a device tree only (off)
  --boot disk|pxe|booti with firmware: boot the disk image (default), netboot
                        the self-contained EFI executable over QEMU's user
                        network (TFTP; implies --firmware uefi), or have
                        U-Boot booti the arm64 Image from an extlinux.conf
                        disk (implies --firmware u-boot)

`serve` answers HTTP/1.1 requests with APP.wasm, a wasi:http/proxy
component (exporting wasi:http/incoming-handler), as `wasmtime serve`
does: every request gets a fresh instance. The first line on stderr is
`Serving HTTP on http://ADDR/`. Serve options:
  --addr HOST:PORT      where to listen (default 0.0.0.0:8080; port 0: any)
  --shutdown-addr HOST:PORT
                        a connection to this address stops the server (exit
                        code 0); announced first on stderr (--hosted). SIGINT
                        and SIGTERM stop it too (exit code 0)
  -W timeout=DUR        each request's deadline, e.g. 100ms, 5s (default
                        60s); past it the request gets 500
  -W max-memory-size=N  the most bytes one linear memory of a request may
                        grow to (default 256 MiB); growing past it fails
  --cpus N              --hosted: answer requests on N threads at once (default:
                        this machine's cores); in a VM only 1 so far
  --no-logging-prefix   the guest's output as it is (default: each line as
                        `stdout [N] :: ...` / `stderr [N] :: ...`, N the
                        request's number)
  --env NAME            also takes the host's value of NAME, if set
  -S cli                accepted: the command interfaces (wasi:cli,
                        filesystem, sockets) are always linked
Without --hosted it serves from a VM (--arch, --memory, -S, --env, -v as for
run; QEMU forwards --addr to the kernel's listener; no --dir there yet);
with --hosted, in this process (--dir too).

`image` writes a bootable artifact of the same inputs (--dir is copied into
it) to OUT: --format raw (default; a GPT disk with an EFI system partition:
dd it to a USB stick, or import it into a cloud), qcow2, vhd (Azure: fixed,
whole MiB), gce (disk.raw in a .tar.gz, as GCP imports it) or efi (one
self-contained EFI executable, for netboot).

`compile` compiles ahead of time for the guest's CPU level (x86_64 unless
--arch aarch64; or, with --host, for this machine) and reports the compile
speed. `wast` runs WebAssembly
spec-test scripts against the runtime in this process, or with --in-vm inside
the booted kernel (see `basalt wast --help`).

exit codes: the program's own; 134 trap; 65 invalid module; 66 unreadable file;
70 kernel panic or build failure; 71 VM failure; 2 usage error";

fn usage(msg: impl Into<String>) -> CliError {
    CliError::Usage(format!("{}\n\n{USAGE}", msg.into()))
}

fn value(args: &mut impl Iterator<Item = OsString>, flag: &str) -> Result<String, CliError> {
    args.next()
        .and_then(|v| v.into_string().ok())
        .ok_or_else(|| usage(format!("{flag} needs a value")))
}

/// What `run` was asked, plus whether to stay in this process.
pub struct RunCommand {
    /// the VM run's options
    pub options: RunOptions,
    /// `--hosted`
    pub hosted: bool,
}

/// Parses the arguments after `run`.
pub fn parse_run(args: Vec<OsString>) -> Result<RunCommand, CliError> {
    let mut it = args.into_iter();
    let mut opts = RunOptions::new("");
    let mut hosted = false;
    let mut machine_given = false;
    let mut firmware = None;
    let mut boot = "disk";
    let mut file = None;
    while let Some(arg) = it.next() {
        let Some(flag) = arg.to_str().filter(|s| s.starts_with('-') && s.len() > 1) else {
            file = Some(arg);
            break;
        };
        match flag {
            "--env" => {
                let kv = value(&mut it, flag)?;
                if !kv.contains('=') {
                    return Err(usage(format!("--env wants NAME=VALUE, got `{kv}`")));
                }
                opts.env.push(kv.into_bytes());
            }
            "--dir" | "--dir-ro" => {
                let v = value(&mut it, flag)?;
                let (host, guest) = match v.split_once("::") {
                    Some((h, g)) => (h.to_string(), g.to_string()),
                    None => (v.clone(), v.clone()),
                };
                if host.is_empty() || guest.is_empty() {
                    return Err(usage(format!("{flag} wants HOST[::GUEST], got `{v}`")));
                }
                opts.dirs.push(SharedDir {
                    read_only: flag == "--dir-ro",
                    ..SharedDir::new(host, guest)
                });
            }
            "--dir-mode" => {
                opts.dir_mode = match value(&mut it, flag)?.as_str() {
                    "live" => DirMode::Live,
                    "copy" => DirMode::Copy,
                    other => {
                        return Err(usage(format!(
                            "--dir-mode wants live or copy, got `{other}`"
                        )));
                    }
                }
            }
            "--tcplisten" => {
                let v = value(&mut it, flag)?;
                if !v.contains(':') {
                    return Err(usage(format!("--tcplisten wants HOST:PORT, got `{v}`")));
                }
                opts.tcplisten.push(v);
            }
            "-S" => {
                let v = value(&mut it, flag)?;
                crate::wasi_flags::apply(&mut opts, &v).map_err(usage)?;
            }
            s if s.starts_with("-S") => {
                crate::wasi_flags::apply(&mut opts, &s[2..]).map_err(usage)?;
            }
            "-p" | "--publish" => {
                let v = value(&mut it, flag)?;
                let parsed = v
                    .split_once(':')
                    .and_then(|(h, g)| Some((h.parse::<u16>().ok()?, g.parse::<u16>().ok()?)));
                match parsed {
                    Some(pair) => opts.publish.push(pair),
                    None => {
                        return Err(usage(format!(
                            "{flag} wants HOST-PORT:GUEST-PORT, got `{v}`"
                        )));
                    }
                }
            }
            "--net" => {
                let v = value(&mut it, flag)?;
                opts.net_tap = match v.as_str() {
                    "user" => None,
                    tap => {
                        let parsed = tap.strip_prefix("tap:").and_then(|rest| {
                            let (ifname, cidr) = rest.split_once(':')?;
                            let (ip, bits) = cidr.split_once('/')?;
                            ip.parse::<std::net::Ipv4Addr>().ok()?;
                            bits.parse::<u8>().ok().filter(|b| *b <= 32)?;
                            (!ifname.is_empty()).then(|| (ifname.to_string(), cidr.to_string()))
                        });
                        Some(parsed.ok_or_else(|| {
                            usage(format!(
                                "--net wants user or tap:IFNAME:A.B.C.D/N, got `{v}`"
                            ))
                        })?)
                    }
                };
            }
            "--memory" => {
                let v = value(&mut it, flag)?;
                opts.memory_mib =
                    v.parse().ok().filter(|m| *m >= 64).ok_or_else(|| {
                        usage(format!("--memory wants MiB (at least 64), got `{v}`"))
                    })?;
            }
            "--arch" => match value(&mut it, flag)?.as_str() {
                "x86_64" | "x86-64" | "amd64" => opts.arch = GuestArch::X86_64,
                "aarch64" | "arm64" => opts.arch = GuestArch::Aarch64,
                other => return Err(usage(format!("unknown --arch `{other}`"))),
            },
            "--machine" => match value(&mut it, flag)
                .inspect(|_| machine_given = true)?
                .as_str()
            {
                "q35" => opts.machine = Machine::Q35,
                "pc" => opts.machine = Machine::Pc,
                "microvm" => opts.machine = Machine::Microvm,
                "firecracker" => opts.machine = Machine::Firecracker,
                "cloud-hypervisor" => opts.machine = Machine::CloudHypervisor,
                "raspi4b" => opts.machine = Machine::Raspi4b,
                other => return Err(usage(format!("unknown --machine `{other}`"))),
            },
            "--accel" => match value(&mut it, flag)?.as_str() {
                "auto" => opts.accel = AccelChoice::Auto,
                "tcg" => opts.accel = AccelChoice::Tcg,
                "kvm" => opts.accel = AccelChoice::Kvm,
                other => return Err(usage(format!("unknown --accel `{other}`"))),
            },
            "--timeout" => {
                let v = value(&mut it, flag)?;
                let timeout = v
                    .parse()
                    .ok()
                    .filter(|s: &f64| *s > 0.0)
                    .and_then(|s| Duration::try_from_secs_f64(s).ok())
                    .ok_or_else(|| {
                        usage(format!(
                            "--timeout wants a positive, finite number of seconds, got `{v}`"
                        ))
                    })?;
                opts.timeout = Some(timeout);
                opts.deadline = Some(timeout);
            }
            "--fuel" => {
                let v = value(&mut it, flag)?;
                let fuel = v.parse::<u64>().map_err(|_| {
                    usage(format!(
                        "--fuel wants a whole number of units (0 to {}), got `{v}`",
                        u64::MAX
                    ))
                })?;
                opts.fuel = Some(fuel);
            }
            "--firmware" => match value(&mut it, flag)?.as_str() {
                "uefi" => firmware = Some(FirmwareBoot::UefiDisk),
                "u-boot" => firmware = Some(FirmwareBoot::UbootEfi),
                "none" => firmware = None,
                other => {
                    return Err(usage(format!(
                        "--firmware wants uefi, u-boot or none, got `{other}`"
                    )));
                }
            },
            "--acpi" => match value(&mut it, flag)?.as_str() {
                "on" => opts.acpi = true,
                "off" => opts.acpi = false,
                other => return Err(usage(format!("--acpi wants on or off, got `{other}`"))),
            },
            "--boot" => match value(&mut it, flag)?.as_str() {
                "disk" => boot = "disk",
                "pxe" => boot = "pxe",
                "booti" => boot = "booti",
                other => {
                    return Err(usage(format!(
                        "--boot wants disk, pxe or booti, got `{other}`"
                    )));
                }
            },
            "--kernel-cmdline" => opts.kernel_cmdline = Some(value(&mut it, flag)?),
            "--cpu" => opts.cpu = Some(value(&mut it, flag)?),
            "--jit" => opts.jit = true,
            "--hosted" => hosted = true,
            "-v" | "--verbose" => opts.verbose = true,
            "--" => {
                file = it.next();
                break;
            }
            other => return Err(usage(format!("unknown option `{other}`"))),
        }
    }
    if machine_given
        && opts.arch == GuestArch::Aarch64
        && !matches!(opts.machine, Machine::Raspi4b | Machine::Firecracker)
    {
        return Err(usage(
            "--machine for aarch64 guests is raspi4b or firecracker (the default is QEMU's virt); q35, pc, microvm and cloud-hypervisor are x86_64's",
        ));
    }
    if opts.machine == Machine::Raspi4b && opts.arch != GuestArch::Aarch64 {
        return Err(usage(
            "--machine raspi4b boots aarch64 guests: add --arch aarch64",
        ));
    }
    // Netboot is UEFI's (`--boot pxe` implies it), booti U-Boot's.
    opts.firmware = match (firmware, boot) {
        (Some(FirmwareBoot::UbootEfi), "pxe") => {
            return Err(usage("--boot pxe netboots through UEFI, not U-Boot"));
        }
        (_, "pxe") => Some(FirmwareBoot::UefiPxe),
        (None | Some(FirmwareBoot::UbootEfi), "booti") => Some(FirmwareBoot::UbootBooti),
        (Some(_), "booti") => {
            return Err(usage("--boot booti is U-Boot's: use --firmware u-boot"));
        }
        (f, _) => f,
    };
    if opts.firmware.is_some_and(FirmwareBoot::is_uboot) && opts.arch != GuestArch::Aarch64 {
        return Err(usage(
            "--firmware u-boot boots aarch64 guests (QEMU virt): add --arch aarch64",
        ));
    }
    if opts.machine == Machine::Raspi4b && opts.firmware.is_some() {
        return Err(usage(
            "--machine raspi4b boots the kernel directly, as the Pi's firmware does: no --firmware or --boot",
        ));
    }
    if opts.firmware.is_some() && opts.arch == GuestArch::X86_64 && opts.machine != Machine::Q35 {
        return Err(usage(
            "--firmware uefi and --boot pxe boot x86_64 guests on q35 (OVMF)",
        ));
    }
    let file = file.ok_or_else(|| usage("no FILE.wasm given"))?;
    opts.wasm = file.into();
    opts.args = it.map(|a| a.as_bytes().to_vec()).collect();
    Ok(RunCommand {
        options: opts,
        hosted,
    })
}

/// Runs the command line `args` (without the program name); returns the
/// process exit code.
pub fn main(args: Vec<OsString>) -> i32 {
    crate::signals::install();
    let mut it = args.into_iter();
    let result = match it.next().as_ref().and_then(|s| s.to_str()) {
        Some("run")
            if it
                .clone()
                .next()
                .is_some_and(|a| a == "--help" || a == "-h") =>
        {
            println!("{USAGE}");
            Ok(0)
        }
        Some("run") => parse_run(it.collect()).and_then(|cmd| {
            if cmd.hosted {
                let name = cmd.options.wasm.display().to_string();
                let wasm = std::fs::read(&cmd.options.wasm)
                    .map_err(|e| CliError::Input(format!("cannot read {name}: {e}")))?;
                let argv = std::iter::once(name.clone().into_bytes())
                    .chain(cmd.options.args.iter().cloned())
                    .collect();
                if let Some(limit) = cmd.options.timeout {
                    // Running code is interrupted at `limit`; this ends
                    // a program blocked in a host call a little later.
                    crate::hosted::stop_after(limit, limit + Duration::from_secs(2));
                }
                crate::hosted::run(crate::hosted::Hosted {
                    name: &name,
                    wasm: &wasm,
                    args: argv,
                    env: cmd.options.env.clone(),
                    dirs: &cmd.options.dirs,
                    dir_mode: cmd.options.dir_mode,
                    timeout: cmd.options.timeout,
                    fuel: cmd.options.fuel,
                    tcplisten: &cmd.options.tcplisten,
                    sockets: cmd.options.sockets,
                    max_resources: cmd.options.max_resources,
                    wasi: cmd.options.wasi.clone(),
                    verbose: cmd.options.verbose,
                })
            } else {
                crate::run::run_on_stdio(&cmd.options)
            }
        }),
        Some("serve") => serve(it.collect()),
        Some("image") => image(it.collect()),
        Some("compile") => compile(it.collect()),
        Some("wast") => crate::wast::command(it.collect()),
        Some("--help" | "-h" | "help") => {
            println!("{USAGE}");
            Ok(0)
        }
        Some("--version" | "-V") => {
            println!("basalt {}", env!("CARGO_PKG_VERSION"));
            Ok(0)
        }
        Some(other) => Err(usage(format!("unknown command `{other}`"))),
        None => Err(usage("no command given")),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("basalt: {e}");
            e.exit_code()
        }
    }
}

/// `basalt serve [serve options] [run options] APP.wasm`.
fn serve(args: Vec<OsString>) -> Result<i32, CliError> {
    let mut sopts = crate::serve::ServeOptions::default();
    let mut cpus = None;
    let mut rest = Vec::new();
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let Some(a) = arg.to_str().map(str::to_string) else {
            rest.push(arg);
            continue;
        };
        let (flag, inline) = match a.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (a.clone(), None),
        };
        let take = |it: &mut std::vec::IntoIter<OsString>| match &inline {
            Some(v) => Ok(v.clone()),
            None => value(it, &flag),
        };
        match flag.as_str() {
            "--help" | "-h" if rest.is_empty() => {
                println!("{USAGE}");
                return Ok(0);
            }
            "--addr" => sopts.addr = take(&mut it)?,
            "--shutdown-addr" => sopts.shutdown_addr = Some(take(&mut it)?),
            "--no-logging-prefix" => sopts.logging_prefix = false,
            "--cpus" => {
                let v = take(&mut it)?;
                cpus = Some(
                    v.parse::<usize>()
                        .ok()
                        .filter(|n| (1..=256).contains(n))
                        .ok_or_else(|| {
                            usage(format!(
                                "--cpus wants a number of CPUs (1 to 256), got `{v}`"
                            ))
                        })?,
                );
            }
            "-W" => {
                let v = take(&mut it)?;
                crate::serve::apply_w(&mut sopts, &v).map_err(usage)?;
            }
            w if w.starts_with("-W") => {
                crate::serve::apply_w(&mut sopts, &w[2..]).map_err(usage)?;
            }
            "-S" | "--env" | "--dir" | "--dir-ro" => {
                let v = take(&mut it)?;
                match (flag.as_str(), v.split_once('=')) {
                    // wasmtime's `--env NAME`: the host's value, if set.
                    ("--env", None) => {
                        if let Some(val) = std::env::var_os(&v) {
                            let mut kv = OsString::from(format!("{v}="));
                            kv.push(val);
                            rest.push("--env".into());
                            rest.push(kv);
                        }
                    }
                    // `-S cli`: always linked.
                    ("-S", _) if v.split(',').all(|k| k == "cli" || k == "cli=y") => {}
                    ("-S", _) => {
                        let kept: Vec<&str> = v.split(',').filter(|k| *k != "cli").collect();
                        rest.push("-S".into());
                        rest.push(kept.join(",").into());
                    }
                    _ => {
                        rest.push(flag.clone().into());
                        rest.push(v.into());
                    }
                }
            }
            s if s.starts_with("-S") => {
                let kept: Vec<&str> = s[2..].split(',').filter(|k| *k != "cli").collect();
                if !kept.is_empty() {
                    rest.push("-S".into());
                    rest.push(kept.join(",").into());
                }
            }
            _ => {
                let takes_value =
                    RUN_OPTIONS_WITH_VALUE.contains(&flag.as_str()) && inline.is_none();
                rest.push(arg);
                if takes_value && let Some(v) = it.next() {
                    rest.push(v);
                }
            }
        }
    }
    let cmd = parse_run(rest)?;
    if !cmd.options.args.is_empty() {
        return Err(usage(
            "basalt serve takes no program arguments after APP.wasm",
        ));
    }
    if cmd.hosted {
        if let Some(n) = cpus {
            sopts.workers = n;
        }
        crate::serve::serve_hosted(&cmd.options, &sopts)
    } else {
        if cpus.is_some_and(|n| n > 1) {
            return Err(usage(
                "--cpus: a VM has one vCPU so far (SMP is not implemented yet); --hosted serves on several CPUs",
            ));
        }
        crate::serve::serve_vm(&cmd.options, &sopts)
    }
}

/// `basalt image [--format F] -o OUT [run options] APP.wasm [ARGS...]`.
fn image(args: Vec<OsString>) -> Result<i32, CliError> {
    let (mut format, mut out) = (crate::image::Format::Raw, None);
    let mut rest = Vec::new();
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        match arg.to_str() {
            Some("--help" | "-h") if rest.is_empty() => {
                println!("{USAGE}");
                return Ok(0);
            }
            Some("--format") => {
                let v = value(&mut it, "--format")?;
                format = crate::image::Format::from_name(&v).ok_or_else(|| {
                    usage(format!(
                        "--format wants raw, qcow2, vhd, gce or efi, got `{v}`"
                    ))
                })?;
            }
            Some("-o" | "--output") => {
                out = Some(std::path::PathBuf::from(
                    it.next().ok_or_else(|| usage("-o needs a path"))?,
                ));
            }
            // The program and its arguments: everything from here is theirs.
            Some(a) if !a.starts_with('-') => {
                rest.push(arg);
                rest.extend(it.by_ref());
            }
            _ => {
                let takes_value = arg
                    .to_str()
                    .is_some_and(|a| RUN_OPTIONS_WITH_VALUE.contains(&a) && !a.contains('='));
                rest.push(arg);
                if takes_value && let Some(v) = it.next() {
                    rest.push(v);
                }
            }
        }
    }
    let out = out.ok_or_else(|| usage("basalt image needs -o OUT"))?;
    let cmd = parse_run(rest)?;
    if cmd.hosted {
        return Err(usage(
            "--hosted runs in this process; there is no image to make",
        ));
    }
    crate::run::make_image(&cmd.options, format, &out)
}

/// The run options that take a value (so `basalt image` can tell a value
/// from the program's name).
const RUN_OPTIONS_WITH_VALUE: &[&str] = &[
    "--env",
    "--dir",
    "--dir-ro",
    "--dir-mode",
    "--tcplisten",
    "-S",
    "-p",
    "--publish",
    "--net",
    "--memory",
    "--arch",
    "--machine",
    "--accel",
    "--timeout",
    "--fuel",
    "--kernel-cmdline",
    "--cpu",
    "--firmware",
    "--acpi",
    "--boot",
];

/// `basalt compile [--host | --arch ARCH] FILE.wasm [-o OUT]`.
fn compile(args: Vec<OsString>) -> Result<i32, CliError> {
    let mut it = args.into_iter();
    let (mut file, mut out, mut host) = (None, None, false);
    let mut arch = GuestArch::X86_64;
    while let Some(arg) = it.next() {
        match arg.to_str() {
            Some("-o") => out = Some(it.next().ok_or_else(|| usage("-o needs a path"))?),
            Some("--host") => host = true,
            Some("--arch") => {
                arch = match value(&mut it, "--arch")?.as_str() {
                    "x86_64" | "x86-64" | "amd64" => GuestArch::X86_64,
                    "aarch64" | "arm64" => GuestArch::Aarch64,
                    other => return Err(usage(format!("unknown --arch `{other}`"))),
                }
            }
            _ => file = Some(arg),
        }
    }
    let file = file.ok_or_else(|| usage("no FILE.wasm given"))?;
    let name = std::path::Path::new(&file).display().to_string();
    let wasm =
        std::fs::read(&file).map_err(|e| CliError::Input(format!("cannot read {name}: {e}")))?;
    let target = if host {
        basalt_runtime::Target::host()
    } else {
        crate::run::guest_target(arch, crate::vm::Accel::Tcg)
    };
    let t = std::time::Instant::now();
    let artifact = crate::run::compile_for_guest(&name, &wasm, target, Default::default())?;
    let ms = t.elapsed().as_secs_f64() * 1e3;
    eprintln!(
        "basalt: compiled {:.1} KiB of wasm into a {:.1} KiB artifact in {ms:.1} ms ({:.2} KiB/ms)",
        wasm.len() as f64 / 1024.0,
        artifact.len() as f64 / 1024.0,
        wasm.len() as f64 / 1024.0 / ms
    );
    if let Some(out) = out {
        std::fs::write(&out, &artifact)
            .map_err(|e| CliError::Io(format!("{}: {e}", std::path::Path::new(&out).display())))?;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn firmware_of(args: &[&str]) -> Result<Option<FirmwareBoot>, CliError> {
        let args = args.iter().map(OsString::from).collect();
        parse_run(args).map(|cmd| cmd.options.firmware)
    }

    #[test]
    fn uboot_boots_are_chosen_on_aarch64_only() {
        let a64 = ["--arch", "aarch64"];
        let with = |more: &[&'static str]| {
            let mut v: Vec<&str> = a64.to_vec();
            v.extend_from_slice(more);
            v.push("app.wasm");
            firmware_of(&v)
        };
        assert_eq!(
            with(&["--firmware", "u-boot"]).ok(),
            Some(Some(FirmwareBoot::UbootEfi))
        );
        assert_eq!(
            with(&["--boot", "booti"]).ok(),
            Some(Some(FirmwareBoot::UbootBooti))
        );
        assert_eq!(
            with(&["--firmware", "u-boot", "--boot", "booti"]).ok(),
            Some(Some(FirmwareBoot::UbootBooti))
        );
        assert!(with(&["--firmware", "uefi", "--boot", "booti"]).is_err());
        assert!(with(&["--firmware", "u-boot", "--boot", "pxe"]).is_err());
        assert!(firmware_of(&["--firmware", "u-boot", "app.wasm"]).is_err());
    }

    #[test]
    fn read_only_dirs_keep_their_place_among_the_dirs() {
        let args = [
            "--dir", "a::/a", "--dir-ro", "b", "--dir", "c::c", "app.wasm",
        ];
        let cmd = parse_run(args.iter().map(OsString::from).collect()).ok();
        let dirs = cmd.map(|c| c.options.dirs).unwrap_or_default();
        assert_eq!(
            dirs,
            [
                SharedDir::new("a", "/a"),
                SharedDir::read_only("b", "b"),
                SharedDir::new("c", "c")
            ]
        );
        let bad = ["--dir-ro", "::x", "app.wasm"];
        assert!(parse_run(bad.iter().map(OsString::from).collect()).is_err());
    }
}
