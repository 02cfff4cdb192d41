//! The device-tree reader over arbitrary bytes, walked through every
//! accessor the kernel uses (`basalt_tests::parsers::walk_device_tree`).
//! Seed it with real trees: `fuzz/seeds/device_tree/` (see fuzz/README).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    basalt_tests::parsers::walk_device_tree(data);
});
