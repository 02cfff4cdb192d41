//! The bundle a VM boots with: a ustar archive holding the manifest, the
//! module, its host-compiled code, the kernel's symbols and the files of
//! the directories shared with `--dir` (`docs/guest-protocol.md`).

use std::fmt::Write as _;

/// One file of a bundle.
pub struct Entry {
    /// path inside the archive
    pub path: String,
    /// contents
    pub data: Vec<u8>,
}

/// How the kernel serves HTTP (`basalt serve` in a VM).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServeManifest {
    /// the port it listens on (every address of the VM)
    pub port: u16,
    /// each request's deadline in milliseconds (0: none)
    pub timeout_ms: u64,
    /// the most bytes one linear memory of a request may grow to
    pub max_memory: u64,
    /// prefix guest output lines with `stdout [N] :: ` (1) or not (0)
    pub prefix: bool,
}

/// What the kernel is told to run, written as the `manifest` entry.
#[derive(Clone, Debug, Default)]
pub struct Manifest {
    /// `argv`, the program name first
    pub args: Vec<Vec<u8>>,
    /// the environment, `NAME=VALUE` each
    pub env: Vec<Vec<u8>>,
    /// compile in the guest instead of using the host's artifact
    pub jit: bool,
    /// ask the kernel for its boot timeline
    pub verbose: bool,
    /// whether an `app.cwasm` artifact is included
    pub artifact: bool,
    /// the program is a component whose core modules' artifacts are
    /// `app.cwasm.0` … (`component-artifacts N`)
    pub component_artifacts: Option<usize>,
    /// preopened directories in descriptor order
    pub preopens: Vec<Preopen>,
    /// addresses the guest listens on (`HOST:PORT`), preopened as sockets
    /// after the directories
    pub tcplisten: Vec<String>,
    /// fuel the program may spend (`--fuel`); `None`: unmetered
    pub fuel: Option<u64>,
    /// the artifact has interrupt checks, which the kernel raises from a
    /// timer (`interrupt-checks 1`)
    pub interrupt_checks: bool,
    /// the kernel stops the program after this many milliseconds
    /// (`deadline-ms N`, from `--timeout`)
    pub deadline_ms: Option<u64>,
    /// which of stdin, stdout and stderr are terminals on the host
    /// (`terminal stdin|stdout|stderr`, one line each)
    pub terminals: [bool; 3],
    /// what `wasi:sockets` may do (`-S`): `sockets GRANT,…` naming each
    /// granted one of inherit-network, ip-name-lookup, tcp, udp (`none`
    /// for none), written only when it is not the default
    pub sockets: basalt_wasi::preview2::SocketGrants,
    /// the most WASI 0.2 resources the program may hold (`max-resources N`)
    pub max_resources: Option<usize>,
    /// the most bytes one request for random bytes may ask for
    /// (`max-random-size N`, from `-S max-random-size`)
    pub max_random_size: Option<u64>,
    /// what `wasi:cli/environment.initial-cwd` reports (`cwd PATH`, from
    /// `-S cwd`)
    pub cwd: Option<String>,
    /// the most bytes of guest memory one preview1 call may touch
    /// (`hostcall-fuel N`, from `-S hostcall-fuel`)
    pub hostcall_fuel: Option<u64>,
    /// serve HTTP with the component instead of running it (`basalt
    /// serve`): `serve PORT TIMEOUT-MS MAX-MEMORY PREFIX`
    pub serve: Option<ServeManifest>,
}

/// One preopened directory, for the kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Preopen {
    /// where its files are
    pub source: PreopenSource,
    /// the path the program sees
    pub guest: Vec<u8>,
    /// the program may change nothing in it (`preopen-ro`, `share-ro`)
    pub read_only: bool,
}

/// Where a preopened directory's files are, for the kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PreopenSource {
    /// packed in the bundle under this prefix (`fs/0`): `preopen PREFIX GUEST`
    Bundle(String),
    /// on the host, behind the virtio-9p device with this mount tag:
    /// `share TAG GUEST`
    Host(String),
}

/// What kind of file a [`FileEntry`] is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FileKind {
    /// a regular file with its contents
    File(Vec<u8>),
    /// a directory
    Directory,
    /// a symbolic link with its target, kept as it is
    Symlink(Vec<u8>),
    /// another name of the regular file at this archive path (written earlier)
    HardLink(Vec<u8>),
}

/// One entry of a shared directory, with its metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileEntry {
    /// path inside the archive (`fs/N/…`), any bytes but NUL
    pub path: Vec<u8>,
    /// what it is
    pub kind: FileKind,
    /// modification time, nanoseconds since the Unix epoch
    pub mtime_ns: u64,
}

