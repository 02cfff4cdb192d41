#!/usr/bin/env python3
"""Measures every boot path and the images, and writes the "Boot paths"
section of BENCHMARKS.md (bench/run.py keeps it).

For each path, the hello example booted by `basalt run --verbose` N times:
  * the firmware's time until Basalt's loader ran and the loader's own time
    (cycle-counter stamps the loader records: the counter starts at the
    machine's reset), the kernel's time from entry to the program's
    `_start`, and the host's wall time from QEMU's start to the status
    marker and to QEMU's exit;
  * beside them, the anchor: Debian's cloud kernel (linux-image-cloud-*)
    booted by the same firmware as a unified kernel image (systemd-stub,
    with an initramfs whose static init prints the kernel's
    CLOCK_BOOTTIME and powers off), QEMU start to its line.
Then the size of every image format and how long `basalt image` takes.

usage: bench/boot_paths.py [--repeat N] [--no-linux]
"""
import argparse
import datetime
import glob
import gzip
import threading
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as bench  # noqa: E402  (bench/run.py: build, Debian downloads, cpio)

ROOT = bench.ROOT
WORK = os.path.join(bench.WORK, "boot-paths")
BASALT = bench.BASALT

# name, basalt run flags
PATHS = [
    ("x86_64 q35, QEMU -kernel (PVH)", ["--arch", "x86_64"]),
    ("x86_64 Firecracker shape (microvm, PVH)", ["--machine", "firecracker"]),
    ("x86_64 Cloud Hypervisor shape (microvm, ACPI, PCIe, PVH)", ["--machine", "cloud-hypervisor"]),
    ("x86_64 OVMF, disk image", ["--firmware", "uefi"]),
    ("x86_64 OVMF, PXE netboot", ["--boot", "pxe"]),
    ("aarch64 virt, QEMU -kernel (Image)", ["--arch", "aarch64"]),
    ("aarch64 Firecracker shape (virt, RAM at 2 GiB, ns16550a)", ["--arch", "aarch64", "--machine", "firecracker"]),
    ("aarch64 Raspberry Pi 4 (raspi4b, the Pi's device tree)", ["--arch", "aarch64", "--machine", "raspi4b"]),
    ("aarch64 AAVMF, ACPI only, disk image", ["--arch", "aarch64", "--firmware", "uefi"]),
    ("aarch64 AAVMF, device tree, disk image", ["--arch", "aarch64", "--firmware", "uefi", "--acpi", "off"]),
    ("aarch64 AAVMF, PXE netboot", ["--arch", "aarch64", "--boot", "pxe"]),
    ("aarch64 U-Boot bootefi", ["--arch", "aarch64", "--firmware", "u-boot"]),
    ("aarch64 U-Boot booti", ["--arch", "aarch64", "--boot", "booti"]),
]


