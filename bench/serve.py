#!/usr/bin/env python3
"""Measures `basalt serve` beside `wasmtime serve` (issue 17) on the same
host in the same run, and writes the "Serving HTTP beside `wasmtime serve`"
section of BENCHMARKS.md (the rest of the file is kept).

The component is wasmtime's own `p2_cli_serve_hello_world` (its test corpus,
`../shared/testsuite/wasi-p2`): every request gets a fresh instance, which
answers 200 `Hello, WASI!`. The client is bench/programs/http-load (built
here for the host): C keep-alive connections, each sending `GET /` one
after another for S seconds; requests/s and p50/p99 latency.

Rows:
  - hosted, on 1 and 2 CPUs: `basalt serve --hosted --cpus N` beside
    `wasmtime serve` with TOKIO_WORKER_THREADS=N (tokio's worker count);
  - in a VM: `basalt serve` on x86-64 q35, 1 vCPU, under TCG on a machine
    without KVM (an emulated CPU: reported, not a comparison of runtimes).
Basalt's instantiation time per request is what `basalt serve -v` reports
when it stops (the mean over every request of the hosted 1-CPU runs).

Needs a wasmtime CLI: $WASMTIME, `wasmtime` on PATH, or .tools/bin/wasmtime
(`cargo install wasmtime-cli --locked --root .tools`).

usage: bench/serve.py [--seconds S] [--repeat N] [--no-vm]
"""
import argparse
import datetime
import json
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import ROOT, replace_section  # noqa: E402
from wasi_p2 import find_wasmtime, sh  # noqa: E402

BASALT = os.path.join(ROOT, "target", "release", "basalt")
PROGRAMS = os.path.join(ROOT, "bench", "programs")
PROGRAMS_TARGET = os.path.join(ROOT, "target", "bench-programs")
LOAD = os.path.join(PROGRAMS_TARGET, "release", "http-load")
CORPUS = os.path.join(ROOT, "..", "shared", "testsuite", "wasi-p2")
HELLO = os.path.join(CORPUS, "p2", "p2_cli_serve_hello_world.wasm")


def build():
    env = dict(os.environ, CARGO_TARGET_DIR=os.path.join(ROOT, "target"))
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "basalt"], cwd=ROOT, check=True, env=env)
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "http-load", "--target-dir", PROGRAMS_TARGET],
                   cwd=PROGRAMS, check=True)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_banner(proc, within):
    """Reads the server's stderr until `Serving HTTP on`; its address."""
    deadline = time.time() + within
    while time.time() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        m = re.search(r"Serving HTTP on http://([0-9.]+:[0-9]+)/", line)
        if m:
            return m.group(1)
    proc.kill()
    raise SystemExit(f"no `Serving HTTP on` from {proc.args}")


def load(addr, conns, seconds):
    out = sh([LOAD, addr, "/", str(conns), str(seconds)]).stdout
    return json.loads(out)


def serve(argv, env=None, within=60):
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, **(env or {})))
    return proc, wait_banner(proc, within)