/// Escapes a manifest value: `\\`, `\n` and `\xHH` for every byte outside
/// printable ASCII, so any byte string survives.
pub fn escape(value: &[u8]) -> String {
    let mut out = String::with_capacity(value.len());
    for &b in value {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'\n' => out.push_str("\\n"),
            0x20..=0x7e => out.push(b as char),
            _ => {
                let _ = write!(out, "\\x{b:02x}");
            }
        }
    }
    out
}

impl Manifest {
    /// The manifest's text.
    pub fn render(&self) -> String {
        let mut s = String::from("version 1\n");
        for a in &self.args {
            s.push_str("arg ");
            s.push_str(&escape(a));
            s.push('\n');
        }
        for e in &self.env {
            s.push_str("env ");
            s.push_str(&escape(e));
            s.push('\n');
        }
        s.push_str("module app.wasm\n");
        if self.artifact {
            s.push_str("artifact app.cwasm\n");
        }
        if let Some(n) = self.component_artifacts {
            s.push_str(&format!("component-artifacts {n}\n"));
        }
        if self.jit {
            s.push_str("jit 1\n");
        }
        if self.verbose {
            s.push_str("verbose 1\n");
        }
        for p in &self.preopens {
            let (key, name) = match &p.source {
                PreopenSource::Bundle(prefix) => ("preopen", prefix),
                PreopenSource::Host(tag) => ("share", tag),
            };
            s.push_str(key);
            s.push_str(if p.read_only { "-ro " } else { " " });
            s.push_str(&escape(name.as_bytes()));
            s.push(' ');
            s.push_str(&escape(&p.guest));
            s.push('\n');
        }
        for addr in &self.tcplisten {
            s.push_str("tcplisten ");
            s.push_str(&escape(addr.as_bytes()));
            s.push('\n');
        }
        if self.interrupt_checks {
            s.push_str("interrupt-checks 1\n");
        }
        if let Some(ms) = self.deadline_ms {
            let _ = writeln!(s, "deadline-ms {ms}");
        }
        if let Some(fuel) = self.fuel {
            let _ = writeln!(s, "fuel {fuel}");
        }
        for (terminal, stream) in self.terminals.iter().zip(["stdin", "stdout", "stderr"]) {
            if *terminal {
                let _ = writeln!(s, "terminal {stream}");
            }
        }
        let g = self.sockets;
        if g != basalt_wasi::preview2::SocketGrants::default() {
            let granted: Vec<&str> = [
                (g.inherit_network, "inherit-network"),
                (g.ip_name_lookup, "ip-name-lookup"),
                (g.tcp, "tcp"),
                (g.udp, "udp"),
            ]
            .into_iter()
            .filter_map(|(on, name)| on.then_some(name))
            .collect();
            let list = if granted.is_empty() {
                "none".to_string()
            } else {
                granted.join(",")
            };
            let _ = writeln!(s, "sockets {list}");
        }
        if let Some(n) = self.max_resources {
            let _ = writeln!(s, "max-resources {n}");
        }
        if let Some(n) = self.max_random_size {
            let _ = writeln!(s, "max-random-size {n}");
        }
        if let Some(n) = self.hostcall_fuel {
            let _ = writeln!(s, "hostcall-fuel {n}");
        }
        if let Some(cwd) = &self.cwd {
            s.push_str("cwd ");
            s.push_str(&escape(cwd.as_bytes()));
            s.push('\n');
        }
        if let Some(v) = &self.serve {
            let _ = writeln!(
                s,
                "serve {} {} {} {}",
                v.port,
                v.timeout_ms,
                v.max_memory,
                u8::from(v.prefix)
            );
        }
        s
    }
}

fn octal(field: &mut [u8], value: u64) {
    // width - 1 octal digits, then NUL
    let digits = field.len() - 1;
    let text = format!("{value:0digits$o}");
    field[..digits].copy_from_slice(&text.as_bytes()[text.len() - digits..]);
    field[digits] = 0;
}

/// One pax record, `LEN KEY=VALUE\n`, where LEN counts the whole record.
fn pax_record(out: &mut Vec<u8>, key: &str, value: &[u8]) {
    let base = 1 + key.len() + 1 + value.len() + 1;
    let mut len = base + 1;
    while len != base + len.to_string().len() {
        len = base + len.to_string().len();
    }
    out.extend_from_slice(format!("{len} {key}=").as_bytes());
    out.extend_from_slice(value);
    out.push(b'\n');
}

