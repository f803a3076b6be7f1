"""Schedules (CronJob's missed-run rules, with an injected clock), run plans, baseline
comparison and history garbage collection: the pure parts of LoadTest run history."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from kuar_loadtest.api.run import LoadTestRun
from kuar_loadtest.api.status import LoadTestResults
from kuar_loadtest.api.v2 import Baseline, LoadTest, Schedule
from kuar_loadtest.baseline import compare
from kuar_loadtest.desired import job_name
from kuar_loadtest.history import runs_of, select_expired
from kuar_loadtest.schedule import (
    RUN_NOW,
    ScheduleError,
    parse_schedule,
    plan_run,
    run_now_name,
    schedule_due,
    scheduled_run_name,
    spec_run_name,
)

T0 = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.UTC)


def at(minutes: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def lt(*, schedule: dict[str, Any] | None = None, status: dict[str, Any] | None = None,
       annotations: dict[str, str] | None = None, generation: int = 1,
       baseline: dict[str, Any] | None = None) -> LoadTest:
    spec: dict[str, Any] = {"target": {"service": "web"}, "load": {"requestsPerSecond": 10}}
    if schedule is not None:
        spec["schedule"] = schedule
    if baseline is not None:
        spec["baseline"] = baseline
    return LoadTest.model_validate({
        "metadata": {"name": "nightly", "namespace": "ns", "uid": "u1",
                     "generation": generation, "creationTimestamp": T0.isoformat(),
                     "annotations": annotations or {}},
        "spec": spec, "status": status})


# --- parsing ---------------------------------------------------------------------------

def test_invalid_cron_and_unknown_zone_name_their_field() -> None:
    with pytest.raises(ScheduleError) as bad_cron:
        parse_schedule(Schedule(cron="61 * * * *"))
    assert bad_cron.value.field == "spec.schedule.cron"
    with pytest.raises(ScheduleError) as bad_zone:
        parse_schedule(Schedule(cron="* * * * *", time_zone="Mars/Olympus"))
    assert bad_zone.value.field == "spec.schedule.timeZone"
    with pytest.raises(ScheduleError) as both:
        parse_schedule(Schedule(cron="CRON_TZ=UTC * * * * *", time_zone="UTC"))
    assert both.value.field == "spec.schedule.cron"


def test_descriptors_and_time_zones() -> None:
    hourly = parse_schedule(Schedule(cron="@hourly"))
    assert hourly.next_after(at(1)) == at(60)
    # 02:00 Berlin is 01:00 UTC in winter
    berlin = parse_schedule(Schedule(cron="0 2 * * *", time_zone="Europe/Berlin"))
    assert berlin.next_after(T0) == dt.datetime(2026, 1, 2, 1, 0, tzinfo=dt.UTC)
    assert berlin.latest_until(T0) == dt.datetime(2026, 1, 1, 1, 0, tzinfo=dt.UTC)


# --- CronJob's missed-run rules ------------------------------------------------------------

EVERY_MINUTE = parse_schedule(Schedule(cron="* * * * *"))


def test_nothing_due_before_the_first_time() -> None:
    due = schedule_due(EVERY_MINUTE, last_schedule_time=None, created=at(0.2), now=at(0.9),
                       starting_deadline_seconds=None)
    assert due.scheduled_time is None and due.next_time == at(1)


def test_the_one_due_time_runs() -> None:
    due = schedule_due(EVERY_MINUTE, last_schedule_time=at(1), created=T0, now=at(2.5),
                       starting_deadline_seconds=None)
    assert (due.scheduled_time, due.missed, due.too_late) == (at(2), 1, False)
    assert due.next_time == at(3)


def test_only_the_most_recent_of_missed_times_runs() -> None:
    due = schedule_due(EVERY_MINUTE, last_schedule_time=at(1), created=T0, now=at(5.5),
                       starting_deadline_seconds=None)
    assert (due.scheduled_time, due.missed) == (at(5), 4)


def test_more_than_100_missed_is_counted_as_too_many() -> None:
    due = schedule_due(EVERY_MINUTE, last_schedule_time=T0, created=T0, now=at(500.5),
                       starting_deadline_seconds=None)
    assert due.scheduled_time == at(500) and due.missed > 100


def test_starting_deadline_limits_the_count_and_skips_a_late_run() -> None:
    # the deadline moves the earliest time: only the last 2 minutes count
    due = schedule_due(EVERY_MINUTE, last_schedule_time=T0, created=T0, now=at(500.5),
                       starting_deadline_seconds=120)
    assert due.scheduled_time == at(500) and due.missed == 2 and not due.too_late
    hourly = parse_schedule(Schedule(cron="0 * * * *"))
    # the 13:00 run, 10 minutes late with a 5-minute deadline: skipped
    late = schedule_due(hourly, last_schedule_time=T0, created=T0, now=at(70),
                        starting_deadline_seconds=300)
    assert late.scheduled_time is None  # no schedule time inside the deadline window
    late = schedule_due(hourly, last_schedule_time=T0, created=T0, now=at(70),
                        starting_deadline_seconds=None)
    assert late.scheduled_time == at(60) and not late.too_late


# --- run plans ---------------------------------------------------------------------------

def test_without_a_schedule_one_run_per_generation() -> None:
    first = plan_run(lt(), T0, None)
    assert (first.run, first.trigger) == ("nightly-run-1", "Spec")
    assert first.run == job_name(lt())  # the name runs had before history existed
    running = plan_run(lt(status={"phase": "Running", "observedGeneration": 1,
                                  "activeRun": "nightly-run-1"}), T0, None)
    assert (running.run, running.trigger) == ("nightly-run-1", None)
    done = plan_run(lt(status={"phase": "Succeeded", "observedGeneration": 1}), T0, None)
    assert done.run is None
    changed = plan_run(lt(generation=2, status={"phase": "Running", "observedGeneration": 1,
                                                "activeRun": "nightly-run-1"}), T0, None)
    assert (changed.run, changed.replaces) == ("nightly-run-2", "nightly-run-1")


def test_a_schedule_starts_runs_named_after_their_time_once() -> None:
    schedule = {"cron": "* * * * *"}
    cron = parse_schedule(Schedule(cron="* * * * *"))
    waiting = plan_run(lt(schedule=schedule), at(0.5), cron)
    assert waiting.run is None and waiting.next_schedule_time == at(1)
    assert waiting.requeue_after(at(0.5)) == pytest.approx(30.1)
    due = plan_run(lt(schedule=schedule), at(1.2), cron)
    assert (due.run, due.trigger, due.scheduled_time) == (
        scheduled_run_name("nightly", at(1)), "Schedule", at(1))
    assert due.status_fields()["last_schedule_time"] == at(1)
    # the restarted operator reads lastScheduleTime: the same time never starts twice
    started = {"phase": "Running", "observedGeneration": 1, "activeRun": due.run,
               "lastScheduleTime": at(1).isoformat()}
    again = plan_run(lt(schedule=schedule, status=started), at(1.9), cron)
    assert (again.run, again.trigger) == (due.run, None)
    # a restart between writing the Job and the status: the same name, so the same Job
    lost = plan_run(lt(schedule=schedule, status={"phase": "Succeeded", "observedGeneration": 1}),
                    at(1.3), cron)
    assert lost.run == due.run


def test_suspend_starts_nothing_but_run_now_works() -> None:
    cron = parse_schedule(Schedule(cron="* * * * *"))
    suspended = {"cron": "* * * * *", "suspend": True}
    assert plan_run(lt(schedule=suspended), at(5), cron).run is None
    now = plan_run(lt(schedule=suspended, annotations={RUN_NOW: "a"}), at(5), cron)
    assert (now.run, now.trigger, now.run_now_token) == (run_now_name("nightly", "a"),
                                                         "RunNow", "a")
    handled = plan_run(lt(schedule=suspended, annotations={RUN_NOW: "a"},
                          status={"phase": "Succeeded", "runNowToken": "a"}), at(6), cron)
    assert handled.run is None


def test_concurrency_policy_for_run_now_and_schedule() -> None:
    cron = parse_schedule(Schedule(cron="* * * * *"))
    active = {"phase": "Running", "observedGeneration": 1, "activeRun": "nightly-x",
              "lastScheduleTime": at(1).isoformat()}
    forbid = plan_run(lt(schedule={"cron": "* * * * *"}, status=active,
                         annotations={RUN_NOW: "b"}), at(1.5), cron)
    assert (forbid.run, forbid.trigger, forbid.run_now_token) == ("nightly-x", None, "b")
    assert [n.reason for n in forbid.notes] == ["RunNowForbidden"]
    replace = plan_run(lt(schedule={"cron": "* * * * *", "concurrencyPolicy": "Replace"},
                          status=active, annotations={RUN_NOW: "b"}), at(1.5), cron)
    assert (replace.run, replace.trigger, replace.replaces) == (
        run_now_name("nightly", "b"), "RunNow", "nightly-x")
    # the next schedule time while a run goes on: Forbid waits (lastScheduleTime unchanged)
    waits = plan_run(lt(schedule={"cron": "* * * * *"}, status=active), at(2.5), cron)
    assert (waits.run, waits.trigger) == ("nightly-x", None)
    assert "last_schedule_time" not in waits.status_fields()
    assert [n.reason for n in waits.notes] == ["RunWaiting"]


def test_too_many_missed_and_missed_deadline_give_warnings() -> None:
    cron = parse_schedule(Schedule(cron="* * * * *"))
    many = plan_run(lt(schedule={"cron": "* * * * *"}), at(300.5), cron)
    assert [n.reason for n in many.notes] == ["TooManyMissedTimes"]
    assert many.scheduled_time == at(300)


def test_names_fit_a_job() -> None:
    long = "x" * 80
    for name in (spec_run_name(long, 3), scheduled_run_name(long, T0), run_now_name(long, "t")):
        assert len(name) <= 52


# --- baseline comparison -----------------------------------------------------------------

def results(p50: float, p99: float, rps: float) -> LoadTestResults:
    return LoadTestResults.model_validate({
        "requests": 100, "successes": 100, "errors": 0, "achievedRps": rps,
        "latencyMs": {"p50": p50, "p90": p99, "p99": p99, "max": p99}})


def test_regression_beyond_the_limits_names_both_figures() -> None:
    limits = Baseline(max_p99_increase_percent=20, max_rate_decrease_percent=2)
    ok = compare("r2", results(5, 11.9, 99), "r1", results(5, 10, 100), limits)
    assert not ok.regressed and ok.message.startswith("no regression against r1")
    slow = compare("r3", results(5, 12.5, 100), "r1", results(5, 10, 100), limits)
    assert slow.regressed
    assert "p99 12.5 ms vs 10 ms in r1 (+25.0 %, limit +20 %)" in slow.message
    slower = compare("r3", results(5, 10, 97), "r1", results(5, 10, 100), limits)
    assert slower.regressed and "achievedRps 97 req/s vs 100 req/s" in slower.message
    unlimited = compare("r3", results(50, 100, 10), "r1", results(5, 10, 100), Baseline())
    assert not unlimited.regressed  # compared, but no limit set
    assert {m.metric: m.change_percent for m in unlimited.metrics}["p99"] == 900.0
    zero = compare("r3", results(5, 10, 100), "r1", results(0, 0, 0), limits)
    assert not zero.regressed


# --- history garbage collection ----------------------------------------------------------

def record(name: str, minute: int, phase: str | None = "Succeeded",
           owner: str = "u1") -> LoadTestRun:
    return LoadTestRun.model_validate({
        "metadata": {"name": name, "namespace": "ns", "ownerReferences": [
            {"apiVersion": "beta.kuar.com/v2", "kind": "LoadTest", "name": "nightly",
             "uid": owner}]},
        "spec": {"loadTest": "nightly", "trigger": "Schedule", "generation": 1,
                 "loadTestSpec": {}},
        "status": {"phase": phase, "startTime": at(minute).isoformat()}})


def test_gc_keeps_the_newest_running_and_protected() -> None:
    runs = [record("r1", 1), record("r2", 2), record("r3", 3), record("r4", 4, "Running")]
    assert select_expired(runs, 2, protect=()) == ["r2", "r1"]
    assert select_expired(runs, 2, protect=("r1",)) == ["r2"]
    assert select_expired(runs, 1, protect=()) == ["r3", "r2", "r1"]
    assert select_expired([record("r5", 5, "Running"), *runs], 1, protect=()) == [
        "r3", "r2", "r1"]  # r4 still runs: never deleted
    mine = runs_of([*runs, record("other", 9, owner="u2")], lt())
    assert [r.name for r in mine] == ["r1", "r2", "r3", "r4"]


def test_run_now_without_a_schedule_runs_once_or_is_refused_while_a_run_goes_on() -> None:
    done = {"phase": "Succeeded", "observedGeneration": 1, "lastRun": "nightly-run-1"}
    again = plan_run(lt(status=done, annotations={RUN_NOW: "t1"}), T0, None)
    assert (again.run, again.trigger, again.run_now_token) == (
        run_now_name("nightly", "t1"), "RunNow", "t1")
    assert again.status_fields()["active_run"] == again.run
    running = {"phase": "Running", "observedGeneration": 1, "activeRun": "nightly-run-1"}
    refused = plan_run(lt(status=running, annotations={RUN_NOW: "t1"}), T0, None)
    assert (refused.run, refused.trigger, refused.run_now_token) == ("nightly-run-1", None, "t1")
    assert [n.reason for n in refused.notes] == ["RunNowForbidden"]


def test_the_validator_denies_a_bad_cron_and_zone_naming_the_field() -> None:
    from kuar.webhook import Denied
    from kuar_loadtest.webhooks import LoadTestValidator

    validator = LoadTestValidator()
    assert validator.check(lt(schedule={"cron": "@daily", "timeZone": "Europe/Berlin"})) == []
    with pytest.raises(Denied, match=r"spec\.schedule\.cron"):
        validator.check(lt(schedule={"cron": "every minute"}))
    with pytest.raises(Denied, match=r"spec\.schedule\.timeZone"):
        validator.check(lt(schedule={"cron": "* * * * *", "timeZone": "Nowhere/Land"}))


# --- report -------------------------------------------------------------------------------

def test_report_trend_and_side_by_side() -> None:
    from kuar_loadtest.report import compare_rows, history_rows, sparkline, trend_lines

    def encoded(name: str, minute: int, p50: float, p99: float, rps: float) -> dict[str, Any]:
        run = record(name, minute).encode()
        run["status"]["results"] = results(p50, p99, rps).model_dump(mode="json", by_alias=True)
        return run

    runs = [encoded("r1", 1, 5, 10, 100), encoded("r2", 2, 6, 12, 99),
            encoded("r3", 3, 50, 100, 95)]
    assert sparkline([1.0, None, 8.0]) == "▁ █"
    assert [row[0] for row in history_rows(runs)] == ["r1", "r2", "r3"]
    trend = {label: (line, span) for label, line, span in trend_lines(runs)}
    assert trend["p99 ms"] == ("▁▁█", "10 -> 100")
    side = {row[0]: row[1:] for row in compare_rows(runs[0], runs[2])}
    assert side["run"][:2] == ("r1", "r3")
    assert side["p99 ms"] == ("10", "100", "+900.0 %")
