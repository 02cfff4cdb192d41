//! Sends one UDP datagram and prints the answer: WASI 0.2 sockets
//! (`wasi:sockets/udp`) through Rust's `std::net`, built for
//! `wasm32-wasip2`.
//!
//! `udp-ping ADDR MESSAGE` binds `0.0.0.0:0`, sends `MESSAGE` to `ADDR`
//! and prints the first datagram that comes back (it waits for one: give
//! `basalt run` a `--timeout`; WASI 0.2 has no receive timeout).
//! In a VM run with `-S inherit-network`, `ADDR` may be the host
//! (`10.0.2.2:PORT` on QEMU's user network).

use std::net::UdpSocket;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(addr), Some(message)) = (args.first(), args.get(1)) else {
        eprintln!("usage: udp-ping ADDR MESSAGE");
        return ExitCode::from(2);
    };
    let socket = match UdpSocket::bind("0.0.0.0:0") {
        Ok(s) => s,
        Err(e) => {
            eprintln!("udp-ping: cannot bind: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = socket.send_to(message.as_bytes(), addr.as_str()) {
        eprintln!("udp-ping: cannot send to {addr}: {e}");
        return ExitCode::FAILURE;
    }
    let mut buf = [0u8; 2048];
    match socket.recv_from(&mut buf) {
        Ok((n, from)) => {
            println!("{} from {from}", String::from_utf8_lossy(&buf[..n]));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("udp-ping: no answer: {e}");
            ExitCode::FAILURE
        }
    }
}
