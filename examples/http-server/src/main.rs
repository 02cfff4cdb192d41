//! A small HTTP/1.1 server for WASI preview 1, std only: it serves on the
//! listening socket its runner preopened (`basalt run --tcplisten
//! 0.0.0.0:8080`, `wasmtime run -S tcplisten=0.0.0.0:8080`), descriptor 3
//! unless `LISTEN_FD` says otherwise.
//!
//! - `GET /` answers a line of static text;
//! - `GET /bytes/N` answers N bytes (at most 64 MiB), for throughput;
//! - `POST /echo` answers the request body;
//! - `POST /quit` ends the server (exit code 0) when it was started with
//!   `--allow-quit` (tests use it); otherwise it is 404 like
//! - anything else; a malformed request is 400 and the connection is
//!   closed; a request head over 16 KiB is 431.
//!
//! One thread, many connections: every socket is non-blocking and the
//! server waits in `poll_oneoff` for whichever can make progress, so an
//! idle server uses no CPU and a slow or vanished client holds nobody up.
//! Connections are kept alive unless the client asks otherwise.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, FromRawFd};

mod request;
use request::{MAX_BODY, MAX_HEAD, Parse, parse};

/// The static answer of `GET /`.
const HELLO: &[u8] = b"Hello from Basalt: a WebAssembly HTTP server on a bare VM.\n";
/// The largest `GET /bytes/N`.
const MAX_BYTES: usize = 64 * 1024 * 1024;

/// preview1's `poll_oneoff`, which std does not expose.
mod wasi_poll {
    #[link(wasm_import_module = "wasi_snapshot_preview1")]
    unsafe extern "C" {
        /// `poll_oneoff(in, out, nsubscriptions, nevents) -> errno`
        pub fn poll_oneoff(subs: *const u8, events: *mut u8, n: u32, nevents: *mut u32) -> u16;
    }

    /// `eventtype::fd_read`
    pub const FD_READ: u8 = 1;
    /// `eventtype::fd_write`
    pub const FD_WRITE: u8 = 2;

    /// Waits until one of `(fd, event type, userdata)` is ready; returns
    /// the userdata of those that are.
    pub fn wait(subs: &[(u32, u8, u64)]) -> Vec<u64> {
        let mut raw = vec![0u8; subs.len() * 48];
        for (i, (fd, kind, userdata)) in subs.iter().enumerate() {
            let s = &mut raw[i * 48..(i + 1) * 48];
            s[0..8].copy_from_slice(&userdata.to_le_bytes());
            s[8] = *kind;
            s[16..20].copy_from_slice(&fd.to_le_bytes());
        }
        let mut events = vec![0u8; subs.len() * 32];
        let mut n = 0u32;
        // SAFETY: `raw` holds `subs.len()` 48-byte subscriptions and
        // `events` room for as many 32-byte events, as preview1 lays them
        // out; `n` is a valid u32 to write.
        let errno =
            unsafe { poll_oneoff(raw.as_ptr(), events.as_mut_ptr(), subs.len() as u32, &mut n) };
        if errno != 0 {
            eprintln!("http-server: poll_oneoff failed with errno {errno}");
            std::process::exit(1);
        }
        (0..n as usize)
            .map(|i| {
                let e = &events[i * 32..(i + 1) * 32];
                u64::from_le_bytes(e[0..8].try_into().unwrap_or_default())
            })
            .collect()
    }
}

/// What a connection is doing.
struct Conn {
    stream: TcpStream,
    /// bytes received and not yet handled
    input: Vec<u8>,
    /// bytes of answers not yet sent
    output: Vec<u8>,
    /// how much of `output` was sent
    sent: usize,
    /// close once `output` is sent
    closing: bool,
    /// the peer finished sending
    eof: bool,
}

fn respond(out: &mut Vec<u8>, status: u16, reason: &str, body: &[u8], close: bool) {
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Length: {}\r\nContent-Type: text/plain\r\n{}\r\n",
        body.len(),
        if close { "Connection: close\r\n" } else { "" }
    );
    out.extend_from_slice(head.as_bytes());
    out.extend_from_slice(body);
}

