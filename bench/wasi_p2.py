#!/usr/bin/env python3
"""Measures what issue 16 (WASI 0.2) asks for, beside `wasmtime run` (the
wasmtime CLI) on the same host in the same run, and writes the "WASI 0.2
beside `wasmtime run`" section of BENCHMARKS.md (the rest of the file is
kept).

Four measurements, each Basalt against the anchor as a ratio:
  1. a trivial component's whole run (`p2_cli_hello_stdout` from wasmtime's
     test corpus): the process's wall time, from the .wasm (compile
     included; wasmtime's cache off) and without compiling (wasmtime from a
     `wasmtime compile`d .cwasm; Basalt's wall time less the compile time
     it reports with `-v`, since `--hosted` always compiles). The
     in-process instantiation figures are bench/components.py's section.
  2. a host call with a 1 KiB argument: bench/programs/hostcall (built for
     wasm32-wasip2) times, inside the program with
     `wasi:clocks/monotonic-clock`, N calls of `wasi:io/streams`
     `output-stream.blocking-write-and-flush` on stdout (sent to
     /dev/null) with a 1 KiB `list<u8>`, N calls of `wasi:filesystem`
     `descriptor.stat-at` with a 1 KiB `string` path (`./` repeated, the
     preopened directory itself), and N calls of `monotonic-clock.now`
     (no argument): nanoseconds per call.
  3. a TCP echo round trip through `wasi:sockets`: examples/tcp-echo
     listens on 127.0.0.1:0 and prints its address; a client here sends
     64-byte messages one at a time on one connection (TCP_NODELAY) and
     times each until its echo is back whole: median and 99th percentile.
  4. the sightglass programs built for wasm32-wasip2 beside their
     wasm32-wasip1 builds. The corpus has prebuilt wasip1 modules only, so
     bench/programs/sightglass-p2 stubs out their `bench.start`/`bench.end`
     imports (sightglass's harness defines them, no WASI host does) and
     makes a component of the result with wasmtime's preview1 command
     adapter (wit-component, as `wasm-tools component new --adapt`). Each
     form runs whole, with its folder preopened as `.`; the time is the
     run without compiling, as in 1.

2 and 3 also run in a Basalt VM (`basalt run`, x86-64 q35), under TCG on
a machine without KVM: an emulated CPU against a real one, reported but
not a comparison of the runtimes.

Needs a wasmtime CLI: $WASMTIME, `wasmtime` on PATH, or .tools/bin/wasmtime
(`cargo install wasmtime-cli --locked --root .tools`; the newest release
that builds with the pinned Rust is fine).

usage: bench/wasi_p2.py [--repeat N] [--calls N] [--vm-calls N] [--pings N] [--no-vm]
                        [--only hello,hostcall,echo,sightglass]

--only measures the parts named and writes a section with those alone (for
trying things out; the committed section has all four).
"""
import argparse
import datetime
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import ROOT, replace_section  # noqa: E402

BASALT = os.path.join(ROOT, "target", "release", "basalt")
WORK = os.path.join(ROOT, "target", "bench", "wasi-p2")
EX = os.path.join(ROOT, "target", "examples")
PROGRAMS = os.path.join(ROOT, "bench", "programs")
PROGRAMS_TARGET = os.path.join(ROOT, "target", "bench-programs")
CORPUS = os.path.join(ROOT, "..", "shared", "testsuite", "wasi-p2")
ADAPTER = os.path.join(CORPUS, "adapters", "wasi_snapshot_preview1.command.wasm")
SIGHTGLASS = os.path.join(ROOT, "..", "shared", "testsuite", "sightglass")
HELLO = os.path.join(CORPUS, "p2", "p2_cli_hello_stdout.wasm")
HOSTCALL = os.path.join(PROGRAMS_TARGET, "wasm32-wasip2", "release", "hostcall.wasm")
TCP_ECHO = os.path.join(EX, "wasm32-wasip2", "release", "tcp-echo.wasm")
SG_TOOL = os.path.join(PROGRAMS_TARGET, "release", "sightglass-p2")
# The programs bench/metering.py runs (those that run under both engines).
SIGHTGLASS_PROGRAMS = ["blake3-scalar", "blind-sig", "bz2", "gcc-loops", "hashset", "intgemm-simd",
                       "meshoptimizer", "noop", "pulldown-cmark", "quicksort", "regex", "richards",
                       "rust-compression", "rust-html-rewriter", "rust-json"]
