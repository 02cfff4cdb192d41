//! The bundle: a ustar archive passed as the initrd, with a `manifest`
//! (see `docs/guest-protocol.md`).

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// Why the bundle could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BundleError {
    /// no initrd was passed
    Missing,
    /// the archive is cut short
    Truncated {
        /// byte offset of the entry header
        offset: usize,
    },
    /// a header's checksum or fields are wrong
    BadHeader {
        /// byte offset of the header
        offset: usize,
        /// what is wrong
        what: &'static str,
    },
    /// a required entry is absent
    NoEntry(String),
    /// the manifest is malformed
    Manifest {
        /// 1-based line number
        line: usize,
        /// what is wrong
        message: String,
    },
}

impl fmt::Display for BundleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BundleError::Missing => f.write_str(
                "no bundle: pass the bundle tar archive as the initrd (QEMU `-initrd bundle.tar`)",
            ),
            BundleError::Truncated { offset } => {
                write!(f, "bundle: archive truncated at byte {offset}")
            }
            BundleError::BadHeader { offset, what } => {
                write!(
                    f,
                    "bundle: not a valid tar archive ({what} at byte {offset})"
                )
            }
            BundleError::NoEntry(name) => write!(f, "bundle: no `{name}` in the archive"),
            BundleError::Manifest { line, message } => {
                write!(f, "bundle: manifest line {line}: {message}")
            }
        }
    }
}

/// What kind of file an archive entry is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// a regular file
    File,
    /// a directory
    Directory,
    /// a symbolic link to this target
    Symlink(Vec<u8>),
    /// another name of the regular file at this archive path
    HardLink(Vec<u8>),
}

/// One entry of the archive.
pub struct Entry<'a> {
    /// path inside the archive (no leading `./`), lossily decoded
    pub path: String,
    /// the same path as bytes (no leading `./` or `/`, no trailing `/`)
    pub raw_path: Vec<u8>,
    /// what it is
    pub kind: EntryKind,
    /// modification time, nanoseconds since the Unix epoch
    pub mtime_ns: u64,
    /// contents (empty but for regular files)
    pub data: &'a [u8],
}

/// A parsed archive.
pub struct Bundle<'a> {
    entries: Vec<Entry<'a>>,
}

fn field_str(b: &[u8]) -> &[u8] {
    let end = b.iter().position(|c| *c == 0).unwrap_or(b.len());
    &b[..end]
}

fn parse_octal(b: &[u8]) -> Option<u64> {
    if b.first().is_some_and(|c| c & 0x80 != 0) {
        // base-256 (GNU) for large sizes
        let mut v: u64 = u64::from(b[0] & 0x7f);
        for c in &b[1..] {
            v = v.checked_mul(256)?.checked_add(u64::from(*c))?;
        }
        return Some(v);
    }
    let mut v = 0u64;
    let mut seen = false;
    for &c in b {
        match c {
            b'0'..=b'7' => {
                v = v.checked_mul(8)?.checked_add(u64::from(c - b'0'))?;
                seen = true;
            }
            b' ' | 0 if seen => break,
            b' ' | 0 => {}
            _ => return None,
        }
    }
    Some(v)
}

/// What pax or GNU extension headers say about the next entry.
#[derive(Default)]
struct Pending {
    path: Option<Vec<u8>>,
    link: Option<Vec<u8>>,
    size: Option<u64>,
    mtime_ns: Option<u64>,
}

/// A pax `mtime` (`SECONDS[.FRACTION]`) in nanoseconds; negative or
/// unreadable values are ignored.
fn pax_time(v: &[u8]) -> Option<u64> {
    let text = core::str::from_utf8(v).ok()?;
    let (secs, frac) = text.split_once('.').unwrap_or((text, ""));
    let secs: u64 = secs.parse().ok()?;
    let mut nanos = 0u64;
    for (i, c) in frac.bytes().take(9).enumerate() {
        let d = char::from(c).to_digit(10)?;
        nanos += u64::from(d) * 10u64.pow(8 - i as u32);
    }
    secs.checked_mul(1_000_000_000)?.checked_add(nanos)
}

