"""Runtime overhead benchmark: CPU per reconcile and per watch event, without an API server.

Run: ``.venv/bin/python -m bench.runtime [--baseline main] [--keys 2000] [--rounds 5]
[--runs 3]``

Place in the pipeline: beside ``bench.controller`` (whose ``cpu_ms_per_object`` is the whole
controller process against a real API server); this one isolates what the runtime itself
adds per object, in-process, so its figures hold on a busy machine.

What runs: a real :class:`kuar.runtime.Controller`, built by ``controller_for`` over
bench/controller's ``BenchLoad`` kind (read-only views, the default stored form) in a fresh
:class:`CollectorRegistry`, with 10 workers and a no-op reconciler. Its informer's client is
a stand-in at the transport seam (the list page and the watch lines come as decoded JSON,
as the transport hands them over), holding ``--keys`` objects. Two figures, each the CPU of
this process (``time.process_time``) divided by the keys:

- **reconcile**: ``controller.enqueue`` of every key, then the workers drain them: queue add,
  get, the reconcile wrapper (reconcile id, log context, timeout check, result handling,
  ``forget`` of the rate limiter), metrics, done. No reconcile waits, so this is the
  runtime's own path and nothing else;
- **watch event**: one ``MODIFIED`` line per object (a new resourceVersion and status, as
  a status write causes), through the watcher (counting, the stored form, the view), the
  store (replace, indexes), the informer's fan-out, the controller's handler and queue add.
  The lines are decoded before the clock starts; the reconciles they cause run after it
  stops (and are not counted).

Each process also renders the metrics after a fixed scenario (:func:`scrape`); with a
baseline, the run fails unless both variants' texts are equal (run-dependent values masked).

Variants: ``after`` is this tree; ``before`` is ``--baseline`` (a git ref, exported with
``git archive`` to a temporary folder and put first on ``PYTHONPATH``). Each variant runs in
a fresh process, ``--runs`` times, alternated (A B / B A ...); each process runs one warm-up
round and ``--rounds`` measured rounds of both figures and reports their medians; the table
shows the median over processes with [min, max], and after/before ratios. The last line is
``reconcile_us=R watch_event_us=W`` for this tree, then (with a baseline)
``reconcile_ratio_vs_before=`` and ``watch_event_ratio_vs_before=``.
"""

from __future__ import annotations

import argparse
import asyncio
import difflib
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import AsyncIterator
from io import BytesIO
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
NS = "bench"
WORKERS = 10


class Source:
    """Stands in for :class:`kuar.client.Client` at the transport seam: one list, one watch.

    The list answer holds every object; the watch stream hands out the batches put on
    :attr:`batches` (already decoded lines) and records the CPU each batch took to pass
    through the watcher, store, informer and handlers: the stream is asked for its next line
    only once the previous one went all the way through.
    """

    def __init__(self, page: bytes) -> None:
        """Serve ``page`` (the list answer, JSON) to the informer's list."""
        self.page = page
        self.batches: asyncio.Queue[list[dict[str, Any]]] = asyncio.Queue()
        self.took: asyncio.Queue[float] = asyncio.Queue()

    async def request(self, method: str, path: str, **_: Any) -> Any:
        """The list page, decoded as the transport decodes it."""
        return json.loads(self.page)

    async def stream(self, path: str, **_: Any) -> AsyncIterator[dict[str, Any]]:
        """The watch: each batch's lines in turn; then the CPU they took goes to :attr:`took`."""
        while True:
            batch = await self.batches.get()
            started = time.process_time()
            for line in batch:
                yield line
            self.took.put_nowait(time.process_time() - started)


def listed(n: int) -> bytes:
    """The list answer: ``n`` BenchLoads as the API server serves them (managedFields too)."""
    from bench.cache.__main__ import served

    items = []
    for i in range(n):
        obj = served(i)
        obj["metadata"]["namespace"] = NS
        items.append(obj)
    return json.dumps({"apiVersion": "bench.kuar.com/v1", "kind": "BenchLoadList",
                       "metadata": {"resourceVersion": "100000"}, "items": items}).encode()


def modified(page: bytes, turn: int) -> list[bytes]:
    """One ``MODIFIED`` watch line per listed object: a new resourceVersion and status."""
    items = json.loads(page)["items"]
    lines = []
    for i, obj in enumerate(items):
        obj["metadata"]["resourceVersion"] = str(200000 + turn * len(items) + i)
        obj["status"]["observedGeneration"] = 2 + turn
        lines.append(json.dumps({"type": "MODIFIED", "object": obj}).encode())
    return lines