/// Answers every complete request in `c.input`; true when one asked the
/// server to quit (and `allow_quit` lets it).
fn handle(c: &mut Conn, allow_quit: bool) -> bool {
    while !c.closing {
        let (req, head_len) = match parse(&c.input) {
            Parse::Incomplete => return false,
            Parse::Bad(status, reason) => {
                respond(&mut c.output, status, reason, reason.as_bytes(), true);
                c.closing = true;
                return false;
            }
            Parse::Head(req, len) => (req, len),
        };
        if c.input.len() < head_len + req.content_length {
            return false;
        }
        let body = &c.input[head_len..head_len + req.content_length];
        let close = req.close;
        match (req.method, req.path) {
            ("GET" | "HEAD", "/") => respond(&mut c.output, 200, "OK", HELLO, close),
            ("POST", "/echo") => respond(&mut c.output, 200, "OK", body, close),
            ("POST", "/quit") if allow_quit => {
                respond(&mut c.output, 200, "OK", b"bye\n", true);
                let _ = pump_out(c);
                return true;
            }
            ("GET", p) if p.starts_with("/bytes/") => match p[7..].parse::<usize>() {
                Ok(n) if n <= MAX_BYTES => respond(&mut c.output, 200, "OK", &vec![b'x'; n], close),
                _ => respond(&mut c.output, 400, "Bad Request", b"bad size\n", close),
            },
            _ => respond(&mut c.output, 404, "Not Found", b"not found\n", close),
        }
        c.closing = close;
        c.input.drain(..head_len + req.content_length);
    }
    false
}

/// Reads what is there; false when the connection is finished with.
fn pump_in(c: &mut Conn) -> bool {
    let mut buf = [0u8; 16 * 1024];
    loop {
        match c.stream.read(&mut buf) {
            Ok(0) => {
                c.eof = true;
                return true;
            }
            Ok(n) => {
                c.input.extend_from_slice(&buf[..n]);
                if c.input.len() > MAX_HEAD + MAX_BODY {
                    c.closing = true;
                    return true;
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
}

/// Sends what it can; false when the connection is finished with.
fn pump_out(c: &mut Conn) -> bool {
    while c.sent < c.output.len() {
        match c.stream.write(&c.output[c.sent..]) {
            Ok(0) => return false,
            Ok(n) => c.sent += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    c.output.clear();
    c.sent = 0;
    true
}

fn main() {
    let allow_quit = std::env::args().any(|a| a == "--allow-quit");
    let fd = std::env::var("LISTEN_FD")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    // SAFETY: the runner preopened descriptor `fd` as a listening socket
    // (`--tcplisten`); nothing else in this program owns it.
    let listener = unsafe { TcpListener::from_raw_fd(fd) };
    if let Err(e) = listener.set_nonblocking(true) {
        eprintln!(
            "http-server: descriptor {fd} is not a listening socket ({e}); run with --tcplisten"
        );
        std::process::exit(2);
    }
    eprintln!("http-server: serving on descriptor {fd}");
    let mut conns: Vec<Option<Conn>> = Vec::new();
    const LISTENER: u64 = u64::MAX;
    loop {
        let mut subs = vec![(fd as u32, wasi_poll::FD_READ, LISTENER)];
        for (i, c) in conns.iter().enumerate() {
            if let Some(c) = c {
                let kind = if c.output.is_empty() {
                    wasi_poll::FD_READ
                } else {
                    wasi_poll::FD_WRITE
                };
                subs.push((c.stream.as_raw_fd() as u32, kind, i as u64));
            }
        }
        for ready in wasi_poll::wait(&subs) {
            if ready == LISTENER {
                loop {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            if stream.set_nonblocking(true).is_err() {
                                continue;
                            }
                            let conn = Conn {
                                stream,
                                input: Vec::new(),
                                output: Vec::new(),
                                sent: 0,
                                closing: false,
                                eof: false,
                            };
                            match conns.iter().position(Option::is_none) {
                                Some(free) => conns[free] = Some(conn),
                                None => conns.push(Some(conn)),
                            }
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(e) => {
                            eprintln!("http-server: accept: {e}");
                            break;
                        }
                    }
                }
                continue;
            }
            let slot = &mut conns[ready as usize];
            let Some(c) = slot else { continue };
            let mut quit = false;
            let alive = pump_in(c) && {
                quit = handle(c, allow_quit);
                pump_out(c)
            };
            if quit {
                eprintln!("http-server: asked to quit");
                return;
            }
            let done = c.output.is_empty() && (c.closing || c.eof);
            if !alive || done {
                *slot = None;
            }
        }
    }
}