fn pax_records(data: &[u8], next: &mut Pending) {
    let mut rest = data;
    while !rest.is_empty() {
        let Some(sp) = rest.iter().position(|c| *c == b' ') else {
            return;
        };
        let Some(len) = core::str::from_utf8(&rest[..sp])
            .ok()
            .and_then(|s| s.parse::<usize>().ok())
        else {
            return;
        };
        // A record is `LEN KEY=VALUE\n`: LEN counts at least the space and
        // the newline after its digits.
        if len < sp + 2 || len > rest.len() {
            return;
        }
        let rec = &rest[sp + 1..len - 1];
        if let Some(eq) = rec.iter().position(|c| *c == b'=') {
            let (k, v) = (&rec[..eq], &rec[eq + 1..]);
            match k {
                b"path" => next.path = Some(v.to_vec()),
                b"linkpath" => next.link = Some(v.to_vec()),
                b"size" => {
                    next.size = core::str::from_utf8(v).ok().and_then(|s| s.parse().ok());
                }
                b"mtime" => next.mtime_ns = pax_time(v),
                _ => {}
            }
        }
        rest = &rest[len..];
    }
}

/// `path` without leading `./` and `/`, nor trailing `/`.
fn normalize_bytes(path: &[u8]) -> Vec<u8> {
    let mut p = path;
    loop {
        if let Some(r) = p.strip_prefix(b"./") {
            p = r;
        } else if let Some(r) = p.strip_prefix(b"/") {
            p = r;
        } else {
            break;
        }
    }
    while let Some(r) = p.strip_suffix(b"/") {
        p = r;
    }
    p.to_vec()
}

fn normalize(path: &str) -> String {
    let p = path.trim_start_matches("./").trim_start_matches('/');
    String::from(p)
}

impl<'a> Bundle<'a> {
    /// Parses a ustar (or pax / GNU) archive.
    pub fn parse(data: &'a [u8]) -> Result<Bundle<'a>, BundleError> {
        let mut entries = Vec::new();
        let mut off = 0usize;
        let mut next = Pending::default();
        loop {
            if off + 512 > data.len() {
                if off >= data.len() && off > 0 {
                    break;
                }
                return Err(BundleError::Truncated { offset: off });
            }
            let h = &data[off..off + 512];
            if h.iter().all(|b| *b == 0) {
                break;
            }
            let stored = parse_octal(&h[148..156]).ok_or(BundleError::BadHeader {
                offset: off,
                what: "unreadable checksum",
            })?;
            let sum: u64 = h
                .iter()
                .enumerate()
                .map(|(i, b)| {
                    if (148..156).contains(&i) {
                        32
                    } else {
                        u64::from(*b)
                    }
                })
                .sum();
            if sum != stored {
                return Err(BundleError::BadHeader {
                    offset: off,
                    what: "header checksum mismatch",
                });
            }
            let header_size = parse_octal(&h[124..136]).ok_or(BundleError::BadHeader {
                offset: off,
                what: "unreadable size",
            })?;
            let size = next.size.take().unwrap_or(header_size);
            let size = usize::try_from(size).map_err(|_| BundleError::Truncated { offset: off })?;
            let start = off + 512;
            let end = start
                .checked_add(size)
                .filter(|e| *e <= data.len())
                .ok_or(BundleError::Truncated { offset: off })?;
            let body = &data[start..end];
            let kind = match h[156] {
                b'0' | 0 | b'7' => Some(EntryKind::File),
                b'5' => Some(EntryKind::Directory),
                b'2' | b'1' => {
                    let link = match next.link.take() {
                        Some(l) => l,
                        None => field_str(&h[157..257]).to_vec(),
                    };
                    Some(if h[156] == b'2' {
                        EntryKind::Symlink(link)
                    } else {
                        EntryKind::HardLink(normalize_bytes(&link))
                    })
                }
                b'x' => {
                    pax_records(body, &mut next);
                    None
                }
                b'L' => {
                    next.path = Some(field_str(body).to_vec());
                    None
                }
                b'K' => {
                    next.link = Some(field_str(body).to_vec());
                    None
                }
                _ => {
                    next = Pending::default();
                    None
                }
            };
            if let Some(kind) = kind {
                let raw = match next.path.take() {
                    Some(p) => p,
                    None => {
                        let name = field_str(&h[0..100]);
                        let prefix = if &h[257..262] == b"ustar" {
                            field_str(&h[345..500])
                        } else {
                            &[]
                        };
                        let mut p = prefix.to_vec();
                        if !p.is_empty() {
                            p.push(b'/');
                        }
                        p.extend_from_slice(name);
                        p
                    }
                };
                let mtime_ns = match next.mtime_ns.take() {
                    Some(t) => t,
                    None => parse_octal(&h[136..148])
                        .unwrap_or(0)
                        .saturating_mul(1_000_000_000),
                };
                next = Pending::default();
                let data = if kind == EntryKind::File { body } else { &[] };
                entries.push(Entry {
                    path: normalize(&String::from_utf8_lossy(&raw)),
                    raw_path: normalize_bytes(&raw),
                    kind,
                    mtime_ns,
                    data,
                });
            }
            off = start + size.next_multiple_of(512);
        }
        Ok(Bundle { entries })
    }

    /// The contents of the file at `path`.
    pub fn get(&self, path: &str) -> Option<&'a [u8]> {
        let want = normalize(path);
        self.entries
            .iter()
            .find(|e| e.kind == EntryKind::File && e.path == want)
            .map(|e| e.data)
    }

