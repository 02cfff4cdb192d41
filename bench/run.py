#!/usr/bin/env python3
"""Measures Basalt and writes BENCHMARKS.md.

Every figure is measured in this run next to its anchor, on this machine:
  * code generation (hosted): the CPU-heavy example under `basalt run
    --hosted`, under wasmtime (PyPI package) and compiled natively;
  * compile speed: KiB of wasm per ms, basalt vs wasmtime, same modules;
  * boot timeline: in-guest TSC stamps and host wall time for the hello
    example, next to a Debian Linux guest (linux-image-cloud-amd64 + a tiny
    initramfs) booted to a static init under the same accelerator;
  * kernel image size.

usage: bench/run.py [--scale N] [--repeat N] [--no-linux]
"""
import argparse
import datetime
import glob
import gzip
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORK = os.path.join(ROOT, "target", "bench")
EX = os.path.join(ROOT, "target", "examples")
BASALT = os.path.join(ROOT, "target", "release", "basalt")


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kw)


def ensure_wasmtime():
    try:
        import wasmtime  # noqa: F401
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "wasmtime"], check=True)
    from importlib.metadata import version
    return version("wasmtime")


def build():
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "basalt"], cwd=ROOT, check=True)
    subprocess.run(["cargo", "build", "--release", "-q", "--target", "wasm32-wasip1",
                    "--target-dir", EX], cwd=os.path.join(ROOT, "examples"), check=True)
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "cpu-heavy", "-p", "realworld", "--target-dir", EX],
                   cwd=os.path.join(ROOT, "examples"), check=True)


def wasm(name):
    return os.path.join(EX, "wasm32-wasip1", "release", name + ".wasm")


def native(name):
    return os.path.join(EX, "release", name)


def timed(cmd):
    t = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True)
    return time.perf_counter() - t, p


def median(xs):
    return statistics.median(xs)


def codegen(scale, repeat):
    """cpu-heavy: basalt --hosted vs wasmtime vs native (run time, ms)."""
    rows = {"basalt": [], "wasmtime": [], "native": []}
    outputs = {}
    for _ in range(repeat):
        dt, p = timed([BASALT, "run", "--hosted", "--verbose", wasm("cpu-heavy"), str(scale)])
        m = re.search(r"ran in ([0-9.]+) ms", p.stderr.decode())
        rows["basalt"].append(float(m.group(1)) if m else dt * 1e3)
        outputs["basalt"] = p.stdout
        out = os.path.join(WORK, "wt.out")
        p = subprocess.run([sys.executable, os.path.join(ROOT, "bench", "wasmtime_run.py"),
                            wasm("cpu-heavy"), out, os.path.join(WORK, "wt.err"), str(scale)],
                           capture_output=True, text=True, check=True)
        rows["wasmtime"].append(json.loads(p.stdout.strip().splitlines()[-1])["run_ms"])
        outputs["wasmtime"] = open(out, "rb").read()
        dt, p = timed([native("cpu-heavy"), str(scale)])
        rows["native"].append(dt * 1e3)
        outputs["native"] = p.stdout
    same = outputs["basalt"] == outputs["wasmtime"] == outputs["native"]
    return {k: median(v) for k, v in rows.items()}, same


def module_name(path):
    """`sightglass/bz2/benchmark.wasm` → `bz2 (sightglass)`."""
    base = os.path.basename(path)
    if "sightglass" in path:
        return os.path.basename(os.path.dirname(path)) + " (sightglass)"
    return base


def compile_speed(modules):
    import wasmtime
    res = []
    for path in modules:
        size = os.path.getsize(path) / 1024
        p = subprocess.run([BASALT, "compile", "--host", path], capture_output=True, text=True)
        m = re.search(r"in ([0-9.]+) ms", p.stderr)
        if not m:
            res.append((module_name(path), size, None, None))
            continue
        b_ms = float(m.group(1))
        eng = wasmtime.Engine()
        data = open(path, "rb").read()
        t = time.perf_counter()
        wasmtime.Module(eng, data)
        w_ms = (time.perf_counter() - t) * 1e3
        res.append((module_name(path), size, b_ms, w_ms))
    return res


def boot_timeline(accel, repeat):
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        p = subprocess.run([BASALT, "run", "--verbose", "--accel", accel, wasm("hello")],
                           capture_output=True, text=True)
        wall = (time.perf_counter() - t) * 1e3
        stamps = {}
        for line in p.stderr.splitlines():
            m = re.match(r"basalt: kernel: \[\s*([0-9.]+) ms (?:tsc|cnt)\+\s*\d+\] (.+)", line)
            if m:
                stamps[m.group(2).strip()] = float(m.group(1))
        host = re.search(r"first kernel log line ([0-9.]+) ms, status marker ([0-9.]+) ms, QEMU exited ([0-9.]+) ms", p.stderr)
        runs.append({"wall": wall, "stamps": stamps, "ok": p.returncode == 0 and "Hello" in p.stdout,
                     "host": tuple(map(float, host.groups())) if host else None, "stderr": p.stderr})
    return runs


