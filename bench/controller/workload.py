"""The benchmark's kind (``BenchLoad``, LoadTest-sized) and the load the driver puts on it.

Place in the pipeline: used by ``bench.controller.__main__`` (the driver) to install the CRD,
create objects (a burst, a steady open-loop rate, a pre-reconciled population) and watch for
``status.observedGeneration`` to appear; the three controllers only read the objects.

Times are wall-clock (``time.time()``) so they compare with the controllers' own stamps
(the processes share one clock); ``creationTimestamp`` has only 1 s resolution, so the driver
records when each create request completed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from pydantic import Field

from kuar.client import AlreadyExists, Client, wait_crd_established
from kuar.client.transport import MERGE_PATCH
from kuar.resources import Conditions, CustomResource, KubeModel
from kuar.runtime import EventType, WatchConfig, WatcherSettings, watcher


class BenchLoadSpec(KubeModel):
    """The LoadTest spec's shape, so objects weigh what a LoadTest weighs."""

    service: str = Field(min_length=1, max_length=253)
    """The Service to send requests to."""
    scheme: Literal["http", "https"] = "http"
    """The URL scheme."""
    requests_per_second: int = Field(ge=1, le=1_000_000)
    """The total request rate."""
    paths: list[str] = Field(default=["/"], min_length=1, max_length=100)
    """URL paths requested in turn."""
    port: int | None = None
    """The port."""
    duration: str = "60s"
    """How long the test runs."""
    workers: int = 1
    """How many worker pods share the load."""


class BenchLoadStatus(KubeModel):
    """What the controller observed."""

    observed_generation: int | None = None
    """The ``metadata.generation`` the controller has seen: the benchmark's only output."""
    phase: str | None = None
    """Set by the driver on the pre-reconciled objects of the cache phase only."""
    conditions: Conditions | None = None
    """Likewise: one ``Ready`` condition, as a running LoadTest has."""


class BenchLoad(
    CustomResource,
    group="bench.kuar.com",
    version="v1",
    kind="BenchLoad",
    plural="benchloads",
    singular="benchload",
    scope="Namespaced",
):
    """A LoadTest-sized object for benchmarking controllers."""

    spec: BenchLoadSpec
    """The desired state (never read by the controllers)."""
    status: BenchLoadStatus | None = None
    """Written by the controllers through the status subresource."""


RESOURCE = BenchLoad.resource_info()


def body(name: str, i: int) -> dict[str, Any]:
    """One object as the driver creates it (~1 KiB JSON as served, without managedFields)."""
    return {
        "apiVersion": RESOURCE.api_version,
        "kind": RESOURCE.kind,
        "metadata": {
            "name": name,
            "labels": {"app": "shop", "team": "perf", "app.kubernetes.io/managed-by": "bench"},
            "annotations": {"bench.kuar.com/note": f"object {i} of the controller benchmark"},
        },
        "spec": {
            "service": f"my-service-{i % 50}",
            "scheme": "https",
            "requestsPerSecond": 1000 + i % 1000,
            "paths": ["/index.html", "/login.html", "/shares/my-shares/", "/api/v1/items"],
            "port": 8443,
            "duration": "5m",
            "workers": 4,
        },
    }


async def install_crd(client: Client) -> None:
    """Create the BenchLoad CRD (if missing) and wait until it is served."""
    # The driver's work only: the controllers import this module too, and an operator's
    # process does not generate CRDs (kuar loads the generator on first use).
    from kuar.resources import crd_for

    crd = crd_for(BenchLoad)
    with contextlib.suppress(AlreadyExists):
        await client.request(
            "POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", body=crd
        )
    await wait_crd_established(client, crd["metadata"]["name"])
    # Established can precede the first successful create by a moment; probe once.
    for _ in range(50):
        try:
            await client.request("GET", RESOURCE.path("default"), params={"limit": 1})
            return
        except Exception:
            await asyncio.sleep(0.1)


