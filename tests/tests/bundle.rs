//! The kernel's bundle and manifest reader, run on the host: what the CLI
//! writes comes back unchanged, and hostile archives give typed errors
//! without panicking. The reader is the kernel's own file, compiled here
//! as it is (it needs only `core` and `alloc`).

#![forbid(unsafe_code)]

extern crate alloc;

#[allow(dead_code)]
#[path = "../../kernel/src/bundle.rs"]
mod bundle;
#[allow(dead_code)]
#[path = "../../kernel/src/files.rs"]
mod files;

use basalt::bundle::{
    Entry, Manifest as CliManifest, Preopen as CliPreopen, PreopenSource, escape, write_tar,
};
use bundle::{Bundle, BundleError, Manifest};

fn manifest_entry(text: &str) -> Entry {
    Entry {
        path: "manifest".into(),
        data: text.as_bytes().to_vec(),
    }
}

fn module_entry() -> Entry {
    Entry {
        path: "app.wasm".into(),
        data: b"\0asm\x01\0\0\0".to_vec(),
    }
}

/// Parses an archive and its manifest as the kernel does at boot.
fn load(archive: &[u8]) -> Result<Manifest, BundleError> {
    let b = Bundle::parse(archive)?;
    Manifest::parse(b.require("manifest")?)
}

fn manifest_error(text: &str) -> (usize, String) {
    match Manifest::parse(text.as_bytes()) {
        Err(BundleError::Manifest { line, message }) => (line, message),
        other => panic!("expected a manifest error for {text:?}, got {other:?}"),
    }
}

