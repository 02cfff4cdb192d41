//! WASI sockets in this process (`basalt run --hosted --tcplisten`):
//! `examples/http-server` on a preopened listener answers static text and
//! echoes, serves 200 concurrent connections, and survives clients that
//! vanish or send garbage. The in-VM version of the same checks is
//! `sockets_in_vm.rs`.

#![forbid(unsafe_code)]

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use basalt::hosted::Hosted;
use basalt::run::DirMode;
use basalt_tests::{example, http};

/// A port nothing listens on now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

#[test]
fn the_http_server_answers_and_survives_hostile_clients() {
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
    let wasm = std::fs::read(example("http-server")).expect("example");
    let listen = vec![addr.to_string()];
    // The server runs until the test process ends.
    std::thread::spawn(move || {
        let run = Hosted {
            name: "http-server",
            wasm: &wasm,
            args: vec![b"http-server".to_vec()],
            env: Vec::new(),
            dirs: &[],
            dir_mode: DirMode::Live,
            timeout: None,
            fuel: None,
            tcplisten: &listen,
            sockets: Default::default(),
            max_resources: None,
            wasi: Default::default(),
            verbose: false,
        };
        let r = basalt::hosted::run(run);
        panic!("the server stopped: {r:?}");
    });
    let hello =
        http::wait_until_serving(addr, Duration::from_secs(30), &|| false).expect("serving");
    assert_eq!(
        (hello.status, &hello.body[..]),
        (200, http::HELLO.as_bytes())
    );
    let e = http::echo(addr, b"ping").expect("echo");
    assert_eq!((e.status, &e.body[..]), (200, &b"ping"[..]));
    let big = http::get(addr, "/bytes/3000000").expect("bytes");
    assert_eq!((big.status, big.body.len()), (200, 3_000_000));
    assert_eq!(http::get(addr, "/missing").expect("404").status, 404);
    http::stress(addr).expect("stress");
}
