//! Bounded differential runs: random modules from fixed seeds through
//! Basalt and wasmi (see `basalt_tests::differential`), and modules with
//! GC, typed function references and exception handling through Basalt
//! and wasmtime (`basalt_tests::differential::wasmtime_oracle`). Longer runs:
//! `BASALT_DIFF_CASES=100000 cargo test -p basalt-tests --release --test
//! differential` (`BASALT_DIFF_GC_CASES` for the second), or the
//! `cargo fuzz` targets `differential` and `differential_wasmtime`.

#![forbid(unsafe_code)]

use basalt_tests::differential::wasmtime_oracle;
use basalt_tests::differential::{Verdict, check};

/// xorshift64*: deterministic case bytes from a seed.
fn case_bytes(seed: u64) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut next = || {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    };
    let len = 256 + (next() % 8192) as usize;
    (0..len).map(|_| (next() >> 56) as u8).collect()
}

#[test]
fn basalt_agrees_with_wasmi_on_random_modules() {
    agree("wasmi", "BASALT_DIFF_CASES", 400, check);
}

#[test]
fn basalt_agrees_with_wasmtime_on_gc_and_exception_modules() {
    agree(
        "wasmtime",
        "BASALT_DIFF_GC_CASES",
        200,
        wasmtime_oracle::check,
    );
}

/// Checks `default` cases (or `$env` many) with `check` against `oracle`.
fn agree(oracle: &str, env: &str, default: u64, check: fn(&[u8]) -> Verdict) {
    let cases: u64 = std::env::var(env)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    let mut same = 0;
    let mut skipped = std::collections::BTreeMap::<&str, u64>::new();
    let mut diverged = Vec::new();
    for seed in 0..cases {
        match check(&case_bytes(seed)) {
            Verdict::Same => same += 1,
            Verdict::Skipped(why) => *skipped.entry(why).or_default() += 1,
            Verdict::Diverged(what) => diverged.push(format!("seed {seed}: {what}")),
        }
    }
    println!(
        "differential against {oracle}: {cases} cases, {same} agreed, {} skipped {skipped:?}, {} diverged",
        skipped.values().sum::<u64>(),
        diverged.len()
    );
    assert!(diverged.is_empty(), "divergences:\n{}", diverged.join("\n"));
    assert!(
        same > cases / 2,
        "too few comparable cases: {same} of {cases}"
    );
}

/// Inputs the fuzzer once flagged, kept as regression cases.
const REGRESSIONS: &[&[u8]] = &[
    // an empty element segment at an offset past the table: both engines
    // refuse to instantiate, wasmi without a trap code
    b"has_popc\xf7\xf5\x00\x00\x00\xb4c\xde\x01#c\xff\xff\xff\xff\xff\xffcc",
    // the fuzzer's first report (same class)
    b"has_sse4\xee\xee\xee\xee&\xff\xff\xff\x7f\xff\xff\xff\x10",
    // a 64-bit table grown by about 2^31 elements: Basalt refuses (more than
    // MAX_TABLE_ELEMENTS), wasmi allocated them (2.3 GB, the fuzzer ran out
    // of memory); the oracle now has the same limit
    b"\x83Jha\xb4\xb4\xb4\xb4\xb4s_bmi\xc2\xb4\xb4\xb4\xb4\xb4\xb4\xb4\xb4\xb44\xb4\xb4\xb4\xb4\xc2\xc2\x8f\xc2\x83\x83\x83\x83\x83\xee6666\xc2\xd5\x8f\xc2\xc2\xd5`\xc2\xe2\xc2\xc2\xc2\xc2`\xc2\xc2\xc2\xc2\xc2\xc2\xc2?B/J",
    // a 64-bit memory grown again and again: wasmi commits what it grows
    // (2.4 GB here); both engines now stop at the same smaller limit
    b"\x83J\xff!\x00\x00\x000\xc2\x8fa&\xc2\xc2\xc2\xc2\xc2\x86\xc2\xc2\xc2\xc2\xc2LLLLLLLLLLLLLLLLLLLL\xc1\xc2\x9a\x9a\x9a\x9a\x9a\x01@\x9a\x9azzzzzz\x9a\x9a\x9a\x9a\x9a\x9a\x9a\x9a\xc1\xc2\x9a\x9a\x9a\x9a\x9a\x9a\x9aLLLLL'\xc2|J",
];

#[test]
fn fuzzer_regressions_agree() {
    for (i, data) in REGRESSIONS.iter().enumerate() {
        if let Verdict::Diverged(what) = check(data) {
            panic!("regression {i}: {what}");
        }
    }
}
