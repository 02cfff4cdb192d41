#!/usr/bin/env python3
"""Requests/s of examples/http-server in a VM during a SYN flood, against
the same VM without it, and writes the "Network under a SYN flood" section
of BENCHMARKS.md (the rest of the file is kept).

One VM per guest ISA serves `GET /` on a host tap this script makes (and
removes): first `wrk` alone, then `wrk` while a thread of this script
writes SYN frames from made-up sources (192.168.81.100-250, never
answered) straight onto the tap at a fixed rate, then `wrk` alone again.
The flood goes only to the guest on that tap: nothing leaves this machine.
The anchor of each row is the same VM's requests/s without the flood,
measured in the same run.

Needs root (the tap, a raw packet socket) and wrk (Debian: apt-get install
wrk).

usage: bench/synflood.py [--seconds N] [--rate SYNS_PER_SECOND]
"""
import argparse
import datetime
import os
import platform
import random
import socket
import struct
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from net import BASALT, WASM, sh, stop, wait_serving, wrk  # noqa: E402
from run import replace_section  # noqa: E402

TAP = "bstap-flood"
HOST_IP = "192.168.81.1"
GUEST_IP = "192.168.81.2"


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def syn_frame(rng, dst_mac, src_mac):
    """One SYN to GUEST_IP:8080 from a made-up address and port."""
    src = bytes([192, 168, 81, rng.randrange(100, 251)])
    dst = socket.inet_aton(GUEST_IP)
    tcp = bytearray(20)
    struct.pack_into("!HHIIBBH", tcp, 0, rng.randrange(1024, 65536), 8080,
                     rng.getrandbits(32), 0, 5 << 4, 0x02, 0xFFFF)
    pseudo = src + dst + struct.pack("!BBH", 0, 6, len(tcp)) + bytes(tcp)
    struct.pack_into("!H", tcp, 16, checksum(pseudo))
    ip = bytearray(struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), rng.getrandbits(16), 0x4000,
                               64, 6, 0, src, dst))
    struct.pack_into("!H", ip, 10, checksum(bytes(ip)))
    return dst_mac + src_mac + b"\x08\x00" + bytes(ip) + bytes(tcp)


