"""The worker issues what is due, in due order, when a connection comes free; never early."""

from __future__ import annotations

import asyncio
import time
from typing import cast

from kuar_loadgen import LoadSpec
from kuar_loadgen._client import Connection, Pool, Request
from kuar_loadgen.recorder import Recorder
from kuar_loadgen.schedule import Slot
from kuar_loadgen.worker import _Worker


class Submitted:
    """Stands in for a pool: records what it is given."""

    def __init__(self) -> None:
        self.dues: list[float] = []

    def submit(self, req: Request) -> None:
        self.dues.append(req.due)


def test_issue_due_issues_every_due_request_of_its_slot_in_order_and_none_early() -> None:
    spec = LoadSpec(urls=("http://127.0.0.1:9/",), rps=1000.0, duration=1.0, processes=1)
    worker = _Worker(spec, Slot(offset=1, stride=2), lambda: 0.0, None, 0)
    pool = Submitted()
    t0 = time.monotonic() - 0.0205  # requests 0..20 are due; this slot has 1, 3, ..., 19
    plan = [(cast(Pool, pool), b"")]
    worker._plan, worker._t0, worker._count, worker._next_i = plan, t0, 500, 1
    before = time.monotonic()
    worker.issue_due()
    after = time.monotonic()
    assert pool.dues[:10] == [t0 + i / 1000 for i in range(1, 20, 2)]
    assert all(d <= after for d in pool.dues)
    assert worker.issued == len(pool.dues) >= 10
    # the first request not issued was not yet due when issue_due looked
    assert t0 + worker._next_i / 1000 > before


def test_a_connection_coming_free_with_nothing_waiting_asks_the_scheduler() -> None:
    loop = asyncio.new_event_loop()
    try:
        spec = LoadSpec(urls=("http://127.0.0.1:9/",), rps=1.0, duration=1.0, processes=1)
        pool = Pool(loop=loop, target=spec.targets()[0], ssl=None, max_connections=1,
                    timeout=1.0, recorder=Recorder(0.0))
        calls: list[int] = []
        pool.on_idle = lambda: calls.append(len(pool.idle))
        conn = cast(Connection, Submitted())  # release only hands it over, or keeps it idle
        pool.release(conn)
        assert calls == [1]  # asked once, with the connection already idle to take a request
    finally:
        loop.close()
