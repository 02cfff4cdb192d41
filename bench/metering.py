#!/usr/bin/env python3
"""What interrupt checks and fuel metering cost, beside wasmtime's own.

Runs `cpu-heavy` (the example: n-body, a sieve and a hash chain, all tight
loops) hosted, interleaved, in six forms: Basalt plain, with interrupt
checks (`--timeout`, a deadline never reached) and with `--fuel`; wasmtime
(PyPI) plain, with epoch interruption and with fuel. Each engine's cost is
its own instrumented run time over its own plain one, compile excluded.
Writes the "Interruption checks and fuel" section of BENCHMARKS.md.

Then the same three forms per engine on the sightglass programs (the
span between their `bench.start` and `bench.end` calls; Basalt through
`tests/examples/sightglass.rs`, wasmtime through `wasmtime_run.py
--sightglass`), with the geometric mean of each cost: the
"... on the sightglass programs" section.

usage: bench/metering.py [--repeat N] [--scale N] [--sightglass-repeat N] [--no-sightglass]
"""
import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from run import ensure_wasmtime, replace_section  # noqa: E402

BASALT = os.path.join(ROOT, "target", "release", "basalt")
SIGHTGLASS_RUNNER = os.path.join(ROOT, "target", "release", "examples", "sightglass")
SIGHTGLASS = os.path.join(ROOT, "..", "shared", "testsuite", "sightglass")
# The programs that run with what the suite ships (some lack an input file)
# and measure more than a few milliseconds.
SIGHTGLASS_PROGRAMS = ["blake3-scalar", "blind-sig", "bz2", "gcc-loops", "hashset", "intgemm-simd",
                       "meshoptimizer", "pulldown-cmark", "quicksort", "regex", "richards",
                       "rust-compression", "rust-html-rewriter", "rust-json"]
WASM = os.path.join(ROOT, "target", "examples", "wasm32-wasip1", "release", "cpu-heavy.wasm")
FUEL = 10 ** 15


def basalt_ms(extra, scale):
    p = subprocess.run([BASALT, "run", "--hosted", "--verbose", *extra, WASM, str(scale)],
                       capture_output=True, text=True, check=True)
    for line in p.stderr.splitlines():
        if "ran in" in line:
            return float(line.split("ran in")[1].split()[0]), p.stdout
    raise RuntimeError("no run time in: " + p.stderr)


def wasmtime_ms(extra, scale):
    with tempfile.TemporaryDirectory() as d:
        out, err = os.path.join(d, "out"), os.path.join(d, "err")
        p = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "wasmtime_run.py"),
                            *extra, WASM, out, err, str(scale)],
                           capture_output=True, text=True, check=True)
        r = json.loads(p.stdout.strip().splitlines()[-1])
        return r["run_ms"], open(out).read()


FORMS = [
    ("basalt", "plain", lambda s: basalt_ms([], s)),
    ("basalt", "interrupt checks (`--timeout 3600`)", lambda s: basalt_ms(["--timeout", "3600"], s)),
    ("basalt", f"fuel (`--fuel {FUEL}`)", lambda s: basalt_ms(["--fuel", str(FUEL)], s)),
    ("wasmtime", "plain", lambda s: wasmtime_ms([], s)),
    ("wasmtime", "epoch interruption", lambda s: wasmtime_ms(["--epoch"], s)),
    ("wasmtime", "fuel", lambda s: wasmtime_ms(["--fuel", str(FUEL)], s)),
]


def sightglass_ms(engine, extra, program):
    """The measured span of one run of a sightglass program, and its stdout."""
    d = os.path.join(SIGHTGLASS, program)
    with tempfile.TemporaryDirectory() as t:
        out, err = os.path.join(t, "out"), os.path.join(t, "err")
        if engine == "basalt":
            with open(out, "w") as o, open(err, "w") as e:
                subprocess.run([SIGHTGLASS_RUNNER, *extra, d], stdout=o, stderr=e, check=True)
            r = json.loads(open(err).read().strip().splitlines()[-1])
        else:
            p = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "wasmtime_run.py"),
                                *extra, "--sightglass", d, out, err],
                               capture_output=True, text=True, check=True)
            r = json.loads(p.stdout.strip().splitlines()[-1])
        return r["bench_ms"], open(out).read()


SIGHTGLASS_FORMS = [
    ("basalt", "plain", []),
    ("basalt", "checks", ["--checks"]),
    ("basalt", "fuel", ["--fuel", str(FUEL)]),
    ("wasmtime", "plain", []),
    ("wasmtime", "epoch", ["--epoch"]),
    ("wasmtime", "fuel", ["--fuel", str(FUEL)]),
]


def geomean(xs):
    return statistics.geometric_mean(xs) if xs else float("nan")