def median(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt(x):
    return "-" if x is None else f"{x:.0f}"


def basalt_runs(flags, repeat):
    hello = bench.wasm("hello")
    subprocess.run([BASALT, "run", *flags, hello], capture_output=True)  # builds what it needs
    runs = []
    for _ in range(repeat):
        p = subprocess.run([BASALT, "run", "--verbose", *flags, hello], capture_output=True, text=True)
        r = {"ok": p.returncode == 0 and "Hello from Basalt!" in p.stdout}
        m = re.search(r"boot: firmware until the loader (\d+) ms, loader (\d+) ms", p.stderr)
        r["firmware"], r["loader"] = (float(m.group(1)), float(m.group(2))) if m else (None, None)
        m = re.search(r"\[\s*([0-9.]+) ms (?:tsc|cnt)\+\s*\d+\] calling _start", p.stderr)
        r["kernel"] = float(m.group(1)) if m else None
        m = re.search(r"status marker ([0-9.]+) ms, QEMU exited ([0-9.]+) ms", p.stderr)
        r["marker"], r["exit"] = (float(m.group(1)), float(m.group(2))) if m else (None, None)
        runs.append(r)
    return runs


FIRMWARE = {
    "x86_64": ("qemu-system-x86_64", ["-machine", "q35"], "/usr/share/OVMF/OVMF_CODE_4M.fd",
               "/usr/share/OVMF/OVMF_VARS_4M.fd", "linuxx64.efi.stub", "BOOTX64.EFI", "objcopy",
               "amd64", "ttyS0", "gcc"),
    "aarch64": ("qemu-system-aarch64", ["-machine", "virt,acpi=on"], "/usr/share/AAVMF/AAVMF_CODE.fd",
                "/usr/share/AAVMF/AAVMF_VARS.fd", "linuxaa64.efi.stub", "BOOTAA64.EFI",
                "aarch64-linux-gnu-objcopy", "arm64", "ttyAMA0", "aarch64-linux-gnu-gcc"),
}


def linux_uki(arch):
    """Debian's cloud kernel as a unified kernel image on a directory QEMU
    serves as a FAT disk: EFI/BOOT/BOOT*.EFI = systemd-stub + kernel +
    initramfs (static init) + command line."""
    qemu, machine, code, vars_, stub_name, boot_name, objcopy, deb, console, cc = FIRMWARE[arch]
    d = os.path.join(WORK, "linux-" + arch)
    os.makedirs(d, exist_ok=True)
    kernel = glob.glob(os.path.join(d, "boot", "vmlinuz-*"))
    if not kernel:
        pkg = "linux-image-cloud-" + deb
        bench.debian_download(pkg, deb, d)
        meta = glob.glob(os.path.join(d, pkg + "_*.deb"))[0]
        dep = bench.sh(["dpkg-deb", "-f", meta, "Depends"]).stdout
        real = re.search(r"(linux-image-[0-9][^ ,]*cloud-" + deb + r"(?:-unsigned)?)", dep).group(1)
        bench.debian_download(real, deb, d)
        for x in glob.glob(os.path.join(d, real + "_*.deb")):
            subprocess.run(["dpkg-deb", "-x", x, d], check=True)
        kernel = glob.glob(os.path.join(d, "boot", "vmlinuz-*"))
    kernel = kernel[0]
    if open(kernel, "rb").read(2) == b"\x1f\x8b":
        # Debian's arm64 vmlinuz is a gzip'd Image; the stub wants the PE.
        raw = os.path.join(d, "Image")
        with gzip.open(kernel) as src, open(raw, "wb") as dst:
            shutil.copyfileobj(src, dst)
        kernel_file = raw
    else:
        kernel_file = kernel
    stub = glob.glob(os.path.join(d, "usr", "lib", "systemd", "boot", "efi", stub_name))
    if not stub:
        bench.debian_download("systemd-boot-efi", deb, d)
        for x in glob.glob(os.path.join(d, "systemd-boot-efi_*.deb")):
            subprocess.run(["dpkg-deb", "-x", x, d], check=True)
        stub = glob.glob(os.path.join(d, "usr", "lib", "systemd", "boot", "efi", stub_name))
    init_c = os.path.join(d, "init.c")
    with open(init_c, "w") as f:
        f.write('#include <stdio.h>\n#include <time.h>\n#include <unistd.h>\n#include <sys/reboot.h>\n'
                'int main(void){struct timespec t;clock_gettime(CLOCK_BOOTTIME,&t);'
                'printf("Hello from Linux! boottime %ld ms\\n",t.tv_sec*1000+t.tv_nsec/1000000);'
                'fflush(stdout);sync();reboot(RB_POWER_OFF);return 0;}\n')
    init = os.path.join(d, "init")
    bench.sh([cc, "-static", "-Os", "-o", init, init_c])
    initrd = os.path.join(d, "initramfs.cpio.gz")
    bench.write_cpio(initrd, {"init": open(init, "rb").read()})
    cmdline = os.path.join(d, "cmdline")
    with open(cmdline, "w") as f:
        f.write(f"console={console} quiet panic=-1")
    esp = os.path.join(d, "esp")
    shutil.rmtree(esp, ignore_errors=True)
    os.makedirs(os.path.join(esp, "EFI", "BOOT"), exist_ok=True)
    if arch == "aarch64":
        # binutils' objcopy writes an arm64 PE AAVMF refuses to load, so
        # the arm64 kernel (itself an EFI application) runs from the UEFI
        # shell's startup.nsh with the initramfs and command line as its
        # load options, as a boot entry would pass them.
        shutil.copy(kernel_file, os.path.join(esp, "vmlinux.efi"))
        shutil.copy(initrd, os.path.join(esp, "initrd.gz"))
        with open(os.path.join(esp, "startup.nsh"), "w") as f:
            f.write(f"FS0:\\vmlinux.efi initrd=\\initrd.gz console={console} quiet panic=-1\r\n")
        return qemu, machine, code, vars_, esp, os.path.basename(kernel)
    uki = os.path.join(esp, "EFI", "BOOT", boot_name)
    bench.sh([objcopy,
              "--add-section", f".cmdline={cmdline}", "--change-section-vma", ".cmdline=0x30000",
              "--add-section", f".linux={kernel_file}", "--change-section-vma", ".linux=0x2000000",
              "--add-section", f".initrd={initrd}", "--change-section-vma", ".initrd=0x3000000",
              stub[0], uki])
    return qemu, machine, code, vars_, esp, os.path.basename(kernel)


def linux_runs(arch, repeat):
    qemu, machine, code, vars_, esp, kname = linux_uki(arch)
    runs = []
    for _ in range(repeat):
        v = os.path.join(WORK, "vars.fd")
        shutil.copy(vars_, v)
        cmd = [qemu, *machine, "-accel", "tcg", "-cpu", "max", "-m", "1024M", "-smp", "1",
               "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot", "-serial", "stdio",
               "-drive", f"if=pflash,format=raw,unit=0,readonly=on,file={code}",
               "-drive", f"if=pflash,format=raw,unit=1,file={v}",
               "-drive", f"file=fat:rw:{esp},format=raw,if=virtio"]
        t = time.perf_counter()
        found = {}
        p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL)

        def read():
            for raw in p.stdout:
                if b"startup.nsh" in raw and not found.get("key"):
                    # Any key but Esc runs startup.nsh without the
                    # shell's 5-second countdown.
                    found["key"] = True
                    p.stdin.write(b"\r")
                    p.stdin.flush()
                m = re.search(rb"Hello from Linux! boottime (\d+) ms", raw)
                if m:
                    found["line"] = (time.perf_counter() - t) * 1e3
                    found["boottime"] = float(m.group(1))

        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        try:
            p.wait(timeout=240)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        reader.join(timeout=5)
        runs.append({"line": found.get("line"), "boottime": found.get("boottime"),
                     "exit": (time.perf_counter() - t) * 1e3})
    return kname, runs


