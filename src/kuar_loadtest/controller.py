"""The LoadTest controller: compiles each LoadTest into a Job of load generators and reports.

Place in the pipeline: a reconciler run by :class:`kuar.runtime.Controller` (built in
:func:`build_controller`), under :class:`kuar.manager.Manager` (see :mod:`.operator`). All
decisions are in the pure modules :mod:`.desired` and :mod:`.status`; this module only reads
the cache, writes the API and records Events. Built only on kuar's public API.

Per LoadTest (level-based; every step is safe to repeat):
0. Which run to drive: :func:`kuar_loadtest.schedule.plan_run` (pure) decides from the
   schedule, the run-now annotation and the status (issue 16). Without a schedule: one run per
   generation, as below. Nothing to drive: the status records the next schedule time and the
   reconcile is requeued for it. A run that starts gets a LoadTestRun record
   (:mod:`.history`); when it ends, the record gets the results and the comparison with the
   baseline (:mod:`.baseline`; a regression fails the run, reason ``Regression``) and the
   records beyond the history limit are deleted.
1. Already finished for this generation (Succeeded/Failed with ``observedGeneration`` equal to
   ``metadata.generation``): nothing to do. A spec change bumps the generation: a new run.
2. Over the operator's rate cap: Failed (``RateAboveCap``); no retry until the spec changes.
3. The Service is looked up in the LoadTest's own namespace only. Missing: phase Pending,
   condition ``ServiceResolved=False``, a Warning Event, and a retry (a Service watch also
   wakes the LoadTest as soon as the Service appears). Present but unusable (no such port, no
   ports): Failed with that reason.
4. Jobs of earlier runs (other generations) are deleted; the run's Job is created if missing
   (phase Running, an Event), then followed through its status (the controller owns Jobs).
5. When the Job ends (not before: pods are listed once per finished run), the pods' results
   are merged: status gets phase, results, ``completionTime`` and conditions, among them
   ``ResultsComplete`` (a missing worker result fails the run as ``ResultsIncomplete``); the
   full merged result (histogram and per-second series, for ``kuar loadtest report``) goes to
   the ConfigMap ``<name>-results``, owned by the LoadTest. A ConfigMap of that name that the
   LoadTest does not control is left alone: ``ResultsStored=False`` and a Warning Event.
v2 load model (issue 15): over ``maxConcurrentRuns`` (operator-wide or per namespace) a
LoadTest waits in phase Queued with ``queuePosition`` (first come, first served); a request
body's ConfigMap/Secret key that does not exist keeps it Pending (``RequestBodiesFound=False``,
a Warning Event; the value is never read into anything); a spec the worker would refuse fails
it (``InvalidSpec``/``SpecTooLarge``); thresholds are judged on the merged result
(:mod:`.thresholds`); ``cleanup: post`` deletes the Job once the results are stored.
Coordinated start (``settings.coordinated_start``): before the Job, the runners' ServiceAccount,
Role and RoleBinding are created in the namespace if missing; while the Job runs, its pods
(an informer on the operator's own pods) decide the start (:mod:`.start`): one
``status.startAt`` written into the run's LoadTestRun once every pod is Running (Event
``StartScheduled``), or, past ``runner_start_timeout``, Failed ``RunnersNotStarted`` and the
Job suspended.
Deleting a LoadTest deletes its Job, pods and results through owner references (garbage
collection); no finalizer is needed because nothing outside the cluster must be cleaned up.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any

from kuar.client import AlreadyExists, Api, ApiError, Client, Conflict, NotFound
from kuar.models.batch.v1 import Job
from kuar.models.core.v1 import ConfigMap, Pod, Service
from kuar.models.core.v1 import Event as CoreEvent
from kuar.models.discovery.v1 import EndpointSlice
from kuar.resources import Condition, ObjectMeta, OwnerReference
from kuar.runtime import (
    NORMAL,
    WARNING,
    Controller,
    ControllerSettings,
    EventRecorder,
    InformerCache,
    RecorderSettings,
    Request,
    Result,
    TerminalError,
    WatchConfig,
    annotations_changed,
    any_of,
    controller_for,
    decode_with_events,
    generation_changed,
    is_controlled_by,
    set_condition,
)
from kuar_loadtest.api.run import LoadTestRun
from kuar_loadtest.api.status import Comparison, LoadTestResults, LoadTestStatus, Phase
from kuar_loadtest.api.v2 import LoadTest
from kuar_loadtest.baseline import compare
from kuar_loadtest.desired import (
    LABEL_LOADTEST,
    LABEL_MANAGED_BY,
    MANAGER,
    PlanError,
    body_refs,
    budget_problem,
    cap_problem,
    desired_job,
    endpoint_problem,
    peak_rate,
    queue_problem,
    resolve_target,
    run_configmap,
    run_spec,
    runner_identity,
    runner_service_account,
)
from kuar_loadtest.history import RunRecords, runs_of
from kuar_loadtest.schedule import RunPlan, ScheduleError, parse_schedule, plan_run
from kuar_loadtest.settings import OperatorSettings
from kuar_loadtest.start import mount_waits, names_source, start_decision
from kuar_loadtest.status import RunState, job_condition, run_state
from kuar_loadtest.thresholds import judge

log = logging.getLogger("kuar_loadtest.controller")

LOADTESTS = LoadTest.resource_info()
CONTROLLER_NAME = "kuar.dev/loadtest-controller"
RESULTS_SUFFIX = "-results"
JOB_NAME_LABELS = ("batch.kubernetes.io/job-name", "job-name")
"""The labels the Job controller puts on a Job's pods (the first since Kubernetes 1.27)."""


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


