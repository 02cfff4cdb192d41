//! Differential fuzzing of GC, typed function references and exception
//! handling: Basalt against wasmtime on `wasm-smith` modules (see
//! `basalt_tests::differential_wasmtime`).
#![no_main]

use basalt_tests::differential::Verdict;
use basalt_tests::differential_wasmtime::check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Verdict::Diverged(what) = check(data) {
        panic!("basalt and wasmtime diverge: {what}");
    }
});
