//! `wasi:sockets` 0.2 through the `basalt` CLI: wasmtime's socket test
//! programs (`shared/testsuite/wasi-p2/p2/p2_tcp_*`, `p2_udp_*`,
//! `p2_ip_name_lookup`, `p2_cli_no_*`), each run as the suite's manifest
//! says — its arguments, environment, `.` preopen and, as `-S` options,
//! the network grants wasmtime's harness gives it — hosted (the host's
//! sockets and resolver; about 3 s), and [`VM_PROGRAMS`] in a VM of each
//! ISA (the kernel's sockets: its loopback, and the card on QEMU's user
//! network, whose DNS server is the host's resolver; about 1 s a boot).
//! `examples/tcp-echo` and `examples/udp-ping` check what the suite
//! cannot: a listener the program makes in the VM is reachable from the
//! host at the address it prints, and a connection or a datagram out of
//! the VM reaches the host.
//!
//! Every program must do what the manifest expects (exit 0, or the trap
//! it names), except those in [`KNOWN_FAILING`] / [`KNOWN_FAILING_IN_VM`],
//! which must not: a listed program that passes fails the test as an
//! unlisted one that fails does. Hosted, `DISABLE_IPV6=1` is added when
//! this machine cannot bind `[::1]`, as wasmtime's harness does (the
//! kernel's loopback always has `::1`). `p2_ip_name_lookup` needs a
//! resolver: offline it passes only because the program tolerates
//! `name-unresolvable` for the public names.
//!
//! Without the suite (`BASALT_WASI_P2`, or `../shared/testsuite/wasi-p2`)
//! the test says so and passes, and fails under `CI=true`.

#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

/// Programs that do not pass hosted, with the reason.
const KNOWN_FAILING: &[(&str, &str)] = &[];

/// Programs run in a VM of each ISA by default (each costs a boot):
/// one of each kind. `BASALT_WASI_SOCKETS_VM=all` runs every socket
/// program in VMs, `=a,b` the named ones.
const VM_PROGRAMS: &[&str] = &[
    "p2_cli_no_tcp",
    "p2_cli_no_ip_name_lookup",
    "p2_tcp_streams",
    "p2_tcp_sample_application",
    "p2_udp_connect",
    "p2_udp_send_to_closed_receiver",
    "p2_ip_name_lookup",
];

/// Programs that do not pass in a VM (either ISA), with the reason.
const KNOWN_FAILING_IN_VM: &[(&str, &str)] = &[];

/// The programs to run in VMs: [`VM_PROGRAMS`], or as
/// `BASALT_WASI_SOCKETS_VM` says.
fn vm_chosen(name: &str) -> bool {
    match std::env::var("BASALT_WASI_SOCKETS_VM") {
        Ok(v) if v == "all" => true,
        Ok(v) => v.split(',').any(|n| n == name),
        Err(_) => VM_PROGRAMS.contains(&name),
    }
}

/// The wasi-p2 suite, or `None` after saying why (a failure under CI).
fn suite() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let found = std::env::var_os("BASALT_WASI_P2")
        .map(PathBuf::from)
        .or_else(|| {
            [
                root.join("../shared/testsuite/wasi-p2"),
                root.join("../../shared/testsuite/wasi-p2"),
            ]
            .into_iter()
            .find(|p| p.join("manifest.tsv").is_file())
        });
    if found.is_none() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "the wasi-p2 suite is missing (set BASALT_WASI_P2)"
        );
        eprintln!("wasi-p2 suite not found; skipping (set BASALT_WASI_P2)");
    }
    found
}

/// How one program is run and what it must do.
#[derive(Debug)]
struct Program {
    name: String,
    file: PathBuf,
    /// argv after argv[0]
    args: Vec<String>,
    env: Vec<String>,
    /// a fresh `.` preopen
    dot: bool,
    /// `-S` options for the grants
    grants: Vec<String>,
    /// the trap message it must end with, or `None`: exit 0
    trap: Option<String>,
}

