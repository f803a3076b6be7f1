"""The recorder's bucket counts make exactly the histogram HdrHistogram.record_value makes."""

from __future__ import annotations

import random

from kuar_loadgen.recorder import Recorder, bucket_of, histogram_of
from kuar_loadgen.result import HIGHEST_US, new_histogram

T0 = 1000.0


def test_bucket_counts_give_the_same_histogram_as_recording_each_value() -> None:
    rng = random.Random(7)
    values = [0, 1, 2047, 2048, 2049, 4095, 4096, 10**6 + 1, HIGHEST_US]
    values += [int(rng.lognormvariate(7, 2.5)) for _ in range(20_000)]
    values = [v for v in values if v <= HIGHEST_US]
    direct = new_histogram()
    counts: dict[int, int] = {}
    for v in values:
        direct.record_value(v)
        key = bucket_of(v)
        assert key <= v and direct.get_lowest_equivalent_value(v) == key
        counts[key] = counts.get(key, 0) + 1
    ours = histogram_of(counts)
    assert ours.encode() == direct.encode()
    assert ours.get_total_count() == len(values)
    for p in (0.0, 50.0, 90.0, 99.0, 99.9, 100.0):
        assert ours.get_value_at_percentile(p) == direct.get_value_at_percentile(p)
    assert (ours.get_min_value(), ours.get_max_value(), ours.get_mean_value()) == (
        direct.get_min_value(), direct.get_max_value(), direct.get_mean_value())


def test_the_result_percentiles_are_those_of_every_latency_and_lateness() -> None:
    rec = Recorder(T0)
    lat, late = new_histogram(), new_histogram()
    rng = random.Random(3)
    for i in range(5_000):
        due = T0 + i / 1000
        sent = due + rng.expovariate(1 / 0.0004)
        done = sent + rng.lognormvariate(-7, 1.0)
        rec.sent_late(due, sent)
        rec.response(due, done, 200)
        late.record_value(int((sent - due) * 1e6))
        lat.record_value(int((done - due) * 1e6))
    r = rec.result(requests=5_000, target_rps=1000, duration=5, started_at=0.0, end=T0 + 6)
    assert r.histogram == lat.encode().decode()
    assert r.latency_ms["p99"] == lat.get_value_at_percentile(99) / 1000
    assert r.lateness_ms == {"p50": late.get_value_at_percentile(50) / 1000,
                             "p99": late.get_value_at_percentile(99) / 1000,
                             "max": late.get_max_value() / 1000}
