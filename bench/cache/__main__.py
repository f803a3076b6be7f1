"""Informer cache benchmark: memory per cached object, ingest and read speed, per stored form.

Run: ``.venv/bin/python -m bench.cache [--objects 10000] [--rounds 3] [--variants ...]``

Place in the pipeline: beside ``bench.controller`` (whose ``kib_per_object`` row measures
the same cache through a real API server, with everything else a controller process holds);
this one isolates the cache, without a server, so its figures are stable on a busy machine.

What runs: the real watcher (:func:`kuar.runtime.watcher`) and store of ``kuar.runtime``,
fed by list pages of ``--objects`` BenchLoad objects (bench/controller's LoadTest-sized kind,
with the status, labels, annotation and two managedFields entries the API server gives
them) as JSON bytes, 500 per page, through a stand-in for ``Client.request`` (the transport
seam: ``json.loads`` of each page, as the transport does). For memory, each variant runs in
a fresh process, ``--rounds`` times, alternated (A B C / C B A); for speed, every variant
takes ``--rounds`` turns in one process, alternated the same way (so all see the same
machine load), after one warm-up turn. The table shows medians:

- ``dicts``: ``WatcherSettings(compact=False)``: plain ``json.loads`` dicts;
- ``interned``: ``compact=True, records=False``: dicts with interned keys and short strings
  (the stored form before decision 0022);
- ``records`` (the default): interned, and every repeated key set as a ``Record``;
- ``typed-interned`` / ``typed``: the same objects decoded into the typed ``BenchLoad``
  model (``records`` packs only the metadata the store keeps beside a typed object).

Figures per variant: RSS per object ((RSS after sync - RSS before) / N, after
``gc.collect()``), traced bytes per object (``tracemalloc``: what Python allocations the
stored objects keep, without allocator slack), where the traced bytes go (one walk over
the stored objects: containers, strings, numbers, the store's own entries), ingest objects
per CPU-second (list pages parsed, transformed, put in stored form, decoded and stored) and
reads per CPU-second of a reconcile's reads (``store.get`` + ``metadata.generation`` +
``status.observedGeneration`` + ``spec.service``, keys in shuffled order). The last line is
``kib_per_object=R traced_kib_per_object=T ingest_per_s=I reads_per_s=G
typed_reads_per_s=Y`` for the default (``records``; ``typed`` for the last).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from bench.controller.workload import RESOURCE, BenchLoad, body
from kuar.runtime import EventType, Store, WatchConfig, WatcherSettings, watcher
from kuar.runtime.objects import Record

VARIANTS: dict[str, tuple[bool, WatcherSettings]] = {
    # name: (typed, settings)
    "dicts": (False, WatcherSettings(compact=False)),
    "interned": (False, WatcherSettings(records=False)),
    "records": (False, WatcherSettings()),
    "typed-interned": (True, WatcherSettings(records=False)),
    "typed": (True, WatcherSettings()),
}
NS = "cached"
PAGE = 500


def served(i: int) -> dict[str, Any]:
    """Object ``i`` as the API server serves it after bench/controller's ``populate``."""
    obj = body(f"c-{i:05d}", i)
    meta = obj["metadata"]
    rng = random.Random(i)
    meta.update({
        "namespace": NS,
        "uid": f"{rng.getrandbits(32):08x}-{rng.getrandbits(16):04x}-"
               f"{rng.getrandbits(16):04x}-{rng.getrandbits(16):04x}-{rng.getrandbits(48):012x}",
        "resourceVersion": str(1000 + 2 * i),
        "generation": 1,
        "creationTimestamp": f"2026-11-30T03:{i // 600 % 60:02d}:{i // 10 % 60:02d}Z",
        "managedFields": [
            {"manager": "kuar", "operation": "Update", "apiVersion": RESOURCE.api_version,
             "time": "2026-11-30T03:00:00Z", "fieldsType": "FieldsV1",
             "fieldsV1": {"f:metadata": {
                "f:annotations": {".": {}, "f:bench.kuar.com/note": {}},
                "f:labels": {".": {}, "f:app": {}, "f:team": {},
                             "f:app.kubernetes.io/managed-by": {}}},
                          "f:spec": {".": {}, "f:duration": {}, "f:paths": {}, "f:port": {},
                                     "f:requestsPerSecond": {}, "f:scheme": {},
                                     "f:service": {}, "f:workers": {}}}},
            {"manager": "kuar", "operation": "Update", "apiVersion": RESOURCE.api_version,
             "time": "2026-11-30T03:00:00Z", "fieldsType": "FieldsV1",
             "subresource": "status",
             "fieldsV1": {"f:status": {".": {}, "f:conditions": {}, "f:observedGeneration": {},
                                       "f:phase": {}}}},
        ],
    })
    obj["status"] = {"observedGeneration": 1, "phase": "Running", "conditions": [{
        "type": "Ready", "status": "True", "reason": "Running", "message": "all workers running",
        "observedGeneration": 1, "lastTransitionTime": "2026-01-01T00:00:00Z"}]}
    return obj


