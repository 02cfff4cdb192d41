//! Smoke runs of every host-testable parser of outside input against
//! mutated real samples: the device-tree reader, the ACPI readers (QEMU's
//! own tables), the AOT artifact loader, the module loader, the split
//! virtqueue against a lying device, the 9P client against a lying server
//! and the example HTTP server's request parser. Each must
//! answer with a value or an error, never panic or hang. The open-ended
//! searches are `cargo fuzz` targets (`fuzz/`); these runs are short and
//! deterministic (a failure names its seed).

#![forbid(unsafe_code)]

use std::path::PathBuf;

use basalt_drivers::acpi;
use basalt_tests::mutate::{Rng, mutate};
use basalt_tests::parsers::{
    RSDP_AT, Tables, acpi_machine, fix_checksum, read_all_acpi, walk_device_tree,
};

/// Mutations per sample (parsers that compile code get fewer).
const ROUNDS: u64 = 4000;

/// Runs `f` on `rounds` mutations of each sample, reporting the seed of a
/// panic.
fn smoke(what: &str, samples: &[Vec<u8>], rounds: u64, f: impl Fn(&[u8])) {
    for (i, sample) in samples.iter().enumerate() {
        f(sample);
        for round in 0..rounds {
            let seed = (i as u64) << 32 | round;
            let input = mutate(sample, &mut Rng::new(seed));
            if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&input))).is_err() {
                panic!("{what}: sample {i}, seed {seed:#x} panicked");
            }
        }
    }
}

// ---- device trees ---------------------------------------------------------

#[test]
fn device_trees() {
    let mut samples = vec![
        basalt::firecracker_aarch64::device_tree(
            512,
            "basalt.console=framed",
            (0x9000_0000, 0x9010_0000),
        )
        .expect("device tree"),
    ];
    if let Ok(pi) = std::fs::read("/usr/local/share/basalt/bcm2711-rpi-4-b.dtb") {
        samples.push(pi);
    }
    smoke("device tree", &samples, ROUNDS, walk_device_tree);
}

// ---- ACPI -----------------------------------------------------------------

#[test]
fn acpi_tables() {
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../drivers/src/acpi/fixtures");
    for m in ["qemu-virt", "qemu-q35", "qemu-microvm"] {
        // (QEMU `virt`'s fixture has two MADTs, GICv2 and GICv3: both
        // are listed, as a hostile firmware might.)
        let mem = acpi_machine(&fixtures.join(m));
        let clean = Tables(mem.clone());
        read_all_acpi(&clean);
        assert!(
            acpi::find_rsdp(&clean, Some(RSDP_AT), None).is_ok(),
            "{m}: the relaid tables must read"
        );
        let addrs: Vec<u64> = mem.keys().copied().collect();
        for round in 0..ROUNDS {
            let mut rng = Rng::new(round + 1);
            let at = addrs[rng.below(addrs.len())];
            let mut table = mutate(&mem[&at], &mut rng);
            // Half the time the checksum is made right again, so the
            // readers get past it.
            if rng.below(2) == 0 {
                if at == RSDP_AT {
                    fix_checksum(&mut table, 8, 20);
                    fix_checksum(&mut table, 32, 36);
                } else {
                    let len = table.len();
                    fix_checksum(&mut table, 9, len);
                }
            }
            let mut broken = mem.clone();
            broken.insert(at, table);
            let broken = Tables(broken);
            if std::panic::catch_unwind(|| read_all_acpi(&broken)).is_err() {
                panic!(
                    "ACPI {m}: seed {:#x} (table at {at:#x}) panicked",
                    round + 1
                );
            }
        }
    }
}

// ---- devices: virtqueue used rings and 9P replies --------------------------

#[test]
fn virtqueue_used_rings() {
    use basalt_tests::device_input::{drive_virtqueue, virtqueue_session};
    let seed = virtqueue_session();
    let accepted = drive_virtqueue(&seed);
    assert!(accepted >= 8, "the seed's faithful completions: {accepted}");
    smoke("virtqueue", &[seed], ROUNDS * 5, |d| {
        drive_virtqueue(d);
    });
}