def linux_guest(accel, repeat):
    """Boots Debian's cloud kernel with a static init that prints and powers off."""
    d = os.path.join(WORK, "linux")
    os.makedirs(d, exist_ok=True)
    kernels = glob.glob(os.path.join(d, "boot", "vmlinuz-*"))
    if not kernels:
        subprocess.run(["apt-get", "download", "linux-image-cloud-amd64"], cwd=d, check=True, capture_output=True)
        meta = glob.glob(os.path.join(d, "linux-image-cloud-amd64_*.deb"))[0]
        dep = sh(["dpkg-deb", "-f", meta, "Depends"]).stdout
        real = re.search(r"(linux-image-[0-9][^ ,]*cloud-amd64(?:-unsigned)?)", dep).group(1)
        subprocess.run(["apt-get", "download", real], cwd=d, check=True, capture_output=True)
        for x in glob.glob(os.path.join(d, real + "_*.deb")):
            subprocess.run(["dpkg-deb", "-x", x, d], check=True)
        kernels = glob.glob(os.path.join(d, "boot", "vmlinuz-*"))
    kernel = kernels[0]
    init_c = os.path.join(d, "init.c")
    with open(init_c, "w") as f:
        f.write('#include <unistd.h>\n#include <sys/reboot.h>\n'
                'int main(void){write(1,"Hello from Linux!\\n",18);sync();reboot(RB_POWER_OFF);return 0;}\n')
    init = os.path.join(d, "init")
    sh(["gcc", "-static", "-Os", "-o", init, init_c])
    initrd = os.path.join(d, "initramfs.cpio.gz")
    write_cpio(initrd, {"init": open(init, "rb").read()})
    runs = []
    for _ in range(repeat):
        cpu = ["-cpu", "max"] if accel == "tcg" else ["-cpu", "host,-arch-capabilities"]
        cmd = ["qemu-system-x86_64", "-machine", "q35", "-accel", accel, *cpu, "-m", "1024M", "-smp", "1",
               "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot", "-serial", "stdio",
               "-kernel", kernel, "-initrd", initrd, "-append", "console=ttyS0 quiet panic=-1"]
        t = time.perf_counter()
        try:
            p = subprocess.run(cmd, capture_output=True, timeout=120)
            ok = b"Hello from Linux!" in p.stdout
        except subprocess.TimeoutExpired:
            ok = False
        runs.append(((time.perf_counter() - t) * 1e3, ok))
    return os.path.basename(kernel), runs


def write_cpio(path, files):
    out = bytearray()
    ino = 1

    def entry(name, mode, data):
        nonlocal ino
        name_b = name.encode() + b"\0"
        hdr = "070701" + "".join("%08x" % v for v in
                                 [ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name_b), 0])
        ino += 1
        out.extend(hdr.encode() + name_b)
        out.extend(b"\0" * ((4 - len(out) % 4) % 4))
        out.extend(data)
        out.extend(b"\0" * ((4 - len(out) % 4) % 4))

    for name, data in files.items():
        entry(name, 0o100755, data)
    entry("TRAILER!!!", 0, b"")
    with gzip.open(path, "wb") as f:
        f.write(bytes(out))


