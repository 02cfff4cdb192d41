//! WASI sockets in a VM, on both ISAs: `examples/http-server` listens on a
//! `--tcplisten` socket of the kernel's network stack (virtio-net,
//! smoltcp, DHCP from QEMU's user-mode network) and the host reaches it
//! through `-p`: static text, an echo, a 3 MB answer, 200 concurrent
//! clients, clients that vanish mid-request and malformed requests — and
//! the server still answers afterwards, then quits on request with exit
//! code 0. A second VM gets a flood of malformed Ethernet frames injected
//! straight into its card (a QEMU hub joins a UDP socket to the user-mode
//! network) and must go on serving; a third a SYN flood the same way (x86-64),
//! after which a client must be answered within a second. Every wait has a
//! deadline; a failure prints the kernel log.

#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::time::Duration;

use basalt::guest::GuestArch;
use basalt::run::RunOptions;
use basalt::vm::{FrameTap, UserNetwork};
use basalt_tests::http;
use basalt_tests::http::{forwarded, free_port, serve_and_check};

basalt_tests::on_every_isa!(
    the_http_server_answers_curl_and_survives_hostile_clients,
    a_flood_of_malformed_frames_leaves_the_server_up,
    the_http_server_answers_on_a_host_tap,
);

fn the_http_server_answers_curl_and_survives_hostile_clients(arch: GuestArch) {
    let (port, addr) = forwarded();
    let configure = |o: &mut RunOptions| o.publish = vec![(port, 8080)];
    serve_and_check(arch, addr, configure, || {
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
    });
}

/// The card's MAC address under QEMU (its default for the first NIC).
const GUEST_MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56];

/// A small deterministic generator (xorshift64), so a failure repeats.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// The Internet checksum of `data`.
fn checksum(data: &[u8]) -> u16 {
    let mut sum = 0u32;
    for pair in data.chunks(2) {
        sum += u32::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)]));
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// An Ethernet frame to the guest of `ethertype` carrying `payload`.
fn frame(rng: &mut Rng, ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = GUEST_MAC.to_vec();
    f.extend_from_slice(&rng.bytes(6));
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An IPv4 header (10.0.2.2 → 10.0.2.15) with a correct checksum unless
/// told otherwise, then `rest`.
fn ipv4(protocol: u8, rest: &[u8], total_len: u16, good_checksum: bool) -> Vec<u8> {
    let mut h = vec![
        0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, protocol, 0, 0, 10, 0, 2, 2, 10, 0, 2, 15,
    ];
    h[2..4].copy_from_slice(&total_len.to_be_bytes());
    let c = checksum(&h);
    h[10..12].copy_from_slice(&(if good_checksum { c } else { c ^ 0x5a5a }).to_be_bytes());
    h.extend_from_slice(rest);
    h
}

/// Hostile frames of every kind the card may see: random bytes of any
/// length (runts to jumbo), IPv4 with lying lengths, bad checksums and
/// options, TCP to the server's port with broken headers and checksums,
/// ARP and IPv6 garbage, VLAN tags.
fn hostile_frames(rng: &mut Rng) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    // (Not 0 bytes: QEMU's dgram backend takes an empty datagram for the
    // end of the connection and stops reading the tap.)
    for len in [
        1, 13, 14, 15, 59, 60, 1513, 1514, 1515, 1600, 4000, 9000, 60000,
    ] {
        out.push(rng.bytes(len));
    }
    for _ in 0..1500 {
        let len = 1 + (rng.next() % 1600) as usize;
        let kind = rng.next() % 8;
        let payload = rng.bytes(len);
        let f = match kind {
            0 => rng.bytes(len),
            1 => frame(rng, 0x0800, &payload),
            2 => {
                let claimed = (rng.next() % 0x10000) as u16;
                let good = rng.next().is_multiple_of(2);
                frame(rng, 0x0800, &ipv4(6, &payload, claimed, good))
            }
            3 => {
                // TCP to port 8080: data offset and flags at random,
                // checksum wrong
                let mut tcp = vec![0u8; 20];
                tcp[0..2].copy_from_slice(&((rng.next() % 65535) as u16).to_be_bytes());
                tcp[2..4].copy_from_slice(&8080u16.to_be_bytes());
                tcp[12] = ((rng.next() % 16) as u8) << 4;
                tcp[13] = rng.next() as u8;
                tcp.extend_from_slice(&payload[..payload.len().min(64)]);
                let total = (20 + tcp.len()) as u16;
                frame(rng, 0x0800, &ipv4(6, &tcp, total, true))
            }
            4 => frame(rng, 0x0806, &payload),
            5 => frame(rng, 0x86dd, &payload),
            6 => {
                let mut tagged = vec![0, 1, 0x08, 0x00];
                tagged.extend_from_slice(&payload);
                frame(rng, 0x8100, &tagged)
            }
            _ => {
                // IPv4 with a header length beyond the packet
                let mut ip = ipv4(17, &payload, (20 + payload.len()) as u16, true);
                ip[0] = 0x4f;
                frame(rng, 0x0800, &ip)
            }
        };
        out.push(f);
    }
    out
}

