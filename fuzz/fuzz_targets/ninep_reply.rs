//! The 9P client in a session whose every server reply comes from the
//! input (`basalt_tests::device_input::drive_ninep`).
//! Seed: `basalt_tests::device_input::ninep_session` (written to `fuzz/corpus/` by
//! the ignored test `write_fuzz_seeds`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    basalt_tests::device_input::drive_ninep(data);
});