#[test]
fn what_the_cli_writes_the_kernel_reads_back() {
    let hostile_arg: Vec<u8> = b"tab\tback\\slash\nnew line \xff\x00\x7f end".to_vec();
    let cli = CliManifest {
        args: vec![
            b"/path/to/app.wasm".to_vec(),
            b"two words".to_vec(),
            b"".to_vec(),
            hostile_arg.clone(),
            "ünï €".as_bytes().to_vec(),
            (0..=255u8).collect(),
        ],
        env: vec![
            b"GREETING=hi there".to_vec(),
            b"EMPTY=".to_vec(),
            b"ODD=a\\b\nc\xff".to_vec(),
        ],
        jit: true,
        verbose: true,
        artifact: true,
        component_artifacts: Some(3),
        preopens: vec![
            CliPreopen {
                source: PreopenSource::Bundle("fs/0".into()),
                guest: b"/data".to_vec(),
                read_only: false,
            },
            CliPreopen {
                source: PreopenSource::Host("basalt1".into()),
                guest: b"/live".to_vec(),
                read_only: false,
            },
            CliPreopen {
                source: PreopenSource::Bundle("fs/2".into()),
                guest: b"/ro".to_vec(),
                read_only: true,
            },
            CliPreopen {
                source: PreopenSource::Host("basalt3".into()),
                guest: b"/live-ro".to_vec(),
                read_only: true,
            },
        ],
        tcplisten: vec!["0.0.0.0:8080".into(), "127.0.0.1:9".into()],
        fuel: Some(u64::MAX),
        interrupt_checks: true,
        deadline_ms: Some(1500),
        terminals: [false, true, true],
        sockets: basalt_wasi::preview2::SocketGrants {
            inherit_network: true,
            ip_name_lookup: true,
            tcp: false,
            udp: true,
        },
        max_resources: Some(50),
        max_random_size: Some(255),
        cwd: Some("/sand box\n€".into()),
        hostcall_fuel: Some(1000),
        serve: Some(basalt::bundle::ServeManifest {
            port: 8081,
            timeout_ms: 2500,
            max_memory: 1 << 26,
            prefix: true,
        }),
    };
    let archive = write_tar(&[
        manifest_entry(&cli.render()),
        module_entry(),
        Entry {
            path: "app.cwasm".into(),
            data: vec![0xaa; 1000],
        },
    ]);
    let b = Bundle::parse(&archive).unwrap();
    assert_eq!(b.entries().len(), 3);
    assert_eq!(b.require("app.wasm").unwrap(), b"\0asm\x01\0\0\0");
    assert_eq!(b.get("./app.cwasm").unwrap(), &[0xaa; 1000][..]);
    let m = Manifest::parse(b.require("manifest").unwrap()).unwrap();
    assert_eq!(m.args, cli.args);
    assert_eq!(m.env, cli.env);
    assert_eq!(m.module, "app.wasm");
    assert_eq!(m.artifact.as_deref(), Some("app.cwasm"));
    assert_eq!(m.component_artifacts, Some(3));
    assert!(m.jit && m.verbose);
    assert_eq!(
        m.preopens,
        [
            bundle::Preopen {
                source: bundle::PreopenSource::Bundle("fs/0".into()),
                guest: b"/data".to_vec(),
                read_only: false,
            },
            bundle::Preopen {
                source: bundle::PreopenSource::Host("basalt1".into()),
                guest: b"/live".to_vec(),
                read_only: false,
            },
            bundle::Preopen {
                source: bundle::PreopenSource::Bundle("fs/2".into()),
                guest: b"/ro".to_vec(),
                read_only: true,
            },
            bundle::Preopen {
                source: bundle::PreopenSource::Host("basalt3".into()),
                guest: b"/live-ro".to_vec(),
                read_only: true,
            }
        ]
    );

    assert_eq!(m.tcplisten, ["0.0.0.0:8080", "127.0.0.1:9"]);
    assert_eq!(m.fuel, Some(u64::MAX));
    assert!(m.interrupt_checks);
    assert_eq!(m.deadline_ms, Some(1500));
    assert_eq!(m.terminals, [false, true, true]);
    assert_eq!(m.sockets, cli.sockets);
    assert_eq!(m.max_resources, Some(50));
    assert_eq!(m.max_random_size, Some(255));
    assert_eq!(m.cwd.as_deref(), Some("/sand box\n€"));
    assert_eq!(m.hostcall_fuel, Some(1000));
    assert_eq!(
        m.serve,
        Some(bundle::ServeConfig {
            port: 8081,
            timeout_ms: 2500,
            max_memory: 1 << 26,
            prefix: true,
        })
    );

    // And with every flag off.
    let plain = CliManifest {
        args: vec![b"x".to_vec()],
        ..CliManifest::default()
    };
    let m = load(&write_tar(&[
        manifest_entry(&plain.render()),
        module_entry(),
    ]))
    .unwrap();
    assert_eq!(m.args, vec![b"x".to_vec()]);
    assert!(m.env.is_empty());
    assert_eq!(m.artifact, None);
    assert!(!m.jit && !m.verbose);
    assert_eq!(m.fuel, None);
    assert!(!m.interrupt_checks);
    assert_eq!(m.sockets, basalt_wasi::preview2::SocketGrants::default());
    // Nothing granted at all.
    let none = CliManifest {
        args: vec![b"x".to_vec()],
        sockets: basalt_wasi::preview2::SocketGrants {
            inherit_network: false,
            ip_name_lookup: false,
            tcp: false,
            udp: false,
        },
        ..CliManifest::default()
    };
    assert!(none.render().contains("sockets none\n"));
    let m = load(&write_tar(&[
        manifest_entry(&none.render()),
        module_entry(),
    ]))
    .unwrap();
    assert_eq!(m.sockets, none.sockets);
}

#[test]
fn every_escaped_byte_string_round_trips() {
    let mut rng = Rng(7);
    for _ in 0..500 {
        let len = (rng.next() % 40) as usize;
        let value: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        let text = format!("version 1\narg {}\nmodule app.wasm\n", escape(&value));
        let m = Manifest::parse(text.as_bytes()).unwrap();
        assert_eq!(m.args, vec![value]);
    }
}

#[test]
fn an_empty_or_cut_archive_is_an_error() {
    assert_eq!(
        Bundle::parse(&[]).err(),
        Some(BundleError::Truncated { offset: 0 })
    );
    let archive = write_tar(&[
        manifest_entry("version 1\nmodule app.wasm\n"),
        module_entry(),
    ]);
    // Cut inside the first header, inside its data, inside the second header.
    for cut in [100, 512 + 10, 1024 + 300] {
        assert!(
            matches!(
                Bundle::parse(&archive[..cut]),
                Err(BundleError::Truncated { .. })
            ),
            "cut at {cut}"
        );
    }
    // Every prefix gives a result, never a panic.
    for cut in 0..archive.len() {
        let _ = load(&archive[..cut]);
    }
}

