/work/main/examples/target/wasm32-wasip1/release/http-server.wasm: /work/main/examples/http-server/src/main.rs
