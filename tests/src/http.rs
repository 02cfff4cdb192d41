//! A small HTTP client for the tests of `examples/http-server`: one
//! request per connection, every socket with a timeout, so a server that
//! stops answering fails a test instead of hanging it.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use basalt::guest::GuestArch;
use basalt::run::RunOptions;

use crate::{Outcome, boot, example};

/// How long one request may take.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// An answer: the status code and the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// the status code
    pub status: u16,
    /// the body
    pub body: Vec<u8>,
}

/// Sends `request` (a whole HTTP/1.1 request) on a new connection and
/// reads the answer until the server closes the connection.
pub fn exchange(addr: SocketAddr, request: &[u8]) -> std::io::Result<Answer> {
    let mut s = TcpStream::connect_timeout(&addr, TIMEOUT)?;
    s.set_read_timeout(Some(TIMEOUT))?;
    s.set_write_timeout(Some(TIMEOUT))?;
    s.write_all(request)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    parse(&raw)
}

fn parse(raw: &[u8]) -> std::io::Result<Answer> {
    let bad =
        |what: &str| std::io::Error::other(format!("{what}: {:?}", String::from_utf8_lossy(raw)));
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no end of head"))?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|_| bad("head not UTF-8"))?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no status"))?;
    Ok(Answer {
        status,
        body: raw[end + 4..].to_vec(),
    })
}

/// `GET path`, closing after the answer.
pub fn get(addr: SocketAddr, path: &str) -> std::io::Result<Answer> {
    exchange(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n").as_bytes(),
    )
}

/// `POST /echo` with `body`, closing after the answer.
pub fn echo(addr: SocketAddr, body: &[u8]) -> std::io::Result<Answer> {
    let mut req = format!(
        "POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    exchange(addr, &req)
}

/// Tries `GET /` until it answers, `within` passes (the server is
/// starting) or `gone` says the server is gone; the last error otherwise.
pub fn wait_until_serving(
    addr: SocketAddr,
    within: Duration,
    gone: &dyn Fn() -> bool,
) -> std::io::Result<Answer> {
    let start = Instant::now();
    loop {
        match get(addr, "/") {
            Ok(a) => return Ok(a),
            Err(e) if start.elapsed() > within || gone() => return Err(e),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

/// The text `GET /` answers.
pub const HELLO: &str = "Hello from Basalt: a WebAssembly HTTP server on a bare VM.\n";

/// Runs the stress and hostile-client checks every server must pass: 200
/// connections open at once, each holding half of an echo request while
/// the others connect, then all finishing their requests together and
/// reading their answers; clients that vanish mid-request; malformed
/// requests; and a final request that must still be answered. Returns a
/// description of the first failure.
///
/// The connections are opened one after another, not in one burst: QEMU's
/// user-mode network accepts forwarded connections through a listen
/// backlog of one, and a burst of connects stalls in SYN retransmissions
/// on the host before the guest sees any of them.
pub fn stress(addr: SocketAddr) -> Result<(), String> {
    let mut open = Vec::new();
    for i in 0..200usize {
        let body: Vec<u8> = (0..i * 37).map(|b| (b % 251) as u8).collect();
        let mut req = format!(
            "POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        )
        .into_bytes();
        req.extend_from_slice(&body);
        let half = req.len() / 2;
        let mut s = TcpStream::connect_timeout(&addr, TIMEOUT)
            .map_err(|e| format!("connection {i}: {e}"))?;
        s.set_read_timeout(Some(TIMEOUT))
            .map_err(|e| e.to_string())?;
        s.set_write_timeout(Some(TIMEOUT))
            .map_err(|e| e.to_string())?;
        s.write_all(&req[..half])
            .map_err(|e| format!("connection {i}: {e}"))?;
        open.push((s, req, half, body));
    }
    let threads: Vec<_> = open
        .into_iter()
        .enumerate()
        .map(|(i, (mut s, req, half, body))| {
            std::thread::spawn(move || {
                s.write_all(&req[half..])
                    .map_err(|e| format!("echo {i}: {e}"))?;
                let mut raw = Vec::new();
                s.read_to_end(&mut raw)
                    .map_err(|e| format!("echo {i}: {e}"))?;
                match parse(&raw) {
                    Ok(a) if a.status == 200 && a.body == body => Ok(()),
                    Ok(a) => Err(format!(
                        "echo {i}: status {} with {} bytes",
                        a.status,
                        a.body.len()
                    )),
                    Err(e) => Err(format!("echo {i}: {e}")),
                }
            })
        })
        .collect();
    for t in threads {
        t.join()
            .map_err(|_| "a client thread panicked".to_string())??;
    }
    // Clients that disconnect mid-request, or send garbage.
    for junk in [
        &b"GET / HTTP/1.1\r\nHost"[..],
        b"POST /echo HTTP/1.1\r\nContent-Length: 100000\r\n\r\nonly a little",
        b"\x00\xff\xfe garbage \r\n\r\n",
        b"GET /bytes/99999999999 HTTP/1.1\r\n\r\n",
    ] {
        let mut s = TcpStream::connect_timeout(&addr, TIMEOUT).map_err(|e| e.to_string())?;
        let _ = s.write_all(junk);
        drop(s);
    }
    match exchange(addr, b"BREW /pot HTTP/9\r\n\r\n") {
        Ok(a) if a.status == 400 => {}
        other => return Err(format!("a malformed request: {other:?}")),
    }
    match get(addr, "/") {
        Ok(a) if a.status == 200 && a.body == HELLO.as_bytes() => Ok(()),
        other => Err(format!("after the stress the server answered {other:?}")),
    }
}

/// A port nothing listens on now (QEMU binds it shortly after).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Boots `examples/http-server --allow-quit` listening on guest port 8080
/// with `configure`'s network, waits until `addr` answers `GET /` with the
/// example's text, runs `checks`, then asks the server to quit (whatever
/// happened, so the VM's report can be read) and expects exit code 0.
/// A failed check panics with the kernel log.
pub fn serve_and_check<T>(
    arch: GuestArch,
    addr: SocketAddr,
    configure: impl FnOnce(&mut RunOptions),
    checks: impl FnOnce() -> Result<T, String>,
) -> (T, Outcome) {
    let mut opts = RunOptions::new(example("http-server"));
    opts.arch = arch;
    opts.args = vec![b"--allow-quit".to_vec()];
    opts.tcplisten = vec!["0.0.0.0:8080".into()];
    configure(&mut opts);
    let vm = std::thread::spawn(move || boot(opts, b""));
    let result = (|| {
        let hello = wait_until_serving(addr, Duration::from_secs(180), &|| vm.is_finished())
            .map_err(|e| format!("the server never answered: {e}"))?;
        if (hello.status, &hello.body[..]) != (200, HELLO.as_bytes()) {
            return Err(format!("GET / answered {hello:?}"));
        }
        checks()
    })();
    let _ = exchange(addr, b"POST /quit HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
    let out = vm.join().expect("the VM thread");
    let value = match result {
        Ok(v) => v,
        Err(e) => panic!("{e}\n{}", out.describe()),
    };
    out.assert_exit(0);
    assert!(
        out.stderr_text().contains("asked to quit"),
        "{}",
        out.describe()
    );
    (value, out)
}

/// A forwarded address on the host's loopback for guest port 8080.
pub fn forwarded() -> (u16, SocketAddr) {
    let port = free_port();
    (port, format!("127.0.0.1:{port}").parse().expect("address"))
}
