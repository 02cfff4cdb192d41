#!/usr/bin/env python3
"""Runs a WASI preview1 command under wasmtime (the PyPI `wasmtime` package),
the anchor Basalt's code generation is compared with.

Prints one JSON line: {"compile_ms": ..., "run_ms": ..., "exit": ..., "wasmtime": version}
The program's stdout/stderr go to files given on the command line, so the
caller can check them against Basalt's output.

usage: wasmtime_run.py [--epoch | --fuel N] FILE.wasm STDOUT_FILE STDERR_FILE [ARGS...]
       wasmtime_run.py [--epoch | --fuel N] --sightglass DIR STDOUT_FILE STDERR_FILE

--epoch compiles with epoch interruption (a deadline far away, never
reached); --fuel N with fuel metering and N units: the anchors of Basalt's
interrupt checks and `--fuel` (bench/metering.py).

--sightglass DIR runs DIR/benchmark.wasm with DIR preopened as `.` and the
`bench.start`/`bench.end` imports defined; the JSON then also has
"bench_ms", the span between those two calls.
"""
import json
import os
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
    sightglass = None
    if argv and argv[0] == "--sightglass":
        sightglass, argv = argv[1], argv[2:]
        argv = [os.path.join(sightglass, "benchmark.wasm")] + argv
    path, out_path, err_path, *args = argv
    engine = wasmtime.Engine(config)
    t0 = time.perf_counter()
    module = wasmtime.Module.from_file(engine, path)
    t1 = time.perf_counter()
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    span = {}
    if sightglass:
        unit = wasmtime.FuncType([], [])
        linker.define_func("bench", "start", unit, lambda: span.__setitem__("start", time.perf_counter()))
        linker.define_func("bench", "end", unit, lambda: span.__setitem__("end", time.perf_counter()))
    store = wasmtime.Store(engine)
    if epoch:
        store.set_epoch_deadline(1 << 62)
    if fuel is not None:
        store.set_fuel(fuel)
    wasi = wasmtime.WasiConfig()
    wasi.argv = [path] + args
    if sightglass:
        wasi.argv = ["benchmark.wasm"]
        wasi.preopen_dir(sightglass, ".")
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
    result = {
        "compile_ms": (t1 - t0) * 1e3,
        "run_ms": (t3 - t2) * 1e3,
        "exit": code,
        "wasmtime": getattr(wasmtime, "__version__", "unknown"),
    }
    if sightglass:
        if "start" not in span or "end" not in span:
            sys.exit("the benchmark never called bench.start and bench.end")
        result["bench_ms"] = (span["end"] - span["start"]) * 1e3
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