def measure(argv, conns_list, seconds, repeat, env=None, within=60, shutdown=None):
    """Medians over `repeat` server runs of each connection count; the
    server's stderr after a shutdown (for -v) when `shutdown` is given."""
    res = {c: [] for c in conns_list}
    tails = []
    for _ in range(repeat):
        proc, addr = serve(argv, env, within)
        try:
            load(addr, 1, 0.5)  # warm up
            for c in conns_list:
                res[c].append(load(addr, c, seconds))
        finally:
            if shutdown:
                socket.create_connection(("127.0.0.1", shutdown)).close()
                try:
                    tails.append(proc.communicate(timeout=10)[1])
                except subprocess.TimeoutExpired:
                    proc.kill()
            else:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
    pick = {}
    for c, runs in res.items():
        rps = statistics.median(r["rps"] for r in runs)
        pick[c] = min(runs, key=lambda r: abs(r["rps"] - rps))
        pick[c]["errors"] = sum(r["errors"] for r in runs)
    return pick, tails


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=5)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-vm", action="store_true")
    a = ap.parse_args()
    build()
    wasmtime = find_wasmtime()
    wt_version = sh([wasmtime, "--version"]).stdout.strip()
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    qemu = sh(["qemu-system-x86_64", "--version"]).stdout.splitlines()[0]
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    load_before = open("/proc/loadavg").read().split()[0]
    conns = [1, 4]
    rows = []
    inst_us = []
    for cpus in (1, 2):
        port = free_port()
        b, tails = measure([BASALT, "serve", "--hosted", "--cpus", str(cpus), "-v", "--addr", "127.0.0.1:0",
                            "--shutdown-addr", f"127.0.0.1:{port}", HELLO], conns, a.seconds, a.repeat,
                           shutdown=port)
        for t in tails:
            m = re.search(r"instantiation ([0-9.]+) us", t)
            if m and cpus == 1:
                inst_us.append(float(m.group(1)))
        w, _ = measure([wasmtime, "serve", "-Scli", "--addr", "127.0.0.1:0", HELLO], conns, a.seconds,
                       a.repeat, env={"TOKIO_WORKER_THREADS": str(cpus)})
        rows.append((f"hosted, {cpus} CPU{'s' if cpus > 1 else ''}", b, w))
    vm = None
    if not a.no_vm:
        subprocess.run([BASALT, "run", "--arch", "x86_64", os.path.join(CORPUS, "p2", "p2_cli_hello_stdout.wasm")],
                       capture_output=True)  # builds the kernel if needed
        vm, _ = measure([BASALT, "serve", "--arch", "x86_64", "--addr", "127.0.0.1:0", HELLO], conns,
                        a.seconds, 1, within=300)
    load_after = open("/proc/loadavg").read().split()[0]

    def cell(r):
        return f"{r['rps']:.0f} | {r['p50_us']:.0f} | {r['p99_us']:.0f}"

    cmd = f"bench/serve.py --seconds {a.seconds:g} --repeat {a.repeat}" + (" --no-vm" if a.no_vm else "")
    L = ["## Serving HTTP beside `wasmtime serve`: a fresh instance per request", "",
         f"- date: {now}; machine: {cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}; "
         f"load average {load_before} before, {load_after} after",
         f"- anchor: `wasmtime serve -Scli` ({wt_version}), workers set by TOKIO_WORKER_THREADS; Basalt: "
         "`basalt serve --hosted --cpus N`, release build of this tree",
         f"- accelerator: none hosted (both native on this host); the VM row runs under **TCG** ({qemu}), no "
         "KVM on this machine",
         f"- component: wasmtime's `p2_cli_serve_hello_world` (every request: a fresh instance answers "
         f"`Hello, WASI!`); client: `bench/programs/http-load`, C keep-alive connections sending `GET /` one "
         f"after another for {a.seconds:g} s, on the same host (it shares the CPUs); median of {a.repeat} "
         f"server runs",
         f"- command: `{cmd}`", "",
         "| server | connections | Basalt req/s | p50 µs | p99 µs | wasmtime req/s | p50 µs | p99 µs "
         "| Basalt / wasmtime req/s |",
         "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, b, w in rows:
        for c in conns:
            L.append(f"| {name} | {c} | {cell(b[c])} | {cell(w[c])} | {b[c]['rps'] / w[c]['rps']:.2f}× |")
    if vm:
        for c in conns:
            L.append(f"| VM x86-64 q35, 1 vCPU (TCG) | {c} | {cell(vm[c])} | — | — | — | — |")
    errs = sum(r[c]["errors"] for _, b, w in rows for r in (b, w) for c in conns)
    L += ["", f"Errors (non-200 answers or broken connections) over all runs: {errs}.", ""]
    if inst_us:
        L += [f"Instantiation per request (hosted, what `basalt serve -v` reports as the mean over every "
              f"request): **{statistics.median(inst_us):.1f} µs** (the issue's goal: ≤ 5 µs, which wasmtime's "
              "pooling allocator with copy-on-write memory claims; wasmtime's CLI reports no such figure). "
              "Basalt links the component once (`InstancePre`: imports bound and types evaluated once) but "
              "still makes each core instance's memory with `mmap` and copies its data segments: no "
              "copy-on-write template and no pool yet.", ""]
    L += ["Not measured yet: memory per idle instance and concurrent instances per GiB (a VM answers one "
          "request at a time until the kernel schedules requests side by side), and the VM on 2 and 4 vCPUs "
          "(no SMP yet).", ""]
    replace_section(["## Serving HTTP beside `wasmtime serve`"], "\n".join(L) + "\n")
    print("\n".join(L))


if __name__ == "__main__":
    main()