def pages(n: int) -> list[bytes]:
    """The list answer in pages of ``PAGE`` objects, as JSON bytes."""
    out = []
    for start in range(0, n, PAGE):
        items = [served(i) for i in range(start, min(n, start + PAGE))]
        more = start + PAGE < n
        out.append(json.dumps({
            "apiVersion": RESOURCE.api_version, "kind": f"{RESOURCE.kind}List",
            "metadata": {"resourceVersion": "99999", **({"continue": str(start + PAGE)}
                                                       if more else {})},
            "items": items}, separators=(",", ":")).encode())
    return out


class PageSource:
    """Stands in for :class:`kuar.client.Client` at the transport seam: list pages only."""

    def __init__(self, data: list[bytes]) -> None:
        """Serve ``data`` (pages in order, chained by their continue tokens)."""
        self.data = data

    async def request(self, method: str, path: str, *, params: Any = None,
                      timeout: Any = None, **_: Any) -> Any:
        """One list page, decoded as the transport decodes it."""
        token = (params or {}).get("continue")
        return json.loads(self.data[int(token) // PAGE if token else 0])

    async def stream(self, path: str, **_: Any) -> AsyncIterator[dict[str, Any]]:
        """The watch after the list: never reached (the benchmark stops at INIT_DONE)."""
        raise AssertionError("not reached")
        yield {}  # pragma: no cover


def rss() -> int:
    """This process's resident set, bytes."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def ingest(data: list[bytes], typed: bool, settings: WatcherSettings) -> Store[Any]:
    """List every page through the watcher into a fresh store; returns it synced."""
    store: Store[Any] = Store()
    source: Any = PageSource(data)  # a Client at the seam the watcher uses
    events: Any = watcher(source, BenchLoad if typed else RESOURCE,
                          WatchConfig(namespace=NS), settings=settings)
    async for event in events:
        store.apply(event)
        if event.type is EventType.INIT_DONE:
            break
    await events.aclose()  # an async generator
    return store


def where(store: Store[Any]) -> dict[str, int]:
    """Bytes the stored objects reach, by kind, each object counted once (sys.getsizeof)."""
    seen: set[int] = set()
    sizes: dict[str, int] = {}

    def add(kind: str, obj: Any) -> bool:
        if id(obj) in seen:
            return False
        seen.add(id(obj))
        sizes[kind] = sizes.get(kind, 0) + sys.getsizeof(obj)
        return True

    def walk(value: Any) -> None:
        kind = type(value)
        if kind is dict:
            if add("dict", value):
                for k, v in value.items():
                    walk(k)
                    walk(v)
        elif kind is Record:
            if add("record", value):
                for k, v in value.items():
                    walk(k)
                    walk(v)
        elif kind is list:
            if add("list", value):
                for v in value:
                    walk(v)
        elif kind is str:
            add("str", value)
        elif kind is int or kind is float or kind is bool:
            if not (kind is int and -5 <= value <= 256) and kind is not bool:
                add("number", value)
        elif value is None:
            pass
        elif hasattr(value, "__pydantic_fields__"):
            if add("model", value):
                walk(value.__dict__)
                for extra in ("__pydantic_fields_set__", "__pydantic_extra__"):
                    part = getattr(value, extra, None)
                    if part is not None:
                        add("model", part)
        else:
            add(kind.__name__, value)

    # shared keys, shapes and interned values are counted once for all objects together
    for key in store.keys():  # noqa: SIM118 (a snapshot list)
        entry = store.cached(key)
        assert entry is not None
        add("store entry (Cached, views, key)", entry)
        add("store entry (Cached, views, key)", entry.meta)
        if not hasattr(entry.object, "__pydantic_fields__"):
            add("store entry (Cached, views, key)", entry.object)
            walk(entry.object._data)
        else:
            walk(entry.object)
        walk(entry.meta._data)
        add("store entry (Cached, views, key)", key)
    return sizes


def reads(store: Store[Any], typed: bool, seconds: float) -> float:
    """A reconcile's reads per CPU-second over the store, keys in shuffled order."""
    keys = store.keys()
    random.Random(1).shuffle(keys)
    done = 0
    started = time.process_time()
    while time.process_time() - started < seconds:
        if typed:
            for key in keys:
                obj: Any = store.get(key)
                _ = (obj.metadata.generation, obj.status.observed_generation, obj.spec.service)
        else:
            for key in keys:
                obj = store.get(key)
                _ = (obj.metadata.generation, obj.get("status").get("observedGeneration"),
                     obj.spec.get("service"))
        done += len(keys)
    return done / (time.process_time() - started)


def child(variant: str, folder: Path, read_seconds: float) -> dict[str, Any]:
    """One variant, in this (fresh) process, over the pages the parent wrote to ``folder``.

    The pages are read as bytes (no object of this process is built to make them, so none
    is freed before the measurement for the cache to reuse).
    """
    typed, settings = VARIANTS[variant]
    files = sorted(folder.glob("page-*.json"))
    data = [f.read_bytes() for f in files]
    small = [(folder / "warm-up.json").read_bytes()]
    n = int((folder / "count").read_text())
    # imports, shapes, first-use costs; kept, so its memory is not reused by the measured run
    warm = asyncio.run(ingest(small, typed, settings))
    gc.collect()
    before = rss()
    started = time.perf_counter()
    store = asyncio.run(ingest(data, typed, settings))
    took = time.perf_counter() - started
    assert len(store) == n, len(store)
    gc.collect()
    after = rss()
    del store  # its interned strings go with it: the traced run makes its own
    gc.collect()
    tracemalloc.start()
    traced_store = asyncio.run(ingest(data, typed, settings))
    gc.collect()
    traced = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    parts = where(traced_store)
    assert len(warm) == PAGE
    return {"variant": variant, "objects": n, "rss_per_object": (after - before) / n,
            "traced_per_object": traced / n, "first_ingest_per_s": n / took,
            "where": {k: v / n for k, v in parts.items()},
            "page_bytes": sum(map(len, data)) / n}


def speed(names: list[str], folder: Path, rounds: int, read_seconds: float
          ) -> dict[str, dict[str, list[float]]]:
    """Ingest and read rates of every variant, in one process, in alternated turns.

    Rates are per CPU-second of this process (``time.process_time``), so time spent waiting
    for a core on a shared machine does not count; turns of every variant inside one
    process (A B C / C B A ...) also see the same caches and load.
    """
    data = [f.read_bytes() for f in sorted(folder.glob("page-*.json"))]
    n = int((folder / "count").read_text())
    out: dict[str, dict[str, list[float]]] = {v: {"ingest": [], "reads": []} for v in names}
    for r in range(rounds + 1):
        for name in names if r % 2 == 0 else names[::-1]:
            typed, settings = VARIANTS[name]
            gc.collect()
            started = time.process_time()
            store = asyncio.run(ingest(data, typed, settings))
            took = time.process_time() - started
            read_rate = reads(store, typed, read_seconds)
            del store
            if r:  # round 0 warms up (imports, shapes, first-use costs)
                out[name]["ingest"].append(n / took)
                out[name]["reads"].append(read_rate)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3, help="runs of each variant")
    parser.add_argument("--read-seconds", type=float, default=1.0,
                        help="length of each turn of reads")
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help="comma-separated subset of: " + ", ".join(VARIANTS))
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--pages", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        if args.child == "speed":
            print(json.dumps(speed(args.variants.split(","), Path(args.pages), args.rounds,
                                   args.read_seconds)))
        else:
            print(json.dumps(child(args.child, Path(args.pages), args.read_seconds)))
        return
    names = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = set(names) - set(VARIANTS)
    if unknown:
        parser.error(f"unknown variants: {', '.join(sorted(unknown))}")
    load_before = os.getloadavg()[0]
    runs: dict[str, list[dict[str, Any]]] = {n: [] for n in names}
    with tempfile.TemporaryDirectory(prefix="kuar-bench-cache-") as tmp:
        folder = Path(tmp)
        for i, page in enumerate(pages(args.objects)):
            (folder / f"page-{i:05d}.json").write_bytes(page)
        (folder / "warm-up.json").write_bytes(pages(PAGE)[0])
        (folder / "count").write_text(str(args.objects))
        for r in range(args.rounds):
            for name in names if r % 2 == 0 else names[::-1]:
                out = subprocess.run(
                    [sys.executable, "-m", "bench.cache", "--child", name, "--pages", tmp,
                     "--read-seconds", str(args.read_seconds)],
                    capture_output=True, text=True, check=True)
                runs[name].append(json.loads(out.stdout.strip().splitlines()[-1]))
        out = subprocess.run(
            [sys.executable, "-m", "bench.cache", "--child", "speed", "--pages", tmp,
             "--variants", ",".join(names), "--rounds", str(args.rounds),
             "--read-seconds", str(args.read_seconds)],
            capture_output=True, text=True, check=True)
        rates = json.loads(out.stdout.strip().splitlines()[-1])
    for name in names:
        runs[name][0]["ingest_per_s"] = statistics.median(rates[name]["ingest"])
        runs[name][0]["reads_per_s"] = statistics.median(rates[name]["reads"])

    def med(name: str, key: str) -> float:
        return float(statistics.median(run[key] for run in runs[name] if key in run))

    first = runs[names[0]][0]
    print(f"bench/cache: {args.objects} BenchLoad objects of {first['page_bytes']:.0f} bytes of "
          f"JSON each as served (managedFields included; every variant drops them); "
          f"{args.rounds} runs of each variant, alternated (memory: a fresh process each; "
          f"speed: turns in one process); medians; load average "
          f"{load_before:.1f} at start, {os.getloadavg()[0]:.1f} at end")
    print(f"{'variant':<16}{'RSS B/object':>14}{'traced B/object':>17}"
          f"{'ingest objects/CPU-s':>22}{'reads/CPU-s':>13}")
    for name in names:
        print(f"{name:<16}{med(name, 'rss_per_object'):>14.0f}"
              f"{med(name, 'traced_per_object'):>17.0f}{med(name, 'ingest_per_s'):>22,.0f}"
              f"{med(name, 'reads_per_s'):>13,.0f}")
    print()
    print("where the traced bytes go (bytes per object, sys.getsizeof walk of the stored "
          "objects, shared objects counted once; first run):")
    kinds = sorted({k for name in names for k in runs[name][0]["where"]})
    print(f"{'':<34}" + "".join(f"{n:>16}" for n in names))
    for kind in kinds:
        print(f"{kind:<34}" + "".join(f"{runs[n][0]['where'].get(kind, 0):>16.0f}"
                                      for n in names))
    rest = {n: runs[n][0]["traced_per_object"] - sum(runs[n][0]["where"].values())
            for n in names}
    print(f"{'store tables, indexes (the rest)':<34}"
          + "".join(f"{rest[n]:>16.0f}" for n in names))
    default = "records" if "records" in runs else names[0]
    typed = "typed" if "typed" in runs else default
    print(f"kib_per_object={med(default, 'rss_per_object') / 1024:.2f} "
          f"traced_kib_per_object={med(default, 'traced_per_object') / 1024:.2f} "
          f"ingest_per_s={med(default, 'ingest_per_s'):.0f} "
          f"reads_per_s={med(default, 'reads_per_s'):.0f} "
          f"typed_reads_per_s={med(typed, 'reads_per_s'):.0f}")


if __name__ == "__main__":
    main()
