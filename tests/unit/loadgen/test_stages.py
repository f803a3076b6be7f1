"""Rate profiles: linear ramps as an exact open-loop schedule, sharded exactly."""

from __future__ import annotations

import collections

import pytest

from kuar_loadgen.schedule import expected_per_second, slot_count, slots
from kuar_loadgen.spec import LoadSpec, SpecError, staged
from kuar_loadgen.stages import RateProfile, Stage, StageError, check_stages

RAMP = [Stage(3, 100), Stage(2, 1000), Stage(3, 1000), Stage(2, 0)]


def test_a_constant_profile_is_the_constant_schedule() -> None:
    profile = RateProfile.constant(1000, 3)
    assert profile.total == 3000
    assert [profile.due(i) for i in (0, 1, 2999)] == [0.0, 1 / 1000, 2999 / 1000]
    assert profile.expected_per_second() == expected_per_second(1000, 3)


def test_ramps_are_linear_and_due_times_follow_the_integral() -> None:
    profile = RateProfile(100, RAMP)
    # 300 + (100+1000)/2*2 + 3000 + 1000/2*2 = 5400
    assert profile.total == 5400 and profile.duration == 10 and profile.peak == 1000
    dues = [profile.due(i) for i in range(profile.total)]
    assert dues == sorted(dues) and dues[-1] < 10
    per_second = collections.Counter(int(d) for d in dues)
    assert [per_second[s] for s in range(10)] == profile.expected_per_second()
    assert profile.expected_per_second() == [100, 100, 100, 325, 775, 1000, 1000, 1000, 750, 250]
    assert profile.rate_at(4.0) == pytest.approx(550)
    assert profile.rate_at(9.5) == pytest.approx(250)


def test_a_pause_at_rate_zero_sends_nothing() -> None:
    profile = RateProfile(0, [Stage(2, 0), Stage(1, 10)])
    assert profile.total == 5
    assert all(2.0 <= profile.due(i) < 3.0 for i in range(profile.total))


def test_shards_and_processes_cover_every_staged_request_exactly_once() -> None:
    profile = RateProfile(100, RAMP)
    seen: list[int] = []
    for shard in range(7):
        for slot in slots(shard_index=shard, shard_count=7, processes=3):
            got = list(range(slot.offset, profile.total, slot.stride))
            assert len(got) == slot_count(profile.total, slot)
            seen += got
    assert sorted(seen) == list(range(profile.total))


@pytest.mark.parametrize(("start", "stages", "field"), [
    (0, [Stage(1, -5)], "stages[0].target"),
    (0, [Stage(0, 5)], "stages[0].duration"),
    (0, [Stage(1, 5), Stage(-1, 5)], "stages[1].duration"),
    (-1, [Stage(1, 5)], "startRate"),
    (0, [Stage(1, 0)], "sends no request"),
    (0, [], "at least one"),
    (0, [Stage(1, float("nan"))], "stages[0].target"),
])
def test_bad_stages_name_the_field(start: float, stages: list[Stage], field: str) -> None:
    with pytest.raises(StageError, match=field.replace("[", r"\[").replace("]", r"\]")):
        check_stages(start, stages)


def test_a_staged_spec_round_trips_and_the_worker_refuses_bad_ones() -> None:
    spec = staged([(3, 100), (2, 1000)], start_rate=100, urls=("http://127.0.0.1:1",))
    assert spec.duration == 5 and spec.rps == 1000
    assert LoadSpec.from_dict(spec.to_dict()) == spec
    assert spec.profile().total == 300 + 1100
    with pytest.raises(SpecError, match=r"stages\[0\].duration"):
        LoadSpec.from_dict({**spec.to_dict(), "stages": [[0, 10]], "duration": 0.000001})
    with pytest.raises(SpecError, match="duration: must be the stages' sum"):
        LoadSpec.from_dict({**spec.to_dict(), "duration": 9})
