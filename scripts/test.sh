#!/usr/bin/env bash
# Runs every check and test: formatting, clippy on the host and bare-metal
# targets, then the test suite (unit tests, hosted runtime tests, the spec
# suite, and boot tests that start the real kernel in QEMU).
set -euo pipefail
cd "$(dirname "$0")/.."
step() { printf '\n[test] %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all --check
(cd examples && cargo fmt --all --check)

step "clippy: host crates"
cargo clippy --workspace --exclude basalt-kernel --exclude basalt-arch --exclude basalt-uefi-loader --all-targets -- -D warnings
step "clippy: kernel for x86_64-unknown-none"
cargo clippy -p basalt-kernel -p basalt-arch -p basalt-drivers --target x86_64-unknown-none -- -D warnings
step "clippy: kernel for aarch64-unknown-none"
cargo clippy -p basalt-kernel -p basalt-arch -p basalt-drivers --target aarch64-unknown-none -- -D warnings

step "clippy: UEFI loader for x86_64-unknown-uefi"
cargo clippy -p basalt-uefi-loader --target x86_64-unknown-uefi -- -D warnings
step "clippy: UEFI loader for aarch64-unknown-uefi"
cargo clippy -p basalt-uefi-loader --target aarch64-unknown-uefi -- -D warnings

step "cargo test"
cargo test --workspace --exclude basalt-kernel --exclude basalt-arch --exclude basalt-uefi-loader "$@"
