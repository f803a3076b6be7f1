"""When each request is due, and which process of which pod sends it: the open-loop schedule.

Place in the pipeline: pure math used by :mod:`kuar_loadgen.worker` (its scheduler loop) and
:mod:`kuar_loadgen.runner` (which splits a pod's share among processes).

Guarantees:

- Request ``i`` of a run is due at ``t0 + i / rate`` (``rate`` is the *total* rate), whatever
  the responses do: the schedule never waits for the server (no coordinated omission).
- The run's requests are ``i = 0 .. total_requests(rate, duration) - 1``, i.e. all ``i`` with
  ``i / rate < duration``.
- Sharding partitions the indices: pod ``s`` of ``S`` takes ``i % S == s``; within it,
  process ``p`` of ``P`` takes every ``P``-th of those. The slots of all pods and processes
  are disjoint and cover every index exactly once, so the union is the single-process schedule.
- Request ``i`` goes to target ``i % len(targets)`` (round robin over the whole run, also across
  shards).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class Slot:
    """The indices one process issues: ``offset, offset + stride, offset + 2 * stride, ...``."""

    offset: int
    """First global index of this process."""
    stride: int
    """Distance between its consecutive indices (shards times processes)."""


def total_requests(rate: float, duration: float) -> int:
    """How many requests the whole run issues: the count of ``i`` with ``i / rate < duration``."""
    # Rounding first keeps 1000 * 3.0 == 3000.0000000004 from adding a request.
    return max(0, math.ceil(round(rate * duration, 6)))


def slots(*, shard_index: int, shard_count: int, processes: int) -> list[Slot]:
    """The slots of the processes of one shard (pod)."""
    stride = shard_count * processes
    return [Slot(offset=shard_index + shard_count * p, stride=stride) for p in range(processes)]


def slot_requests(rate: float, duration: float, slot: Slot) -> int:
    """How many requests a slot issues."""
    return slot_count(total_requests(rate, duration), slot)


def slot_count(total: int, slot: Slot) -> int:
    """How many of a run's ``total`` requests a slot issues (any rate profile)."""
    return 0 if slot.offset >= total else (total - 1 - slot.offset) // slot.stride + 1


def due(index: int, rate: float) -> float:
    """Seconds after ``t0`` at which global request ``index`` is due."""
    return index / rate


def indices(rate: float, duration: float, slot: Slot) -> Iterator[int]:
    """The global indices of a slot, in due order."""
    return iter(range(slot.offset, total_requests(rate, duration), slot.stride))


def target_index(index: int, n_targets: int) -> int:
    """Round robin: the target of global request ``index``."""
    return index % n_targets


def expected_per_second(rate: float, duration: float) -> list[int]:
    """How many requests are due in each whole second of the run (the ideal timeline)."""
    n = total_requests(rate, duration)
    seconds = math.ceil(round(duration, 6))
    out = [0] * seconds
    for sec in range(seconds):
        # i is in second sec when sec <= i / rate < sec + 1.
        lo = math.ceil(round(sec * rate, 6))
        hi = min(n, math.ceil(round((sec + 1) * rate, 6)))
        out[sec] = max(0, hi - lo)
    return out
