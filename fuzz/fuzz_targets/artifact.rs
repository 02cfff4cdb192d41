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
        let wasm = std::fs::read(basalt_tests::example("hello")).expect("hello.wasm");
        (engine, wasm)
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let (engine, wasm) = engine_and_wasm();
    let _ = Module::from_artifact(engine, wasm, data);
});