#[test]
fn ninep_replies() {
    use basalt_tests::device_input::{drive_ninep, ninep_session};
    let seed = ninep_session();
    let succeeded = drive_ninep(&seed);
    assert_eq!(
        succeeded, 13,
        "every call of the seed but its Rlerror succeeds"
    );
    smoke("9P reply", &[seed], ROUNDS * 5, |d| {
        drive_ninep(d);
    });
}

// ---- modules and artifacts ------------------------------------------------

#[test]
fn modules_and_artifacts() {
    use basalt_runtime::{Config, Engine, Module};
    let engine = Engine::new(Config::hosted()).expect("engine");
    let wasm = std::fs::read(basalt_tests::example("hello")).expect("hello.wasm");
    let artifact = Module::compile_artifact(&engine, &wasm).expect("artifact");
    smoke("module", std::slice::from_ref(&wasm), 300, |w| {
        let _ = Module::new(&engine, w);
    });
    smoke("artifact", std::slice::from_ref(&artifact), 300, |a| {
        let _ = Module::from_artifact(&engine, &wasm, a);
    });
}

// ---- HTTP requests (examples/http-server) ----------------------------------

/// The example server's request-head parser, compiled here as it is.
#[allow(dead_code)]
#[path = "../../examples/http-server/src/request.rs"]
mod http_request;

#[test]
fn http_requests() {
    use http_request::{MAX_BODY, MAX_HEAD, Parse, parse};
    let samples: Vec<Vec<u8>> = [
        &b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"[..],
        b"POST /echo HTTP/1.1\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\nhello",
        b"GET /bytes/1024 HTTP/1.0\r\nConnection: close\r\nX: y\r\n\r\n",
        b"POST /quit HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    ]
    .iter()
    .map(|s| s.to_vec())
    .collect();
    smoke("http request", &samples, ROUNDS * 4, |input| {
        match parse(input) {
            Parse::Incomplete => assert!(input.len() <= MAX_HEAD),
            Parse::Head(req, len) => {
                assert!(len <= input.len() && len <= MAX_HEAD + 4);
                assert!(req.content_length <= MAX_BODY);
                assert!(req.path.starts_with('/') && !req.method.is_empty());
            }
            Parse::Bad(status, reason) => {
                assert!((400..=501).contains(&status) && !reason.is_empty())
            }
        }
    });
    // A head too large is refused, complete or not.
    let big = [b"GET / HTTP/1.1\r\nX: ".to_vec(), vec![b'a'; MAX_HEAD + 10]].concat();
    assert!(matches!(parse(&big), Parse::Bad(431, _)));
    let big = [big, b"\r\n\r\n".to_vec()].concat();
    assert!(matches!(parse(&big), Parse::Bad(431, _)));
}

// ---- seeds of the `cargo fuzz` targets ---------------------------------------

/// Writes the samples above as the `cargo fuzz` targets' first corpus
/// (`fuzz/corpus/TARGET/seed-N`), where `cargo fuzz run TARGET` reads it:
/// `cargo test -p basalt-tests --test parsers_survive_garbage -- --ignored write_fuzz_seeds`.
#[test]
#[ignore = "writes files; run by hand before a fuzzing session"]
fn write_fuzz_seeds() {
    use basalt_tests::device_input::{ninep_session, virtqueue_session};
    let corpus = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    let tree = basalt::firecracker_aarch64::device_tree(
        512,
        "basalt.console=framed",
        (0x9000_0000, 0x9010_0000),
    )
    .expect("device tree");
    let seeds: [(&str, Vec<Vec<u8>>); 4] = [
        ("virtqueue", vec![virtqueue_session()]),
        ("ninep_reply", vec![ninep_session()]),
        ("device_tree", vec![tree]),
        (
            "http_request",
            vec![b"GET / HTTP/1.1\r\nHost: localhost\r\nConnection: keep-alive\r\n\r\n".to_vec()],
        ),
    ];
    for (target, samples) in seeds {
        let dir = corpus.join(target);
        std::fs::create_dir_all(&dir).expect("corpus directory");
        for (i, s) in samples.iter().enumerate() {
            std::fs::write(dir.join(format!("seed-{i}")), s).expect("seed");
        }
    }
}