def kvm_verdict():
    p = subprocess.run([BASALT, "run", "--verbose", wasm("hello")], capture_output=True, text=True)
    m = re.search(r"accelerator: (\w+) \((.*)\)", p.stderr)
    return (m.group(1), m.group(2)) if m else ("tcg", "unknown")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-linux", action="store_true")
    args = ap.parse_args()
    os.makedirs(WORK, exist_ok=True)
    wt_version = ensure_wasmtime()
    build()
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    qemu = sh(["qemu-system-x86_64", "--version"]).stdout.splitlines()[0]
    rustc = sh(["rustc", "--version"]).stdout.strip()
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    cmd = "bench/run.py " + " ".join(sys.argv[1:])

    cg, same = codegen(args.scale, args.repeat)
    mods = [wasm("realworld"), wasm("cpu-heavy")]
    sg = os.path.join(ROOT, "..", "shared", "testsuite", "sightglass")
    for name in ["bz2", "pulldown-cmark", "regex", "blake3-scalar", "meshoptimizer", "sqlite3"]:
        found = glob.glob(os.path.join(sg, name, "*.wasm"))
        if found:
            mods.append(sorted(found)[0])
    cs = compile_speed(mods)

    accel, why = kvm_verdict()
    accels = ["tcg"] + (["kvm"] if accel == "kvm" else [])
    timelines = {a: boot_timeline(a, args.repeat) for a in accels}
    linux = {}
    if not args.no_linux:
        for a in accels:
            try:
                linux[a] = linux_guest(a, args.repeat)
            except Exception as e:  # reported, not hidden
                linux[a] = (f"failed: {e}", [])
    elf = os.path.join(ROOT, "target", "guest", "x86_64-unknown-none", "release", "basalt-kernel")
    stripped = os.path.join(WORK, "basalt-kernel.stripped")
    shutil.copy(elf, stripped)
    subprocess.run(["strip", stripped], check=False)

    L = []
    L.append("# Benchmarks\n")
    L.append("Measured by `bench/run.py`; every figure sits next to its anchor measured in the same run. "
             "Lower is better. Rerun: `" + cmd.strip() + "`.\n")
    L.append(f"- date: {date}\n- machine: {cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}\n"
             f"- {qemu}; {rustc}; wasmtime (PyPI) {wt_version}\n"
             f"- accelerator: {', '.join(accels)} (KVM verdict: {accel} — {why})\n")
    L.append(f"\n## Code generation (hosted): `cpu-heavy {args.scale}`, median of {args.repeat}\n")
    L.append("| runner | run time (ms) | vs wasmtime | vs native |\n|---|---|---|---|")
    for k in ["basalt", "wasmtime", "native"]:
        L.append(f"| {k} | {cg[k]:.1f} | {cg[k] / cg['wasmtime']:.2f}× | {cg[k] / cg['native']:.2f}× |")
    L.append(f"\nSame output from all three: {'yes' if same else 'NO'}. Basalt: `basalt run --hosted` "
             "(run time reported by `--verbose`, compile excluded); wasmtime: `bench/wasmtime_run.py` "
             "(its `run_ms`, compile excluded); native: the same Rust source built for the host, whole process.\n")
    L.append("\n## Compile speed (host, Cranelift `opt_level=speed` in both)\n")
    L.append("| module | wasm KiB | basalt ms | basalt KiB/ms | wasmtime ms | wasmtime KiB/ms | basalt / wasmtime time |\n|---|---|---|---|---|---|---|")
    for name, size, b, w in cs:
        if b is None:
            L.append(f"| {name} | {size:.0f} | failed | | | | |")
        else:
            L.append(f"| {name} | {size:.0f} | {b:.1f} | {size / b:.2f} | {w:.1f} | {size / w:.2f} | {b / w:.2f}× |")
    L.append("\nbasalt: `basalt compile --host FILE` (single-threaded); wasmtime: `wasmtime.Module(engine, bytes)` "
             "(wasmtime compiles functions in parallel on both cores).\n")
    for a in accels:
        runs = timelines[a]
        L.append(f"\n## Boot timeline: hello example, {a.upper()}, {len(runs)} runs\n")
        ok = [r for r in runs if r["ok"]]
        if not ok:
            L.append("All runs failed:\n\n```\n" + runs[0]["stderr"][-3000:] + "\n```\n")
            continue
        keys = list(ok[0]["stamps"].keys())
        L.append("In-guest (TSC, ms since kernel entry, median):\n")
        L.append("| event | ms |\n|---|---|")
        for k in keys:
            vals = [r["stamps"][k] for r in ok if k in r["stamps"]]
            L.append(f"| {k} | {median(vals):.2f} |")
        hosts = [r["host"] for r in ok if r["host"]]
        if hosts:
            L.append("\nHost wall time from QEMU start (median):\n")
            L.append("| event | ms |\n|---|---|")
            for i, k in enumerate(["first kernel log line", "status marker", "QEMU exited"]):
                L.append(f"| {k} | {median([h[i] for h in hosts]):.1f} |")
        wall = median([r["wall"] for r in ok])
        L.append(f"\nWhole `basalt run` (host compile + bundle + VM, kernel already built): {wall:.0f} ms.")
        if a in linux:
            kname, lr = linux[a]
            lok = [t for t, good in lr if good]
            if lok:
                lin = median(lok)
                L.append(f"\nAnchor — Debian Linux guest ({kname}, static init printing one line then powering off, "
                         f"same QEMU flags and accelerator), QEMU start to exit: {lin:.0f} ms. "
                         f"Basalt QEMU start to exit: {median([h[2] for h in hosts]):.0f} ms "
                         f"(ratio {median([h[2] for h in hosts]) / lin:.2f}×).\n")
            else:
                L.append(f"\nAnchor — Debian Linux guest: did not complete ({kname}, {len(lr)} tries).\n")
    L.append("\n## Kernel image\n")
    L.append(f"| file | bytes |\n|---|---|\n| basalt-kernel ELF (with symbols, debug=1) | {os.path.getsize(elf)} |\n"
             f"| stripped | {os.path.getsize(stripped)} |\n")
    L.append("The kernel includes Cranelift (for `--jit`) and the whole runtime.\n")
    with open(os.path.join(ROOT, "BENCHMARKS.md"), "w") as f:
        f.write("\n".join(L) + "\n")
    print("\n".join(L))


if __name__ == "__main__":
    main()