/// An ARP request from 10.0.2.77 (a made-up host on the tap) for the
/// guest's 10.0.2.15.
fn arp_request() -> Vec<u8> {
    let mac = [0x02, 0, 0, 0, 0, 0x77];
    let mut f = vec![0xff; 6];
    f.extend_from_slice(&mac);
    f.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
    f.extend_from_slice(&mac);
    f.extend_from_slice(&[10, 0, 2, 77]);
    f.extend_from_slice(&[0; 6]);
    f.extend_from_slice(&[10, 0, 2, 15]);
    f
}

/// Asks the guest's card for 10.0.2.15's MAC through the tap and waits
/// for the ARP reply on the sink: proof that injected frames reach the
/// card and its stack still answers at the frame level.
fn arp_round_trip(udp: &std::net::UdpSocket, inject: u16) -> Result<(), String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let mut buf = [0u8; 2048];
    while std::time::Instant::now() < deadline {
        udp.send_to(&arp_request(), ("127.0.0.1", inject))
            .map_err(|e| e.to_string())?;
        let until = std::time::Instant::now() + Duration::from_secs(1);
        while std::time::Instant::now() < until {
            match udp.recv_from(&mut buf) {
                Ok((n, _)) => {
                    let f = &buf[..n];
                    let is_reply = n >= 42
                        && f[12..14] == [0x08, 0x06]
                        && f[20..22] == [0, 2]
                        && f[28..32] == [10, 0, 2, 15]
                        && f[38..42] == [10, 0, 2, 77];
                    if is_reply {
                        return Ok(());
                    }
                }
                Err(_) => break,
            }
        }
    }
    Err("no ARP reply from the guest through the tap".into())
}

fn a_flood_of_malformed_frames_leaves_the_server_up(arch: GuestArch) {
    let sink = std::net::UdpSocket::bind("127.0.0.1:0").expect("a sink socket");
    sink.set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let sink_port = sink.local_addr().expect("sink address").port();
    let ((port, addr), inject) = (forwarded(), free_port());
    let configure = |o: &mut RunOptions| {
        o.publish = vec![(port, 8080)];
        o.network = Some(UserNetwork {
            forwards: Vec::new(),
            tap: Some(FrameTap {
                inject_port: inject,
                sink_port,
            }),
            forward_listeners: false,
            forward_host: None,
        });
    };
    let (sent, out) = serve_and_check(arch, addr, configure, || {
        arp_round_trip(&sink, inject).map_err(|e| format!("before the flood: {e}"))?;
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut sent = 0;
        for round in 0..3 {
            for f in hostile_frames(&mut rng) {
                // QEMU's dgram backend drops what its queue cannot take;
                // a refused datagram is not a test failure.
                if sink.send_to(&f, ("127.0.0.1", inject)).is_ok() {
                    sent += 1;
                }
            }
            // Serving goes on between and after the rounds.
            let body = format!("round {round}");
            let e = http::echo(addr, body.as_bytes())
                .map_err(|e| format!("after round {round}: {e}"))?;
            if e.status != 200 || e.body != body.as_bytes() {
                return Err(format!("after round {round}: {e:?}"));
            }
        }
        arp_round_trip(&sink, inject).map_err(|e| format!("after the flood: {e}"))?;
        Ok(sent)
    });
    let dropped = out
        .report
        .log_text()
        .lines()
        .filter(|l| l.contains("frame dropped"))
        .count();
    eprintln!(
        "{}: {sent} hostile frames injected, server up; the kernel logged {dropped} drops by the driver",
        arch.name()
    );
}

/// A host tap interface for one test, removed when dropped.
struct Tap(String);

impl Tap {
    /// Makes tap `name` with the host at `host_cidr`, up; `None` without
    /// the rights (`CAP_NET_ADMIN`).
    fn make(name: &str, host_cidr: &str) -> Option<Tap> {
        let ip = |args: &[&str]| {
            std::process::Command::new("ip")
                .args(args)
                .status()
                .is_ok_and(|s| s.success())
        };
        let _ = ip(&["link", "del", name]);
        if !ip(&["tuntap", "add", "dev", name, "mode", "tap"]) {
            return None;
        }
        let tap = Tap(name.to_string());
        (ip(&["addr", "add", host_cidr, "dev", name]) && ip(&["link", "set", name, "up"]))
            .then_some(tap)
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["link", "del", &self.0])
            .status();
    }
}

