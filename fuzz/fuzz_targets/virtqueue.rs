//! A split virtqueue against a simulated device that writes whatever the
//! input says into the used ring (`basalt_tests::device_input::drive_virtqueue`).
//! Seed: `basalt_tests::device_input::virtqueue_session` (written to `fuzz/corpus/` by
//! the ignored test `write_fuzz_seeds`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    basalt_tests::device_input::drive_virtqueue(data);
});
