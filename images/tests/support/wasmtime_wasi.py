#!/usr/bin/env python3
"""Runs a WASI preview1 command under wasmtime (PyPI `wasmtime`) the way
the `wasmtime` CLI does: the standard streams inherited, the arguments
after the module as argv[1:], exception handling on; exits with the
program's exit code, 134 after a trap (as Basalt does).

usage: wasmtime_wasi.py [--dir HOST::GUEST]... FILE.wasm [ARGS...]
"""
import sys

import wasmtime


def main() -> int:
    argv = sys.argv[1:]
    config = wasmtime.Config()
    config.wasm_exceptions = True
    engine = wasmtime.Engine(config)
    wasi = wasmtime.WasiConfig()
    wasi.inherit_stdin()
    wasi.inherit_stdout()
    wasi.inherit_stderr()
    while argv and argv[0] == "--dir":
        host, guest = argv[1].split("::", 1)
        wasi.preopen_dir(host, guest)
        argv = argv[2:]
    path, *args = argv
    wasi.argv = [path] + args
    store = wasmtime.Store(engine)
    store.set_wasi(wasi)
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    module = wasmtime.Module.from_file(engine, path)
    instance = linker.instantiate(store, module)
    try:
        instance.exports(store)["_start"](store)
    except wasmtime.ExitTrap as e:
        return e.code
    except wasmtime.Trap as e:
        print(f"wasmtime: {e}", file=sys.stderr)
        return 134
    return 0


if __name__ == "__main__":
    sys.exit(main())