/// The strings of a flat JSON array of plain strings.
fn json_strings(v: &str) -> Vec<String> {
    v.trim()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .split("\", \"")
        .map(|s| s.trim().trim_matches('"').to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

/// The `-S` options of the manifest's network column (`grants: all
/// allowed (inherit_network), tcp=True udp=True lookup=False`).
fn grants(network: &str) -> Vec<String> {
    let mut s = Vec::new();
    if network.contains("inherit_network") {
        s.push("inherit-network".to_string());
    }
    for (key, flag) in [
        ("tcp", "tcp"),
        ("udp", "udp"),
        ("lookup", "allow-ip-name-lookup"),
    ] {
        let on = network.contains(&format!("{key}=True"));
        s.push(format!("{flag}={}", if on { "y" } else { "n" }));
    }
    vec![s.join(",")]
}

/// The socket programs of the manifest.
fn programs(suite: &Path) -> Vec<Program> {
    let tsv = std::fs::read_to_string(suite.join("manifest.tsv")).expect("reading manifest.tsv");
    tsv.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split('\t').collect();
            let name = f.first()?.to_string();
            let ours = ["p2_tcp_", "p2_udp_", "p2_cli_no_"]
                .iter()
                .any(|p| name.starts_with(p))
                || name == "p2_ip_name_lookup";
            if !ours {
                return None;
            }
            let expect = f.get(13)?;
            let trap = expect.contains("\"trap\": true").then(|| {
                expect
                    .split("\"trap_message\": \"")
                    .nth(1)
                    .and_then(|m| m.split('"').next())
                    .unwrap_or("")
                    .to_string()
            });
            let env = match *f.get(6)? {
                "-" => Vec::new(),
                e => e.split(' ').map(String::from).collect(),
            };
            Some(Program {
                file: suite.join(f.get(1)?),
                args: json_strings(f.get(5)?).into_iter().skip(1).collect(),
                env,
                dot: f.get(7)?.starts_with(".["),
                grants: grants(f.get(10)?),
                trap,
                name,
            })
        })
        .collect()
}

/// Whether this machine can bind `[::1]`.
fn ipv6() -> bool {
    std::net::TcpListener::bind("[::1]:0").is_ok()
}

/// Runs `p` (`vm`: in a VM of that ISA); whether it did what it must,
/// and what it printed.
fn run(p: &Program, vm: Option<&str>) -> (bool, String) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_basalt"));
    cmd.arg("run");
    match vm {
        None => {
            cmd.arg("--hosted");
        }
        Some(arch) => {
            cmd.args(["--arch", arch, "--dir-mode", "copy", "--timeout", "120"]);
        }
    }
    for g in &p.grants {
        cmd.arg(format!("-S{g}"));
    }
    for e in &p.env {
        cmd.args(["--env", e]);
    }
    if vm.is_none() && !ipv6() {
        cmd.args(["--env", "DISABLE_IPV6=1"]);
    }
    if p.dot {
        cmd.arg("--dir").arg(format!("{}::.", dir.path().display()));
    }
    cmd.arg(&p.file).args(&p.args).stdin(Stdio::null());
    let out = cmd.output().expect("running basalt");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let code = out.status.code();
    let passed = match &p.trap {
        None => code == Some(0),
        Some(msg) => code == Some(134) && text.contains(msg.as_str()),
    };
    (passed, text)
}