fn the_http_server_answers_on_a_host_tap(arch: GuestArch) {
    // One subnet per ISA: the two tests may run at once.
    let (name, subnet) = match arch {
        GuestArch::X86_64 => ("bstap-x86", 78),
        GuestArch::Aarch64 => ("bstap-arm", 79),
    };
    let Some(_tap) = Tap::make(name, &format!("192.168.{subnet}.1/24")) else {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI must be able to make a tap interface (ip tuntap add needs CAP_NET_ADMIN)"
        );
        eprintln!("skipped: no rights to make a tap interface here");
        return;
    };
    let guest = format!("192.168.{subnet}.2");
    let addr: SocketAddr = format!("{guest}:8080").parse().expect("address");
    let configure =
        |o: &mut RunOptions| o.net_tap = Some((name.to_string(), format!("{guest}/24")));
    let ((), out) = serve_and_check(arch, addr, configure, || {
        let e = http::echo(addr, &[7u8; 100_000]).map_err(|e| e.to_string())?;
        if (e.status, e.body.len()) != (200, 100_000) {
            return Err(format!(
                "POST /echo answered {} with {} bytes",
                e.status,
                e.body.len()
            ));
        }
        Ok(())
    });
    assert!(
        out.report
            .log_text()
            .contains(&format!("net: static address {guest}/24")),
        "{}",
        out.describe()
    );
}

/// GCP's N1/N2/E2 shape: `q35` booted by OVMF from the disk image, its
/// virtio-net-pci card taken over from the firmware, the server reached
/// through `-p` as with `-kernel`.
#[test]
fn x86_64_the_http_server_answers_from_a_uefi_disk_image() {
    let (port, addr) = forwarded();
    let configure = |o: &mut RunOptions| {
        o.publish = vec![(port, 8080)];
        o.firmware = Some(basalt::vm::FirmwareBoot::UefiDisk);
    };
    let (_, out) = serve_and_check(GuestArch::X86_64, addr, configure, || {
        let e = http::echo(addr, b"from firmware").map_err(|e| e.to_string())?;
        if (e.status, &e.body[..]) != (200, &b"from firmware"[..]) {
            return Err(format!("POST /echo answered {e:?}"));
        }
        Ok(())
    });
    assert!(
        out.report.log_text().contains("booting via UEFI"),
        "{}",
        out.describe()
    );
}

/// A TCP segment to the server's port 8080 from `src`:`port` (no
/// payload), in an Ethernet frame from `mac`.
fn segment(mac: [u8; 6], src: [u8; 4], port: u16, seq: u32, ack: u32, flags: u8) -> Vec<u8> {
    let dst = [10u8, 0, 2, 15];
    let mut tcp = vec![0u8; 20];
    tcp[0..2].copy_from_slice(&port.to_be_bytes());
    tcp[2..4].copy_from_slice(&8080u16.to_be_bytes());
    tcp[4..8].copy_from_slice(&seq.to_be_bytes());
    tcp[8..12].copy_from_slice(&ack.to_be_bytes());
    tcp[12] = 5 << 4;
    tcp[13] = flags;
    tcp[14..16].copy_from_slice(&0xffffu16.to_be_bytes());
    let mut pseudo = Vec::new();
    pseudo.extend_from_slice(&src);
    pseudo.extend_from_slice(&dst);
    pseudo.extend_from_slice(&[0, 6, 0, 20]);
    pseudo.extend_from_slice(&tcp);
    let c = checksum(&pseudo);
    tcp[16..18].copy_from_slice(&c.to_be_bytes());
    let mut ip = vec![0x45, 0, 0, 40, 0, 1, 0x40, 0, 64, 6, 0, 0];
    ip.extend_from_slice(&src);
    ip.extend_from_slice(&dst);
    let c = checksum(&ip);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    ip.extend_from_slice(&tcp);
    let mut f = GUEST_MAC.to_vec();
    f.extend_from_slice(&mac);
    f.extend_from_slice(&[0x08, 0x00]);
    f.extend_from_slice(&ip);
    f
}

/// A TCP SYN to the server's port 8080 from `port` of 10.0.2.77, a host
/// that never answers the guest's ARP request, so every handshake stays
/// half-open.
fn syn_from(rng: &mut Rng, port: u16) -> Vec<u8> {
    let mac = [0x02, 0, 0, 0x77, rng.next() as u8, rng.next() as u8];
    segment(mac, [10, 0, 2, 77], port, rng.next() as u32, 0, 0x02)
}

/// 10.0.2.78, a host on the tap that answers: it makes idle connections.
const IDLE_HOST: [u8; 4] = [10, 0, 2, 78];
const IDLE_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x78];

