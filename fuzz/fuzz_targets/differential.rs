//! Differential fuzzing of code generation: Basalt against wasmi on
//! `wasm-smith` modules (see `basalt_tests::differential`).
#![no_main]

use basalt_tests::differential::{Verdict, check};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Verdict::Diverged(what) = check(data) {
        panic!("basalt and wasmi diverge: {what}");
    }
});
