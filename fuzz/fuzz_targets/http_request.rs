//! The HTTP server example's request-head parser over arbitrary bytes:
//! it must answer Incomplete, a head within the input, or a refusal, and
//! never panic (`tests/tests/parsers_survive_garbage.rs` is its smoke run).
#![no_main]

#[allow(dead_code)]
#[path = "../../examples/http-server/src/request.rs"]
mod request;

use request::{MAX_BODY, MAX_HEAD, Parse, parse};

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    match parse(data) {
        Parse::Incomplete => assert!(data.len() <= MAX_HEAD),
        Parse::Head(req, len) => {
            assert!(len <= data.len() && len <= MAX_HEAD + 4);
            assert!(req.content_length <= MAX_BODY);
            assert!(req.path.starts_with('/'));
        }
        Parse::Bad(status, _) => assert!((400..=501).contains(&status)),
    }
});
