/work/main/examples/target/wasm32-wasip1/release/confinement.wasm: /work/main/examples/confinement/src/main.rs
