#!/usr/bin/env bash
# Runs the WebAssembly spec test suite through `basalt wast` (hosted, in
# process) and prints the README's conformance table: commands passed, failed
# and skipped per feature group. Groups follow the suite's README (file names).
#   scripts/spec-table.sh [SPEC_DIR]
# SPEC_DIR defaults to $BASALT_SPEC_TESTSUITE, then shared/testsuite/spec next
# to the repository (or next to its parent, for a worktree).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-${BASALT_SPEC_TESTSUITE:-}}
if [ -z "$dir" ]; then
  dir=../shared/testsuite/spec
  [ -d "$dir" ] || dir=../../shared/testsuite/spec
fi
[ -d "$dir" ] || { echo "spec suite not found at $dir" >&2; exit 1; }
cargo build --quiet -p basalt
basalt=target/debug/basalt

# The feature group of one script, by its file name.
group() {
  local f=${1%.wast}
  case $f in
    return_call*) echo "3.0 tail calls" ;;
    throw* | try_table* | tag* | exceptions*) echo "3.0 exception handling" ;;
    call_ref* | br_on_null* | br_on_non_null* | ref_as_non_null* | local_init*)
      echo "3.0 typed function references" ;;
    array* | struct* | i31* | ref_cast* | ref_test* | ref_eq* | type-* | extern* | binary-gc* | br_on_cast*)
      echo "3.0 GC" ;;
    relaxed_* | *_relaxed_*) echo "3.0 relaxed SIMD" ;;
    memory64* | *64) case $f in f64 | i64) echo "1.0/2.0 core (non-SIMD)" ;; *) echo "3.0 memory64" ;; esac ;;
    *multi*) echo "3.0 multiple memories" ;;
    simd_*) echo "2.0 SIMD" ;;
    *) echo "1.0/2.0 core (non-SIMD)" ;;
  esac
}

declare -A files
for path in "$dir"/*.wast; do
  g=$(group "$(basename "$path")")
  files[$g]+="$path"$'\n'
done
for path in "$dir"/legacy/*.wast; do
  [ -e "$path" ] && files["legacy exception handling"]+="$path"$'\n'
done

echo "| feature group | files | passed | failed | skipped |"
echo "|---|---:|---:|---:|---:|"
for g in "1.0/2.0 core (non-SIMD)" "2.0 SIMD" "3.0 tail calls" "3.0 memory64" \
  "3.0 multiple memories" "3.0 exception handling" "3.0 typed function references" \
  "3.0 GC" "3.0 relaxed SIMD" "legacy exception handling"; do
  list=${files[$g]:-}
  [ -n "$list" ] || continue
  mapfile -t paths <<<"${list%$'\n'}"
  total=$("$basalt" wast "${paths[@]}" | tail -n 1 || true)
  # total: P passed, F failed, S skipped (N file[s])
  read -r p f s n <<<"$(sed -E 's/^total: ([0-9]+) passed, ([0-9]+) failed, ([0-9]+) skipped \(([0-9]+) files?\)$/\1 \2 \3 \4/' <<<"$total")"
  echo "| $g | $n | $p | $f | $s |"
done