    /// The contents of `path`, or an error naming it.
    pub fn require(&self, path: &str) -> Result<&'a [u8], BundleError> {
        self.get(path)
            .ok_or_else(|| BundleError::NoEntry(String::from(path)))
    }

    /// All entries.
    pub fn entries(&self) -> &[Entry<'a>] {
        &self.entries
    }
}

/// The run configuration from the `manifest`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    /// argv, argv[0] first
    pub args: Vec<Vec<u8>>,
    /// NAME=VALUE entries
    pub env: Vec<Vec<u8>>,
    /// path of the wasm module
    pub module: String,
    /// path of the host-compiled artifact
    pub artifact: Option<String>,
    /// the module is a component; the artifacts of its core modules are
    /// `app.cwasm.0` … `app.cwasm.{N-1}` (`component-artifacts N`)
    pub component_artifacts: Option<usize>,
    /// compile in the guest even if an artifact is present
    pub jit: bool,
    /// log the boot timeline
    pub verbose: bool,
    /// path of a spec batch to run instead of a WASI command
    /// (`basalt wast --in-vm`)
    pub spec_batch: Option<String>,
    /// preopened directories, in descriptor order (3, 4, …)
    pub preopens: Vec<Preopen>,
    /// addresses to listen on (`HOST:PORT`), preopened as sockets after
    /// the directories, in order
    pub tcplisten: Vec<String>,
    /// fuel the program may spend (`fuel N`, from `--fuel`); `None`:
    /// unmetered
    pub fuel: Option<u64>,
    /// compile interrupt checks and raise them from a timer
    /// (`interrupt-checks 1`: the CLI asks for it when the program has
    /// sockets, so its computing does not starve the network)
    pub interrupt_checks: bool,
    /// stop the program this many milliseconds after its start
    /// (`deadline-ms N`, from `--timeout`): exit code 124
    pub deadline_ms: Option<u64>,
    /// which of stdin, stdout and stderr are terminals on the host
    /// (`terminal stdin|stdout|stderr`); the others are not
    pub terminals: [bool; 3],
    /// what `wasi:sockets` may do (`sockets inherit-network,ip-name-lookup,
    /// tcp,udp`, the granted ones, or `none`; from `-S`): wasmtime's
    /// defaults when absent
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
    /// serve HTTP with the component instead of running it (`serve PORT
    /// TIMEOUT-MS MAX-MEMORY PREFIX`, from `basalt serve`)
    pub serve: Option<ServeConfig>,
}

