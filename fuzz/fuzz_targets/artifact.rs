//! The AOT artifact loader over arbitrary bytes, for the hello example's
//! module: it must refuse what it cannot use, never panic. (It only loads;
//! nothing is run.)
#![no_main]

use std::sync::OnceLock;

use basalt_runtime::{Config, Engine, Module};

fn engine_and_wasm() -> &'static (Engine, Vec<u8>) {
    static IT: OnceLock<(Engine, Vec<u8>)> = OnceLock::new();
    IT.get_or_init(|| {
        let engine = Engine::new(Config::hosted()).expect("engine");
        // The examples as the README's first command built them: under
        // `cargo +nightly fuzz` an inner build would use nightly, which
        // lacks wasm32-wasip1.
        let built = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../target/examples/wasm32-wasip1/release/hello.wasm");
        let wasm = std::fs::read(&built)
            .or_else(|_| std::fs::read(basalt_tests::example("hello")))
            .expect("hello.wasm: build the examples first (README)");
        (engine, wasm)
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let (engine, wasm) = engine_and_wasm();
    let _ = Module::from_artifact(engine, wasm, data);
});