async def create_namespace(client: Client, name: str) -> None:
    """Create a namespace (no-op when it exists)."""
    with contextlib.suppress(AlreadyExists):
        await client.request("POST", "/api/v1/namespaces", body={
            "apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})


async def create(client: Client, ns: str, name: str, i: int) -> float:
    """Create one object; returns the wall-clock time the API server's answer arrived."""
    await client.request("POST", RESOURCE.path(ns), body=body(name, i))
    return time.time()


async def bounded(n: int, concurrency: int, job: Callable[[int], Awaitable[None]]) -> None:
    """Run ``job(0..n-1)`` with at most ``concurrency`` at once."""
    next_i = 0

    async def lane() -> None:
        nonlocal next_i
        while next_i < n:
            i = next_i
            next_i += 1
            await job(i)

    await asyncio.gather(*(lane() for _ in range(min(concurrency, n))))


async def populate(
    client: Client, ns: str, n: int, concurrency: int = 64
) -> tuple[int, int]:
    """Create ``n`` objects that are already reconciled (status written by the driver).

    Returns the JSON size of one object as served, with and without managedFields.
    """
    sizes = (0, 0)

    async def one(i: int) -> None:
        nonlocal sizes
        name = f"c-{i:05d}"
        created = await client.request("POST", RESOURCE.path(ns), body=body(name, i))
        gen = created["metadata"]["generation"]
        served = await client.request(
            "PATCH", RESOURCE.path(ns, name) + "/status", content_type=MERGE_PATCH,
            body={"status": {"observedGeneration": gen, "phase": "Running", "conditions": [{
                "type": "Ready", "status": "True", "reason": "Running",
                "message": "all workers running", "observedGeneration": gen,
                "lastTransitionTime": "2026-01-01T00:00:00Z"}]}},
        )
        if i == 0:
            full = len(json.dumps(served, separators=(",", ":")))
            served["metadata"].pop("managedFields", None)
            sizes = (full, len(json.dumps(served, separators=(",", ":"))))

    await bounded(n, concurrency, one)
    return sizes


class StatusWatch:
    """Watches one namespace and records when each object's status catches up.

    ``seen[name]`` is the wall-clock time of the first watch event whose
    ``status.observedGeneration`` equals ``metadata.generation``; ``arrived[name]`` that of the
    first event of the object at all (the API server's watch delivery, as a reference).
    """

    def __init__(self, client: Client, ns: str) -> None:
        """Prepare a watch of ``ns`` (start it with :meth:`start`)."""
        self.client = client
        self.ns = ns
        self.seen: dict[str, float] = {}
        self.arrived: dict[str, float] = {}
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start watching; returns once the initial list is in.

        kuar's :func:`~kuar.runtime.watcher` does the list + watch because it resumes after a
        disconnect: the API server closes watches that fall behind, which a busy driver can.
        """
        listed = asyncio.Event()
        self._task = asyncio.create_task(self._run(listed))
        waiter = asyncio.create_task(listed.wait())
        await asyncio.wait([waiter, self._task], return_when=asyncio.FIRST_COMPLETED)
        if not listed.is_set():
            waiter.cancel()
            self._task.result()
            raise RuntimeError("the status watch ended before listing")

    def _note(self, obj: Any, now: float) -> None:
        meta = obj.metadata
        status = obj.get("status") or {}
        name = meta.name
        if name not in self.arrived:
            self.arrived[name] = now
        if name not in self.seen and status.get("observedGeneration") == meta.generation:
            self.seen[name] = now
            self._changed.set()

    async def _run(self, listed: asyncio.Event) -> None:
        events = watcher(self.client, RESOURCE, WatchConfig(namespace=self.ns),
                         settings=WatcherSettings(compact=False))
        async for event in events:
            if event.type in (EventType.APPLY, EventType.INIT_APPLY):
                self._note(event.object, time.time())
            elif event.type is EventType.INIT_DONE:
                listed.set()

    async def wait_for(self, names: set[str] | list[str], timeout: float) -> bool:
        """Wait until every name in ``names`` is seen; ``False`` on timeout."""
        wanted = set(names)
        deadline = time.monotonic() + timeout
        while not wanted <= self.seen.keys():
            if self._task is not None and self._task.done():
                self._task.result()  # a failed watch raises here
                raise RuntimeError("the status watch ended")
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), min(left, 1.0))
        return True

    async def stop(self) -> None:
        """End the watch."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task


async def burst(
    client: Client, ns: str, n: int, concurrency: int, prefix: str = "b"
) -> tuple[float, dict[str, float]]:
    """Create ``n`` objects ``<prefix>-*`` with ``concurrency`` requests in flight.

    Returns the time just before the first request and each object's create-done time.
    """
    done: dict[str, float] = {}

    async def one(i: int) -> None:
        name = f"{prefix}-{i:05d}"
        done[name] = await create(client, ns, name, i)

    started = time.time()
    await bounded(n, concurrency, one)
    return started, done


async def steady(
    client: Client, ns: str, rate: float, seconds: float, prefix: str = "s"
) -> dict[str, float]:
    """Create objects ``<prefix>-*`` open loop at ``rate``/s for ``seconds``; create-done times.

    Request i is due at ``start + i / rate`` whether or not earlier ones have answered, so a
    slow answer never thins out the load.
    """
    n = int(rate * seconds)
    done: dict[str, float] = {}
    tasks: list[asyncio.Task[None]] = []

    async def one(i: int) -> None:
        name = f"{prefix}-{i:05d}"
        done[name] = await create(client, ns, name, i)

    start = time.monotonic()
    for i in range(n):
        delay = start + i / rate - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i)))
    await asyncio.gather(*tasks)
    return done