VM = ["--arch", "x86_64", "--machine", "q35"]
VM_ROW = "basalt VM x86-64 q35 (TCG)"


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw)


def find_wasmtime():
    for cand in [os.environ.get("WASMTIME"), shutil.which("wasmtime"),
                 os.path.join(ROOT, ".tools", "bin", "wasmtime")]:
        if cand and os.path.exists(cand):
            return cand
    raise SystemExit("no wasmtime CLI: set $WASMTIME or "
                     "`cargo install wasmtime-cli --locked --root .tools`")


def build():
    env = dict(os.environ, CARGO_TARGET_DIR=os.path.join(ROOT, "target"))
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "basalt"], cwd=ROOT, check=True, env=env)
    subprocess.run(["cargo", "build", "--release", "-q", "--target", "wasm32-wasip2", "-p", "tcp-echo",
                    "--target-dir", EX], cwd=os.path.join(ROOT, "examples"), check=True)
    subprocess.run(["cargo", "build", "--release", "-q", "--target", "wasm32-wasip2", "-p", "hostcall",
                    "--target-dir", PROGRAMS_TARGET], cwd=PROGRAMS, check=True)
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "sightglass-p2",
                    "--target-dir", PROGRAMS_TARGET], cwd=PROGRAMS, check=True)
    os.makedirs(WORK, exist_ok=True)


def timed(argv, **kw):
    t = time.perf_counter()
    p = subprocess.run(argv, capture_output=True, **kw)
    return (time.perf_counter() - t) * 1e3, p


def basalt_compile_ms(stderr):
    m = re.search(r"in ([0-9.]+) ms", stderr)
    return float(m.group(1)) if m else 0.0


def wasmtime_precompile(wasmtime, wasm, name):
    cwasm = os.path.join(WORK, name + ".cwasm")
    sh([wasmtime, "compile", wasm, "-o", cwasm])
    return cwasm


def ratio(a, b):
    return "—" if a is None or b is None or b == 0 else f"{a / b:.2f}×"


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


# 1. a trivial component, whole run ------------------------------------------

def hello(wasmtime, repeat):
    """Whole-process wall times (ms) of p2_cli_hello_stdout."""
    cwasm = wasmtime_precompile(wasmtime, HELLO, "hello")
    rows = {k: [] for k in ("b_wasm", "b_run", "w_wasm", "w_cwasm")}
    for _ in range(repeat):
        ms, p = timed([BASALT, "run", "--hosted", "-v", HELLO], text=True)
        assert p.returncode == 0 and "hello" in p.stdout.lower(), p.stderr
        rows["b_wasm"].append(ms)
        rows["b_run"].append(ms - basalt_compile_ms(p.stderr))
        ms, p = timed([wasmtime, "run", "-C", "cache=n", HELLO], text=True)
        assert p.returncode == 0, p.stderr
        rows["w_wasm"].append(ms)
        ms, p = timed([wasmtime, "run", "--allow-precompiled", cwasm], text=True)
        assert p.returncode == 0, p.stderr
        rows["w_cwasm"].append(ms)
    return {k: med(v) for k, v in rows.items()}


# 2. a host call with a 1 KiB argument ---------------------------------------

