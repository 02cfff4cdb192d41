#!/usr/bin/env bash
# Installs what a fresh Debian (bookworm) machine lacks to build and test Basalt:
# the Rust targets and components the toolchain file names, QEMU with its
# firmware from bookworm-backports (to match the qemu-utils already there), and
# what running the hosted runtime on AArch64 under emulation needs: the
# aarch64-unknown-linux-gnu target, a cross linker and libc, and user-mode QEMU
# (qemu-aarch64).
# Safe to run twice: every step checks before it changes anything.
set -euo pipefail

log() { printf '[setup] %s\n' "$*"; }

SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi

# --- Rust targets and components -------------------------------------------
# RUSTUP_AUTO_INSTALL=0 means rustup does not add the toolchain file's
# targets by itself, so add them explicitly for the pinned toolchain.
cd "$(dirname "$0")/.."
toolchain=$(sed -n 's/^channel *= *"\(.*\)"/\1/p' rust-toolchain.toml)
if ! rustup toolchain list | grep -q "^${toolchain}"; then
  log "installing Rust toolchain ${toolchain}"
  rustup toolchain install "${toolchain}" --profile minimal
fi
need_targets=""
installed_targets=$(rustup +"${toolchain}" target list --installed)
for t in x86_64-unknown-none aarch64-unknown-none x86_64-unknown-uefi aarch64-unknown-uefi aarch64-unknown-linux-gnu wasm32-wasip1 wasm32-wasip2; do
  grep -qx "$t" <<<"$installed_targets" || need_targets="$need_targets $t"
done
if [ -n "$need_targets" ]; then
  log "adding Rust targets:$need_targets"
  # shellcheck disable=SC2086
  rustup +"${toolchain}" target add $need_targets
fi
installed_components=$(rustup +"${toolchain}" component list --installed)
for c in rust-src llvm-tools clippy rustfmt; do
  if ! grep -q "^$c" <<<"$installed_components"; then
    log "adding Rust component $c"
    rustup +"${toolchain}" component add "$c"
  fi
done