async def measure(n: int, rounds: int) -> dict[str, list[float]]:
    """Both figures, ``rounds`` times after one warm-up round, in µs of CPU per key."""
    from prometheus_client import CollectorRegistry

    from bench.controller.workload import RESOURCE
    from kuar.runtime import (
        ControllerSettings,
        InformerCache,
        RateLimiterSettings,
        Request,
        WatchConfig,
        controller_for,
    )

    page = listed(n)
    source = Source(page)
    registry = CollectorRegistry()
    cache = InformerCache(source, registry=registry)  # type: ignore[arg-type] # the seam
    reconciled = 0
    target = 0
    drained = asyncio.Event()

    async def reconcile(request: Request) -> None:
        nonlocal reconciled
        reconciled += 1
        if reconciled == target:
            drained.set()

    controller = (
        controller_for(RESOURCE, WatchConfig(namespace=NS), cache=cache)
        .with_registry(registry)
        .with_settings(ControllerSettings(
            max_concurrent_reconciles=WORKERS,
            rate_limiter=RateLimiterSettings(qps=1e6, burst=1 << 20)))
        .build(reconcile)
    )
    target = n  # the initial list's adds
    running = asyncio.get_running_loop().create_task(controller.run())
    await asyncio.wait_for(drained.wait(), 120)
    keys = [Request(NS, f"c-{i:05d}") for i in range(n)]
    out: dict[str, list[float]] = {"reconcile_us": [], "watch_event_us": []}
    for turn in range(rounds + 1):
        # reconcile: enqueue every key, let the workers drain them
        drained.clear()
        target = reconciled + n
        started = time.process_time()
        controller.enqueue(keys)
        await drained.wait()
        took = time.process_time() - started
        # watch event: one decoded MODIFIED line per object to the store and the queue
        lines = [json.loads(line) for line in modified(page, turn)]
        drained.clear()
        target = reconciled + n
        source.batches.put_nowait(lines)
        watch_took = await source.took.get()
        await drained.wait()
        if turn:  # turn 0 warms up (first-use costs, shapes)
            out["reconcile_us"].append(took / n * 1e6)
            out["watch_event_us"].append(watch_took / n * 1e6)
    controller.stop()
    await running
    await cache.stop()
    return out


async def scrape() -> str:
    """The metrics text after a fixed scenario touching every runtime metric (a manual clock).

    Five objects listed and reconciled (one success, one failure then success, one terminal
    error, one ``requeue(after=30)``, one ``requeue()`` then success), then one watch line for
    each (four ``MODIFIED``, one ``DELETED``) and their reconciles. Only the reconciles'
    real durations (``controller_runtime_reconcile_time_seconds``: its sum and its buckets
    below +Inf, as a slow moment can move one past 5 ms) and the ``_created`` stamps vary from
    run to run; :func:`normalized` masks them.
    """
    from prometheus_client import CollectorRegistry, generate_latest

    from bench.controller.workload import RESOURCE
    from kuar.runtime import (
        InformerCache,
        ManualClock,
        Request,
        Result,
        TerminalError,
        WatchConfig,
        controller_for,
    )

    page = listed(5)
    source = Source(page)
    registry = CollectorRegistry()
    clock = ManualClock()
    cache = InformerCache(source, registry=registry, clock=clock)  # type: ignore[arg-type]
    calls: list[str] = []

    async def reconcile(request: Request) -> Result | None:
        calls.append(request.name)
        first = calls.count(request.name) == 1
        if request.name == "c-00001" and first:
            raise RuntimeError("failing once, on purpose")
        if request.name == "c-00002":
            raise TerminalError("always, on purpose")
        if request.name == "c-00003":
            return Result.requeue(30)
        if request.name == "c-00004" and first:
            return Result.requeue()
        return None

    async def until(count: int) -> None:
        for _ in range(10_000):
            if len(calls) >= count:
                return
            await asyncio.sleep(0)
        raise AssertionError(f"{len(calls)} reconciles, expected {count}: {calls}")

    controller = (controller_for(RESOURCE, WatchConfig(namespace=NS), cache=cache)
                  .with_registry(registry).with_clock(clock).build(reconcile))
    running = asyncio.get_running_loop().create_task(controller.run())
    await until(5)
    await clock.advance(0.01)  # the failure's and the requeue()'s retries (5 ms backoff)
    await until(7)
    lines = [json.loads(line) for line in modified(page, 0)]
    lines[4]["type"] = "DELETED"
    source.batches.put_nowait(lines)
    await source.took.get()
    await until(12)
    await clock.advance(0.01)
    for _ in range(100):
        await asyncio.sleep(0)
    text = generate_latest(registry).decode()
    controller.stop()
    await running
    await cache.stop()
    return text