/// How to serve HTTP (`basalt serve` in a VM).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServeConfig {
    /// the port to listen on, on every address of the VM
    pub port: u16,
    /// each request's deadline in milliseconds (0: none)
    pub timeout_ms: u64,
    /// the most bytes one linear memory of a request may grow to
    pub max_memory: u64,
    /// prefix guest output lines with `stdout [N] :: `
    pub prefix: bool,
}

/// One directory preopened for the program.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preopen {
    /// where its files come from
    pub source: PreopenSource,
    /// the path the program sees (`fd_prestat_dir_name`)
    pub guest: Vec<u8>,
    /// the program may change nothing in it (`preopen-ro`, `share-ro`)
    pub read_only: bool,
}

/// Where a preopened directory's files come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PreopenSource {
    /// a copy packed in the bundle under this archive directory (`fs/N`),
    /// loaded into memory (`preopen PREFIX GUEST`)
    Bundle(String),
    /// the host directory behind the virtio-9p device with this mount tag
    /// (`share TAG GUEST`)
    Host(String),
}

fn unescape(v: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        if v[i] != b'\\' {
            out.push(v[i]);
            i += 1;
            continue;
        }
        match v.get(i + 1) {
            Some(b'\\') => {
                out.push(b'\\');
                i += 2;
            }
            Some(b'n') => {
                out.push(b'\n');
                i += 2;
            }
            Some(b'x') => {
                // Exactly two hex digits (`from_str_radix` alone would also
                // take a sign, as in `\x+4`).
                let digit = |at: usize| {
                    v.get(at)
                        .and_then(|c| char::from(*c).to_digit(16))
                        .ok_or("`\\x` needs two hex digits")
                };
                let (hi, lo) = (digit(i + 2)?, digit(i + 3)?);
                out.push((hi * 16 + lo) as u8);
                i += 4;
            }
            _ => {
                return Err(String::from(
                    "unknown escape (use `\\\\`, `\\n` or `\\xHH`)",
                ));
            }
        }
    }
    Ok(out)
}

fn utf8(v: Vec<u8>) -> Result<String, String> {
    String::from_utf8(v).map_err(|_| String::from("value is not UTF-8"))
}

/// A decimal `u64`, or `None`.
fn whole_number(v: &[u8]) -> Option<u64> {
    core::str::from_utf8(v).ok()?.parse().ok()
}

fn flag(v: &[u8]) -> Result<bool, String> {
    match v {
        b"1" => Ok(true),
        b"0" => Ok(false),
        _ => Err(String::from("value must be 0 or 1")),
    }
}