/// Runs `programs`, checks them against `known_failing`; panics listing
/// every surprise.
fn check(programs: &[&Program], vm: Option<&str>, known_failing: &[(&str, &str)]) {
    let started = Instant::now();
    let mut surprises = Vec::new();
    for p in programs {
        let t = Instant::now();
        let (passed, text) = run(p, vm);
        let listed = known_failing.iter().any(|(n, _)| *n == p.name);
        eprintln!(
            "{} {} ({:.1} s){}",
            if passed { "pass" } else { "FAIL" },
            p.name,
            t.elapsed().as_secs_f64(),
            if listed { " [listed as failing]" } else { "" }
        );
        match (passed, listed) {
            (false, false) => surprises.push(format!("{} failed:\n{text}", p.name)),
            (true, true) => surprises.push(format!(
                "{} passes but is listed as failing: take it off the list",
                p.name
            )),
            _ => {}
        }
    }
    eprintln!(
        "{} programs in {:.1} s",
        programs.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(surprises.is_empty(), "{}", surprises.join("\n\n"));
}

#[test]
fn socket_programs_hosted() {
    let Some(suite) = suite() else { return };
    let all = programs(&suite);
    assert!(all.len() >= 20, "only {} socket programs found", all.len());
    let refs: Vec<&Program> = all.iter().collect();
    check(&refs, None, KNOWN_FAILING);
}

fn in_vm(arch: basalt::guest::GuestArch) {
    let Some(suite) = suite() else { return };
    if let Err(e) = basalt::guest::kernel(arch, false) {
        panic!("building the {} kernel: {e}", arch.name());
    }
    let all = programs(&suite);
    let chosen: Vec<&Program> = all.iter().filter(|p| vm_chosen(&p.name)).collect();
    assert!(!chosen.is_empty(), "no VM program chosen");
    check(&chosen, Some(arch.name()), KNOWN_FAILING_IN_VM);
}

#[test]
fn socket_programs_in_x86_64_vm() {
    in_vm(basalt::guest::GuestArch::X86_64);
}

#[test]
fn socket_programs_in_aarch64_vm() {
    in_vm(basalt::guest::GuestArch::Aarch64);
}

#[test]
fn grants_follow_the_manifest() {
    assert_eq!(
        grants(
            "needs:tcp | grants: all allowed (inherit_network), tcp=False udp=True lookup=False"
        ),
        ["inherit-network,tcp=n,udp=y,allow-ip-name-lookup=n"]
    );
    assert_eq!(
        json_strings("[\"p2_tcp_bind.component\", \".\"]"),
        ["p2_tcp_bind.component", "."]
    );
}

/// Runs `examples/tcp-echo` (a WASI 0.2 component) in a VM of `arch`
/// with `args`, the network granted: the child, its stdout's lines, and
/// the reader of its stderr.
fn tcp_echo_in_vm(
    arch: &str,
    args: &[&str],
) -> (
    std::process::Child,
    std::io::Lines<std::io::BufReader<std::process::ChildStdout>>,
) {
    let wasm = basalt::guest::example_component("tcp-echo").expect("building tcp-echo");
    let mut child = Command::new(env!("CARGO_BIN_EXE_basalt"))
        .args([
            "run",
            "--arch",
            arch,
            "--timeout",
            "120",
            "-S",
            "inherit-network",
        ])
        .arg(&wasm)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting basalt");
    let stdout = child.stdout.take().expect("stdout");
    (
        child,
        std::io::BufRead::lines(std::io::BufReader::new(stdout)),
    )
}

/// Stops `basalt` as a user would (SIGTERM: it ends its VM; SIGKILL
/// would leave QEMU running).
fn stop(child: &std::process::Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
}

/// The rest of a stopped child's output, for failure messages.
fn leftovers(child: std::process::Child) -> String {
    stop(&child);
    let out = child.wait_with_output().expect("waiting for basalt");
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A program that listens on `127.0.0.1:0` in the VM and prints its
/// address is reachable at that address from the host (the kernel
/// reports the listener, the CLI forwards the port through QEMU's
/// monitor), as under wasmtime.
fn own_listener_reachable(arch: &str) {
    use std::io::{Read, Write};
    let (child, mut lines) = tcp_echo_in_vm(arch, &[]);
    let first = match lines.next() {
        Some(Ok(l)) => l,
        _ => panic!("no address printed:\n{}", leftovers(child)),
    };
    let addr = first
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line `{first}`"));
    assert!(addr.starts_with("127.0.0.1:"), "{addr}");
    for round in 0..2 {
        let mut conn = std::net::TcpStream::connect(addr)
            .unwrap_or_else(|e| panic!("connecting to {addr} (round {round}): {e}"));
        conn.set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .expect("timeout");
        let message = format!("hello {round}\n");
        conn.write_all(message.as_bytes()).expect("sending");
        let mut back = vec![0u8; message.len()];
        conn.read_exact(&mut back).expect("the echo");
        assert_eq!(back, message.as_bytes());
    }
    let mut conn = std::net::TcpStream::connect(addr).expect("connecting to end it");
    conn.write_all(b"quit").expect("sending quit");
    drop(conn);
    let out = child.wait_with_output().expect("waiting for basalt");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A program in the VM connects out through the card to a listener on
/// the host (QEMU's user network: the host is `10.0.2.2`).
fn outbound_connection(arch: &str) {
    use std::io::{BufRead, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a host listener");
    let port = listener.local_addr().expect("its address").port();
    let server = std::thread::spawn(move || {
        let (conn, _) = listener.accept().expect("the VM's connection");
        let mut line = String::new();
        std::io::BufReader::new(&conn)
            .read_line(&mut line)
            .expect("its line");
        (&conn)
            .write_all(format!("host got {line}").as_bytes())
            .expect("answering");
    });
    let target = format!("10.0.2.2:{port}");
    let (child, mut lines) = tcp_echo_in_vm(arch, &["connect", &target, "ping"]);
    match lines.next() {
        Some(Ok(l)) if l == "host got ping" => {}
        other => panic!("answer {other:?}:\n{}", leftovers(child)),
    }
    server.join().expect("the host's side");
    let out = child.wait_with_output().expect("waiting for basalt");
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn own_listener_reachable_from_host_x86_64() {
    own_listener_reachable("x86_64");
}

#[test]
fn own_listener_reachable_from_host_aarch64() {
    own_listener_reachable("aarch64");
}

#[test]
fn outbound_connection_from_x86_64_vm() {
    outbound_connection("x86_64");
}

#[test]
fn outbound_connection_from_aarch64_vm() {
    outbound_connection("aarch64");
}

/// A listener on a port the host's loopback already uses cannot be
/// forwarded: `basalt` says so on stderr, and the program runs on.
#[test]
fn a_taken_host_port_is_reported() {
    use std::io::Read;
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("a host listener");
    let addr = taken.local_addr().expect("its address").to_string();
    let (mut child, mut lines) = tcp_echo_in_vm("x86_64", &[&addr]);
    match lines.next() {
        Some(Ok(l)) if l == format!("listening on {addr}") => {}
        other => panic!("first line {other:?}:\n{}", leftovers(child)),
    }
    stop(&child);
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    let _ = child.wait();
    let port = addr.rsplit(':').next().unwrap_or("");
    assert!(
        err.contains(&format!(
            "listens on port {port} in the VM, but the host's 127.0.0.1:{port} cannot be forwarded"
        )),
        "stderr: {err}"
    );
}

/// A program in the VM sends a UDP datagram out through the card to a
/// socket on the host, and gets the answer back.
fn udp_datagram_out(arch: &str) {
    let host = std::net::UdpSocket::bind("127.0.0.1:0").expect("a host socket");
    let port = host.local_addr().expect("its address").port();
    host.set_read_timeout(Some(std::time::Duration::from_secs(120)))
        .expect("a timeout");
    let server = std::thread::spawn(move || {
        let mut buf = [0u8; 64];
        let (n, from) = host.recv_from(&mut buf).expect("the VM's datagram");
        let mut answer = b"pong:".to_vec();
        answer.extend_from_slice(&buf[..n]);
        host.send_to(&answer, from).expect("answering");
    });
    let wasm = basalt::guest::example_component("udp-ping").expect("building udp-ping");
    let out = Command::new(env!("CARGO_BIN_EXE_basalt"))
        .args([
            "run",
            "--arch",
            arch,
            "--timeout",
            "120",
            "-S",
            "inherit-network",
        ])
        .arg(&wasm)
        .args([&format!("10.0.2.2:{port}"), "hello"])
        .stdin(Stdio::null())
        .output()
        .expect("running basalt");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("pong:hello from 10.0.2.2:"), "{stdout}");
    server.join().expect("the host's side");
}

#[test]
fn udp_datagram_out_of_x86_64_vm() {
    udp_datagram_out("x86_64");
}

#[test]
fn udp_datagram_out_of_aarch64_vm() {
    udp_datagram_out("aarch64");
}
