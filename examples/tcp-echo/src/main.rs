//! A TCP echo server on a listener the program makes itself, and its
//! client: WASI 0.2 sockets (`wasi:sockets`) through Rust's `std::net`,
//! built for `wasm32-wasip2`.
//!
//! `tcp-echo [ADDR]` listens on `ADDR` (default `127.0.0.1:0`, a port
//! the system picks), prints `listening on IP:PORT`, and echoes each
//! connection's bytes back until the peer closes; a connection whose
//! bytes start with `quit` ends the program.
//!
//! `tcp-echo connect ADDR MESSAGE` connects to `ADDR` (a name or an
//! address), sends `MESSAGE` and a newline, and prints the line that
//! comes back.
//!
//! Run it in a VM with the network granted, as under wasmtime:
//! `basalt run -S inherit-network tcp-echo.wasm`, then
//! `nc 127.0.0.1 PORT` on the host reaches it at the address it printed.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("connect") => match (args.get(1), args.get(2)) {
            (Some(addr), Some(message)) => client(addr, message),
            _ => {
                eprintln!("usage: tcp-echo connect ADDR MESSAGE");
                ExitCode::from(2)
            }
        },
        addr => serve(addr.unwrap_or("127.0.0.1:0")),
    }
}

fn serve(addr: &str) -> ExitCode {
    let listener = match TcpListener::bind(addr) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("tcp-echo: cannot listen on {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    match listener.local_addr() {
        Ok(a) => println!("listening on {a}"),
        Err(e) => {
            eprintln!("tcp-echo: no local address: {e}");
            return ExitCode::FAILURE;
        }
    }
    for conn in listener.incoming() {
        let mut conn = match conn {
            Ok(c) => c,
            Err(e) => {
                eprintln!("tcp-echo: accept: {e}");
                continue;
            }
        };
        let mut buf = [0u8; 4096];
        loop {
            match conn.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) if buf[..n].starts_with(b"quit") => {
                    println!("quit");
                    return ExitCode::SUCCESS;
                }
                Ok(n) => {
                    if conn.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            }
        }
    }
    ExitCode::SUCCESS
}

fn client(addr: &str, message: &str) -> ExitCode {
    let mut conn = match TcpStream::connect(addr) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("tcp-echo: cannot connect to {addr}: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = conn.write_all(format!("{message}\n").as_bytes()) {
        eprintln!("tcp-echo: send: {e}");
        return ExitCode::FAILURE;
    }
    let mut line = String::new();
    match BufReader::new(conn).read_line(&mut line) {
        Ok(_) => {
            print!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tcp-echo: receive: {e}");
            ExitCode::FAILURE
        }
    }
}
