//! The kernel's network stack, judged from the host: the kernel boots in
//! its `basalt.netcheck=PORT` diagnostic mode (virtio-net, DHCP from
//! QEMU's user-mode network, a TCP echo server on PORT) and the test talks
//! to it through a port QEMU forwards from the host's loopback: one
//! connection, 50 at once, a client that vanishes mid-stream, and a bulk
//! transfer whose rate is printed. AArch64 `virt` and x86-64 `microvm`
//! (both virtio-mmio).
//!
//! ICMP echo (which smoltcp answers) cannot be checked here: QEMU's
//! user-mode network does not route the host's pings into the VM.

#![forbid(unsafe_code)]

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use basalt::guest::GuestArch;
use basalt::run::RunOptions;
use basalt::vm::{Machine, UserNetwork};
use basalt_tests::{Outcome, boot, example};

/// The port the kernel listens on.
const GUEST_PORT: u16 = 8080;
/// How long the guest may take to boot and get its lease (TCG, busy host).
const SERVING_DEADLINE: Duration = Duration::from_secs(150);
/// Socket timeouts of every client.
const IO_TIMEOUT: Duration = Duration::from_secs(60);

/// A VM running the echo diagnostic.
struct Guest {
    vm: JoinHandle<Outcome>,
    port: u16,
}

/// A free port on the host's loopback (QEMU binds it shortly after).
fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    l.local_addr().expect("local address").port()
}

fn start(arch: GuestArch) -> Guest {
    let port = free_port();
    let mut opts = RunOptions::new(example("hello"));
    opts.arch = arch;
    opts.machine = Machine::Microvm;
    opts.kernel_cmdline = Some(format!("basalt.netcheck={GUEST_PORT}"));
    opts.network = Some(UserNetwork {
        forwards: vec![(port, GUEST_PORT)],
        tap: None,
        forward_listeners: false,
        forward_host: None,
    });
    let vm = thread::spawn(move || boot(opts, b""));
    Guest { vm, port }
}

fn connect(port: u16) -> std::io::Result<TcpStream> {
    let s = TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), IO_TIMEOUT)?;
    s.set_read_timeout(Some(IO_TIMEOUT))?;
    s.set_write_timeout(Some(IO_TIMEOUT))?;
    s.set_nodelay(true)?;
    Ok(s)
}

/// Sends `payload`, closes the sending half, and reads until the server
/// closes: what came back.
fn echo(port: u16, payload: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut s = connect(port)?;
    let mut reader = s.try_clone()?;
    let back = thread::spawn(move || {
        let mut got = Vec::new();
        reader.read_to_end(&mut got).map(|_| got)
    });
    s.write_all(payload)?;
    s.shutdown(Shutdown::Write)?;
    back.join().expect("reader thread")
}

/// A payload unique to connection `n`.
fn pattern(n: usize, len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + n * 7 + i / 251) as u8).collect()
}

/// Waits until the echo server answers (QEMU accepts forwarded
/// connections before the guest listens, then drops them).
fn wait_serving(g: &Guest) -> Result<Duration, String> {
    let start = Instant::now();
    loop {
        if g.vm.is_finished() {
            return Err("the VM ended before serving".into());
        }
        if echo(g.port, b"ping").is_ok_and(|got| got == b"ping") {
            return Ok(start.elapsed());
        }
        if start.elapsed() > SERVING_DEADLINE {
            return Err(format!("no echo within {SERVING_DEADLINE:?}"));
        }
        thread::sleep(Duration::from_millis(500));
    }
}

/// Ends the VM (the diagnostic's quit word) and returns its outcome.
fn stop(g: Guest) -> Outcome {
    if !g.vm.is_finished() {
        let _ = connect(g.port).and_then(|mut s| s.write_all(b"netcheck-quit"));
    }
    g.vm.join().expect("VM thread")
}

/// Runs `checks` against a fresh VM, then stops it; any failure panics
/// with the kernel log.
fn with_guest(arch: GuestArch, checks: impl FnOnce(u16) -> Result<(), String>) {
    let g = start(arch);
    let result = wait_serving(&g).and_then(|t| {
        eprintln!("{arch:?}: echo server answered after {t:.1?}");
        checks(g.port)
    });
    let out = stop(g);
    if let Err(e) = result {
        panic!("{e}\n{}", out.describe());
    }
    out.assert_exit(0);
    let log = out.report.log_text();
    for needle in [
        "net: virtio-net (virtio-mmio) at",
        "net: DHCP lease 10.0.2.15/24",
        "netcheck: quit",
    ] {
        assert!(
            log.contains(needle),
            "the kernel log lacks `{needle}`\n{}",
            out.describe()
        );
    }
}