impl Manifest {
    /// Parses the manifest text.
    pub fn parse(text: &[u8]) -> Result<Manifest, BundleError> {
        let mut m = Manifest::default();
        let mut have_module = false;
        let mut seen_version = false;
        let (mut seen_artifact, mut seen_jit, mut seen_verbose) = (false, false, false);
        let mut seen_batch = false;
        let mut seen_component = false;
        let (mut seen_interrupt_checks, mut seen_deadline, mut seen_fuel) = (false, false, false);
        let mut seen_sockets = false;
        let mut seen_max_resources = false;
        let (mut seen_max_random_size, mut seen_cwd) = (false, false);
        let (mut seen_hostcall_fuel, mut seen_serve) = (false, false);
        let err = |line: usize, message: String| BundleError::Manifest { line, message };
        for (n, raw) in text.split(|c| *c == b'\n').enumerate() {
            let line = n + 1;
            let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
            if raw.is_empty() {
                continue;
            }
            let (key, value) = match raw.iter().position(|c| *c == b' ') {
                Some(sp) => (&raw[..sp], &raw[sp + 1..]),
                None => (raw, &raw[raw.len()..]),
            };
            let key_str = String::from_utf8_lossy(key).into_owned();
            let value = unescape(value).map_err(|e| err(line, e))?;
            if !seen_version && key != b"version" {
                return Err(err(
                    line,
                    String::from("the first directive must be `version 1`"),
                ));
            }
            let once = |seen: &mut bool| -> Result<(), BundleError> {
                if *seen {
                    return Err(err(line, alloc::format!("`{key_str}` given twice")));
                }
                *seen = true;
                Ok(())
            };
            match key {
                b"version" => {
                    once(&mut seen_version)?;
                    if value != b"1" {
                        return Err(err(
                            line,
                            alloc::format!(
                                "manifest version `{}` is not supported by this kernel (it reads version 1); use a matching basalt CLI",
                                String::from_utf8_lossy(&value)
                            ),
                        ));
                    }
                }
                b"arg" => m.args.push(value),
                b"env" => {
                    if !value.contains(&b'=') {
                        return Err(err(line, String::from("`env` needs NAME=VALUE")));
                    }
                    m.env.push(value);
                }
                b"module" => {
                    once(&mut have_module)?;
                    m.module = utf8(value).map_err(|e| err(line, e))?;
                }
                b"artifact" => {
                    once(&mut seen_artifact)?;
                    m.artifact = Some(utf8(value).map_err(|e| err(line, e))?);
                }
                b"component-artifacts" => {
                    once(&mut seen_component)?;
                    let n = utf8(value).map_err(|e| err(line, e))?;
                    let n = n.parse::<usize>().map_err(|_| {
                        err(line, String::from("`component-artifacts` needs a number"))
                    })?;
                    m.component_artifacts = Some(n);
                }
                b"jit" => {
                    once(&mut seen_jit)?;
                    m.jit = flag(&value).map_err(|e| err(line, e))?;
                }
                b"verbose" => {
                    once(&mut seen_verbose)?;
                    m.verbose = flag(&value).map_err(|e| err(line, e))?;
                }
                b"preopen" | b"share" | b"preopen-ro" | b"share-ro" => {
                    let live = key.starts_with(b"share");
                    let read_only = key.ends_with(b"-ro");
                    let what = if live {
                        "`share` needs TAG GUEST-PATH"
                    } else {
                        "`preopen` needs PREFIX GUEST-PATH"
                    };
                    let sp = value
                        .iter()
                        .position(|c| *c == b' ')
                        .ok_or_else(|| err(line, String::from(what)))?;
                    let first = utf8(value[..sp].to_vec()).map_err(|e| err(line, e))?;
                    let guest = value[sp + 1..].to_vec();
                    let first = if live {
                        first
                    } else {
                        utf8(normalize_bytes(first.as_bytes())).map_err(|e| err(line, e))?
                    };
                    if first.is_empty() || guest.is_empty() || guest.contains(&0) {
                        return Err(err(line, String::from(what)));
                    }
                    let source = if live {
                        PreopenSource::Host(first)
                    } else {
                        PreopenSource::Bundle(first)
                    };
                    if m.preopens.iter().any(|p| p.source == source) {
                        return Err(err(
                            line,
                            alloc::format!("{} given twice", String::from_utf8_lossy(&value[..sp])),
                        ));
                    }
                    m.preopens.push(Preopen {
                        source,
                        guest,
                        read_only,
                    });
                }
                b"tcplisten" => {
                    let addr = utf8(value).map_err(|e| err(line, e))?;
                    if !addr.contains(':') || addr.contains(' ') {
                        return Err(err(
                            line,
                            alloc::format!("`tcplisten` needs HOST:PORT, got `{addr}`"),
                        ));
                    }
                    m.tcplisten.push(addr);
                }
                b"interrupt-checks" => {
                    once(&mut seen_interrupt_checks)?;
                    m.interrupt_checks = flag(&value).map_err(|e| err(line, e))?;
                }
                b"deadline-ms" => {
                    once(&mut seen_deadline)?;
                    let n = whole_number(&value).filter(|n| *n > 0).ok_or_else(|| {
                        err(line, String::from("`deadline-ms` needs a positive number"))
                    })?;
                    m.deadline_ms = Some(n);
                }
                b"fuel" => {
                    once(&mut seen_fuel)?;
                    let n = whole_number(&value).ok_or_else(|| {
                        err(line, String::from("`fuel` needs a whole number of units"))
                    })?;
                    m.fuel = Some(n);
                }
                b"terminal" => {
                    let i = match &value[..] {
                        b"stdin" => 0,
                        b"stdout" => 1,
                        b"stderr" => 2,
                        _ => {
                            return Err(err(
                                line,
                                String::from("`terminal` names stdin, stdout or stderr"),
                            ));
                        }
                    };
                    m.terminals[i] = true;
                }
                b"max-resources" => {
                    once(&mut seen_max_resources)?;
                    let n = utf8(value).map_err(|e| err(line, e))?;
                    let n = n
                        .parse::<usize>()
                        .map_err(|_| err(line, String::from("`max-resources` needs a number")))?;
                    m.max_resources = Some(n);
                }
                b"max-random-size" => {
                    once(&mut seen_max_random_size)?;
                    let n = utf8(value).map_err(|e| err(line, e))?;
                    let n = n
                        .parse::<u64>()
                        .map_err(|_| err(line, String::from("`max-random-size` needs a number")))?;
                    m.max_random_size = Some(n);
                }
                b"hostcall-fuel" => {
                    once(&mut seen_hostcall_fuel)?;
                    let n = utf8(value).map_err(|e| err(line, e))?;
                    let n = n
                        .parse::<u64>()
                        .map_err(|_| err(line, String::from("`hostcall-fuel` needs a number")))?;
                    m.hostcall_fuel = Some(n);
                }
                b"serve" => {
                    once(&mut seen_serve)?;
                    let bad = || {
                        err(
                            line,
                            String::from(
                                "`serve` needs PORT TIMEOUT-MS MAX-MEMORY PREFIX (numbers; PREFIX 0 or 1)",
                            ),
                        )
                    };
                    let mut words = value.split(|c| *c == b' ');
                    let mut next = || words.next().and_then(whole_number).ok_or_else(bad);
                    let port = u16::try_from(next()?).map_err(|_| bad())?;
                    let (timeout_ms, max_memory, prefix) = (next()?, next()?, next()?);
                    if prefix > 1 {
                        return Err(bad());
                    }
                    m.serve = Some(ServeConfig {
                        port,
                        timeout_ms,
                        max_memory,
                        prefix: prefix == 1,
                    });
                }
                b"cwd" => {
                    once(&mut seen_cwd)?;
                    let path = utf8(value).map_err(|e| err(line, e))?;
                    if path.is_empty() {
                        return Err(err(line, String::from("`cwd` needs a path")));
                    }
                    m.cwd = Some(path);
                }
                b"sockets" => {
                    once(&mut seen_sockets)?;
                    let mut g = basalt_wasi::preview2::SocketGrants {
                        inherit_network: false,
                        ip_name_lookup: false,
                        tcp: false,
                        udp: false,
                    };
                    if value != b"none" {
                        for name in value.split(|c| *c == b',') {
                            match name {
                                b"inherit-network" => g.inherit_network = true,
                                b"ip-name-lookup" => g.ip_name_lookup = true,
                                b"tcp" => g.tcp = true,
                                b"udp" => g.udp = true,
                                _ => {
                                    return Err(err(
                                        line,
                                        String::from(
                                            "`sockets` lists inherit-network, ip-name-lookup, tcp and udp, or is none",
                                        ),
                                    ));
                                }
                            }
                        }
                    }
                    m.sockets = g;
                }
                b"spec-batch" => {
                    once(&mut seen_batch)?;
                    m.spec_batch = Some(utf8(value).map_err(|e| err(line, e))?);
                }
                _ => {
                    return Err(err(
                        line,
                        alloc::format!(
                            "unknown key `{key_str}` (this kernel knows version, arg, env, module, artifact, component-artifacts, jit, verbose, preopen, share, preopen-ro, share-ro, tcplisten, fuel, interrupt-checks, deadline-ms, terminal, sockets, max-resources, max-random-size, hostcall-fuel, cwd, serve, spec-batch); is the kernel older than the CLI?"
                        ),
                    ));
                }
            }
        }
        if !seen_version {
            return Err(err(
                1,
                String::from("empty manifest (expected `version 1`)"),
            ));
        }
        if !have_module && !seen_batch {
            return Err(err(
                text.split(|c| *c == b'\n').count(),
                String::from("no `module` directive"),
            ));
        }
        Ok(m)
    }
}