class Flood:
    """Writes `rate` SYN frames a second onto the tap until stopped."""

    def __init__(self, rate, dst_mac):
        self.rate, self.dst_mac, self.sent = rate, dst_mac, 0
        self.stop = threading.Event()
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
        self.sock.bind((TAP, 0))
        src_mac = open(f"/sys/class/net/{TAP}/address").read().strip()
        self.src_mac = bytes.fromhex(src_mac.replace(":", ""))
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        rng = random.Random(0x2545F4914F6CDD1D)
        batch = max(1, self.rate // 100)
        next_at = time.monotonic()
        while not self.stop.is_set():
            for _ in range(batch):
                try:
                    self.sock.send(syn_frame(rng, self.dst_mac, self.src_mac))
                    self.sent += 1
                except OSError:
                    pass
            next_at += batch / self.rate
            delay = next_at - time.monotonic()
            if delay > 0:
                time.sleep(delay)

    def __enter__(self):
        self.started = time.monotonic()
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()
        self.elapsed = time.monotonic() - self.started
        self.sock.close()


def guest_mac():
    out = sh(["ip", "neigh", "show", GUEST_IP, "dev", TAP]).stdout.split()
    if "lladdr" not in out:
        raise RuntimeError(f"no ARP entry for {GUEST_IP} on {TAP}")
    return bytes.fromhex(out[out.index("lladdr") + 1].replace(":", ""))


def measure(label, extra, seconds, rate):
    argv = [BASALT, "run", "--accel", "tcg", *extra, "--net", f"tap:{TAP}:{GUEST_IP}/24",
            "--tcplisten", "0.0.0.0:8080", WASM]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        wait_serving(8080, proc, host=GUEST_IP)
        wrk(8080, 2, GUEST_IP)  # warm-up
        quiet = wrk(8080, seconds, GUEST_IP)
        with Flood(rate, guest_mac()) as flood:
            time.sleep(1)
            flooded = wrk(8080, seconds, GUEST_IP)
        after = wrk(8080, seconds, GUEST_IP)
        return {"quiet": quiet, "flooded": flooded, "after": after,
                "rate": flood.sent / flood.elapsed}
    except Exception as e:  # reported, not hidden
        return {"failed": str(e)}
    finally:
        stop(proc)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--rate", type=int, default=2000)
    a = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "basalt"], cwd=ROOT, check=True)
    subprocess.run(["cargo", "build", "--release", "-q", "--target", "wasm32-wasip1", "--target-dir",
                    os.path.join(ROOT, "target", "examples"), "-p", "http-server"],
                   cwd=os.path.join(ROOT, "examples"), check=True)
    subprocess.run(["ip", "link", "del", TAP], capture_output=True)
    for c in [["ip", "tuntap", "add", "dev", TAP, "mode", "tap"],
              ["ip", "addr", "add", f"{HOST_IP}/24", "dev", TAP],
              ["ip", "link", "set", TAP, "up"]]:
        if subprocess.run(c, capture_output=True).returncode != 0:
            sys.exit(f"cannot make the tap ({' '.join(c)}): this needs root")
    try:
        rows = [("x86-64 microvm (interrupts, ticks)", measure("x86", ["--machine", "microvm"], a.seconds, a.rate)),
                ("x86-64 q35 (MSI-X, ticks)", measure("q35", ["--machine", "q35"], a.seconds, a.rate)),
                ("AArch64 virt (GIC)", measure("arm", ["--arch", "aarch64"], a.seconds, a.rate))]
    finally:
        subprocess.run(["ip", "link", "del", TAP], capture_output=True)
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    qemu = sh(["qemu-system-x86_64", "--version"]).stdout.splitlines()[0]
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    L = ["## Network under a SYN flood: `examples/http-server` in a VM on a host tap\n",
         f"Measured by `bench/synflood.py --seconds {a.seconds} --rate {a.rate}` on {date}: {cpu}, "
         f"{os.cpu_count()} cores, {platform.system()} {platform.release()}; {qemu}; VMs under **TCG**. "
         f"`wrk -t2 -c32 -d{a.seconds}s --latency` on `GET /`: alone (the anchor), then while SYNs from "
         "made-up, never-answering sources are written onto the tap, then alone again.\n",
         "| VM | requests/s alone | during the flood | vs alone | p99 ms alone / flood | "
         "SYNs/s sent | requests/s after | wrk errors during |",
         "|---|---:|---:|---:|---|---:|---:|---|"]
    for label, r in rows:
        if "failed" in r:
            L.append(f"| {label} | failed: {r['failed'][:200]} | | | | | | |")
            continue
        q, f, af = r["quiet"], r["flooded"], r["after"]
        L.append(f"| {label} | {q['rps']:.0f} | {f['rps']:.0f} | {f['rps'] / q['rps']:.3f}× | "
                 f"{q['p99']:.2f} / {f['p99']:.2f} | {r['rate']:.0f} | {af['rps']:.0f} | {f['errors']} |")
    L.append("\nEach SYN makes a half-open connection the listener's backlog (128) must hold or "
             "refuse: a new one evicts the oldest half-open one, and each is dropped after 5 s, so "
             "real clients keep their place. The CPU is emulated and shared by the flood's "
             "frames and the requests: the flood's cost is what remains of the rate. Right after "
             "the flood the last half-open connections still retransmit their SYN-ACKs (and ask ARP "
             "for their made-up peers) until they are dropped, which the 'after' column pays.\n")
    section = "\n".join(L) + "\n"
    replace_section(("## Network under a SYN flood",), section)
    print(section)


if __name__ == "__main__":
    main()
