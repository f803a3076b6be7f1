"""The open-loop schedule: due times, request counts, shard and process slots, round robin."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from kuar_loadgen.schedule import (
    due,
    expected_per_second,
    indices,
    slot_requests,
    slots,
    target_index,
    total_requests,
)


def test_request_i_is_due_at_i_over_rate() -> None:
    assert due(0, 1000) == 0.0
    assert due(1, 1000) == 0.001
    assert due(2500, 1000) == 2.5
    assert due(3, 2.0) == 1.5


def test_total_requests_counts_indices_due_strictly_before_the_end() -> None:
    assert total_requests(1000, 3) == 3000  # i = 0 .. 2999, the last due at 2.999 s
    assert total_requests(0.5, 3) == 2  # due at 0 s and 2 s; 4 s is past the end
    assert total_requests(3, 0.1) == 1  # request 0 is always due at t0
    # 0.1 * 30 is 3.0000000000000004 in floating point: still 3 requests.
    assert total_requests(0.1, 30) == 3
    assert total_requests(7, 1 / 7 * 7) == 7


@given(
    rate=st.floats(min_value=0.5, max_value=5000),
    duration=st.floats(min_value=0.01, max_value=20),
    shards=st.integers(min_value=1, max_value=7),
    processes=st.integers(min_value=1, max_value=5),
)
def test_slots_of_all_shards_and_processes_cover_every_request_exactly_once(
    rate: float, duration: float, shards: int, processes: int
) -> None:
    seen: list[int] = []
    for s in range(shards):
        for slot in slots(shard_index=s, shard_count=shards, processes=processes):
            mine = list(indices(rate, duration, slot))
            assert len(mine) == slot_requests(rate, duration, slot)
            assert mine == sorted(mine)
            seen.extend(mine)
    assert sorted(seen) == list(range(total_requests(rate, duration)))


def test_shard_slots_interleave_so_each_pod_spreads_its_share_evenly() -> None:
    [pod0] = slots(shard_index=0, shard_count=2, processes=1)
    [pod1] = slots(shard_index=1, shard_count=2, processes=1)
    assert list(indices(10, 1, pod0)) == [0, 2, 4, 6, 8]
    assert list(indices(10, 1, pod1)) == [1, 3, 5, 7, 9]
    p0, p1 = slots(shard_index=1, shard_count=2, processes=2)
    assert list(indices(10, 1, p0)) == [1, 5, 9]
    assert list(indices(10, 1, p1)) == [3, 7]


def test_round_robin_over_targets_follows_the_global_index() -> None:
    assert [target_index(i, 3) for i in range(7)] == [0, 1, 2, 0, 1, 2, 0]


def test_expected_per_second_spreads_the_total_over_the_seconds() -> None:
    assert expected_per_second(2000, 3) == [2000, 2000, 2000]
    assert expected_per_second(2.5, 2) == [3, 2]  # due at 0, 0.4, 0.8 | 1.2, 1.6
    assert expected_per_second(10, 1.5) == [10, 5]
    assert sum(expected_per_second(333.3, 7.7)) == total_requests(333.3, 7.7)
