"""Basalt's runtime adapter for the official wasi-testsuite runner.

The runner loads this file as a module (see the runner's
`doc/adapters.md`) and asks it who the runtime is, which WASI versions and
worlds it runs, and, for each test, the command line that runs the test's
program with its arguments, environment and preopened root directory.
That command is `basalt run`, with the options Basalt's README documents.

Environment variables that steer it:

- `BASALT_BIN`: the `basalt` binary. Otherwise `target/release/basalt` or
  `target/debug/basalt` of the checkout this file is in (whichever is
  newer), else `basalt` on `PATH`.
- `BASALT_ADAPTER_MODE`: `hosted` (default; `basalt run --hosted`, the
  runtime in the `basalt` process on Linux) or `vm` (each test boots its
  own Basalt VM in QEMU).
- `BASALT_ADAPTER_ARGS`: more `basalt run` options, split as a shell
  would, placed before the adapter's own (e.g. `--arch aarch64`, `--accel
  tcg`, `--dir-mode copy`).
- `BASALT_ADAPTER_TIMEOUT`: seconds the runner waits for one test before
  it counts as hung (default 60 hosted, 300 in a VM). `basalt` itself is
  told to stop the program a little earlier, so a VM never outlives its
  test.
"""

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional, Tuple

# The WASI versions whose suites Basalt runs: preview1. The runner has
# suites for `wasm32-wasip1` and `wasm32-wasip3` only (none for WASI 0.2,
# which `basalt run` runs: wasmtime's own WASI 0.2 programs are run by
# `images/tests/wasmtime_p2.rs`); WASI 0.3 is not supported yet, so the
# runner skips the preview3 suites.
_WASI_VERSIONS = ["wasm32-wasip1"]

# The worlds Basalt runs: commands. `wasi:http/service` (a program the
# runtime serves HTTP requests to, `wasmtime serve`) is not offered, so
# the runner skips tests of that world.
_WASI_WORLDS = ["wasi:cli/command"]

# The proposals (the `proposals` of a test's JSON) Basalt has for the
# versions above: none. `sockets` and `http` tests are written for
# preview3, whose suites are skipped by version already; a test of a
# supported version that asks for one of them fails with a message saying
# so, since the runner has no way to skip by proposal.
_PROPOSALS: List[str] = []

_MODES = ("hosted", "vm")


def _mode() -> str:
    mode = os.getenv("BASALT_ADAPTER_MODE", "hosted")
    if mode not in _MODES:
        raise ValueError(
            f"BASALT_ADAPTER_MODE is `{mode}`; it wants one of {', '.join(_MODES)}")
    return mode


def _basalt() -> str:
    """The `basalt` binary: `BASALT_BIN`, the checkout's build, or `PATH`."""
    given = os.getenv("BASALT_BIN")
    if given:
        return given
    target = Path(os.getenv("CARGO_TARGET_DIR") or
                  Path(__file__).resolve().parents[2] / "target")
    built = [p for p in (target / "release" / "basalt",
                         target / "debug" / "basalt") if p.is_file()]
    if built:
        return str(max(built, key=lambda p: p.stat().st_mtime))
    on_path = shutil.which("basalt")
    if on_path:
        return on_path
    # The runner reports the adapter as unavailable when running this fails.
    raise FileNotFoundError(
        "no basalt binary: set BASALT_BIN, or `cargo build -p basalt`")


def _extra_args() -> List[str]:
    return shlex.split(os.getenv("BASALT_ADAPTER_ARGS", ""))


def get_name() -> str:
    """The runtime's name, as the runner's reports show it."""
    return "basalt" if _mode() == "hosted" else "basalt-vm"


def get_version() -> str:
    """`basalt --version`'s version number."""
    result = subprocess.run([_basalt(), "--version"], encoding="UTF-8",
                            capture_output=True, check=True)
    # "basalt 0.1.0"
    return result.stdout.split()[-1]


def get_wasi_versions() -> List[str]:
    """The WASI versions whose suites Basalt runs."""
    return list(_WASI_VERSIONS)


def get_wasi_worlds() -> List[str]:
    """The worlds whose tests Basalt runs."""
    return list(_WASI_WORLDS)


def get_timeout_seconds() -> float:
    """How long the runner waits for one test's program to end."""
    given = os.getenv("BASALT_ADAPTER_TIMEOUT")
    if given:
        return float(given)
    return 60.0 if _mode() == "hosted" else 300.0


def compute_argv(test_path: str,
                 args_env_root: Tuple[List[str], Dict[str, str], Optional[str]],
                 proposals: List[str],
                 wasi_world: str,
                 wasi_version: str) -> List[str]:
    """The command that runs the test program `test_path` as asked."""
    args, env, root = args_env_root
    missing = [p for p in proposals if p not in _PROPOSALS]
    problems = []
    if missing:
        problems.append(f"the proposals {', '.join(missing)}")
    if wasi_world not in _WASI_WORLDS:
        problems.append(f"the world {wasi_world}")
    if wasi_version not in _WASI_VERSIONS:
        problems.append(f"WASI version {wasi_version}")
    if problems:
        # Report it as the test's failure rather than end the whole run.
        message = f"basalt adapter: Basalt lacks {' and '.join(problems)}"
        return [sys.executable, "-c",
                f"import sys; sys.exit({message!r})"]

    argv = [_basalt(), "run"]
    if _mode() == "hosted":
        argv.append("--hosted")
    argv += _extra_args()
    # Stop the program before the runner gives up on it: in a VM `basalt`
    # then ends QEMU itself (the runner's kill could not).
    deadline = max(get_timeout_seconds() - 10.0, 1.0)
    argv += ["--timeout", f"{deadline:g}"]
    for name, value in env.items():
        argv += ["--env", f"{name}={value}"]
    if root:
        argv += ["--dir", f"{root}::/"]
    argv.append(test_path)
    argv += args
    return argv