/// Appends one header block (and the data after it, padded to a block).
fn push_entry(
    out: &mut Vec<u8>,
    name: &[u8],
    kind: u8,
    mode: u32,
    mtime: u64,
    link: &[u8],
    data: &[u8],
) {
    let mut h = [0u8; 512];
    h[..name.len()].copy_from_slice(name);
    octal(&mut h[100..108], u64::from(mode));
    octal(&mut h[108..116], 0);
    octal(&mut h[116..124], 0);
    octal(&mut h[124..136], data.len() as u64);
    octal(&mut h[136..148], mtime.min(0o77_777_777_777));
    h[148..156].fill(b' ');
    h[156] = kind;
    h[157..157 + link.len()].copy_from_slice(link);
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    let text = format!("{sum:06o}\0 ");
    h[148..156].copy_from_slice(text.as_bytes());
    out.extend_from_slice(&h);
    out.extend_from_slice(data);
    out.resize(out.len().next_multiple_of(TAR_BLOCK), 0);
}

/// Whether `s` fits a 100-byte ustar name field as it is.
fn fits_field(s: &[u8]) -> bool {
    s.len() < 100 && s.iter().all(|c| (0x20..0x7f).contains(c))
}

fn push_file_entry(out: &mut Vec<u8>, e: &FileEntry) {
    let (kind, mode, link, data): (u8, u32, &[u8], &[u8]) = match &e.kind {
        FileKind::File(d) => (b'0', 0o644, b"", d),
        FileKind::Directory => (b'5', 0o755, b"", b""),
        FileKind::Symlink(t) => (b'2', 0o777, t, b""),
        FileKind::HardLink(t) => (b'1', 0o644, t, b""),
    };
    let secs = e.mtime_ns / 1_000_000_000;
    let nanos = e.mtime_ns % 1_000_000_000;
    // A pax header carries what ustar cannot: long or non-ASCII names and
    // link targets, and sub-second modification times.
    let mut pax = Vec::new();
    if !fits_field(&e.path) {
        pax_record(&mut pax, "path", &e.path);
    }
    if !fits_field(link) {
        pax_record(&mut pax, "linkpath", link);
    }
    if nanos != 0 {
        pax_record(&mut pax, "mtime", format!("{secs}.{nanos:09}").as_bytes());
    }
    if !pax.is_empty() {
        push_entry(out, b"PaxHeader", b'x', 0o644, secs, b"", &pax);
    }
    let short = |s: &[u8]| -> Vec<u8> {
        if fits_field(s) {
            s.to_vec()
        } else {
            Vec::new()
        }
    };
    push_entry(out, &short(&e.path), kind, mode, secs, &short(link), data);
}

/// Writes `entries` as a POSIX ustar archive.
pub fn write_tar(entries: &[Entry]) -> Vec<u8> {
    write_bundle(entries, &[])
}

/// Writes `entries`, then the shared directories' `files`, as a POSIX
/// ustar archive (with pax headers where ustar falls short).
pub fn write_bundle(entries: &[Entry], files: &[FileEntry]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        let name = e.path.as_bytes();
        assert!(fits_field(name), "bundle paths are short");
        push_entry(&mut out, name, b'0', 0o644, 0, b"", &e.data);
    }
    for f in files {
        push_file_entry(&mut out, f);
    }
    // The end-of-archive marker (two zero blocks), then more zero blocks
    // until the length is one block past a 4 KiB multiple. QEMU puts an
    // initrd at the top of RAM, page-aligned downwards, and microvm's
    // firmware (qboot) keeps its ACPI tables in the last bytes of that same
    // RAM (the DSDT 896 bytes below the top): a length just past a page
    // multiple leaves the archive ending 3.5 KiB below the top, clear of
    // them, so powering off through ACPI still works.
    out.resize(out.len() + 1024, 0);
    while out.len() % INITRD_PAGE != TAR_BLOCK {
        out.resize(out.len() + TAR_BLOCK, 0);
    }
    out
}

/// A tar block.
const TAR_BLOCK: usize = 512;
/// The alignment QEMU's loader gives an initrd.
const INITRD_PAGE: usize = 4096;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_every_odd_byte() {
        assert_eq!(escape(b"a b\\c\nd\xff\x01"), "a b\\\\c\\nd\\xff\\x01");
    }

    #[test]
    fn tar_is_readable_by_tar() {
        let tar = write_tar(&[Entry {
            path: "manifest".into(),
            data: b"version 1\n".to_vec(),
        }]);
        assert_eq!(tar.len() % 512, 0);
        assert_eq!(tar.len() % 4096, 512, "ends clear of microvm's ACPI tables");
        let dir = std::env::temp_dir().join(format!("basalt-tar-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("b.tar");
        std::fs::write(&path, &tar).unwrap();
        let out = std::process::Command::new("tar")
            .arg("tf")
            .arg(&path)
            .output()
            .unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout), "manifest\n");
    }
}