def normalized(text: str) -> list[str]:
    """``text``'s lines with the values that vary between runs masked."""
    out = []
    for line in text.splitlines():
        name = line.split("{", 1)[0].split(" ", 1)[0]
        timed = name.startswith("controller_runtime_reconcile_time_seconds") and (
            not name.endswith("_count") and 'le="+Inf"' not in line)
        if not line.startswith("#") and (name.endswith("_created") or timed):
            line = line.rsplit(" ", 1)[0] + " <masked>"
        out.append(line)
    return out


def child(n: int, rounds: int) -> dict[str, Any]:
    """One process's figures (medians of its rounds) and which kuar it imported."""
    import kuar

    try:
        import uvloop
    except ImportError:
        runs = asyncio.run(measure(n, rounds))
    else:  # as bench.controller's kuar side runs
        runs = uvloop.run(measure(n, rounds))
    return {"kuar": kuar.__file__, "scrape": asyncio.run(scrape()),
            **{k: statistics.median(v) for k, v in runs.items()}}


def export(ref: str, folder: Path) -> Path:
    """``ref``'s ``src/`` (from ``git archive``) in ``folder``; returns the folder to import."""
    data = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "src"], check=True,
                          capture_output=True).stdout
    with tarfile.open(fileobj=BytesIO(data)) as tar:
        tar.extractall(folder, filter="data")
    return folder / "src"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=2000, help="objects (keys) per round")
    parser.add_argument("--rounds", type=int, default=5, help="measured rounds per process")
    parser.add_argument("--runs", type=int, default=3, help="processes per variant")
    parser.add_argument("--baseline", default="main",
                        help="git ref of the 'before' variant ('' for none)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.keys, args.rounds)))
        return
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="kuar-bench-runtime-") as tmp:
        paths = {"after": ""}
        if args.baseline:
            paths = {"before": str(export(args.baseline, Path(tmp))), **paths}
        names = list(paths)
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
        for r in range(args.runs):
            for name in names if r % 2 == 0 else names[::-1]:
                env = dict(os.environ)
                if paths[name]:
                    env["PYTHONPATH"] = os.pathsep.join(
                        p for p in (paths[name], env.get("PYTHONPATH", "")) if p)
                out = subprocess.run(
                    [sys.executable, "-m", "bench.runtime", "--child", "--keys", str(args.keys),
                     "--rounds", str(args.rounds)],
                    cwd=ROOT, env=env, capture_output=True, text=True)
                if out.returncode != 0:
                    sys.exit(f"{name} failed:\n{out.stderr[-3000:]}")
                result = json.loads(out.stdout.strip().splitlines()[-1])
                if paths[name] and not result["kuar"].startswith(paths[name]):
                    sys.exit(f"{name} imported {result['kuar']}, not {paths[name]}")
                runs[name].append(result)

    def med(name: str, key: str) -> float:
        return float(statistics.median(run[key] for run in runs[name]))

    def cell(name: str, key: str) -> str:
        values = [run[key] for run in runs[name]]
        return f"{med(name, key):.2f} [{min(values):.2f}, {max(values):.2f}]"

    print(f"bench/runtime: {args.keys} keys, {WORKERS} workers, no-op reconciler; "
          f"{args.runs} processes per variant, alternated, each the median of {args.rounds} "
          f"rounds; medians [min, max] of CPU µs per key; load average {load_before:.1f} at "
          f"start, {os.getloadavg()[0]:.1f} at end"
          + (f"; before = {args.baseline}" if args.baseline else ""))
    print(f"{'variant':<10}{'reconcile µs':>26}{'watch event µs':>26}")
    for name in names:
        print(f"{name:<10}{cell(name, 'reconcile_us'):>26}{cell(name, 'watch_event_us'):>26}")
    last = (f"reconcile_us={med('after', 'reconcile_us'):.2f} "
            f"watch_event_us={med('after', 'watch_event_us'):.2f}")
    if "before" in runs:
        before, after = normalized(runs["before"][0]["scrape"]), normalized(
            runs["after"][0]["scrape"])
        if before != after:
            print("\n".join(difflib.unified_diff(before, after, "before", "after", lineterm="")))
            sys.exit("the metrics exposition differs from the baseline's")
        print(f"metrics exposition after a fixed scenario: identical to before ({len(after)} "
              f"lines; _created stamps and reconcile-time sums and buckets masked)")
        ratios = {k: med("after", k) / med("before", k)
                  for k in ("reconcile_us", "watch_event_us")}
        print(f"{'after/before':<10}{ratios['reconcile_us']:>26.2f}"
              f"{ratios['watch_event_us']:>26.2f}")
        last += (f" reconcile_ratio_vs_before={ratios['reconcile_us']:.3f}"
                 f" watch_event_ratio_vs_before={ratios['watch_event_us']:.3f}")
    print(last)


if __name__ == "__main__":
    main()
