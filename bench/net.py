#!/usr/bin/env python3
"""Measures examples/http-server under wrk and writes the "Network" section
of BENCHMARKS.md (the rest of the file is bench/run.py's and is kept).

Every runner serves the same .wasm in the same run, one after another, on
this machine:
  * wasmtime (CLI, `wasmtime run -S preview2=n -S tcplisten=…`), the anchor;
  * basalt --hosted (the same runtime in-process, the host's sockets);
  * basalt in a VM under the accelerator the CLI chooses (TCG here):
    x86-64 q35 (virtio-net on PCI, MSI-X), x86-64 microvm
    (virtio-mmio, interrupt-driven), AArch64 virt (TCG), each reached
    through QEMU's user-mode network (`-p`), then microvm and virt on a
    host tap where this user may make one.

Figures: requests/s and latency percentiles from `wrk -t2 -c32 -d10s
--latency` on `GET /`, and one TCP stream's throughput (`curl` of
`GET /bytes/67108864`). Ratios are against wasmtime.

Needs wrk (Debian: apt-get install wrk) and a wasmtime CLI: $WASMTIME, or
`wasmtime` on PATH, of version WASMTIME_VERSION; else it is installed with
`cargo install wasmtime-cli` into target/bench/tools.

usage: bench/net.py [--seconds N]
"""
import argparse
import datetime
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request

from run import replace_section

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EX = os.path.join(ROOT, "target", "examples")
BASALT = os.path.join(ROOT, "target", "release", "basalt")
WASM = os.path.join(EX, "wasm32-wasip1", "release", "http-server.wasm")
TOOLS = os.path.join(ROOT, "target", "bench", "tools")
# -S tcplisten needs wasmtime's legacy preview1 implementation
# (-S preview2=n), which newer releases (48) removed: 36 is the LTS with it.
WASMTIME_VERSION = "36"  # any 36.x
BIG = 64 * 1024 * 1024  # the example's largest /bytes/N


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw)


