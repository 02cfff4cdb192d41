#!/usr/bin/env python3
"""Runs a WASI preview1 command under wasmtime (the PyPI `wasmtime` package),
the anchor Basalt's code generation is compared with.

Prints one JSON line: {"compile_ms": ..., "run_ms": ..., "exit": ..., "wasmtime": version}
The program's stdout/stderr go to files given on the command line, so the
caller can check them against Basalt's output.

usage: wasmtime_run.py FILE.wasm STDOUT_FILE STDERR_FILE [ARGS...]
"""
import json
import sys
import time

import wasmtime


def main() -> int:
    path, out_path, err_path, *args = sys.argv[1:]
    engine = wasmtime.Engine(wasmtime.Config())
    t0 = time.perf_counter()
    module = wasmtime.Module.from_file(engine, path)
    t1 = time.perf_counter()
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    store = wasmtime.Store(engine)
    wasi = wasmtime.WasiConfig()
    wasi.argv = [path] + args
    wasi.stdout_file = out_path
    wasi.stderr_file = err_path
    store.set_wasi(wasi)
    instance = linker.instantiate(store, module)
    start = instance.exports(store)["_start"]
    code = 0
    t2 = time.perf_counter()
    try:
        start(store)
    except wasmtime.ExitTrap as e:
        code = e.code
    t3 = time.perf_counter()
    print(json.dumps({
        "compile_ms": (t1 - t0) * 1e3,
        "run_ms": (t3 - t2) * 1e3,
        "exit": code,
        "wasmtime": getattr(wasmtime, "__version__", "unknown"),
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
