#!/usr/bin/env python3
"""Measures Basalt and writes BENCHMARKS.md.

Every figure is measured in this run next to its anchor, on this machine:
  * code generation (hosted): the CPU-heavy example under `basalt run
    --hosted`, under wasmtime (PyPI package) and compiled natively;
  * compile speed: KiB of wasm per ms, basalt vs wasmtime, same modules;
  * boot timeline: in-guest TSC / generic-timer stamps and host wall time
    for the hello example on x86-64 (q35) and AArch64 (virt), each next to a
    Debian Linux guest of the same ISA (linux-image-cloud-amd64 / -arm64 +
    a tiny initramfs) booted to a static init under the same accelerator;
  * kernel image sizes.

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


def replace_section(titles, section):
    """Puts `section` in BENCHMARKS.md in place of the first section whose
    heading starts with one of `titles` (up to the next `## `), or at the
    end; the rest of the file is kept."""
    path = os.path.join(ROOT, "BENCHMARKS.md")
    text = open(path).read() if os.path.exists(path) else "# Benchmarks\n"
    for title in titles:
        start = text.find(title)
        if start >= 0:
            end = text.find("\n## ", start + 1)
            text = text[:start] + section + (text[end + 1:] if end >= 0 else "")
            break
    else:
        text = text.rstrip("\n") + "\n\n" + section
    with open(path, "w") as f:
        f.write(text)


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


def boot_timeline(arch, accel, repeat):
    # One run first, unmeasured: it builds the kernel for ARCH if needed.
    subprocess.run([BASALT, "run", "--arch", arch, "--accel", accel, wasm("hello")], capture_output=True)
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        p = subprocess.run([BASALT, "run", "--verbose", "--arch", arch, "--accel", accel, wasm("hello")],
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


LINUX = {
    # arch: (Debian package, architecture, cross C compiler, QEMU command, console)
    "x86_64": ("linux-image-cloud-amd64", "amd64", "gcc",
               ["qemu-system-x86_64", "-machine", "q35"], "ttyS0"),
    "aarch64": ("linux-image-cloud-arm64", "arm64", "aarch64-linux-gnu-gcc",
                ["qemu-system-aarch64", "-machine", "virt"], "ttyAMA0"),
}


def debian_download(pkg, arch, dest):
    """`apt-get download` of PKG for ARCH (another architecture's lists are
    fetched into a private state directory; the system's apt is untouched)."""
    opts = []
    if arch != sh(["dpkg", "--print-architecture"]).stdout.strip():
        lists = os.path.join(WORK, "apt-" + arch)
        os.makedirs(os.path.join(lists, "partial"), exist_ok=True)
        opts = ["-o", f"APT::Architecture={arch}", "-o", f"APT::Architectures={arch}",
                "-o", f"Dir::State::Lists={lists}", "-o", f"Dir::Cache={lists}"]
        if not glob.glob(os.path.join(lists, "*Packages*")):
            subprocess.run(["apt-get", *opts, "update"], check=True, capture_output=True)
    subprocess.run(["apt-get", *opts, "download", pkg], cwd=dest, check=True, capture_output=True)


def linux_guest(arch, accel, repeat):
    """Boots Debian's cloud kernel with a static init that prints and powers off."""
    pkg, deb_arch, cc, qemu, console = LINUX[arch]
    d = os.path.join(WORK, "linux-" + arch)
    os.makedirs(d, exist_ok=True)
    kernels = glob.glob(os.path.join(d, "boot", "vmlinuz-*"))
    if not kernels:
        debian_download(pkg, deb_arch, d)
        meta = glob.glob(os.path.join(d, pkg + "_*.deb"))[0]
        dep = sh(["dpkg-deb", "-f", meta, "Depends"]).stdout
        real = re.search(r"(linux-image-[0-9][^ ,]*cloud-" + deb_arch + r"(?:-unsigned)?)", dep).group(1)
        debian_download(real, deb_arch, d)
        for x in glob.glob(os.path.join(d, real + "_*.deb")):
            subprocess.run(["dpkg-deb", "-x", x, d], check=True)
        kernels = glob.glob(os.path.join(d, "boot", "vmlinuz-*"))
    kernel = kernels[0]
    init_c = os.path.join(d, "init.c")
    with open(init_c, "w") as f:
        f.write('#include <unistd.h>\n#include <sys/reboot.h>\n'
                'int main(void){write(1,"Hello from Linux!\\n",18);sync();reboot(RB_POWER_OFF);return 0;}\n')
    init = os.path.join(d, "init")
    sh([cc, "-static", "-Os", "-o", init, init_c])
    initrd = os.path.join(d, "initramfs.cpio.gz")
    write_cpio(initrd, {"init": open(init, "rb").read()})
    runs = []
    for _ in range(repeat):
        cpu = ["-cpu", "max"] if accel == "tcg" else ["-cpu", "host,-arch-capabilities"]
        cmd = [*qemu, "-accel", accel, *cpu, "-m", "1024M", "-smp", "1",
               "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot", "-serial", "stdio",
               "-kernel", kernel, "-initrd", initrd, "-append", f"console={console} quiet panic=-1"]
        t = time.perf_counter()
        try:
            p = subprocess.run(cmd, capture_output=True, timeout=180)
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
    # (ISA, accelerator) pairs: KVM only for this machine's ISA, after its probe.
    runs_of = [("x86_64", "tcg")] + ([("x86_64", "kvm")] if accel == "kvm" else []) + [("aarch64", "tcg")]
    accels = sorted({a for _, a in runs_of})
    timelines = {k: boot_timeline(*k, args.repeat) for k in runs_of}
    linux = {}
    if not args.no_linux:
        for k in runs_of:
            try:
                linux[k] = linux_guest(*k, args.repeat)
            except Exception as e:  # reported, not hidden
                linux[k] = (f"failed: {e}", [])
    images = []
    for arch in ["x86_64", "aarch64"]:
        elf = os.path.join(ROOT, "target", "guest", arch + "-unknown-none", "release", "basalt-kernel")
        stripped = os.path.join(WORK, f"basalt-kernel-{arch}.stripped")
        shutil.copy(elf, stripped)
        subprocess.run(["strip" if arch == "x86_64" else "aarch64-linux-gnu-strip", stripped], check=False)
        flat = elf + ".Image" if os.path.exists(elf + ".Image") else os.path.splitext(elf)[0] + ".Image"
        images.append((arch, elf, stripped, flat if os.path.exists(flat) else None))

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
    for (arch, a) in runs_of:
        runs = timelines[(arch, a)]
        L.append(f"\n## Boot timeline: hello example, {arch}, {a.upper()}, {len(runs)} runs\n")
        ok = [r for r in runs if r["ok"]]
        if not ok:
            L.append("All runs failed:\n\n```\n" + runs[0]["stderr"][-3000:] + "\n```\n")
            continue
        keys = list(ok[0]["stamps"].keys())
        counter = "TSC" if arch == "x86_64" else "generic timer"
        L.append(f"In-guest ({counter}, ms since kernel entry, median):\n")
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
        if (arch, a) in linux:
            kname, lr = linux[(arch, a)]
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
    L.append("| ISA | file | bytes |\n|---|---|---|")
    for arch, elf, stripped, flat in images:
        L.append(f"| {arch} | basalt-kernel ELF (with symbols, debug=1) | {os.path.getsize(elf)} |")
        L.append(f"| {arch} | stripped ELF | {os.path.getsize(stripped)} |")
        if flat:
            L.append(f"| {arch} | arm64 Image (what QEMU loads) | {os.path.getsize(flat)} |")
    L.append("")
    L.append("The kernel includes Cranelift (for `--jit`) and the whole runtime.\n")
    # bench/net.py's and bench/boot_paths.py's sections are their own, and
    # bench/metering.py's and bench/synflood.py's too: keep them.
    path = os.path.join(ROOT, "BENCHMARKS.md")
    old = open(path).read() if os.path.exists(path) else ""
    for title in ("## Network: ", "## Network under a SYN flood", "## Boot paths",
                  "## Interruption checks"):  # and fuel
        at = old.find(title)
        if at >= 0:
            end = old.find("\n## ", at + 1)
            L.append(old[at:end + 1] if end >= 0 else old[at:])
    with open(path, "w") as f:
        f.write("\n".join(L) + "\n")
    print("\n".join(L))


if __name__ == "__main__":
    main()