class LoadTestReconciler:
    """Reconciles one LoadTest key; see the module docstring for the steps."""

    def __init__(
        self, client: Client, cache: InformerCache, settings: OperatorSettings,
        recorder: EventRecorder, *, namespace: str | None = None,
        clock: Callable[[], dt.datetime] | None = None,
    ) -> None:
        """Bind the reconciler to the shared cache (LoadTests, Jobs, Services, LoadTestRuns)."""
        self.client = client
        self.settings = settings
        self.recorder = recorder
        # A LoadTest the model cannot read is skipped, logged, counted and gets an Event.
        self.decode = decode_with_events(LoadTest.decode, recorder)
        self.scope = WatchConfig(namespace=namespace)
        self.jobs_scope = WatchConfig(namespace=namespace, label_selector=LABEL_LOADTEST)
        self.loadtests = cache.informer(LoadTest, self.scope, decode=self.decode)
        self.jobs = cache.informer(Job, self.jobs_scope)
        self.services = cache.informer(Service, self.scope)
        # --- coordinated start (issue 15): the operator's own pods only, by label ---
        self.pods_scope = WatchConfig(namespace=namespace,
                                      label_selector=f"{LABEL_MANAGED_BY}={MANAGER}")
        self.pods = (cache.informer(Pod, self.pods_scope) if settings.coordinated_start
                     else None)
        self._budget_lock = asyncio.Lock()
        self._reserved: dict[str, LoadTest] = {}
        # --- run history and schedules (issue 16) ---
        self.runs = cache.informer(LoadTestRun, self.scope)
        self.records = RunRecords(client)
        self.clock = clock or _now

    async def __call__(self, request: Request) -> Result:
        """Reconcile the LoadTest ``request`` names; requeue at its next schedule time."""
        lt = self.loadtests.store.get(request)
        if lt is None or lt.metadata.deletion_timestamp is not None:
            return Result.done()  # garbage collection removes what it owned
        try:
            cron = parse_schedule(lt.spec.schedule) if lt.spec.schedule is not None else None
        except ScheduleError as exc:  # the webhook denies it, if it ran
            message = f"{exc.field}: {exc}"
            await self._set_status(lt, phase="Pending", message=message, conditions=[
                ("ScheduleValid", "False", "InvalidSchedule", message)])
            self.recorder.event(lt, WARNING, "InvalidSchedule", message, action="Schedule")
            return Result.done()
        plan = plan_run(lt, self.clock(), cron)
        for note in plan.notes:
            self.recorder.event(lt, WARNING if note.type == "Warning" else NORMAL, note.reason,
                                note.message, action="Schedule")
        result = await self._reconcile_run(request, lt, plan)
        after = plan.requeue_after(self.clock())
        if after is not None and not result.rate_limited and (
                result.requeue_after is None or after < result.requeue_after):
            return Result.requeue(after=after)
        return result

    async def _reconcile_run(self, request: Request, lt: LoadTest, plan: RunPlan) -> Result:
        idle = {"next_schedule_time": plan.next_schedule_time}
        if plan.run is None:
            await self._idle(lt, plan)
            return Result.done()
        try:
            capped = cap_problem(lt, self.settings)
        except PlanError as exc:  # an unreadable duration (the webhook denies it, if it ran)
            capped = exc
        if capped is not None:
            await self._finish_failed(lt, capped.reason, str(capped), run_fields=idle)
            raise TerminalError(str(capped))
        service = self.services.store.get(Request(request.namespace, lt.spec.target.service))
        try:
            target = resolve_target(lt, service)
        except PlanError as exc:
            if exc.reason != "ServiceNotFound":  # the Service exists but cannot be targeted
                await self._finish_failed(lt, exc.reason, str(exc), run_fields=idle)
                return Result.done()
            await self._set_status(lt, phase="Pending", message=str(exc), conditions=[
                ("ServiceResolved", "False", exc.reason, str(exc)),
            ], run_fields=idle)
            self.recorder.event(lt, WARNING, exc.reason, str(exc), action="ResolveService")
            return Result.requeue(after=self.settings.missing_service_retry)

        name = plan.run
        fields = plan.status_fields()
        await self._delete_old_runs(lt, keep=name)
        job = self.jobs.store.get(Request(request.namespace, name))
        if job is None:
            assert service is not None  # resolve_target found it
            no_baseline = self._missing_baseline(lt)
            if no_baseline is not None:
                await self._set_status(lt, phase="Pending", message=no_baseline, conditions=[
                    ("BaselineFound", "False", "BaselineNotFound", no_baseline)],
                    run_fields=idle)
                self.recorder.event(lt, WARNING, "BaselineNotFound", no_baseline,
                                    action="Compare")
                return Result.requeue(after=self.settings.missing_service_retry)
            outside = await self._endpoint_problem(lt, service)
            if outside is not None:  # checked once, when a run starts: not on every Job change
                await self._finish_failed(lt, outside.reason, str(outside), run_fields=idle)
                return Result.done()
            async with self._budget_lock:  # one decision at a time, or two could both fit
                running = self._running()
                queued = queue_problem(lt, running, self._queued(), self.settings)
                waiting = budget_problem(lt, running, self.settings) if queued is None else None
                if waiting is None and queued is None:
                    self._reserved[lt.metadata.uid or ""] = lt
            if queued is not None:
                problem, position = queued
                if lt.status is None or lt.status.phase != "Queued":
                    self.recorder.event(lt, NORMAL, "Queued", str(problem), action="Wait")
                await self._set_status(lt, phase="Queued", message=str(problem),
                                       queue_position=position)
                return Result.requeue(after=self.settings.queue_retry)
            if waiting is not None:
                await self._set_status(lt, phase="Pending", message=str(waiting), conditions=[
                    ("RateBudget", "False", waiting.reason, str(waiting)),
                ], run_fields=idle)
                self.recorder.event(lt, WARNING, waiting.reason, str(waiting), action="Wait")
                return Result.requeue(after=self.settings.budget_retry)
            missing = await self._body_problem(lt)
            if missing is not None:
                self._reserved.pop(lt.metadata.uid or "", None)
                await self._set_status(lt, phase="Pending", message=str(missing), conditions=[
                    ("RequestBodiesFound", "False", missing.reason, str(missing)),
                ], run_fields=idle)
                self.recorder.event(lt, WARNING, missing.reason, str(missing),
                                    action="ResolveBodies")
                return Result.requeue(after=self.settings.missing_service_retry)
            start_at = time.time() + self.settings.start_delay
            try:
                spec = run_spec(lt, target, self.settings, start_at=start_at)
                desired = desired_job(  # named after the run (schedule, run-now or spec)
                    lt, target, self.settings, start_at=start_at, name=name, spec=spec)
            except PlanError as exc:
                self._reserved.pop(lt.metadata.uid or "", None)
                await self._finish_failed(lt, exc.reason, str(exc), run_fields=idle)
                return Result.done()
            await self._record_start(lt, plan)
            if self.settings.coordinated_start:
                await self._ensure_runner_identity(lt)
            jobs = Api(self.client, Job, namespace=request.namespace)
            try:
                created = await jobs.create(desired)
                workers = desired.spec.parallelism if desired.spec else None
                self.recorder.event(
                    lt, NORMAL, "Started",
                    f"started {workers} worker pod(s) at {_rate_text(lt)} "
                    f"against {target.url}", action="CreateJob",
                )
            except AlreadyExists:  # created by an earlier reconcile; not in the cache yet
                created = await jobs.get(name)
            # the pods mount it: created right after the Job, owned by it (GC removes both)
            with contextlib.suppress(AlreadyExists):
                await Api(self.client, ConfigMap, namespace=request.namespace).create(
                    run_configmap(lt, spec, created))
            await self._set_status(
                lt, phase="Running", message=f"load running against {target.url}",
                start=True, job=name, conditions=[
                    ("ServiceResolved", "True", "ServiceFound", target.url),
                    ("RateBudget", "True", "WithinBudget",
                     f"{peak_rate(lt)} req/s at most fits the operator's caps"),
                    ("Complete", "False", "Running", "the workers are running"),
                ], run_fields=fields,
            )
            return Result.done()

        if plan.trigger is not None:  # started before a restart, its status not yet written
            await self._record_start(lt, plan)
        if job_condition(job, "Complete") is None and job_condition(job, "Failed") is None:
            if self.settings.coordinated_start:
                gate = await self._start_barrier(lt, job, name, fields, idle)
                if gate is not None:
                    return gate
            # pods are read once, when the run has ended, not on every change of a running Job
            state = run_state(job, [])
            await self._set_status(lt, phase="Running", message=state.message, job=name,
                                   run_fields=fields)
            return Result.done()
        state = run_state(job, await self._pods(request.namespace, name))
        await self._finish(lt, state, name, idle)
        self._reserved.pop(lt.metadata.uid or "", None)
        return Result.done()

    # --- coordinated start (issue 15; kuar_loadtest.start) ---

    async def _start_barrier(self, lt: LoadTest, job: Job, run: str, fields: dict[str, Any],
                             idle: dict[str, Any]) -> Result | None:
        """Write the run's start time once every worker pod is Running; ``None``: started.

        The time goes into the run's LoadTestRun with the resourceVersion read from the
        cache, so a reconcile working from a cache that has not yet seen the first write
        gets a Conflict (and retries) instead of writing a second, different time.
        """
        record = self.runs.store.get(Request(lt.namespace or "", run))
        if record is not None and record.status is not None and record.status.start_at:
            return None
        if job.spec is not None and job.spec.suspend:
            return None
        assert self.pods is not None
        pods = [p for p in self.pods.store.list(lt.namespace)
                if any((p.metadata.labels or {}).get(k) == run for k in JOB_NAME_LABELS)]
        decision = start_decision(job, pods, dt.datetime.now(dt.UTC),
                                  lead=self.settings.start_lead,
                                  timeout=self.settings.runner_start_timeout)
        if decision.action == "wait":
            missing = await self._missing_body(lt, pods)
            if missing is not None:  # Pending until the object appears (or the wait ends)
                if not _condition_is(lt, "RequestBodiesFound", "False", missing[:1024]):
                    self.recorder.event(lt, WARNING, "BodySourceNotFound", missing,
                                        action="ResolveBodies")
                await self._set_status(lt, phase="Pending", message=missing, job=run,
                                       conditions=[("RequestBodiesFound", "False",
                                                    "BodySourceNotFound", missing)],
                                       run_fields=fields)
                return Result.requeue(after=min(decision.retry_after or 1.0,
                                                 self.settings.missing_service_retry))
            await self._set_status(lt, phase="Running", message=decision.message, job=run,
                                   run_fields=fields)
            return Result.requeue(after=decision.retry_after or 1.0)
        if decision.action == "fail":
            await self._stop_job(lt, run)
            await self._finish(lt, RunState("Failed", "RunnersNotStarted", decision.message),
                               run, idle)
            self._reserved.pop(lt.metadata.uid or "", None)
            return Result.done()
        if record is None:  # created just before the Job: the cache has not seen it yet
            return Result.requeue(after=0.2)
        assert decision.start_at is not None
        at = decision.start_at.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        try:
            await Api(self.client, LoadTestRun, namespace=lt.namespace).patch_status(run, {
                "metadata": {"resourceVersion": record.metadata.resource_version},
                "status": {"startAt": at}})
        except Conflict:  # changed since the cache read it (maybe written): read again
            return Result.requeue(after=0.2)
        self.recorder.event(lt, NORMAL, "StartScheduled", decision.message, action="Start")
        if _condition_is(lt, "RequestBodiesFound", "False"):
            await self._set_status(lt, phase="Running", message=decision.message, job=run,
                                   conditions=[("RequestBodiesFound", "True", "BodiesMounted",
                                                "every worker pod mounted its bodies")],
                                   run_fields=fields)
        return None

    async def _missing_body(self, lt: LoadTest, pods: list[Pod]) -> str | None:
        """A request body's ConfigMap or Secret that the run's pods wait for, as the node said.

        The operator may not read Secrets: the node that mounts them reports what is missing,
        kuar's process node in the pod's status, a kubelet in a ``FailedMount`` Event (read
        only while a pod waits in ContainerCreating without a message).
        """
        refs = body_refs(lt)
        if not refs:
            return None
        ns = lt.namespace or ""
        waits = mount_waits(pods)
        messages = [w.message for w in waits if w.message]
        if waits and not messages:
            names = {p.name for p in pods}
            events = await Api(self.client, CoreEvent, namespace=ns).list(
                field_selector="reason=FailedMount")
            messages = [e.message or "" for e in events.items
                        if e.involved_object.name in names]
        for ref in refs:
            for message in messages:
                if names_source(message, ref.kind, ns, ref.name):
                    return (f"{ref.field}: {ref.kind} {ref.name!r} or its key {ref.key!r} "
                            f"is missing in namespace {ns!r}; the worker pods wait "
                            f"({' '.join(message.split())[:300]})")
        return None

    async def _stop_job(self, lt: LoadTest, run: str) -> None:
        """Suspend the run's Job: its pods are deleted, the Job stays (no second run)."""
        with contextlib.suppress(NotFound):
            await Api(self.client, Job, namespace=lt.namespace).patch(
                run, {"spec": {"suspend": True}})

    async def _ensure_runner_identity(self, lt: LoadTest) -> None:
        """The runners' ServiceAccount, Role and RoleBinding in ``lt``'s namespace, if missing.

        Each is created once and never changed: an existing object (one the namespace's
        owner made, or adjusted) is left as it is.
        """
        ns = lt.namespace or ""
        for obj in runner_identity(ns, runner_service_account(lt, self.settings), self.settings):
            with contextlib.suppress(AlreadyExists):
                await Api(self.client, type(obj), namespace=ns).create(obj)

    async def _body_problem(self, lt: LoadTest) -> PlanError | None:
        """A request body's ConfigMap key that does not exist (values unread).

        Secrets are not read (the operator has no right to): a missing Secret shows as pods
        that wait for their run volume (:meth:`_missing_body`).
        """
        for ref in body_refs(lt):
            if ref.kind != "ConfigMap":
                continue
            try:
                obj = await Api(self.client, ConfigMap, namespace=lt.namespace).get(ref.name)
            except NotFound:
                obj = None
            keys = set((obj.data or {}) if obj is not None else ())
            if obj is not None:
                keys |= set(obj.binary_data or {})
            if ref.key not in keys:
                where = (f"{ref.kind} {ref.name!r} has no key {ref.key!r}" if obj is not None
                         else f"{ref.kind} {ref.name!r} not found")
                return PlanError("BodySourceNotFound",
                                 f"{ref.field}: {where} in namespace {lt.namespace!r}")
        return None

    async def _endpoint_problem(self, lt: LoadTest, service: Service) -> PlanError | None:
        if service.spec is not None and service.spec.selector:
            return None  # the cluster fills its endpoints from its own pods: no read needed
        slices = await Api(self.client, EndpointSlice, namespace=lt.namespace).list(
            label_selector=f"kubernetes.io/service-name={service.name}")
        return endpoint_problem(lt, service, slices.items, self.settings)

    def _running(self) -> list[LoadTest]:
        """LoadTests now running: Running in the cache, or started here a moment ago."""
        running = {o.metadata.uid or "": o for o in self.loadtests.store.list()
                   if o.status is not None and o.status.phase == "Running"}
        for uid, lt in list(self._reserved.items()):
            cached = self.loadtests.store.get(Request(lt.namespace or "", lt.name))
            if cached is None or cached.metadata.uid != uid or (
                cached.status is not None and cached.status.phase in ("Succeeded", "Failed")
                and cached.status.observed_generation == cached.metadata.generation
            ):
                del self._reserved[uid]  # gone or finished
            else:
                running.setdefault(uid, lt)
        return list(running.values())

    def _queued(self) -> list[LoadTest]:
        """LoadTests waiting in phase Queued for this generation."""
        return [o for o in self.loadtests.store.list()
                if o.status is not None and o.status.phase == "Queued"
                and o.status.observed_generation == (o.metadata.generation or 1)]

    async def _pods(self, namespace: str, job: str) -> list[Pod]:
        # Read once per finished run, straight from the API: caching every pod of the
        # namespace would cost memory for a one-off read.
        listed = await Api(self.client, Pod, namespace=namespace).list(
            label_selector=f"job-name={job}")
        return list(listed.items)

    async def _delete_old_runs(self, lt: LoadTest, *, keep: str) -> None:
        jobs = Api(self.client, Job, namespace=lt.namespace)
        for job in self.jobs.store.list(lt.metadata.namespace):
            meta = job.metadata
            labels = meta.labels or {}
            if labels.get(LABEL_LOADTEST) != lt.name or meta.name == keep:
                continue
            if meta.deletion_timestamp:
                continue
            try:
                await jobs.delete(job.name, propagation_policy="Background")
                self.recorder.event(
                    lt, NORMAL, "RunReplaced",
                    f"deleted Job {meta.name} of an earlier run", action="DeleteJob",
                )
            except NotFound:
                pass

    # --- run history, schedules and baselines (issue 16) ---

    async def _idle(self, lt: LoadTest, plan: RunPlan) -> None:
        """No run to drive: record the next schedule time (and a refused run-now token)."""
        status = lt.status or LoadTestStatus()
        schedule = lt.spec.schedule
        if schedule is None and status.phase is not None:
            return  # finished for this generation
        if schedule is not None and schedule.suspend:
            waiting = "the schedule is suspended"
        elif plan.next_schedule_time is not None:
            waiting = f"next run at {plan.next_schedule_time.isoformat()}"
        else:
            waiting = "waiting for a run"
        keep = status.phase not in (None, "Pending")
        await self._set_status(
            lt, phase=status.phase if keep and status.phase else "Pending",
            message=status.message if keep and status.message else waiting,
            run_fields=plan.status_fields())

    async def _record_start(self, lt: LoadTest, plan: RunPlan) -> None:
        """The run's LoadTestRun record; the record of the run it replaces, ended."""
        if plan.run is None or plan.trigger is None:
            return
        now = self.clock()
        if plan.replaces is not None:
            await self.records.finished(
                lt, plan.replaces, phase="Failed", reason="Replaced",
                message=f"replaced by run {plan.run}", now=now)
        if await self.records.started(lt, plan.run, plan.trigger, plan.scheduled_time, now):
            when = (f", scheduled at {plan.scheduled_time.isoformat()}"
                    if plan.scheduled_time is not None else "")
            self.recorder.event(lt, NORMAL, "RunStarted",
                                f"run {plan.run} started ({plan.trigger}{when})",
                                action="RecordRun")

    def _missing_baseline(self, lt: LoadTest) -> str | None:
        """Why the run named in ``spec.baseline.run`` cannot be used, or ``None``."""
        wanted = lt.spec.baseline.run if lt.spec.baseline is not None else None
        if not wanted:
            return None
        record = self.runs.store.get(Request(lt.namespace or "", wanted))
        if record is None or not runs_of([record], lt):
            return f"spec.baseline.run: no LoadTestRun {wanted} of this LoadTest"
        return None

    def _compare(self, lt: LoadTest, run: str, results: LoadTestResults) -> Comparison | None:
        """``results`` against the baseline (named, else the last successful run), if any."""
        limits = lt.spec.baseline
        wanted = (limits.run if limits is not None and limits.run
                  else (lt.status.last_successful_run if lt.status else None))
        if not wanted or wanted == run:
            return None
        record = self.runs.store.get(Request(lt.namespace or "", wanted))
        if record is None or record.status is None or record.status.results is None:
            return None
        return compare(run, results, wanted, record.status.results, limits)

    async def _finish(self, lt: LoadTest, state: RunState, run: str,
                      idle: dict[str, Any]) -> None:
        state, thresholds = judge(lt, state)  # thresholds first, then the baseline
        results = LoadTestResults.model_validate(state.results) if state.results else None
        comparison = self._compare(lt, run, results) if (
            state.phase == "Succeeded" and results is not None) else None
        if comparison is not None and comparison.regressed:
            state = RunState("Failed", "Regression", comparison.message, state.results,
                             state.merged, state.results_complete)
        await self.records.finished(lt, run, phase=state.phase, reason=state.reason,
                                    message=state.message, now=self.clock(), results=results,
                                    comparison=comparison)
        fields: dict[str, Any] = {**idle, "active_run": None, "last_run": run}
        if comparison is not None:
            fields["comparison"] = comparison
        if state.phase == "Succeeded":
            fields["last_successful_run"] = run
        await self._write_finish(lt, state, fields, run, thresholds)
        limit = lt.spec.history_limit or self.settings.history_limit
        protect = {run, *([lt.spec.baseline.run] if lt.spec.baseline and lt.spec.baseline.run
                          else [])}
        for name in await self.records.collect(
                lt, runs_of(self.runs.store.list(lt.namespace), lt), limit, protect):
            self.recorder.event(lt, NORMAL, "RunDeleted",
                                f"deleted LoadTestRun {name} (historyLimit {limit})",
                                action="CollectHistory")

    async def _write_finish(self, lt: LoadTest, state: RunState, run_fields: dict[str, Any],
                            run: str, thresholds: tuple[str, str, str, str] | None) -> None:
        extra: list[tuple[str, str, str, str]] = []
        if thresholds is not None:
            extra.append(thresholds)
        if state.results_complete is not None:
            extra.append(("ResultsComplete", str(state.results_complete),
                          "AllWorkersReported" if state.results_complete else state.reason,
                          state.message))
        if state.merged is not None:
            extra.append(await self._store_results(lt, state.merged.to_json()))
        if state.phase == "Succeeded":
            await self._set_status(
                lt, phase="Succeeded", message=state.message, results=state.results,
                complete=True,
                conditions=[("Complete", "True", state.reason, state.message), *extra],
                run_fields=run_fields,
            )
            self.recorder.event(lt, NORMAL, "Completed", state.message, action="CollectResults")
        else:
            await self._finish_failed(lt, state.reason, state.message, state.results, extra,
                                      run_fields=run_fields)
        stored = any(c[0] == "ResultsStored" and c[1] == "True" for c in extra)
        if lt.spec.cleanup == "post" and (stored or state.merged is None):
            await self._clean_up(lt, run)

    async def _clean_up(self, lt: LoadTest, name: str) -> None:
        """``cleanup: post``: the run's Job and pods go once the results are stored."""
        try:
            await Api(self.client, Job, namespace=lt.namespace).delete(
                name, propagation_policy="Background")
        except NotFound:
            return
        self.recorder.event(lt, NORMAL, "CleanedUp", f"deleted Job {name} (cleanup: post)",
                            action="DeleteJob")

    async def _finish_failed(
        self, lt: LoadTest, reason: str, message: str, results: dict[str, Any] | None = None,
        extra: Iterable[tuple[str, str, str, str]] = (), *,
        run_fields: dict[str, Any] | None = None,
    ) -> None:
        await self._set_status(
            lt, phase="Failed", message=message, results=results, complete=True,
            conditions=[("Complete", "True", reason, message),
                        ("Failed", "True", reason, message), *extra],
            run_fields=run_fields,
        )
        self.recorder.event(lt, WARNING, reason, message, action="Fail")

    async def _store_results(self, lt: LoadTest, payload: str) -> tuple[str, str, str, str]:
        """Write ``<name>-results``; the ``ResultsStored`` condition says how it went.

        A ConfigMap of that name that this LoadTest does not control is left alone (a forced
        apply would take it over, and garbage collection would delete it with the LoadTest).
        """
        meta = lt.metadata
        name = f"{meta.name}{RESULTS_SUFFIX}"
        configmaps = Api(self.client, ConfigMap, namespace=meta.namespace)
        try:
            existing: ConfigMap | None = await configmaps.get(name)
        except NotFound:
            existing = None
        if existing is not None and not is_controlled_by(existing, lt):
            message = (f"ConfigMap {name} exists and is not owned by this LoadTest: the full "
                       "results were not stored (rename or delete that ConfigMap)")
            self.recorder.event(lt, WARNING, "ResultsConfigMapNotOwned", message,
                                action="StoreResults")
            return ("ResultsStored", "False", "ResultsConfigMapNotOwned", message)
        results = ConfigMap(
            metadata=ObjectMeta(
                name=name, namespace=meta.namespace,
                labels={LABEL_LOADTEST: lt.name},
                owner_references=[OwnerReference(
                    api_version=LOADTESTS.api_version, kind="LoadTest", name=lt.name,
                    uid=meta.uid or "", controller=True,
                )],
            ),
            data={"result.json": payload, "generation": str(meta.generation or 1)},
        )
        await configmaps.apply(results, field_manager="kuar-loadtest", force=True)
        return ("ResultsStored", "True", "Stored", f"full results in ConfigMap {name}")

    async def _set_status(
        self, lt: LoadTest, *, phase: Phase, message: str,
        job: str | None = None, results: dict[str, Any] | None = None, start: bool = False,
        complete: bool = False, conditions: Iterable[tuple[str, str, str, str]] = (),
        queue_position: int | None = None,
        run_fields: dict[str, Any] | None = None,
    ) -> None:
        current = lt.status or LoadTestStatus()
        generation = lt.metadata.generation or 1
        new = LoadTestStatus(phase=phase, message=message[:1024], observed_generation=generation)
        if job is not None:
            new.job_name = job
        if queue_position is not None or (current.queue_position is not None
                                          and phase != "Queued"):
            new.queue_position = queue_position  # None removes it once the run starts
        if start:
            # explicit None: the merge patch removes the previous run's fields
            new.start_time = _now()
            new.completion_time = None
            new.results = None
        if complete:
            new.completion_time = _now()
        if results is not None:
            new.results = LoadTestResults.model_validate(results)
        for field, value in (run_fields or {}).items():  # run history (issue 16)
            setattr(new, field, value)
        if conditions:
            merged = [c.model_dump(mode="json", by_alias=True, exclude_none=True)
                      for c in current.conditions or []]
            for ctype, cstatus, reason, text in conditions:
                merged = set_condition(
                    merged, ctype, cstatus,  # type: ignore[arg-type]
                    reason, text[:1024], observed_generation=generation,
                )
            new.conditions = [Condition.model_validate(c) for c in merged]
        if all(getattr(current, field) == getattr(new, field) for field in new.model_fields_set):
            return  # nothing new: no write, no watch event
        patch = new.model_dump(mode="json", by_alias=True, exclude_unset=True)
        # Optimistic concurrency: the conditions were merged into what the cache holds, so the
        # write must fail if the object changed since (a Conflict retries from fresh data).
        body = {"metadata": {"resourceVersion": lt.metadata.resource_version},
                "status": patch}
        try:
            await Api(self.client, LoadTest, namespace=lt.namespace).patch_status(lt.name, body)
        except NotFound:
            return
        except Conflict:
            log.info("status of %s/%s changed since it was read; retrying from fresh data",
                     lt.metadata.namespace, lt.metadata.name)
            raise
        except ApiError as exc:
            log.warning("status of %s/%s not written: %s", lt.metadata.namespace,
                        lt.metadata.name, exc)
            raise