def sightglass_section(repeat, version):
    """Runs every form of every program `repeat` times, interleaved."""
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "basalt-tests", "--example", "sightglass"],
                   cwd=ROOT, check=True)
    rows = []
    for program in SIGHTGLASS_PROGRAMS:
        if not os.path.exists(os.path.join(SIGHTGLASS, program, "benchmark.wasm")):
            continue
        times = {i: [] for i in range(len(SIGHTGLASS_FORMS))}
        outputs = set()
        for _ in range(repeat):
            for i, (engine, _, extra) in enumerate(SIGHTGLASS_FORMS):
                ms, out = sightglass_ms(engine, extra, program)
                times[i].append(ms)
                outputs.add(out)
        med = [statistics.median(times[i]) for i in range(len(SIGHTGLASS_FORMS))]
        rows.append((program, med, len(outputs) == 1))
        print(f"{program}: " + ", ".join(f"{m:.1f}" for m in med), file=sys.stderr)
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    L = [f"## Interruption checks and fuel on the sightglass programs (hosted), median of {repeat}", ""]
    L.append(f"- date: {now}; machine: {cpu_name()}, {os.cpu_count()} cores, "
             f"Linux {platform.release()}; accelerator: none (hosted); wasmtime (PyPI) {version}")
    L.append(f"- command: `bench/metering.py --sightglass-repeat {repeat}` (per program, the six "
             "forms interleaved in every round; the time is the span between the program's "
             "`bench.start` and `bench.end` calls)")
    L.append("")
    L.append("| program | Basalt plain (ms) | checks | fuel | wasmtime plain (ms) | epoch | fuel | same output |")
    L.append("|---|---:|---:|---:|---:|---:|---:|---|")
    cost = {i: [] for i in (1, 2, 4, 5)}
    for program, med, same in rows:
        for i in cost:
            cost[i].append(med[i] / med[0 if i < 3 else 3])
        L.append(f"| {program} | {med[0]:.1f} | {med[1] / med[0]:.3f}× | {med[2] / med[0]:.3f}× | "
                 f"{med[3]:.1f} | {med[4] / med[3]:.3f}× | {med[5] / med[3]:.3f}× | "
                 f"{'yes' if same else 'NO'} |")
    L.append(f"| **geometric mean** | | **{geomean(cost[1]):.3f}×** | **{geomean(cost[2]):.3f}×** | | "
             f"**{geomean(cost[4]):.3f}×** | **{geomean(cost[5]):.3f}×** | |")
    L.append("")
    L.append("Each engine's cost is over its own plain run; the goal is at most 1.03× for "
             "the interrupt checks. Spans of a few milliseconds move by several percent from run "
             "to run on this shared machine: read the geometric mean, not a single row. 'Same "
             "output' is NO where a program prints its own timings: `hashset` its elapsed "
             "seconds, `gcc-loops` a time per loop under wasmtime only (it reads `clock()`, the "
             "process CPU-time clock, which Basalt does not offer: `EINVAL`, see the WASI table "
             "in the README).")
    L.append("")
    return "\n".join(L) + "\n"


def cpu_name():
    return next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo")
                 if l.startswith("model name")), "?")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=11)
    ap.add_argument("--scale", type=int, default=200)
    ap.add_argument("--sightglass-repeat", type=int, default=5)
    ap.add_argument("--no-sightglass", action="store_true")
    ap.add_argument("--only-sightglass", action="store_true")
    a = ap.parse_args()
    version = ensure_wasmtime()
    if not a.no_sightglass:
        section = sightglass_section(a.sightglass_repeat, version)
        replace_section(("## Interruption checks and fuel on the sightglass programs",
                         "## Interruption checks and fuel on"), section)
        print(section)
    if a.only_sightglass:
        return
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "basalt"], cwd=ROOT, check=True)
    subprocess.run(["cargo", "build", "--quiet", "--release", "--target", "wasm32-wasip1",
                    "--target-dir", "../target/examples"], cwd=os.path.join(ROOT, "examples"),
                   check=True)
    if not os.path.exists(WASM):
        sys.exit(f"{WASM} is missing: build the examples first (README)")
    times = {i: [] for i in range(len(FORMS))}
    outputs = set()
    for r in range(a.repeat):
        for i, (_, _, run) in enumerate(FORMS):
            ms, out = run(a.scale)
            times[i].append(ms)
            outputs.add(out)
        print(f"round {r + 1}/{a.repeat}", file=sys.stderr)
    med = {i: statistics.median(t) for i, t in times.items()}
    now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    L = [f"## Interruption checks and fuel (hosted): `cpu-heavy {a.scale}`, median of {a.repeat}", ""]
    L.append(f"- date: {now}; machine: {cpu_name()}, {os.cpu_count()} cores, "
             f"Linux {platform.release()}; accelerator: none (hosted); wasmtime (PyPI) {version}")
    L.append(f"- command: `bench/metering.py --repeat {a.repeat} --scale {a.scale}` "
             "(the six forms interleaved in every round; compile time excluded)")
    L.append("")
    L.append("| engine | code | run time (ms) | vs the same engine plain |")
    L.append("|---|---|---:|---:|")
    for i, (engine, form, _) in enumerate(FORMS):
        base = med[0] if engine == "basalt" else med[3]
        L.append(f"| {engine} | {form} | {med[i]:.1f} | {med[i] / base:.3f}× |")
    L.append("")
    L.append(f"Same output from all six: {'yes' if len(outputs) == 1 else 'NO'}. "
             "An interrupt check is one load of the store's interrupt request and a branch "
             "at every function entry and loop header (the loads that find the request are "
             "hoisted out of loops; the rare call goes through a trampoline that preserves "
             "every register, so the loop keeps its registers); wasmtime's epoch check is a "
             "load and a compare against a deadline. Fuel subtracts each straight-line run's "
             "count from the store's fuel (a load, a subtraction, a store) and tests it at "
             "function entries and loop headers. `cpu-heavy`'s loops are a few instructions "
             "long, so both engines pay more here than on the average program.")
    L.append("")
    section = "\n".join(L) + "\n"
    replace_section(("## Interruption checks and fuel (hosted)",), section)
    print(section)


if __name__ == "__main__":
    main()