fn one_connection(port: u16) -> Result<(), String> {
    let payload = pattern(0, 100_000);
    let got = echo(port, &payload).map_err(|e| format!("echo: {e}"))?;
    if got != payload {
        return Err(format!(
            "echoed {} bytes, not the {} sent",
            got.len(),
            payload.len()
        ));
    }
    Ok(())
}

/// Opens `n` connections one after another (QEMU's user-mode network
/// accepts forwarded connections with a listen backlog of 1, so a burst
/// of simultaneous connects is partly reset by QEMU on the host before
/// the guest sees it), each checked with a one-byte echo, then has all of
/// them echo 20 kB at once.
fn concurrent_connections(port: u16, n: usize) -> Result<(), String> {
    let mut open = Vec::new();
    for i in 0..n {
        let mut s = connect(port).map_err(|e| format!("connection {i}: connect: {e}"))?;
        let mut b = [0u8];
        s.write_all(b"<")
            .and_then(|_| s.read_exact(&mut b))
            .map_err(|e| format!("connection {i}: first byte: {e}"))?;
        open.push(s);
    }
    let clients: Vec<_> = open
        .into_iter()
        .enumerate()
        .map(|(i, mut s)| {
            thread::spawn(move || -> Result<(), String> {
                let payload = pattern(i, 20_000);
                let mut reader = s.try_clone().map_err(|e| e.to_string())?;
                let back = thread::spawn(move || {
                    let mut got = Vec::new();
                    reader.read_to_end(&mut got).map(|_| got)
                });
                s.write_all(&payload)
                    .and_then(|_| s.shutdown(Shutdown::Write))
                    .map_err(|e| format!("connection {i}: write: {e}"))?;
                let got = back
                    .join()
                    .expect("reader thread")
                    .map_err(|e| format!("connection {i}: read: {e}"))?;
                if got != payload {
                    return Err(format!(
                        "connection {i}: {} bytes back of {}",
                        got.len(),
                        payload.len()
                    ));
                }
                Ok(())
            })
        })
        .collect();
    let failures: Vec<String> = clients
        .into_iter()
        .filter_map(|c| c.join().expect("client thread").err())
        .collect();
    if failures.is_empty() {
        Ok(())
    } else {
        Err(format!(
            "{} of {n} connections failed: {failures:?}",
            failures.len()
        ))
    }
}

/// A client that sends, reads a little and vanishes (unread data makes
/// the host reset the connection) must not stop the server.
fn vanishing_client(port: u16) -> Result<(), String> {
    for _ in 0..3 {
        let mut s = connect(port).map_err(|e| format!("connect: {e}"))?;
        s.write_all(&pattern(9, 50_000))
            .map_err(|e| format!("write: {e}"))?;
        let mut some = [0u8; 100];
        s.read_exact(&mut some).map_err(|e| format!("read: {e}"))?;
        drop(s);
    }
    one_connection(port)
}

/// Echoes `total` bytes through one connection, writing and reading at
/// once, and returns the rate.
fn throughput(port: u16, total: usize) -> Result<f64, String> {
    let s = connect(port).map_err(|e| format!("connect: {e}"))?;
    let mut writer = s.try_clone().map_err(|e| e.to_string())?;
    let start = Instant::now();
    let w = thread::spawn(move || -> std::io::Result<()> {
        let chunk = pattern(3, 64 * 1024);
        let mut sent = 0;
        while sent < total {
            let n = chunk.len().min(total - sent);
            writer.write_all(&chunk[..n])?;
            sent += n;
        }
        writer.shutdown(Shutdown::Write)
    });
    let mut reader = s;
    let mut got = 0usize;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) => return Err(format!("read after {got} bytes: {e}")),
        }
    }
    w.join()
        .expect("writer")
        .map_err(|e| format!("write: {e}"))?;
    if got != total {
        return Err(format!("{got} bytes echoed of {total}"));
    }
    Ok(total as f64 / start.elapsed().as_secs_f64() / 1e6)
}

fn all_checks(arch: GuestArch, port: u16) -> Result<(), String> {
    one_connection(port)?;
    concurrent_connections(port, 50)?;
    vanishing_client(port)?;
    let rate = throughput(port, 8 << 20)?;
    eprintln!("{arch:?}: echo throughput {rate:.2} MB/s each way (8 MiB, TCG)");
    // Still serving after all that.
    one_connection(port)
}

#[test]
fn aarch64_virt_echoes_tcp_connections() {
    with_guest(GuestArch::Aarch64, |port| {
        all_checks(GuestArch::Aarch64, port)
    });
}

#[test]
fn x86_64_microvm_echoes_tcp_connections() {
    with_guest(GuestArch::X86_64, |port| {
        all_checks(GuestArch::X86_64, port)
    });
}