def _condition_is(lt: LoadTest, kind: str, status: str, message: str | None = None) -> bool:
    """Whether ``lt``'s condition ``kind`` has ``status`` (and ``message``, when given)."""
    for cond in (lt.status.conditions if lt.status else None) or []:
        if cond.type == kind:
            return cond.status == status and (message is None or cond.message == message)
    return False


def _rate_text(lt: LoadTest) -> str:
    stages = lt.spec.load.stages
    if stages:
        return f"{len(stages)} stage(s) peaking at {peak_rate(lt)} req/s"
    return f"{peak_rate(lt)} req/s"


def _loadtest_of_pod(pod: Any) -> list[Request]:
    """A worker pod wakes the LoadTest it runs for (its ``kuar.dev/loadtest`` label)."""
    name = (pod.metadata.labels or {}).get(LABEL_LOADTEST)
    return [Request(pod.namespace, name)] if name else []


def _loadtests_for_service(cache_store: Any) -> Any:
    def map_fn(service: Any) -> list[Request]:
        ns, name = service.namespace, service.name
        return [
            Request(ns, lt.metadata.name or "")
            for lt in cache_store.list(ns)
            if lt.spec.target.service == name
        ]

    return map_fn


def build_controller(
    client: Client, cache: InformerCache, settings: OperatorSettings, *,
    namespace: str | None = None, recorder: EventRecorder | None = None,
    max_concurrent_reconciles: int = 4,
) -> Controller:
    """The LoadTest controller: watches LoadTests, owns Jobs, watches Services (and its pods)."""
    recorder = recorder or EventRecorder(client, RecorderSettings(controller=CONTROLLER_NAME))
    reconciler = LoadTestReconciler(client, cache, settings, recorder, namespace=namespace)
    builder = (
        controller_for(LoadTest, reconciler.scope, cache=cache, decode=reconciler.decode,
                       # an annotation change may be a run-now request
                       predicates=[any_of(generation_changed, annotations_changed)])
        .owns(Job, reconciler.jobs_scope)
        .watches(Service, _loadtests_for_service(reconciler.loadtests.store))
    )
    if settings.coordinated_start:  # a pod becoming Running may complete a run's start
        builder = builder.watches(Pod, _loadtest_of_pod, reconciler.pods_scope)
    return (
        builder
        .named("loadtest")
        .with_settings(ControllerSettings(max_concurrent_reconciles=max_concurrent_reconciles))
        .build(reconciler)
    )