def find_wasmtime():
    for cand in [os.environ.get("WASMTIME"), shutil.which("wasmtime"), os.path.join(TOOLS, "bin", "wasmtime")]:
        if cand and os.path.exists(cand) and sh([cand, "--version"]).stdout.split()[1].split(".")[0] == WASMTIME_VERSION:
            return cand
    subprocess.run(["cargo", "install", "wasmtime-cli", "--version", f"~{WASMTIME_VERSION}", "--locked",
                    "--root", TOOLS], check=True)
    return os.path.join(TOOLS, "bin", "wasmtime")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_serving(port, proc, within=240, host="127.0.0.1"):
    start = time.time()
    while time.time() - start < within:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited ({proc.returncode}): {proc.stderr.read()[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://{host}:{port}/", timeout=5) as r:
                r.read()
                return time.time() - start
        except Exception:
            time.sleep(0.2)
    raise RuntimeError("the server never answered")


def wrk(port, seconds, host):
    out = sh(["wrk", "-t2", "-c32", f"-d{seconds}s", "--latency", f"http://{host}:{port}/"]).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def pct(p):
        m = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
        v, unit = float(m.group(1)), m.group(2)
        return v / 1000 if unit == "us" else v * 1000 if unit == "s" else v
    errors = re.search(r"Socket errors: (.*)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {"rps": rps, "p50": pct(50), "p99": pct(99),
            "errors": (errors.group(1) if errors else "none") + (f"; {non2xx.group(1)} non-2xx" if non2xx else "")}


def stream(port, host):
    out = sh(["curl", "-s", "-o", "/dev/null", "-w", "%{speed_download} %{size_download}",
              f"http://{host}:{port}/bytes/{BIG}"]).stdout.split()
    if int(out[1]) != BIG:
        raise RuntimeError(f"short download: {out[1]} bytes")
    return float(out[0]) / 1e6


def measure(name, argv, port, seconds, host="127.0.0.1"):
    # A session of its own, so stopping it stops the QEMU it started too.
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        ready = wait_serving(port, proc, host=host)
        r = wrk(port, seconds, host)
        r["mbps"] = stream(port, host)
        r["ready"] = ready
        return r
    except Exception as e:  # reported, not hidden
        return {"failed": str(e)}
    finally:
        stop(proc)


def stop(proc):
    """Stops a runner started in a session of its own, and the QEMU it
    started: SIGTERM to the group, SIGKILL if it lingers."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    except (subprocess.TimeoutExpired, ProcessLookupError):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=10)
    args = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "basalt"], cwd=ROOT, check=True)
    subprocess.run(["cargo", "build", "--release", "-q", "--target", "wasm32-wasip1", "--target-dir", EX,
                    "-p", "http-server"], cwd=os.path.join(ROOT, "examples"), check=True)
    wasmtime = find_wasmtime()
    wt_version = sh([wasmtime, "--version"]).stdout.strip()
    runs = []
    p = free_port()
    runs.append(("wasmtime (host)", measure("wasmtime", [wasmtime, "run", "-S", "preview2=n", "-S", f"tcplisten=127.0.0.1:{p}", WASM], p,
                                            args.seconds)))
    p = free_port()
    runs.append(("basalt --hosted", measure("hosted", [BASALT, "run", "--hosted", "--tcplisten", f"127.0.0.1:{p}", WASM],
                                            p, args.seconds)))
    accel = "tcg"
    for label, extra in [("basalt VM x86-64 q35 (virtio-net PCI, MSI-X)", ["--machine", "q35"]),
                         ("basalt VM x86-64 microvm (virtio-mmio, interrupts)", ["--machine", "microvm"]),
                         ("basalt VM AArch64 virt (virtio-mmio, interrupts)", ["--arch", "aarch64"])]:
        p = free_port()
        argv = [BASALT, "run", "--accel", accel, *extra, "--tcplisten", "0.0.0.0:8080", "-p", f"{p}:8080", WASM]
        runs.append((label, measure(label, argv, p, args.seconds)))
    # A host tap (real networking, no user-mode network in the way), where
    # this user may make one.
    tap = "bstap-bench"
    subprocess.run(["ip", "link", "del", tap], capture_output=True)
    made = all(subprocess.run(c, capture_output=True).returncode == 0 for c in [
        ["ip", "tuntap", "add", "dev", tap, "mode", "tap"],
        ["ip", "addr", "add", "192.168.80.1/24", "dev", tap],
        ["ip", "link", "set", tap, "up"]])
    if made:
        for label, extra in [("basalt VM x86-64 microvm, host tap", ["--machine", "microvm"]),
                             ("basalt VM AArch64 virt, host tap", ["--arch", "aarch64"])]:
            argv = [BASALT, "run", "--accel", accel, *extra, "--net", f"tap:{tap}:192.168.80.2/24",
                    "--tcplisten", "0.0.0.0:8080", WASM]
            runs.append((label, measure(label, argv, 8080, args.seconds, host="192.168.80.2")))
        subprocess.run(["ip", "link", "del", tap], capture_output=True)
    else:
        runs.append(("basalt VM, host tap", {"failed": "cannot make a tap interface here (needs CAP_NET_ADMIN)"}))

    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    qemu = sh(["qemu-system-x86_64", "--version"]).stdout.splitlines()[0]
    wrk_version = subprocess.run(["wrk", "-v"], capture_output=True, text=True).stdout.splitlines()[0]
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    anchor = runs[0][1]
    L = ["## Network: `examples/http-server` under wrk\n",
         f"Measured by `bench/net.py --seconds {args.seconds}` on {date}: {cpu}, {os.cpu_count()} cores, "
         f"{platform.system()} {platform.release()}; {qemu}; {wt_version}; {wrk_version}. "
         f"VMs under **{accel.upper()}** (KVM is not usable on this machine, see above) with QEMU user-mode "
         "networking and one vCPU; wasmtime and `--hosted` run natively on the host, so the VM rows measure "
         "an emulated CPU against a real one.\n",
         f"`wrk -t2 -c32 -d{args.seconds}s --latency` on `GET /` (keep-alive); stream: one `curl` of "
         "`GET /bytes/67108864`.\n",
         "| runner | requests/s | vs wasmtime | p50 ms | p99 ms | wrk errors | one stream MB/s | vs wasmtime |",
         "|---|---|---|---|---|---|---|---|"]
    for label, r in runs:
        if "failed" in r:
            L.append(f"| {label} | failed: {r['failed'][:200]} | | | | | | |")
            continue
        vs = f"{r['rps'] / anchor['rps']:.3f}×" if "rps" in anchor else ""
        vs_s = f"{r['mbps'] / anchor['mbps']:.3f}×" if "mbps" in anchor else ""
        L.append(f"| {label} | {r['rps']:.0f} | {vs} | {r['p50']:.2f} | {r['p99']:.2f} | {r['errors']} | "
                 f"{r['mbps']:.1f} | {vs_s} |")
    L.append("\nReading it: wasmtime and `--hosted` both run natively on this host; the\n"
             "VM rows run on an emulated CPU (TCG), so their ratio to wasmtime is not a\n"
             "comparison of the two runtimes. Through QEMU's user-mode network, the p99\n"
             "latency and the few wrk timeouts come from connection set-up: QEMU accepts\n"
             "forwarded connections through a listen backlog of one, and a SYN that\n"
             "finds it full is retransmitted a second later. The host-tap rows have no\n"
             "such stall.")
    section = "\n".join(L) + "\n"

    replace_section(("## Network: ",), section)
    print(section)


if __name__ == "__main__":
    sys.exit(main())