/// Opens `count` connections from 10.0.2.78 (ports 20000…) by hand over
/// the tap: tells the guest 10.0.2.78's address (an ARP request), sends
/// each SYN, answers each SYN-ACK seen on the sink with its ACK. Returns
/// how many were established. They then stay idle.
fn open_idle_connections(sink: &std::net::UdpSocket, inject: u16, count: u16) -> usize {
    let send = |f: &[u8]| {
        let _ = sink.send_to(f, ("127.0.0.1", inject));
    };
    let mut arp = vec![0xff; 6];
    arp.extend_from_slice(&IDLE_MAC);
    arp.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0, 6, 4, 0, 1]);
    arp.extend_from_slice(&IDLE_MAC);
    arp.extend_from_slice(&IDLE_HOST);
    arp.extend_from_slice(&[0; 6]);
    arp.extend_from_slice(&[10, 0, 2, 15]);
    send(&arp);
    std::thread::sleep(Duration::from_millis(200));
    let isn = |port: u16| 0x1000_0000u32.wrapping_add(u32::from(port) << 8);
    let mut established = std::collections::BTreeSet::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut buf = [0u8; 2048];
    for batch in (0..count).collect::<Vec<_>>().chunks(25) {
        for &i in batch {
            let port = 20_000 + i;
            send(&segment(IDLE_MAC, IDLE_HOST, port, isn(port), 0, 0x02));
        }
        // Answer the SYN-ACKs of this batch.
        let until = std::time::Instant::now() + Duration::from_secs(3);
        while std::time::Instant::now() < until.min(deadline)
            && batch.iter().any(|i| !established.contains(&(20_000 + *i)))
        {
            let Ok((n, _)) = sink.recv_from(&mut buf) else {
                continue;
            };
            let f = &buf[..n];
            let syn_ack = n >= 54
                && f[12..14] == [0x08, 0x00]
                && f[23] == 6
                && f[30..34] == IDLE_HOST
                && f[34..36] == 8080u16.to_be_bytes()
                && f[47] & 0x12 == 0x12;
            if !syn_ack {
                continue;
            }
            let port = u16::from_be_bytes([f[36], f[37]]);
            let theirs = u32::from_be_bytes([f[38], f[39], f[40], f[41]]);
            let ack = u32::from_be_bytes([f[42], f[43], f[44], f[45]]);
            if ack != isn(port).wrapping_add(1) {
                continue;
            }
            send(&segment(
                IDLE_MAC,
                IDLE_HOST,
                port,
                ack,
                theirs.wrapping_add(1),
                0x10,
            ));
            established.insert(port);
        }
    }
    established.len()
}

/// 200 idle connections the server accepted and 5,000 connection
/// requests that never complete (a SYN flood, injected straight into the
/// card) leave the server answering a real client within a second:
/// half-open connections hold at most the listener's backlog and give way
/// to new requests, and idle ones hold sockets the flood cannot take.
#[test]
fn x86_64_a_syn_flood_leaves_the_server_answering() {
    let sink = std::net::UdpSocket::bind("127.0.0.1:0").expect("a sink socket");
    let sink_port = sink.local_addr().expect("sink address").port();
    let ((port, addr), inject) = (forwarded(), free_port());
    let configure = |o: &mut RunOptions| {
        o.publish = vec![(port, 8080)];
        o.network = Some(UserNetwork {
            forwards: Vec::new(),
            tap: Some(FrameTap {
                inject_port: inject,
                sink_port,
            }),
            forward_listeners: false,
            forward_host: None,
        });
    };
    let (took, _) = serve_and_check(GuestArch::X86_64, addr, configure, || {
        sink.set_read_timeout(Some(Duration::from_millis(100)))
            .map_err(|e| e.to_string())?;
        let idle = open_idle_connections(&sink, inject, 200);
        if idle < 180 {
            return Err(format!(
                "only {idle} of 200 idle connections were established"
            ));
        }
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        for i in 0..5000u16 {
            let _ = sink.send_to(&syn_from(&mut rng, 10_000 + i), ("127.0.0.1", inject));
            if i % 50 == 49 {
                // let QEMU's queue drain
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        // "After the flood": the card's queue of flood frames drained.
        std::thread::sleep(Duration::from_millis(1500));
        let asked = std::time::Instant::now();
        let hello = http::get(addr, "/").map_err(|e| format!("after the SYN flood: {e}"))?;
        let took = asked.elapsed();
        if hello.status != 200 || took > Duration::from_secs(1) {
            return Err(format!(
                "after the SYN flood GET / answered {} in {took:?}",
                hello.status
            ));
        }
        Ok(took)
    });
    eprintln!("with 200 idle connections, after 5000 SYNs, GET / answered in {took:?}");
}
