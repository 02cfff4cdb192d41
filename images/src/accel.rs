//! Choosing the accelerator: KVM only after a probe boot of our own kernel
//! has succeeded within a deadline on this machine, TCG otherwise. The
//! verdict is cached next to the kernel, keyed by the kernel's identity.

use std::path::Path;
use std::time::Duration;

use crate::CliError;
use crate::bundle::{Entry, Manifest, write_tar};
use crate::vm::{Accel, Status, VmIo, VmOptions, boot};

/// What the user asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AccelChoice {
    /// KVM when the probe passes, TCG otherwise
    Auto,
    /// always TCG
    Tcg,
    /// KVM, no probe (fails if KVM is missing)
    Kvm,
}

/// `(module (func (export "_start")))`: the probe's program.
const PROBE_WASM: &[u8] = &[
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version
    0x01, 0x04, 0x01, 0x60, 0x00, 0x00, // types: [] -> []
    0x03, 0x02, 0x01, 0x00, // functions: one of type 0
    0x07, 0x0a, 0x01, 0x06, b'_', b's', b't', b'a', b'r', b't', 0x00, 0x00, // export _start
    0x0a, 0x04, 0x01, 0x02, 0x00, 0x0b, // code: empty body
];

/// How long the probe boot may take before KVM is judged unusable.
const PROBE_DEADLINE: Duration = Duration::from_secs(15);

fn kernel_identity(kernel: &Path) -> String {
    match std::fs::metadata(kernel) {
        Ok(m) => {
            let mtime = m
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            format!("{}-{mtime}", m.len())
        }
        Err(_) => "unknown".into(),
    }
}

/// Picks the accelerator for `opts` (whose `accel` field is ignored);
/// returns it with the reason, for `--verbose` and benchmarks.
pub fn choose(choice: AccelChoice, opts: &VmOptions) -> Result<(Accel, String), CliError> {
    match choice {
        AccelChoice::Tcg => return Ok((Accel::Tcg, "requested".into())),
        AccelChoice::Kvm => return Ok((Accel::Kvm, "requested".into())),
        AccelChoice::Auto => {}
    }
    if opts.arch.name() != std::env::consts::ARCH {
        return Ok((
            Accel::Tcg,
            format!("the guest ISA ({}) is not this host's", opts.arch.name()),
        ));
    }
    let kvm_usable = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_ok();
    if !kvm_usable {
        return Ok((Accel::Tcg, "/dev/kvm is not available".into()));
    }
    let cache = opts.kernel.with_file_name("kvm-probe");
    let identity = kernel_identity(&opts.kernel);
    // One probe at a time across processes (parallel tests, several
    // terminals): the others wait and then read its verdict.
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(opts.kernel.with_file_name("kvm-probe.lock"))
        .map_err(|e| CliError::Io(format!("kvm probe lock: {e}")))?;
    lock.lock()
        .map_err(|e| CliError::Io(format!("kvm probe lock: {e}")))?;
    if let Ok(text) = std::fs::read_to_string(&cache)
        && let Some((id, verdict)) = text.split_once(' ')
        && id == identity
    {
        let verdict = verdict.trim();
        return Ok(if verdict == "ok" {
            (Accel::Kvm, "KVM probe passed (cached)".into())
        } else {
            (Accel::Tcg, format!("KVM probe failed (cached): {verdict}"))
        });
    }
    let verdict = probe(opts);
    let _ = std::fs::write(
        &cache,
        format!(
            "{identity} {}\n",
            verdict.as_ref().err().map(String::as_str).unwrap_or("ok")
        ),
    );
    Ok(match verdict {
        Ok(()) => (Accel::Kvm, "KVM probe passed".into()),
        Err(why) => (Accel::Tcg, format!("KVM probe failed: {why}")),
    })
}

fn probe(opts: &VmOptions) -> Result<(), String> {
    let mut vm = opts.clone();
    vm.accel = Accel::Kvm;
    vm.verbose = false;
    vm.timeout = Some(PROBE_DEADLINE);
    vm.memory_mib = 256;
    vm.kernel_cmdline = None;
    // The probe judges KVM, not the machine's way out: keep it quick.
    vm.exit_device = true;
    let manifest = Manifest {
        args: vec![b"probe".to_vec()],
        jit: true,
        ..Manifest::default()
    };
    let bundle = write_tar(&[
        Entry {
            path: "manifest".into(),
            data: manifest.render().into_bytes(),
        },
        Entry {
            path: "app.wasm".into(),
            data: PROBE_WASM.to_vec(),
        },
    ]);
    let io = VmIo {
        stdin: None,
        stdout: Box::new(std::io::sink()),
        stderr: Box::new(std::io::sink()),
    };
    let report = boot(&vm, &bundle, io).map_err(|e| e.to_string())?;
    match report.status {
        Status::Exit(0) => Ok(()),
        other => Err(format!("{other:?}")),
    }
}
