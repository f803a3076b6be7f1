"""Cron schedules of LoadTests, and which run a LoadTest should drive now (pure).

Place in the pipeline: :mod:`kuar_loadtest.controller` calls :func:`plan_run` at the start of
every reconcile with the LoadTest and the current time (an injected clock), records the
returned notes as Events, drives the run the plan names and requeues at the next schedule
time (level-based: no polling loop). :mod:`kuar_loadtest.webhooks` calls
:func:`parse_schedule` to deny an invalid cron expression or time zone.

Cron expressions are parsed and iterated by ``cronsim`` (never by hand here;
docs/decisions/0016-loadtest-history.md); the five descriptors Kubernetes accepts
(``@hourly`` ...) are mapped to their five-field form. Time zones are IANA names
(``zoneinfo``); unset means UTC.

Missed runs follow kube-controller-manager's CronJob controller (v2,
``getMostRecentScheduleTime``):
- the schedule times counted are those after ``status.lastScheduleTime`` (or the LoadTest's
  creation), and, with ``startingDeadlineSeconds``, after ``now - startingDeadlineSeconds``;
- only the most recent of them runs; more than 100 missed gives a ``TooManyMissedTimes``
  Warning (it still runs);
- a most recent time more than ``startingDeadlineSeconds`` ago is skipped (``MissSchedule``);
- a run due while another runs: ``Forbid`` waits (``lastScheduleTime`` is not advanced, so
  it starts when the other ends if still within the deadline), ``Replace`` stops the other.
Run-now (the annotation ``loadtest.beta.kuar.com/run-now: <token>``) starts one run per new
token; under ``Forbid`` (and always without a schedule) a token that arrives while a run is
going is refused with a Warning, not queued.
Without a schedule, a LoadTest runs once per spec generation, and a spec change replaces a
running run (the behaviour before schedules existed).

Guarantees: a run's name is a function of what started it (generation, schedule time or
token), so a restarted operator finds the run it already started instead of starting it twice.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from kuar_loadtest.api.run import Trigger
from kuar_loadtest.api.status import LoadTestStatus
from kuar_loadtest.api.v2 import LoadTest, Schedule

RUN_NOW = "loadtest.beta.kuar.com/run-now"
"""The annotation that starts a run now; each new value starts one run."""
MAX_MISSED = 100
"""More missed schedule times than this gives a ``TooManyMissedTimes`` Warning (CronJob's)."""
DESCRIPTORS = {
    "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
"""The descriptors Kubernetes' cron parser accepts, as five fields (``@every`` is not)."""
UTC = dt.UTC


class ScheduleError(ValueError):
    """A schedule that cannot be used; ``field`` is the spec field at fault."""

    def __init__(self, field_path: str, message: str) -> None:
        super().__init__(message)
        self.field = field_path


@dataclass(frozen=True)
class CronSchedule:
    """A parsed cron expression in a time zone."""

    expression: str
    """The five-field expression (descriptors already expanded)."""
    zone: dt.tzinfo
    """The zone the fields are read in."""

    def next_after(self, moment: dt.datetime) -> dt.datetime:
        """The first schedule time strictly after ``moment`` (in UTC)."""
        start = moment.astimezone(self.zone)
        return next(CronSim(self.expression, start)).astimezone(UTC)

    def latest_until(self, moment: dt.datetime) -> dt.datetime:
        """The last schedule time at or before ``moment`` (in UTC)."""
        start = (moment + dt.timedelta(microseconds=1)).astimezone(self.zone)
        return next(CronSim(self.expression, start, reverse=True)).astimezone(UTC)


def parse_schedule(schedule: Schedule) -> CronSchedule:
    """Check and parse ``spec.schedule``; :class:`ScheduleError` names the field at fault."""
    zone: dt.tzinfo = UTC
    if schedule.time_zone:
        if "TZ=" in schedule.cron:
            raise ScheduleError("spec.schedule.cron",
                                "CRON_TZ or TZ in the cron expression is not allowed with "
                                "timeZone")
        try:
            zone = ZoneInfo(schedule.time_zone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ScheduleError("spec.schedule.timeZone",
                                f"unknown time zone {schedule.time_zone!r}") from None
    text = " ".join(schedule.cron.split())
    expression = DESCRIPTORS.get(text.lower(), text)
    try:
        next(CronSim(expression, dt.datetime(2000, 1, 1, tzinfo=zone)))
    except (CronSimError, StopIteration) as exc:
        raise ScheduleError("spec.schedule.cron",
                            f"invalid cron expression {schedule.cron!r}: {exc}") from None
    return CronSchedule(expression, zone)


@dataclass(frozen=True)
class Due:
    """What the schedule asks for at ``now``."""

    scheduled_time: dt.datetime | None
    """The most recent schedule time not yet run (``None``: none)."""
    missed: int
    """How many schedule times passed since the last run (1: only the one due)."""
    too_late: bool
    """``scheduled_time`` is more than ``startingDeadlineSeconds`` ago: skip it."""
    next_time: dt.datetime
    """The first schedule time after ``now``."""


def schedule_due(
    cron: CronSchedule, *, last_schedule_time: dt.datetime | None, created: dt.datetime,
    now: dt.datetime, starting_deadline_seconds: int | None,
) -> Due:
    """The schedule's state at ``now``, as CronJob's ``getMostRecentScheduleTime`` counts it."""
    earliest = last_schedule_time or created
    if starting_deadline_seconds is not None:
        earliest = max(earliest, now - dt.timedelta(seconds=starting_deadline_seconds))
    next_time = cron.next_after(now)
    first = cron.next_after(earliest)
    if first > now:
        return Due(None, 0, False, next_time)
    missed = 1
    moment = first
    while missed <= MAX_MISSED:
        moment = cron.next_after(moment)
        if moment > now:
            break
        missed += 1
    latest = cron.latest_until(now)
    too_late = (starting_deadline_seconds is not None
                and latest + dt.timedelta(seconds=starting_deadline_seconds) < now)
    return Due(latest, missed, too_late, next_time)


def fit_name(base: str, suffix: str) -> str:
    """``base + suffix``, ``base`` shortened with a hash so that it fits a Job's name (52)."""
    if len(base) + len(suffix) > 52:  # Job pods add "-<index>-<random 5>" to this
        digest = hashlib.sha256(base.encode()).hexdigest()[:6]
        base = f"{base[: 52 - len(suffix) - 7]}-{digest}"
    return base + suffix


def scheduled_run_name(loadtest: str, scheduled_time: dt.datetime) -> str:
    """``<loadtest>-<minutes since the epoch>``, as CronJob names its Jobs."""
    return fit_name(loadtest, f"-{int(scheduled_time.timestamp()) // 60}")


def run_now_name(loadtest: str, token: str) -> str:
    """``<loadtest>-now-<hash of the token>``."""
    return fit_name(loadtest, f"-now-{hashlib.sha256(token.encode()).hexdigest()[:8]}")


def spec_run_name(loadtest: str, generation: int) -> str:
    """``<loadtest>-run-<generation>``: the run of one spec generation."""
    return fit_name(loadtest, f"-run-{generation}")


@dataclass(frozen=True)
class Note:
    """An Event the controller records for the plan."""

    type: str
    """``Normal`` or ``Warning``."""
    reason: str
    """The Event's reason."""
    message: str
    """The Event's message."""


@dataclass(frozen=True)
class RunPlan:
    """Which run to drive now, and what the LoadTest's status records about it."""

    run: str | None
    """The run to drive (create its Job if missing, follow it); ``None``: nothing to do."""
    trigger: Trigger | None = None
    """Set when ``run`` is a new run this reconcile starts."""
    scheduled_time: dt.datetime | None = None
    """The schedule time a ``Schedule`` run stands for."""
    run_now_token: str | None = None
    """A run-now token this reconcile acts upon (starts it, or refuses it)."""
    replaces: str | None = None
    """The running run the new one replaces."""
    next_schedule_time: dt.datetime | None = None
    """The next schedule time (requeue then)."""
    notes: tuple[Note, ...] = field(default=())
    """Events to record."""

    def requeue_after(self, now: dt.datetime) -> float | None:
        """Seconds until the next schedule time (+0.1 s, as CronJob), or ``None``."""
        if self.next_schedule_time is None:
            return None
        return max(0.0, (self.next_schedule_time - now).total_seconds()) + 0.1

    def status_fields(self) -> dict[str, object]:
        """What the LoadTest's status records for this plan (merged into each status write)."""
        fields: dict[str, object] = {"next_schedule_time": self.next_schedule_time}
        if self.trigger is not None:
            fields["active_run"] = self.run
        if self.scheduled_time is not None:
            fields["last_schedule_time"] = self.scheduled_time
        if self.run_now_token is not None:
            fields["run_now_token"] = self.run_now_token
        return fields


def _finished_for(status: LoadTestStatus, generation: int) -> bool:
    return status.observed_generation == generation and (
        status.phase in ("Succeeded", "Failed") or status.active_run is not None)


def plan_run(lt: LoadTest, now: dt.datetime, cron: CronSchedule | None) -> RunPlan:
    """Which run ``lt`` should drive at ``now`` (see the module's rules).

    ``cron`` is ``parse_schedule(lt.spec.schedule)`` (``None`` without a schedule).
    """
    status = lt.status or LoadTestStatus()
    name = lt.metadata.name or ""
    generation = lt.metadata.generation or 1
    active = status.active_run
    token = (lt.metadata.annotations or {}).get(RUN_NOW) or None
    token_due = token is not None and token != status.run_now_token
    schedule = lt.spec.schedule
    notes: list[Note] = []
    next_time: dt.datetime | None = None
    new: tuple[Trigger, str, dt.datetime | None] | None = None

    if schedule is None or cron is None:
        if not _finished_for(status, generation):
            # a new spec: its run replaces whatever runs (as before schedules existed)
            return RunPlan(spec_run_name(name, generation), "Spec",
                           run_now_token=token if token_due else None,
                           replaces=active if active else None)
    elif not schedule.suspend:
        created = lt.metadata.creation_timestamp or now
        due = schedule_due(cron, last_schedule_time=status.last_schedule_time,
                           created=created, now=now,
                           starting_deadline_seconds=schedule.starting_deadline_seconds)
        next_time = due.next_time
        if due.missed > MAX_MISSED:
            notes.append(Note("Warning", "TooManyMissedTimes",
                              f"too many missed start times: more than {MAX_MISSED}. Set or "
                              "decrease .spec.schedule.startingDeadlineSeconds or check "
                              "clock skew"))
        if due.scheduled_time is not None and due.too_late:
            notes.append(Note("Warning", "MissSchedule",
                              f"missed the run scheduled at {due.scheduled_time.isoformat()}: "
                              "more than startingDeadlineSeconds ago"))
        elif due.scheduled_time is not None:
            run = scheduled_run_name(name, due.scheduled_time)
            if run != active:
                new = ("Schedule", run, due.scheduled_time)

    if new is None and token_due and token is not None:
        new = ("RunNow", run_now_name(name, token), None)
    if new is None:
        return RunPlan(active, next_schedule_time=next_time, notes=tuple(notes))
    trigger, run, scheduled = new
    consumed = token if token_due else None
    policy = schedule.concurrency_policy if schedule is not None else "Forbid"
    if active is None or policy == "Replace":
        if active is not None:
            notes.append(Note("Normal", "RunReplaced",
                              f"run {active} stopped: {run} replaces it (concurrencyPolicy "
                              "Replace)"))
        return RunPlan(run, trigger, scheduled, consumed, active, next_time, tuple(notes))
    # Forbid, and a run is going
    if trigger == "RunNow":
        notes.append(Note("Warning", "RunNowForbidden",
                          f"run-now {token!r} refused: run {active} is still running "
                          "(concurrencyPolicy Forbid)"))
        return RunPlan(active, run_now_token=consumed, next_schedule_time=next_time,
                       notes=tuple(notes))
    notes.append(Note("Normal", "RunWaiting",
                      f"the run scheduled at {scheduled.isoformat() if scheduled else '?'} "
                      f"waits for run {active} to end (concurrencyPolicy Forbid)"))
    return RunPlan(active, next_schedule_time=next_time, notes=tuple(notes))
