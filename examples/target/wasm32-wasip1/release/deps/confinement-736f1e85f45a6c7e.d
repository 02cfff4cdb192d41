/work/main/examples/target/wasm32-wasip1/release/deps/confinement-736f1e85f45a6c7e.d: confinement/src/main.rs

/work/main/examples/target/wasm32-wasip1/release/deps/confinement-736f1e85f45a6c7e.wasm: confinement/src/main.rs

confinement/src/main.rs:
