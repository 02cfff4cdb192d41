/work/main/examples/target/wasm32-wasip1/release/deps/http_server-274a12dd674a279f.d: http-server/src/main.rs

/work/main/examples/target/wasm32-wasip1/release/deps/http_server-274a12dd674a279f.wasm: http-server/src/main.rs

http-server/src/main.rs:
