//! The device-tree reader over arbitrary bytes, walked through every
//! accessor the kernel uses (`basalt_tests::parsers::walk_device_tree`).
//! Seeds: `fuzz/corpus/device_tree/`, written by the ignored test
//! `write_fuzz_seeds` (README, "Parsers of outside input").
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    basalt_tests::parsers::walk_device_tree(data);
});
