#!/usr/bin/env python3
"""Measures components (WASI 0.2) hosted and writes their section of
BENCHMARKS.md, beside wasmtime (the PyPI package) in the same run.

For each program of wasmtime's own test corpus (../shared/testsuite/wasi-p2):
compile time, instantiation time and the time of the whole run (`run`
export), median of N; and the same program built for wasm32-wasip1 as a
core module, to set wasip2 beside wasip1. Basalt's figures come from
`basalt run --hosted --verbose` (compile, instantiate, run, as it reports
them); wasmtime's from the package's own calls, timed in Python.

usage: bench/components.py [--repeat N]
"""
import argparse
import datetime
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from run import ROOT, ensure_wasmtime, replace_section  # noqa: E402

CORPUS = os.path.join(ROOT, "..", "shared", "testsuite", "wasi-p2")
BASALT = os.path.join(ROOT, "target", "release", "basalt")
PROGRAMS = [
    ("p2_cli_hello_stdout", "p2/p2_cli_hello_stdout.wasm", None),
    ("p1_big_random_buf", "p1-component/p1_big_random_buf.wasm", "p1/p1_big_random_buf.wasm"),
    ("p1_fd_readdir", "p1-component/p1_fd_readdir.wasm", "p1/p1_fd_readdir.wasm"),
]


def basalt_once(wasm, scratch):
    args = [BASALT, "run", "--hosted", "-v", "--dir", f"{scratch}::.", wasm, "."]
    t = time.perf_counter()
    r = subprocess.run(args, capture_output=True, text=True)
    wall = (time.perf_counter() - t) * 1e3
    if r.returncode != 0:
        raise SystemExit(f"basalt failed on {wasm}: {r.stderr}")
    compile_ms = float(re.search(r"in ([0-9.]+) ms", r.stderr).group(1))
    inst = re.search(r"instantiated the component in ([0-9.]+) us", r.stderr)
    ran_ms = float(re.search(r"ran in ([0-9.]+) ms", r.stderr).group(1))
    return compile_ms, float(inst.group(1)) if inst else None, ran_ms, wall


def wasmtime_once(wasm, scratch, component):
    import wasmtime
    import wasmtime.component as wc
    engine = wasmtime.Engine()
    w = wasmtime.WasiConfig()
    w.argv = [os.path.basename(wasm), "."]
    w.preopen_dir(scratch, ".")
    w.stdout_file = os.path.join(scratch, "..", "wt.out")
    store = wasmtime.Store(engine)
    store.set_wasi(w)
    t0 = time.perf_counter()
    if component:
        c = wc.Component.from_file(engine, wasm)
        t1 = time.perf_counter()
        linker = wc.Linker(engine)
        linker.add_wasip2()
        inst = linker.instantiate(store, c)
        t2 = time.perf_counter()
        run = [n for n in ("wasi:cli/run@0.2.0", "wasi:cli/run@0.2.12")]
        idx = None
        for n in run:
            idx = inst.get_export_index(store, n)
            if idx is not None:
                break
        fn = inst.get_func(store, inst.get_export_index(store, "run", idx))
        fn(store)
    else:
        m = wasmtime.Module.from_file(engine, wasm)
        t1 = time.perf_counter()
        linker = wasmtime.Linker(engine)
        linker.define_wasi()
        inst = linker.instantiate(store, m)
        t2 = time.perf_counter()
        try:
            inst.exports(store)["_start"](store)
        except wasmtime.ExitTrap:
            pass
    t3 = time.perf_counter()
    return (t1 - t0) * 1e3, (t2 - t1) * 1e6, (t3 - t1) * 1e3


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def measure(wasm, component, repeat):
    b, w = [], []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as d:
            os.mkdir(os.path.join(d, "s"))
            b.append(basalt_once(wasm, os.path.join(d, "s")))
        with tempfile.TemporaryDirectory() as d:
            os.mkdir(os.path.join(d, "s"))
            w.append(wasmtime_once(wasm, os.path.join(d, "s"), component))
    return [median(c) for c in zip(*b)], [median(c) for c in zip(*w)]


def fmt(x, unit):
    return "—" if x is None else f"{x:.1f} {unit}"


def ratio(a, b):
    return "—" if a is None or b is None or b == 0 else f"{a / b:.2f}×"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    opts = ap.parse_args()
    version = ensure_wasmtime()
    subprocess.run(["cargo", "build", "--release", "-p", "basalt"], cwd=ROOT, check=True)
    rows = []
    for name, comp, core in PROGRAMS:
        for kind, rel, is_comp in (("component (wasip2)", comp, True), ("module (wasip1)", core, False)):
            if rel is None:
                continue
            wasm = os.path.join(CORPUS, rel)
            (bc, bi, br, _), (wcm, wi, wr) = measure(wasm, is_comp, opts.repeat)
            size = os.path.getsize(wasm) // 1024
            rows.append(
                f"| {name} | {kind}, {size} KiB | {fmt(bc, 'ms')} / {fmt(wcm, 'ms')} ({ratio(bc, wcm)}) "
                f"| {fmt(bi, 'µs')} / {fmt(wi, 'µs')} ({ratio(bi, wi)}) "
                f"| {fmt(br, 'ms')} / {fmt(wr, 'ms')} ({ratio(br, wr)}) |"
            )
    today = datetime.date.today().isoformat()
    section = f"""## Components (WASI 0.2), hosted: Basalt / wasmtime, median of {opts.repeat}

Measured {today} on `{platform.node()}` ({platform.machine()}, {os.cpu_count()} CPUs), hosted (no VM,
no accelerator involved), with `bench/components.py --repeat {opts.repeat}`. Basalt: `basalt run --hosted -v`
(release build) reports its compile, instantiation and run times; wasmtime: the PyPI package
{version}, its own calls timed in Python (`Component.from_file`, `Linker.instantiate`, the `run`
export; for modules `Module.from_file`, `instantiate`, `_start`). Instantiation includes setting up
the WASI linker on both sides (Basalt reports it for components only); run time includes instantiation.
Programs are wasmtime's own test programs; the `p1_*` ones as a component (module + wasmtime's
preview1 adapter) and as the wasip1 core module, to set wasip2 beside wasip1.

| program | built as | compile | instantiate | run |
|---|---|---|---|---|
""" + "\n".join(rows) + """

Beside the wasmtime CLI (`wasmtime run`): a trivial component's whole run, a host call with a
1 KiB argument, a TCP echo round trip through `wasi:sockets` and the sightglass programs as
wasip2 components, in "WASI 0.2 beside `wasmtime run`" (`bench/wasi_p2.py`).
"""
    replace_section(["## Components (WASI 0.2)"], section)
    print(section)


if __name__ == "__main__":
    main()
