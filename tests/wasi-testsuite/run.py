#!/usr/bin/env python3
"""Runs the official wasi-testsuite runner against Basalt.

usage: run.py [--runner DIR] [--scratch DIR] [RUNNER OPTIONS]

RUNNER OPTIONS are those of the runner's own entry point (`python -m
wasi_test_runner`): `-t SUITE...` (default: the preview1 Rust suite,
`$BASALT_WASI_TESTSUITE` or `../shared/testsuite/wasi/rust/wasm32-wasip1`
beside this checkout), `-r ADAPTER` (default: `basalt.py` beside this
file), `-e EXPECTATIONS.toml...`, `--json-output-location FILE`,
`--disable-colors`.

`--runner DIR` is the runner's checkout (default `$BASALT_WASI_RUNNER`, or
`../shared/testsuite/wasi/runner` beside this checkout). `--scratch DIR`
runs each suite from a copy made in DIR (fixture directories and JSON
copied, programs linked), as the programs write into their fixtures and
the runner deletes what they leave; without it the suite runs in place.

The runner needs Python 3.12 for one thing, `value in SomeEnum` answering
False for a non-member instead of raising; on an older Python this
script gives `enum` that behaviour before loading the runner. Its Python
dependencies are `colorama` and, for HTTP tests only, `requests`.
"""

import enum
import os
import shutil
import sys
from pathlib import Path
from typing import Any, List, Optional, Tuple

HERE = Path(__file__).resolve().parent
CHECKOUT = HERE.parents[1]


def _enum_contains(cls: Any, value: Any) -> bool:
    """`value in cls` as Python 3.12 answers it: a member, or a member's
    value."""
    if isinstance(value, cls):
        return True
    try:
        cls(value)
    except (ValueError, TypeError):
        return False
    return True


def _take_option(argv: List[str], name: str) -> Tuple[Optional[str], List[str]]:
    """Removes `name VALUE` (or `name=VALUE`) from `argv`; returns VALUE."""
    rest: List[str] = []
    found = None
    i = 0
    while i < len(argv):
        if argv[i] == name and i + 1 < len(argv):
            found = argv[i + 1]
            i += 2
            continue
        if argv[i].startswith(name + "="):
            found = argv[i][len(name) + 1:]
        else:
            rest.append(argv[i])
        i += 1
    return found, rest


def _suites(argv: List[str]) -> Tuple[List[str], int, int]:
    """The suite paths after `-t`/`--test-suite`, and their span in argv."""
    for i, arg in enumerate(argv):
        if arg in ("-t", "--test-suite"):
            end = i + 1
            while end < len(argv) and not argv[end].startswith("-"):
                end += 1
            return argv[i + 1:end], i + 1, end
    return [], len(argv), len(argv)


def _copy_suite(suite: Path, scratch: Path) -> Path:
    """A fresh copy of `suite` in `scratch`: programs linked, the rest
    copied (it keeps its folder name, from which the runner may take the
    WASI version)."""
    copy = scratch / suite.name
    if copy.exists():
        shutil.rmtree(copy)
    copy.mkdir(parents=True)
    for entry in suite.iterdir():
        if entry.name.endswith(".cleanup"):
            continue
        if entry.is_dir():
            shutil.copytree(entry, copy / entry.name, symlinks=True,
                            ignore=shutil.ignore_patterns("*.cleanup"))
        elif entry.suffix == ".wasm":
            (copy / entry.name).symlink_to(entry.resolve())
        else:
            shutil.copy2(entry, copy / entry.name)
    return copy


def main() -> int:
    """Prepares the arguments and hands over to the runner's `main`."""
    argv = sys.argv[1:]
    runner, argv = _take_option(argv, "--runner")
    scratch, argv = _take_option(argv, "--scratch")
    runner_dir = Path(runner or os.getenv("BASALT_WASI_RUNNER") or
                      CHECKOUT.parent / "shared/testsuite/wasi/runner")
    if not (runner_dir / "test-runner" / "wasi_test_runner").is_dir():
        print(f"run.py: no wasi-testsuite runner in {runner_dir} "
              "(give --runner DIR or set BASALT_WASI_RUNNER)", file=sys.stderr)
        return 2

    if "-r" not in argv and "--runtime-adapter" not in argv:
        argv += ["-r", str(HERE / "basalt.py")]
    suites, start, end = _suites(argv)
    if not suites:
        default = os.getenv("BASALT_WASI_TESTSUITE") or str(
            CHECKOUT.parent / "shared/testsuite/wasi/rust/wasm32-wasip1")
        suites, start, end = [default], len(argv) + 1, len(argv) + 1
        argv += ["-t"]
    if scratch:
        suites = [str(_copy_suite(Path(s).resolve(), Path(scratch)))
                  for s in suites]
    argv[start:end] = suites

    if sys.version_info < (3, 12):
        enum.EnumType.__contains__ = _enum_contains  # type: ignore[assignment]
    sys.path.insert(0, str(runner_dir / "test-runner"))
    try:
        # pylint: disable-next=import-outside-toplevel
        from wasi_test_runner.__main__ import main as runner_main
        # pylint: disable-next=import-outside-toplevel
        from wasi_test_runner.runtime_adapter import UnavailableRuntimeAdapterError
    except ImportError as e:
        print(f"run.py: cannot load the runner: {e} (its dependencies: "
              f"pip install -r {runner_dir}/test-runner/requirements.txt)",
              file=sys.stderr)
        return 2
    sys.argv = [str(runner_dir / "test-runner" / "wasi_test_runner")] + argv
    try:
        return int(runner_main())
    except UnavailableRuntimeAdapterError as e:
        print(f"run.py: the adapter {e.adapter_path} cannot run: {e.error}",
              file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
