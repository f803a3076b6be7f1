"""What an idle kuar controller loads: RSS after each import, in a fresh interpreter.

Run: ``.venv/bin/python -m bench.controller.imports``

Imports, in order, what ``bench/controller/kuar_side.py`` imports (the idle row of
bench/controller), printing the RSS each adds (``/proc/self/statm``), then the floor: the
dependencies with one pydantic model defined (pydantic builds its machinery on the first
model) against the same plus kuar. Reading: docs/decisions/0022-memory-footprint.md.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys

STEPS = ("asyncio", "uvloop", "httptools", "yaml", "prometheus_client", "pydantic.main",
         "kuar.resources", "kuar.client", "kuar.runtime", "kuar.manager",
         "bench.controller.workload")
"""The imports of the controller process, in the order the table shows them."""


def rss_mib() -> float:
    """This process's resident set, MiB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def steps() -> None:
    """Import :data:`STEPS` one by one, printing what each adds."""
    prev = rss_mib()
    print(f"{'interpreter':<28}{prev:>8.1f} MiB")
    for name in STEPS:
        before = len(sys.modules)
        importlib.import_module(name)
        now = rss_mib()
        print(f"{name:<28}{now - prev:>+8.1f} MiB  total {now:6.1f}  "
              f"(+{len(sys.modules) - before} modules)")
        prev = now


def floor() -> None:
    """The dependencies alone (one pydantic model defined), then kuar on top."""
    import httptools  # noqa: F401
    import prometheus_client  # noqa: F401
    import pydantic
    import uvloop  # noqa: F401
    import yaml  # noqa: F401

    class One(pydantic.BaseModel):
        a: int = 1

    One(a=2)
    deps = rss_mib()
    importlib.import_module("kuar.manager")
    importlib.import_module("bench.controller.workload")
    print(f"dependencies with one pydantic model: {deps:.1f} MiB; with kuar too: "
          f"{rss_mib():.1f} MiB")


def main() -> None:
    if sys.argv[1:] == ["--floor"]:
        floor()
        return
    if sys.argv[1:] == ["--steps"]:
        steps()
        return
    for mode in ("--steps", "--floor"):  # each in a fresh interpreter
        subprocess.run([sys.executable, "-m", "bench.controller.imports", mode], check=True)


if __name__ == "__main__":
    main()
