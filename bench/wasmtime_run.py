#!/usr/bin/env python3
"""Runs a WASI preview1 command under wasmtime (the PyPI `wasmtime` package),
the anchor Basalt's code generation is compared with.

Prints one JSON line: {"compile_ms": ..., "run_ms": ..., "exit": ..., "wasmtime": version}
The program's stdout/stderr go to files given on the command line, so the
caller can check them against Basalt's output.

usage: wasmtime_run.py [--epoch | --fuel N] FILE.wasm STDOUT_FILE STDERR_FILE [ARGS...]

--epoch compiles with epoch interruption (a deadline far away, never
reached); --fuel N with fuel metering and N units: the anchors of Basalt's
interrupt checks and `--fuel` (bench/metering.py).
"""
import json
import sys
import time

import wasmtime


def main() -> int:
    argv = sys.argv[1:]
    config = wasmtime.Config()
    epoch, fuel = False, None
    if argv and argv[0] == "--epoch":
        epoch, argv = True, argv[1:]
        config.epoch_interruption = True
    elif argv and argv[0] == "--fuel":
        fuel, argv = int(argv[1]), argv[2:]
        config.consume_fuel = True
    path, out_path, err_path, *args = argv
    engine = wasmtime.Engine(config)
    t0 = time.perf_counter()
    module = wasmtime.Module.from_file(engine, path)
    t1 = time.perf_counter()
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    store = wasmtime.Store(engine)
    if epoch:
        store.set_epoch_deadline(1 << 62)
    if fuel is not None:
        store.set_fuel(fuel)
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
