#!/usr/bin/env bash
# Builds the example programs for wasm32-wasip1 and runs one in a Basalt VM:
#   scripts/run-example.sh hello
#   scripts/run-example.sh args-env a b --env-is-not-an-option-here
# Options for `basalt run` go in BASALT_RUN_FLAGS (e.g. "--verbose").
set -euo pipefail
cd "$(dirname "$0")/.."
name=${1:-hello}
shift || true
(cd examples && cargo build --quiet --release --target wasm32-wasip1 --target-dir ../target/examples)
# shellcheck disable=SC2086
exec cargo run --quiet -p basalt -- run ${BASALT_RUN_FLAGS:-} \
  "target/examples/wasm32-wasip1/release/${name}.wasm" "$@"