def image_sizes():
    rows = []
    for arch in ["x86_64", "aarch64"]:
        for fmt_ in ["raw", "qcow2", "vhd", "gce", "efi"]:
            out = os.path.join(WORK, f"hello-{arch}.{fmt_}")
            t = time.perf_counter()
            subprocess.run([BASALT, "image", "--arch", arch, "--format", fmt_, "-o", out, bench.wasm("hello")],
                           check=True, capture_output=True)
            rows.append((arch, fmt_, os.path.getsize(out), (time.perf_counter() - t) * 1e3))
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-linux", action="store_true")
    a = ap.parse_args()
    os.makedirs(WORK, exist_ok=True)
    bench.build()
    L = ["## Boot paths: hello example, TCG, median of %d" % a.repeat, ""]
    cpu = re.search(r"model name\s*:\s*(.*)", open("/proc/cpuinfo").read())
    L.append(f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC; machine: "
             f"{cpu.group(1) if cpu else platform.processor()}, {os.cpu_count()} cores; "
             f"{bench.sh(['qemu-system-x86_64', '--version']).stdout.splitlines()[0]}; accelerator: tcg")
    L.append("- command: `bench/boot_paths.py --repeat %d`" % a.repeat)
    L.append("- firmware and loader: cycle-counter stamps the loader records (the counter starts at reset); "
             "kernel: kernel entry to the program's `_start`; marker and exit: host wall time from QEMU's start.\n")
    L.append("| path | firmware to loader ms | loader ms | kernel entry to `_start` ms | QEMU start to marker ms | QEMU start to exit ms | ok |")
    L.append("|---|---:|---:|---:|---:|---:|---|")
    results = {}
    for name, flags in PATHS:
        runs = basalt_runs(flags, a.repeat)
        results[name] = runs
        L.append(f"| {name} | {fmt(median([r['firmware'] for r in runs]))} | {fmt(median([r['loader'] for r in runs]))} | "
                 f"{fmt(median([r['kernel'] for r in runs]))} | {fmt(median([r['marker'] for r in runs]))} | "
                 f"{fmt(median([r['exit'] for r in runs]))} | {sum(r['ok'] for r in runs)}/{len(runs)} |")
        print(L[-1], flush=True)
    if not a.no_linux:
        L.append("\nAnchor — Debian's cloud kernel under the same firmware (x86-64: a unified kernel image, "
                 "systemd-stub as BOOTX64.EFI; AArch64: the kernel's own EFI stub run by the UEFI shell's "
                 "startup.nsh with the initramfs as a load option), static init printing CLOCK_BOOTTIME, "
                 "then power-off:\n")
        L.append("| firmware | kernel | Linux kernel boot to init ms | Basalt kernel entry to `_start` ms | ratio | "
                 "Linux QEMU start to init's line ms | Basalt QEMU start to marker ms | ratio Basalt / Linux |")
        L.append("|---|---|---:|---:|---:|---:|---:|---:|")
        for arch, basalt_name in [("x86_64", "x86_64 OVMF, disk image"),
                                  ("aarch64", "aarch64 AAVMF, ACPI only, disk image")]:
            try:
                kname, runs = linux_runs(arch, a.repeat)
            except (subprocess.CalledProcessError, IndexError, OSError) as e:
                L.append(f"| {arch} | failed: {e} | | | | |")
                continue
            lin = median([r["line"] for r in runs])
            bas = median([r["marker"] for r in results[basalt_name]])
            ratio = f"{bas / lin:.2f}×" if lin and bas else "-"
            lk = median([r["boottime"] for r in runs])
            bk = median([r["kernel"] for r in results[basalt_name]])
            kratio = f"{bk / lk:.2f}×" if lk and bk else "-"
            fw = "OVMF" if arch == "x86_64" else "AAVMF (ACPI)"
            L.append(f"| {fw} | {kname} | {fmt(lk)} | {fmt(bk)} | {kratio} | {fmt(lin)} | {fmt(bas)} | {ratio} |")
            print(L[-1], flush=True)
    if not a.no_linux:
        L.append("\nUnder TCG the firmware dominates every firmware path. The AArch64 anchor's firmware time "
                 "includes AAVMF failing to find a default loader and starting its shell (the arm64 kernel runs "
                 "from `startup.nsh`), so its whole-boot ratio flatters Basalt; the kernel columns compare like "
                 "with like.")
    L.append("\n### Images: hello example, `basalt image` (kernel, both UEFI loaders and the bundle)\n")
    L.append("| ISA | format | bytes | `basalt image` ms |")
    L.append("|---|---|---:|---:|")
    for arch, f, size, ms in image_sizes():
        L.append(f"| {arch} | {f} | {size} | {ms:.0f} |")
    L.append("")
    section = "\n".join(L) + "\n"
    bench.replace_section(("## Boot paths",), section)
    print(section)


if __name__ == "__main__":
    main()