/// A one-entry archive with `edit` applied to its header and the checksum
/// recomputed afterwards.
fn archive_with_header(edit: impl Fn(&mut [u8])) -> Vec<u8> {
    let mut a = write_tar(&[manifest_entry("version 1\nmodule app.wasm\n")]);
    edit(&mut a[..512]);
    a[148..156].fill(b' ');
    let sum: u32 = a[..512].iter().map(|b| u32::from(*b)).sum();
    a[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    a
}

#[test]
fn bad_headers_are_named() {
    let mut a = write_tar(&[manifest_entry("version 1\nmodule app.wasm\n")]);
    a[0] ^= 1;
    assert_eq!(
        Bundle::parse(&a).err(),
        Some(BundleError::BadHeader {
            offset: 0,
            what: "header checksum mismatch"
        })
    );

    let mut a = write_tar(&[manifest_entry("version 1\n")]);
    a[148..156].copy_from_slice(b"12x4567\0");
    assert_eq!(
        Bundle::parse(&a).err(),
        Some(BundleError::BadHeader {
            offset: 0,
            what: "unreadable checksum"
        })
    );

    let a = archive_with_header(|h| h[124..136].copy_from_slice(b"0000000009a\0"));
    assert_eq!(
        Bundle::parse(&a).err(),
        Some(BundleError::BadHeader {
            offset: 0,
            what: "unreadable size"
        })
    );

    // A size pointing past the end, in octal and in base-256.
    let a = archive_with_header(|h| h[124..136].copy_from_slice(b"77777777777\0"));
    assert_eq!(
        Bundle::parse(&a).err(),
        Some(BundleError::Truncated { offset: 0 })
    );
    let a = archive_with_header(|h| {
        h[124..136].fill(0);
        h[124] = 0x80;
        h[132] = 0x01; // 2^24 bytes
    });
    assert_eq!(
        Bundle::parse(&a).err(),
        Some(BundleError::Truncated { offset: 0 })
    );
    // A base-256 size too large for 64 bits.
    let a = archive_with_header(|h| {
        h[124] = 0x80;
        h[125..136].fill(0xff);
    });
    assert_eq!(
        Bundle::parse(&a).err(),
        Some(BundleError::BadHeader {
            offset: 0,
            what: "unreadable size"
        })
    );
}

#[test]
fn a_name_filling_its_whole_field_is_read_without_a_nul() {
    let long = "d".repeat(99) + "m";
    let a = archive_with_header(|h| h[..100].copy_from_slice(long.as_bytes()));
    let b = Bundle::parse(&a).unwrap();
    assert_eq!(b.entries()[0].path, long);
    assert_eq!(
        Manifest::parse(b"version 1\nmodule x\n").map(|m| m.module),
        Ok("x".to_string())
    );
    assert_eq!(
        b.require("manifest").err(),
        Some(BundleError::NoEntry("manifest".into()))
    );
}

#[test]
fn a_bundle_without_manifest_says_so() {
    let a = write_tar(&[module_entry()]);
    assert_eq!(
        load(&a).err(),
        Some(BundleError::NoEntry("manifest".into()))
    );
    let msg = load(&a).unwrap_err().to_string();
    assert!(msg.contains("`manifest`"), "{msg}");
}

#[test]
fn manifest_mistakes_name_their_line() {
    let (line, msg) = manifest_error("version 1\narg a\nmodule app.wasm\nmodule b.wasm\n");
    assert_eq!(line, 4);
    assert!(msg.contains("`module` given twice"), "{msg}");

    let (line, msg) = manifest_error("version 1\nmodule m\nsockets tcp,bogus\n");
    assert_eq!(line, 3);
    assert!(msg.contains("`sockets` lists"), "{msg}");

    let (line, msg) = manifest_error("version 1\narg a\n\ncolour blue\nmodule app.wasm\n");
    assert_eq!(line, 4);
    assert!(msg.contains("unknown key `colour`"), "{msg}");
    let shown = BundleError::Manifest { line, message: msg }.to_string();
    assert!(shown.contains("manifest line 4"), "{shown}");

    for bad in ["\\x4", "\\x4 end", "\\q", "\\xg0", "\\x+4", "trailing\\"] {
        let (line, msg) = manifest_error(&format!("version 1\narg ok\narg {bad}\nmodule m\n"));
        assert_eq!(line, 3, "{bad}");
        assert!(
            msg.contains("escape") || msg.contains("hex digits"),
            "{bad}: {msg}"
        );
    }

    let (line, msg) = manifest_error("version 1\nmodule m\nterminal stdtty\n");
    assert_eq!(line, 3);
    assert!(msg.contains("stdin, stdout or stderr"), "{msg}");

    for bad in [
        "serve 70000 1 1 1",
        "serve 80 1 1 2",
        "serve 80 1",
        "serve x 1 1 1",
    ] {
        let (line, msg) = manifest_error(&format!("version 1\nmodule m\n{bad}\n"));
        assert_eq!(line, 3, "{bad}");
        assert!(msg.contains("`serve` needs PORT"), "{bad}: {msg}");
    }
    let (line, msg) = manifest_error("version 1\nmodule m\ntcplisten 8080\n");
    assert_eq!(line, 3);
    assert!(msg.contains("HOST:PORT"), "{msg}");
    let (line, msg) = manifest_error("version 1\nmodule m\nshare basalt0 /a\nshare basalt0 /b\n");
    assert_eq!(line, 4);
    assert!(msg.contains("basalt0 given twice"), "{msg}");
    let (line, msg) = manifest_error("version 1\nmodule m\nshare basalt0\n");
    assert_eq!(line, 3);
    assert!(msg.contains("`share` needs TAG GUEST-PATH"), "{msg}");

    assert_eq!(manifest_error("").0, 1);
    assert_eq!(manifest_error("arg a\nversion 1\n").0, 1);
    assert!(
        manifest_error("version 2\nmodule m\n")
            .1
            .contains("version `2`")
    );
    assert_eq!(
        manifest_error("version 1\narg a\n").1,
        "no `module` directive"
    );
    assert_eq!(manifest_error("version 1\nenv NOEQUALS\nmodule m\n").0, 2);
    assert_eq!(manifest_error("version 1\nmodule m\njit yes\n").0, 3);
    assert_eq!(
        manifest_error("version 1\nmodule \\xff\n").1,
        "value is not UTF-8"
    );
    assert_eq!(manifest_error("version 1\nversion 1\nmodule m\n").0, 2);
    // a spec batch stands in for the module (`basalt wast --in-vm`)
    let m = Manifest::parse(b"version 1\nspec-batch spec.batch\n").unwrap();
    assert_eq!(m.spec_batch.as_deref(), Some("spec.batch"));
    assert_eq!(
        manifest_error("version 1\nspec-batch a\nspec-batch b\n").0,
        3
    );
}

#[test]
fn a_cut_or_odd_pax_header_is_survived() {
    // A pax `x` entry whose records have lengths that are short, too long
    // or not numbers, before a real entry.
    for records in [
        &b"1 \n"[..],
        b"2 \n",
        b"3 a\n",
        b"99 path=x\n",
        b"x path=y\n",
        b"12 path=abc\n13 size=9999\n",
        b"5 =\n",
    ] {
        let mut a = write_tar(&[
            Entry {
                path: "pax".into(),
                data: records.to_vec(),
            },
            manifest_entry("version 1\nmodule app.wasm\n"),
        ]);
        a[156] = b'x';
        a[148..156].fill(b' ');
        let sum: u32 = a[..512].iter().map(|b| u32::from(*b)).sum();
        a[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        let _ = load(&a);
    }
}

/// xorshift64*: a fixed, seedable stream of bytes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

#[test]
fn random_bytes_never_panic() {
    for seed in [1u64, 2, 0xdead_beef, 0x1234_5678_9abc_def0] {
        let mut rng = Rng(seed);
        let data: Vec<u8> = (0..1 << 20).map(|_| rng.next() as u8).collect();
        assert!(load(&data).is_err(), "seed {seed}");
        let _ = Manifest::parse(&data);
        // Random bytes behind a valid header, and random manifests.
        let mut a = write_tar(&[manifest_entry("version 1\nmodule app.wasm\n")]);
        a.truncate(512);
        a.extend_from_slice(&data[..4096]);
        let _ = load(&a);
        for chunk in data.chunks(97).take(2000) {
            let _ = Manifest::parse(chunk);
        }
    }
}

#[test]
fn random_corruption_of_a_real_bundle_never_panics() {
    let cli = CliManifest {
        args: vec![b"app".to_vec(), b"a b".to_vec()],
        env: vec![b"K=V".to_vec()],
        ..CliManifest::default()
    };
    let good = write_tar(&[manifest_entry(&cli.render()), module_entry()]);
    for seed in 1..=4u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        for _ in 0..2000 {
            let mut a = good.clone();
            for _ in 0..=(rng.next() % 8) {
                let at = (rng.next() as usize) % a.len();
                a[at] = rng.next() as u8;
            }
            let _ = load(&a);
        }
    }
}

/// A shared directory packed by the CLI comes out of the kernel's reader
/// and file-system loader as it was: contents, nesting, symbolic links,
/// hard links, long and non-UTF-8 names, modification times to the
/// nanosecond; devices are left out with a warning.
#[test]
fn a_shared_directory_survives_the_bundle() {
    use basalt_wasi::FileSystem;
    use basalt_wasi::services::FileKind as Kind;
    use std::os::unix::ffi::OsStrExt;

    let dir = std::env::temp_dir().join(format!("basalt-share-test-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let long = "d".repeat(90);
    std::fs::create_dir_all(dir.join(&long).join("sub")).unwrap();
    let deep = dir.join(&long).join("sub").join("f".repeat(120));
    std::fs::write(&deep, b"deep").unwrap();
    std::fs::write(dir.join("a.txt"), b"hello").unwrap();
    std::fs::hard_link(dir.join("a.txt"), dir.join("b.txt")).unwrap();
    std::os::unix::fs::symlink("a.txt", dir.join("link")).unwrap();
    let odd = std::ffi::OsStr::from_bytes(b"odd\xff name");
    std::fs::write(dir.join(odd), b"").unwrap();
    let mtime = std::time::UNIX_EPOCH + std::time::Duration::new(1_600_000_000, 123_456_789);
    std::fs::File::options()
        .write(true)
        .open(dir.join("a.txt"))
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    let fifo = dir.join("fifo");
    let made_fifo = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .is_ok_and(|s| s.success());

    let mut warnings = Vec::new();
    let files = basalt::share::pack_dir(&dir, "fs/0", &mut |w| warnings.push(w)).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(warnings.len(), usize::from(made_fifo), "{warnings:?}");
    let cli = CliManifest {
        preopens: vec![CliPreopen {
            source: PreopenSource::Bundle("fs/0".into()),
            guest: b"/data".to_vec(),
            read_only: false,
        }],
        ..CliManifest::default()
    };
    let archive =
        basalt::bundle::write_bundle(&[manifest_entry(&cli.render()), module_entry()], &files);
    assert_eq!(archive.len() % 4096, 512);
    let b = Bundle::parse(&archive).unwrap();
    let m = Manifest::parse(b.require("manifest").unwrap()).unwrap();
    let clock = || -> basalt_wasi::memfs::Clock { Box::new(|| 7) };
    let copies: Vec<(u64, &str)> = m
        .preopens
        .iter()
        .map(|p| match &p.source {
            bundle::PreopenSource::Bundle(prefix) => (1, prefix.as_str()),
            bundle::PreopenSource::Host(_) => panic!("no live shares here"),
        })
        .collect();
    let fss = files::load(&b, &copies, 1 << 20, clock).unwrap();
    let fs = &fss[0];
    let find = |path: &[u8]| {
        let mut at = fs.root();
        for n in path.split(|c| *c == b'/') {
            at = fs
                .lookup(at, n)
                .unwrap_or_else(|e| panic!("{path:?}: {e:?}"));
        }
        at
    };
    let read = |ino| {
        let mut buf = vec![0; 64];
        let n = fs.read(ino, 0, &mut buf).unwrap();
        buf.truncate(n);
        buf
    };
    let a = find(b"a.txt");
    assert_eq!(read(a), b"hello");
    assert_eq!(find(b"b.txt"), a, "hard links share an inode");
    let st = fs.stat(a).unwrap();
    assert_eq!((st.nlink, st.mtim), (2, 1_600_000_000_123_456_789));
    let l = find(b"link");
    assert_eq!(fs.stat(l).unwrap().kind, Kind::SymbolicLink);
    assert_eq!(fs.readlink(l).unwrap(), b"a.txt");
    let deep_path = format!("{long}/sub/{}", "f".repeat(120));
    assert_eq!(read(find(deep_path.as_bytes())), b"deep");
    assert_eq!(fs.stat(find(b"odd\xff name")).unwrap().size, 0);
    assert!(fs.lookup(fs.root(), b"fifo").is_err());

    // Too little memory: a clear error, nothing loaded.
    match files::load(&b, &copies, 4, clock) {
        Err(files::FilesError::TooBig { need, budget: 4 }) => assert!(need > 4),
        Err(e) => panic!("expected TooBig, got {e}"),
        Ok(_) => panic!("expected TooBig"),
    }
}