def hostcall_once(argv):
    p = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if p.returncode != 0:
        raise RuntimeError(f"{argv}: exit {p.returncode}: {p.stderr[-2000:]}")
    line = [l for l in p.stderr.splitlines() if l.startswith("{\"write_ns\"")][-1]
    return json.loads(line)


def hostcall(wasmtime, repeat, calls, vm_calls, vm):
    """ns per call of each kind, median of `repeat` runs, per runner."""
    d = os.path.join(WORK, "hostcall-dir")
    os.makedirs(d, exist_ok=True)
    share = ["--dir", f"{d}::."]
    runners = [("wasmtime run", [wasmtime, "run", *share, HOSTCALL, str(calls)]),
               ("basalt --hosted", [BASALT, "run", "--hosted", *share, HOSTCALL, str(calls)])]
    if vm:
        runners.append((VM_ROW, [BASALT, "run", *VM, *share, HOSTCALL, str(vm_calls)]))
    res = {}
    for _ in range(repeat):
        for name, argv in runners:
            res.setdefault(name, []).append(hostcall_once(argv))
    return {name: ({k: med([r[k] for r in rs]) for k in ("write_ns", "stat_ns", "now_ns")}, rs[0]["calls"])
            for name, rs in res.items()}


# 3. a TCP echo round trip ---------------------------------------------------

