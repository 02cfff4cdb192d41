//! Differential fuzzing of GC, typed function references and exception
//! handling: Basalt against wasmtime on `wasm-smith` modules (see
//! `basalt_tests::differential::wasmtime_oracle`).
#![no_main]

use basalt_tests::differential::Verdict;
use basalt_tests::differential::wasmtime_oracle::check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Verdict::Diverged(what) = check(data) {
        panic!("basalt and wasmtime diverge: {what}");
    }
});
