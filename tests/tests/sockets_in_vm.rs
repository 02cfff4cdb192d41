//! WASI sockets in a VM, on both ISAs: `examples/http-server` listens on a
//! `--tcplisten` socket of the kernel's network stack (virtio-net,
//! smoltcp, DHCP from QEMU's user-mode network) and the host reaches it
//! through `-p`: static text, an echo, a 3 MB answer, 200 concurrent
//! clients, clients that vanish mid-request and malformed requests — and
//! the server still answers afterwards, then quits on request with exit
//! code 0. Every wait has a deadline; a failure prints the kernel log.

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use basalt::guest::GuestArch;
use basalt::run::RunOptions;
use basalt_tests::{boot, example, http};

basalt_tests::on_every_isa!(the_http_server_answers_curl_and_survives_hostile_clients);

/// A port nothing listens on now (QEMU binds it shortly after).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn the_http_server_answers_curl_and_survives_hostile_clients(arch: GuestArch) {
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("address");
    let mut opts = RunOptions::new(example("http-server"));
    opts.arch = arch;
    opts.args = vec![b"--allow-quit".to_vec()];
    opts.tcplisten = vec!["0.0.0.0:8080".into()];
    opts.publish = vec![(port, 8080)];
    let vm = std::thread::spawn(move || boot(opts, b""));
    let checks = (|| -> Result<(), String> {
        let hello = http::wait_until_serving(addr, Duration::from_secs(180))
            .map_err(|e| format!("the server never answered: {e}"))?;
        if (hello.status, &hello.body[..]) != (200, http::HELLO.as_bytes()) {
            return Err(format!("GET / answered {hello:?}"));
        }
        let e = http::echo(addr, b"ping").map_err(|e| e.to_string())?;
        if (e.status, &e.body[..]) != (200, &b"ping"[..]) {
            return Err(format!("POST /echo answered {e:?}"));
        }
        let big = http::get(addr, "/bytes/3000000").map_err(|e| e.to_string())?;
        if (big.status, big.body.len()) != (200, 3_000_000) {
            return Err(format!(
                "GET /bytes answered {} with {} bytes",
                big.status,
                big.body.len()
            ));
        }
        http::stress(addr)
    })();
    // Ask it to stop whatever happened, so the VM's report can be read.
    let _ = http::exchange(addr, b"POST /quit HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
    let out = vm.join().expect("the VM thread");
    if let Err(e) = checks {
        panic!("{e}\n{}", out.describe());
    }
    out.assert_exit(0);
    assert!(
        out.stderr_text().contains("asked to quit"),
        "{}",
        out.describe()
    );
}