# --- QEMU and firmware from bookworm-backports ------------------------------
# qemu-user holds the static user-mode emulators (qemu-aarch64) since QEMU 9.1;
# its recommended binfmt registration is left out: the cargo runner in
# .cargo/config.toml and the tests call qemu-aarch64 by name.
missing_pkgs() {
  local p
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || echo "$p"
  done
}
packages=(qemu-system-x86 qemu-system-arm ovmf qemu-efi-aarch64 qemu-utils u-boot-qemu)
mapfile -t missing < <(missing_pkgs "${packages[@]}")
mapfile -t missing_user < <(missing_pkgs qemu-user)
if [ ${#missing[@]} -gt 0 ] || [ ${#missing_user[@]} -gt 0 ]; then
  src=/etc/apt/sources.list.d/debian.sources
  if [ -f "$src" ] && ! grep -q 'bookworm-backports' "$src"; then
    log "adding bookworm-backports to $src"
    # Only the main Debian entry (the one whose Suites line lists 'bookworm ').
    $SUDO sed -i '0,/^Suites: bookworm bookworm-updates/s//Suites: bookworm bookworm-updates bookworm-backports/' "$src"
  fi
  $SUDO apt-get update -q
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]} from bookworm-backports"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q -t bookworm-backports "${missing[@]}"
  fi
  if [ ${#missing_user[@]} -gt 0 ]; then
    log "installing qemu-user from bookworm-backports"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends \
      -t bookworm-backports qemu-user
  fi
fi

# --- AArch64 Linux cross toolchain (bookworm) -------------------------------
mapfile -t missing_cross < <(missing_pkgs gcc-aarch64-linux-gnu libc6-dev-arm64-cross)
if [ ${#missing_cross[@]} -gt 0 ]; then
  log "installing ${missing_cross[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing_cross[@]}"
fi
# --- Tools basalt-disk's tests read images with ------------------------------
# fsck.fat (dosfstools), mtype/mlabel (mtools), sfdisk (fdisk), objdump
# (binutils), file; qemu-img comes with qemu-utils above.
mapfile -t missing_disk < <(missing_pkgs dosfstools mtools fdisk binutils file)
if [ ${#missing_disk[@]} -gt 0 ]; then
  log "installing ${missing_disk[*]}"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing_disk[@]}"
fi
# --- pip: the real-program corpus (images/tests/real_programs.rs) fetches ---
# zig and wasmtime, pinned, from PyPI into target/toolchains/.
if ! python3 -m pip --version >/dev/null 2>&1; then
  log "installing python3-pip"
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends python3-pip
fi
# --- The Raspberry Pi 4's device tree ----------------------------------------
# `basalt run --arch aarch64 --machine raspi4b` (and the aarch64_raspi4b test
# in tests/tests/boot_paths.rs) boots QEMU's raspi4b with the Pi's own device
# tree, as the Pi's firmware passes it: broadcom/bcm2711-rpi-4-b.dtb from
# Debian's arm64 kernel image package. Written against bookworm's
# linux-image-6.1.0-57-arm64 6.1.192-3 (what the linux-image-arm64
# meta-package depended on then); the script takes whichever kernel package
# the meta-package names now, downloads it (apt-get download, after adding
# arm64 as a foreign architecture: this apt indexes amd64 only) and unpacks
# the one file with dpkg-deb; nothing arm64 is installed. The package and
# version used are written beside it (.source).
pi_dtb=/usr/local/share/basalt/bcm2711-rpi-4-b.dtb
if [ ! -s "$pi_dtb" ]; then
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    log "adding arm64 as a foreign architecture (for apt-get download only)"
    $SUDO dpkg --add-architecture arm64
    $SUDO apt-get update -q
  fi
  pi_pkg=$(apt-cache depends linux-image-arm64:arm64 \
    | sed -n 's/^ *Depends: \(linux-image-[0-9][^:]*-arm64\)\(:arm64\)\{0,1\}$/\1/p' | head -1)
  if [ -z "$pi_pkg" ]; then
    $SUDO apt-get update -q
    pi_pkg=$(apt-cache depends linux-image-arm64:arm64 \
      | sed -n 's/^ *Depends: \(linux-image-[0-9][^:]*-arm64\)\(:arm64\)\{0,1\}$/\1/p' | head -1)
  fi
  pi_ver=$(apt-cache show "$pi_pkg:arm64" | sed -n 's/^Version: //p' | head -1)
  log "extracting bcm2711-rpi-4-b.dtb from $pi_pkg $pi_ver (arm64)"
  pi_tmp=$(mktemp -d)
  (cd "$pi_tmp" && apt-get download -q "$pi_pkg:arm64")
  dpkg-deb --fsys-tarfile "$pi_tmp"/"$pi_pkg"_*.deb \
    | tar -x -O --wildcards './usr/lib/linux-image-*/broadcom/bcm2711-rpi-4-b.dtb' >"$pi_tmp/pi.dtb"
  test -s "$pi_tmp/pi.dtb"
  $SUDO install -D -m 0644 "$pi_tmp/pi.dtb" "$pi_dtb"
  echo "$pi_pkg $pi_ver arm64: usr/lib/linux-image-*/broadcom/bcm2711-rpi-4-b.dtb" \
    | $SUDO tee "$pi_dtb.source" >/dev/null
  rm -rf "$pi_tmp"
fi
log "raspberry pi 4 device tree: $pi_dtb ($(cat "$pi_dtb.source" 2>/dev/null || echo 'source unknown'))"
log "qemu: $(qemu-system-x86_64 --version | head -1)"
log "qemu-user: $(qemu-aarch64 --version | head -1)"
log "cross linker: $(aarch64-linux-gnu-gcc --version | head -1)"
log "done"
