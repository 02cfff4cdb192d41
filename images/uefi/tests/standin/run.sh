#!/usr/bin/env bash
# Boots basalt-loader on real firmware (OVMF for x86-64, AAVMF for AArch64)
# in QEMU with the stand-in kernels of this folder, and checks what they
# print and how QEMU exits: the good paths (files on the ESP, the embedded
# .basalt payload, AArch64 at EL1 and EL2, a 16 MiB kernel at 1 MiB) and
# the error paths (no bundle, no kernel, wrong ISA, a corrupt kernel), which
# must print `basalt loader: …` and power the machine off.
#
# Usage: images/uefi/tests/standin/run.sh [x86_64|aarch64]...   (default both)
# Needs binutils for both ISAs, qemu-system-x86_64/-aarch64, ovmf, qemu-efi-aarch64.
# Set KEEP=1 to keep the work folder (its logs) and print its path.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../../.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
work="$(mktemp -d)"
[ "${KEEP:-}" = 1 ] && echo "work folder: $work" || trap 'rm -rf "$work"' EXIT
arches=("$@")
[ ${#arches[@]} -eq 0 ] && arches=(x86_64 aarch64)
pass=0
failed=0

# --- the stand-ins -----------------------------------------------------------
as --64 -o "$work/x86.o" "$here/x86_64.S"
ld -nostdlib -static -z noexecstack --no-warn-rwx-segments -T "$here/x86_64.ld" -o "$work/x86.elf" "$work/x86.o"
# The real kernel's size (~16 MiB) at its link address, 1 MiB.
as --64 --defsym BSS_SIZE=0x1000000 -o "$work/x86big.o" "$here/x86_64.S"
ld -nostdlib -static -z noexecstack --no-warn-rwx-segments -T "$here/x86_64.ld" -o "$work/x86big.elf" "$work/x86big.o"
ld -nostdlib -static -z noexecstack --no-warn-rwx-segments --defsym LOAD_ADDR=0x2000000 -T "$here/x86_64.ld" \
  -o "$work/x86big32.elf" "$work/x86big.o"
aarch64-linux-gnu-as -o "$work/arm.o" "$here/aarch64.S"
aarch64-linux-gnu-ld -nostdlib -static -e 0 -Ttext=0 -o "$work/arm.elf" "$work/arm.o"
aarch64-linux-gnu-objcopy -O binary "$work/arm.elf" "$work/arm.img"
head -c 100 "$work/x86.elf" >"$work/x86-truncated.elf"
head -c 40 "$work/arm.img" >"$work/arm-truncated.img"
printf 'stand-in bundle\n' >"$work/bundle.tar"

# An ESP folder: esp NAME ARCH KERNEL [BUNDLE] [CMDLINE] [LOADER]
esp() {
  local dir="$work/$1" arch="$2" kernel="$3" bundle="${4:-}" cmdline="${5:-}" loader="${6:-}"
  local boot=BOOTX64.EFI
  [ "$arch" = aarch64 ] && boot=BOOTAA64.EFI
  mkdir -p "$dir/EFI/BOOT"
  cp "${loader:-$CARGO_TARGET_DIR/$arch-unknown-uefi/release/basalt-loader.efi}" "$dir/EFI/BOOT/$boot"
  if [ -n "$kernel" ]; then mkdir -p "$dir/basalt"; cp "$kernel" "$dir/basalt/kernel"; fi
  if [ -n "$bundle" ]; then mkdir -p "$dir/basalt"; cp "$bundle" "$dir/basalt/bundle.tar"; fi
  if [ -n "$cmdline" ]; then mkdir -p "$dir/basalt"; printf '%s\n' "$cmdline" >"$dir/basalt/cmdline"; fi
}

# A loader with the payload in its .basalt section: embed ARCH KERNEL CMDLINE OUT
embed() {
  local arch="$1" kernel="$2" cmdline="$3" out="$4" objcopy=objcopy
  [ "$arch" = aarch64 ] && objcopy=aarch64-linux-gnu-objcopy
  python3 - "$kernel" "$work/bundle.tar" "$cmdline" "$work/payload-$arch.bin" <<'PY'
import struct, sys
kernel = open(sys.argv[1], "rb").read()
bundle = open(sys.argv[2], "rb").read()
cmdline = sys.argv[3].encode()
ko = 56
bo = ko + len(kernel)
co = bo + len(bundle)
head = b"BSLTPAY1" + struct.pack("<6Q", ko, len(kernel), bo, len(bundle), co, len(cmdline))
open(sys.argv[4], "wb").write(head + kernel + bundle + cmdline)
PY
  # The new section goes right after the image's last one.
  local efi="$CARGO_TARGET_DIR/$arch-unknown-uefi/release/basalt-loader.efi" base size
  base=$("${objcopy/objcopy/objdump}" -p "$efi" | awk '$1 == "ImageBase" { print $2 }')
  size=$("${objcopy/objcopy/objdump}" -p "$efi" | awk '$1 == "SizeOfImage" { print $2 }')
  "$objcopy" --add-section ".basalt=$work/payload-$arch.bin" \
    --set-section-flags .basalt=data,readonly,load,alloc \
    --change-section-vma ".basalt=$(printf '%#x' $((0x$base + 0x$size)))" \
    "$efi" "$out"
}

# boot NAME ARCH EXPECTED_STATUS EXPECTED_TEXT... [-- QEMU ARGS]
# (a text starting with `re:` is an extended regular expression)
boot() {
  local name="$1" arch="$2" want="$3"
  shift 3
  local texts=() extra=()
  while [ $# -gt 0 ] && [ "$1" != -- ]; do texts+=("$1"); shift; done
  [ $# -gt 0 ] && { shift; extra=("$@"); }
  local log="$work/$name.log" status=0 qemu
  if [ "$arch" = x86_64 ]; then
    cp /usr/share/OVMF/OVMF_VARS_4M.fd "$work/$name.vars"
    qemu=(qemu-system-x86_64 -machine q35 -m 512M -nodefaults -nographic
      -drive if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd
      -drive "if=pflash,format=raw,unit=1,file=$work/$name.vars"
      -device isa-debug-exit,iobase=0xf4,iosize=4)
  else
    cp /usr/share/AAVMF/AAVMF_VARS.fd "$work/$name.vars"
    qemu=(qemu-system-aarch64 -machine virt -cpu max -m 512M -nodefaults -nographic
      -drive if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/AAVMF/AAVMF_CODE.fd
      -drive "if=pflash,format=raw,unit=1,file=$work/$name.vars"
      -semihosting-config enable=on,target=native)
  fi
  timeout 120 "${qemu[@]}" -serial "file:$log" \
    -drive "file=fat:rw:$work/$name,format=raw,if=virtio" "${extra[@]}" </dev/null >/dev/null 2>&1 || status=$?
  local ok=1
  [ "$status" = "$want" ] || { ok=0; echo "  QEMU exited $status, wanted $want"; }
  for t in "${texts[@]}"; do
    if [[ "$t" == re:* ]]; then # an extended regular expression
      grep -qaE -- "${t#re:}" "$log" || { ok=0; echo "  missing in the console: $t"; }
    else
      grep -qaF -- "$t" "$log" || { ok=0; echo "  missing in the console: $t"; }
    fi
  done
  if [ $ok = 1 ]; then
    echo "ok   $name"
    pass=$((pass + 1))
  else
    echo "FAIL $name (console: $log)"
    tr -d '\r' <"$log" | grep -av '^\s*$' | tail -40 | sed 's/^/  | /'
    failed=$((failed + 1))
  fi
}

for arch in "${arches[@]}"; do
  cargo build --release -q -p basalt-uefi-loader --target "$arch-unknown-uefi"
  if [ "$arch" = x86_64 ]; then
    esp x86-files x86_64 "$work/x86.elf" "$work/bundle.tar" "console=serial quiet"
    boot x86-files x86_64 33 "HANDOFF OK" "cmdline: console=serial quiet" "loader: UEFI EDK II" \
      "framebuffer: 0000000000000000 0000000000000000"
    # With a display adapter OVMF has a GOP: 1280x800, BGR, at 0xc0000000.
    esp x86-gop x86_64 "$work/x86.elf" "$work/bundle.tar"
    boot x86-gop x86_64 33 "HANDOFF OK" \
      "framebuffer: 00000000C0000000 00000000003E8000 0000032000000500 0000000100000500" -- -device VGA
    esp x86-16mib x86_64 "$work/x86big.elf" "$work/bundle.tar"
    # OVMF keeps 0x806000..0x900000 (ACPI NVS) and 0x900000..0x1500000
    # (boot services data) whatever the memory size: 16 MiB at 1 MiB does
    # not fit, and the loader must say who holds the range.
    boot x86-16mib x86_64 0 'basalt loader: the kernel must be loaded at 0x100000..0x1101000 but the firmware holds that memory'
    esp x86-16mib-at-32mib x86_64 "$work/x86big32.elf" "$work/bundle.tar"
    boot x86-16mib-at-32mib x86_64 33 "HANDOFF OK" "kernel: 0000000002000000 0000000001001000"
    embed x86_64 "$work/x86.elf" "from the payload" "$work/x86-embedded.efi"
    esp x86-embedded x86_64 "" "" "" "$work/x86-embedded.efi"
    boot x86-embedded x86_64 33 "HANDOFF OK" "cmdline: from the payload" "flags: 0000000000000003"
    # Started from the UEFI shell with arguments: they join the command line.
    esp x86-shell x86_64 "$work/x86.elf" "$work/bundle.tar" "console=serial"
    mv "$work/x86-shell/EFI/BOOT/BOOTX64.EFI" "$work/x86-shell/loader.efi"
    printf 'fs0:\\loader.efi basalt.extra=1 two\r\n' >"$work/x86-shell/startup.nsh"
    boot x86-shell x86_64 33 "HANDOFF OK" "cmdline: console=serial basalt.extra=1 two"
    esp x86-no-bundle x86_64 "$work/x86.elf"
    boot x86-no-bundle x86_64 0 'basalt loader: \basalt\kernel is on the boot partition but \basalt\bundle.tar is missing'
    esp x86-no-kernel x86_64 ""
    boot x86-no-kernel x86_64 0 'basalt loader: this loader found neither a .basalt section nor \basalt\kernel on the boot partition: was this made by basalt image?'
    esp x86-wrong-isa x86_64 "$work/arm.img" "$work/bundle.tar"
    boot x86-wrong-isa x86_64 0 'basalt loader: this image holds a kernel for aarch64 but this machine is x86_64: make the image with `basalt image --arch x86_64`'
    esp x86-truncated x86_64 "$work/x86-truncated.elf" "$work/bundle.tar"
    boot x86-truncated x86_64 0 'basalt loader: the kernel is truncated or corrupt'
  else
    esp arm-files aarch64 "$work/arm.img" "$work/bundle.tar" "console=serial quiet"
    boot arm-files aarch64 0 "HANDOFF OK" "EL: 0000000000000001" "cmdline: console=serial quiet" \
      "re:acpi dtb smbios systab: 0*[1-9A-F][0-9A-F]* 0{16} "
    # Without ACPI, AAVMF hands over the device tree instead.
    esp arm-dtb aarch64 "$work/arm.img" "$work/bundle.tar"
    boot arm-dtb aarch64 0 "HANDOFF OK" "re:acpi dtb smbios systab: 0{16} 0*[1-9A-F][0-9A-F]* " -- -machine acpi=off
    esp arm-el2 aarch64 "$work/arm.img" "$work/bundle.tar" "at EL2"
    boot arm-el2 aarch64 0 "HANDOFF OK" "EL: 0000000000000002" "cmdline: at EL2" -- -machine virtualization=on
    embed aarch64 "$work/arm.img" "from the payload" "$work/arm-embedded.efi"
    esp arm-embedded aarch64 "" "" "" "$work/arm-embedded.efi"
    boot arm-embedded aarch64 0 "HANDOFF OK" "cmdline: from the payload"
    esp arm-no-bundle aarch64 "$work/arm.img"
    boot arm-no-bundle aarch64 0 'basalt loader: \basalt\kernel is on the boot partition but \basalt\bundle.tar is missing'
    esp arm-wrong-isa aarch64 "$work/x86.elf" "$work/bundle.tar"
    boot arm-wrong-isa aarch64 0 'basalt loader: this image holds a kernel for x86_64 but this machine is aarch64: make the image with `basalt image --arch aarch64`'
    esp arm-truncated aarch64 "$work/arm-truncated.img" "$work/bundle.tar"
    boot arm-truncated aarch64 0 'basalt loader: the kernel is neither an ELF nor an arm64 Image'
  fi
done
echo "$pass passed, $failed failed"
[ "$failed" = 0 ]