def stop(proc):
    """Stops a runner started in a session of its own, and any QEMU it
    started: SIGTERM to the group, SIGKILL if it lingers."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    except (subprocess.TimeoutExpired, ProcessLookupError):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def echo_once(argv, pings, size=64, warmup=50, within=300):
    """Round-trip times (µs) of `pings` messages of `size` bytes."""
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        start = time.time()
        addr = None
        while time.time() - start < within:
            line = proc.stdout.readline()
            if not line:
                raise RuntimeError(f"exited ({proc.wait()}): {proc.stderr.read()[-2000:]}")
            m = re.match(r"listening on (\S+):(\d+)", line)
            if m:
                addr = (m.group(1), int(m.group(2)))
                break
        if addr is None:
            raise RuntimeError("never said where it listens")
        with socket.create_connection(addr, timeout=30) as s:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            msg = bytes((i * 7 + 13) % 251 for i in range(size))
            times = []
            for i in range(warmup + pings):
                t = time.perf_counter_ns()
                s.sendall(msg)
                got = b""
                while len(got) < size:
                    chunk = s.recv(size - len(got))
                    if not chunk:
                        raise RuntimeError("the server closed the connection")
                    got += chunk
                dt = time.perf_counter_ns() - t
                if got != msg:
                    raise RuntimeError("the echo differs")
                if i >= warmup:
                    times.append(dt / 1e3)
        with socket.create_connection(addr, timeout=30) as s:
            s.sendall(b"quit\n")
        proc.wait(timeout=60)
        return times
    finally:
        if proc.poll() is None:
            stop(proc)


def echo(wasmtime, repeat, pings, vm):
    runners = [("wasmtime run", [wasmtime, "run", "-S", "inherit-network", TCP_ECHO]),
               ("basalt --hosted", [BASALT, "run", "--hosted", "-S", "inherit-network", TCP_ECHO])]
    if vm:
        runners.append((VM_ROW, [BASALT, "run", *VM, "-S", "inherit-network", TCP_ECHO]))
    res = {}
    for _ in range(repeat):
        for name, argv in runners:
            res.setdefault(name, []).extend(echo_once(argv, pings))
    out = {}
    for name, ts in res.items():
        ts.sort()
        out[name] = (statistics.median(ts), ts[min(len(ts) - 1, int(len(ts) * 0.99))], len(ts))
    return out


# 4. sightglass, wasip2 beside wasip1 ----------------------------------------

def sightglass(wasmtime, repeat):
    rows = []
    for prog in SIGHTGLASS_PROGRAMS:
        d = os.path.join(SIGHTGLASS, prog)
        src = os.path.join(d, "benchmark.wasm")
        if not os.path.exists(src):
            continue
        p1 = os.path.join(WORK, f"sg-{prog}.p1.wasm")
        p2 = os.path.join(WORK, f"sg-{prog}.p2.wasm")
        sh([SG_TOOL, src, ADAPTER, p1, p2])
        cw = {k: wasmtime_precompile(wasmtime, w, f"sg-{prog}.{k}") for k, w in (("p1", p1), ("p2", p2))}
        expected = open(os.path.join(d, "benchmark.stdout.expected"), "rb").read() \
            if os.path.exists(os.path.join(d, "benchmark.stdout.expected")) else None
        t = {k: [] for k in ("b1", "b2", "w1", "w2")}
        same = True
        for _ in range(repeat):
            for key, wasm in (("b1", p1), ("b2", p2)):
                ms, p = timed([BASALT, "run", "--hosted", "-v", "--dir", f"{d}::.", wasm], cwd=d)
                if p.returncode != 0:
                    raise RuntimeError(f"basalt {prog} {key}: {p.stderr.decode()[-2000:]}")
                t[key].append(ms - basalt_compile_ms(p.stderr.decode()))
                same &= expected is None or p.stdout == expected
            for key, k in (("w1", "p1"), ("w2", "p2")):
                ms, p = timed([wasmtime, "run", "--allow-precompiled", "--dir", f"{d}::.", cw[k]], cwd=d)
                if p.returncode != 0:
                    raise RuntimeError(f"wasmtime {prog} {key}: {p.stderr.decode()[-2000:]}")
                t[key].append(ms)
                same &= expected is None or p.stdout == expected
        m = {k: med(v) for k, v in t.items()}
        rows.append((prog, os.path.getsize(p1) // 1024, os.path.getsize(p2) // 1024, m, same))
        print(f"{prog}: " + ", ".join(f"{k} {v:.1f}" for k, v in m.items()), file=sys.stderr)
    return rows


def geomean(xs):
    return statistics.geometric_mean(xs) if xs else float("nan")


# the section ----------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--calls", type=int, default=100_000, help="host calls per hosted run")
    ap.add_argument("--vm-calls", type=int, default=2_000, help="host calls per VM run")
    ap.add_argument("--pings", type=int, default=1000, help="round trips per run")
    ap.add_argument("--no-vm", action="store_true")
    ap.add_argument("--only", default="hello,hostcall,echo,sightglass")
    a = ap.parse_args()
    only = set(a.only.split(","))
    build()
    wasmtime = find_wasmtime()
    wt_version = sh([wasmtime, "--version"]).stdout.strip()
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    qemu = sh(["qemu-system-x86_64", "--version"]).stdout.splitlines()[0]
    rustc = sh(["rustc", "--version"], cwd=ROOT).stdout.strip()
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    load_before = open("/proc/loadavg").read().split()[0]
    vm = not a.no_vm
    if vm:
        # One unmeasured run: it builds the kernel if needed.
        subprocess.run([BASALT, "run", *VM, HELLO], capture_output=True)

    cmd = f"bench/wasi_p2.py --repeat {a.repeat} --calls {a.calls} --vm-calls {a.vm_calls} --pings {a.pings}" \
          + (" --no-vm" if a.no_vm else "")
    L = [f"## WASI 0.2 beside `wasmtime run`: instantiation, host calls, sockets, sightglass as wasip2, "
         f"median of {a.repeat}", "",
         f"- date: {now}; machine: {cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}",
         f"- anchor: {wt_version} (the CLI, `cargo install wasmtime-cli --locked`: the newest release that "
         f"builds with {rustc.split(' (')[0]}); Basalt: release build of this tree",
         f"- accelerator: none for wasmtime and `basalt run --hosted` (both native on this host); the VM rows "
         f"(`basalt run --arch x86_64 --machine q35`) run under **TCG** ({qemu}), no KVM on this machine: "
         "an emulated CPU against a real one, not a comparison of the runtimes",
         f"- command: `{cmd}`", ""]

    if "hello" in only:
        h = hello(wasmtime, a.repeat)
        L += ["### A trivial component, whole run: `p2_cli_hello_stdout` (wasmtime's test corpus, 82 KiB)", "",
              "| | Basalt `run --hosted` ms | `wasmtime run` ms | Basalt / wasmtime |",
              "|---|---:|---:|---:|",
              f"| from the .wasm (compile included; `-C cache=n`) | {h['b_wasm']:.1f} | {h['w_wasm']:.1f} | "
              f"{ratio(h['b_wasm'], h['w_wasm'])} |",
              f"| without compiling (Basalt: wall less the compile time `-v` reports; wasmtime: "
              f"`--allow-precompiled` .cwasm) | {h['b_run']:.1f} | {h['w_cwasm']:.1f} | "
              f"{ratio(h['b_run'], h['w_cwasm'])} |", "",
              "Each is the process's wall time, start to exit, as a user sees it; the CLI cannot report "
              "instantiation alone. Instantiation in-process, next to wasmtime's Python API, is in "
              "\"Components (WASI 0.2), hosted\" (`bench/components.py`).", ""]

    if "hostcall" in only:
        r = hostcall(wasmtime, a.repeat, a.calls, a.vm_calls, vm)
        anchor = r["wasmtime run"][0]
        L += ["### A host call with a 1 KiB argument: `bench/programs/hostcall`", "",
              "| runner | calls per run | `blocking-write-and-flush`, 1 KiB `list<u8>`, ns/call | vs wasmtime "
              "| `stat-at`, 1 KiB `string` path, ns/call | vs wasmtime "
              "| `monotonic-clock.now`, no argument, ns/call | vs wasmtime |",
              "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for name, (m, calls) in r.items():
            L.append(f"| {name} | {calls} | " + " | ".join(
                f"{m[k]:.0f} | {ratio(m[k], anchor[k])}" for k in ("write_ns", "stat_ns", "now_ns")) + " |")
        L += ["", "The program (built for wasm32-wasip2, imports declared by hand so only the call is in the "
              "loop) makes each call N times and times each loop with the monotonic clock: a 1 KiB "
              "`list<u8>` written to stdout through `wasi:io/streams` `output-stream.blocking-write-and-flush` "
              "(the Canonical ABI copies the list out of linear memory; the host writes it to stdout, here "
              "`/dev/null`: one `write` system call on the host per call); `wasi:filesystem/types` "
              "`descriptor.stat-at` on the preopened directory (`--dir`, an empty one) with a 1 KiB `string` "
              "path, `./` 512 times, which names the directory itself (the string is lifted and checked "
              "as UTF-8, then the host resolves the path and stats the directory: system calls differ, "
              "wasmtime makes `openat2`, `statx` and `close`, Basalt `fstat`s the directory it holds); and "
              "`monotonic-clock.now` (no argument: the cost of crossing into the host). "
              "In the VM, stdout is the console channel to `basalt` on the host and the directory is "
              "the VM's own copy, under TCG"
              + (f": a 1 KiB write there measures the console's throughput "
                 f"({1024 / r[VM_ROW][0]['write_ns'] * 1e6:.0f} KB/s) more than the call." if VM_ROW in r else "."),
              ""]

    if "echo" in only:
        r = echo(wasmtime, a.repeat, a.pings, vm)
        am = r["wasmtime run"][0]
        L += ["### A TCP echo round trip through `wasi:sockets`: `examples/tcp-echo`", "",
              "| runner | round trips | median µs | vs wasmtime | p99 µs |",
              "|---|---:|---:|---:|---:|"]
        for name, (m, p99, n) in r.items():
            L.append(f"| {name} | {n} | {m:.1f} | {ratio(m, am)} | {p99:.1f} |")
        L += ["", f"The program (wasm32-wasip2, `std::net` over `wasi:sockets`) listens on `127.0.0.1:0` with "
              f"`-S inherit-network` and prints its address; a Python client on the host connects there "
              f"(TCP_NODELAY), sends {a.pings} + 50 (unmeasured) 64-byte messages one at a time and "
              f"times each until its echo is back whole, per run; the table pools the round trips of all "
              f"runs. In the VM the address is forwarded from the host's loopback into the guest by QEMU's "
              "user-mode network (`hostfwd`), so each round trip also crosses QEMU's slirp and the "
              "emulated virtio-net card.", ""]

    if "sightglass" in only:
        rows = sightglass(wasmtime, a.repeat)
        L += ["### Sightglass programs as wasm32-wasip2 components beside their wasm32-wasip1 builds", "",
              "| program | p1 / p2 KiB | Basalt p1 ms | Basalt p2 ms | p2 / p1 | wasmtime p1 ms "
              "| wasmtime p2 ms | p2 / p1 | Basalt / wasmtime p1 | Basalt / wasmtime p2 | output as expected |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
        g = {k: [] for k in ("b", "w", "x1", "x2")}
        for prog, k1, k2, m, same in rows:
            g["b"].append(m["b2"] / m["b1"])
            g["w"].append(m["w2"] / m["w1"])
            g["x1"].append(m["b1"] / m["w1"])
            g["x2"].append(m["b2"] / m["w2"])
            L.append(f"| {prog} | {k1} / {k2} | {m['b1']:.1f} | {m['b2']:.1f} | {ratio(m['b2'], m['b1'])} "
                     f"| {m['w1']:.1f} | {m['w2']:.1f} | {ratio(m['w2'], m['w1'])} "
                     f"| {ratio(m['b1'], m['w1'])} | {ratio(m['b2'], m['w2'])} | {'yes' if same else 'NO'} |")
        L.append(f"| **geometric mean** | | | | **{geomean(g['b']):.2f}×** | | | **{geomean(g['w']):.2f}×** "
                 f"| **{geomean(g['x1']):.2f}×** | **{geomean(g['x2']):.2f}×** | |")
        L += ["", "The sightglass corpus (`../shared/testsuite/sightglass`) holds prebuilt wasm32-wasip1 modules "
              "and no sources, so the wasip2 form is not a rebuild: `bench/programs/sightglass-p2` replaces "
              "each module's `bench.start`/`bench.end` imports (sightglass's harness defines them, no WASI "
              "host does) with empty functions — that module is the p1 column — and makes it a component "
              "with wasmtime's preview1 command adapter "
              "(`../shared/testsuite/wasi-p2/adapters/wasi_snapshot_preview1.command.wasm`, through "
              "`wit-component` 0.254, which is what `wasm-tools component new --adapt` runs) — the p2 "
              "column. The program's code is the same in both; only its way to WASI differs (preview1 "
              "calls turned into WASI 0.2 calls by the adapter's code). Each run is the whole program "
              "with its folder preopened as `.`, without compiling: wasmtime runs a `wasmtime compile`d "
              ".cwasm (process wall time); Basalt `run --hosted -v` (process wall time less the compile "
              "time it reports). So the times include process start, instantiation and the program's "
              "setup as well as the part sightglass measures; `noop` shows that floor. 'Output as "
              "expected' compares each run's stdout with the corpus's `benchmark.stdout.expected`.", ""]

    load_after = open("/proc/loadavg").read().split()[0]
    L.insert(5, f"- load average (1 min) at the start and the end: {load_before}, {load_after} — the machine is "
             "shared, the runners are interleaved in every round so they share its load; figures in "
             "microseconds move with it")
    section = "\n".join(L).rstrip("\n") + "\n"
    replace_section(["## WASI 0.2 beside `wasmtime run`"], section)
    print(section)


if __name__ == "__main__":
    main()
