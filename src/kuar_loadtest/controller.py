"""The LoadTest controller: compiles each LoadTest into a Job of load generators and reports.

Place in the pipeline: a reconciler run by :class:`kuar.runtime.Controller` (built in
:func:`build_controller`), under :class:`kuar.manager.Manager` (see :mod:`.operator`). All
decisions are in the pure modules :mod:`.desired` and :mod:`.status`; this module only reads
the cache, writes the API and records Events. Built only on kuar's public API.

Per LoadTest (level-based; every step is safe to repeat):
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
Deleting a LoadTest deletes its Job, pods and results through owner references (garbage
collection); no finalizer is needed because nothing outside the cluster must be cleaned up.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Iterable
from typing import Any

from kuar.client import AlreadyExists, Api, ApiError, Client, Conflict, NotFound
from kuar.models.batch.v1 import Job
from kuar.models.core.v1 import ConfigMap, Pod, Secret, Service
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
    controller_for,
    decode_with_events,
    generation_changed,
    is_controlled_by,
    set_condition,
)
from kuar_loadtest.api.status import LoadTestResults, LoadTestStatus, Phase
from kuar_loadtest.api.v2 import LoadTest
from kuar_loadtest.desired import (
    LABEL_LOADTEST,
    PlanError,
    body_refs,
    budget_problem,
    cap_problem,
    desired_job,
    endpoint_problem,
    job_name,
    peak_rate,
    queue_problem,
    resolve_target,
)
from kuar_loadtest.settings import OperatorSettings
from kuar_loadtest.status import RunState, job_condition, run_state
from kuar_loadtest.thresholds import judge

log = logging.getLogger("kuar_loadtest.controller")

LOADTESTS = LoadTest.resource_info()
CONTROLLER_NAME = "kuar.dev/loadtest-controller"
RESULTS_SUFFIX = "-results"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


class LoadTestReconciler:
    """Reconciles one LoadTest key; see the module docstring for the steps."""

    def __init__(
        self, client: Client, cache: InformerCache, settings: OperatorSettings,
        recorder: EventRecorder, *, namespace: str | None = None,
    ) -> None:
        """Bind the reconciler to the shared cache (LoadTests, Jobs and Services)."""
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
        self._budget_lock = asyncio.Lock()
        self._reserved: dict[str, LoadTest] = {}

    async def __call__(self, request: Request) -> Result:
        """Reconcile the LoadTest ``request`` names."""
        lt = self.loadtests.store.get(request)
        if lt is None or lt.metadata.deletion_timestamp is not None:
            return Result.done()  # garbage collection removes what it owned
        status = lt.status
        generation = lt.metadata.generation or 1
        if (status is not None and status.phase in ("Succeeded", "Failed")
                and status.observed_generation == generation):
            return Result.done()
        try:
            capped = cap_problem(lt, self.settings)
        except PlanError as exc:  # an unreadable duration (the webhook denies it, if it ran)
            capped = exc
        if capped is not None:
            await self._finish_failed(lt, capped.reason, str(capped))
            raise TerminalError(str(capped))
        service = self.services.store.get(Request(request.namespace, lt.spec.target.service))
        try:
            target = resolve_target(lt, service)
        except PlanError as exc:
            if exc.reason != "ServiceNotFound":  # the Service exists but cannot be targeted
                await self._finish_failed(lt, exc.reason, str(exc))
                return Result.done()
            await self._set_status(lt, phase="Pending", message=str(exc), conditions=[
                ("ServiceResolved", "False", exc.reason, str(exc)),
            ])
            self.recorder.event(lt, WARNING, exc.reason, str(exc), action="ResolveService")
            return Result.requeue(after=self.settings.missing_service_retry)

        name = job_name(lt)
        await self._delete_old_runs(lt, keep=name)
        job = self.jobs.store.get(Request(request.namespace, name))
        if job is None:
            assert service is not None  # resolve_target found it
            outside = await self._endpoint_problem(lt, service)
            if outside is not None:  # checked once, when a run starts: not on every Job change
                await self._finish_failed(lt, outside.reason, str(outside))
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
                ])
                self.recorder.event(lt, WARNING, waiting.reason, str(waiting), action="Wait")
                return Result.requeue(after=self.settings.budget_retry)
            missing = await self._body_problem(lt)
            if missing is not None:
                self._reserved.pop(lt.metadata.uid or "", None)
                await self._set_status(lt, phase="Pending", message=str(missing), conditions=[
                    ("RequestBodiesFound", "False", missing.reason, str(missing)),
                ])
                self.recorder.event(lt, WARNING, missing.reason, str(missing),
                                    action="ResolveBodies")
                return Result.requeue(after=self.settings.missing_service_retry)
            try:
                desired = desired_job(
                    lt, target, self.settings, start_at=time.time() + self.settings.start_delay
                )
            except PlanError as exc:
                self._reserved.pop(lt.metadata.uid or "", None)
                await self._finish_failed(lt, exc.reason, str(exc))
                return Result.done()
            try:
                await Api(self.client, Job, namespace=request.namespace).create(desired)
                workers = desired.spec.parallelism if desired.spec else None
                self.recorder.event(
                    lt, NORMAL, "Started",
                    f"started {workers} worker pod(s) at {_rate_text(lt)} "
                    f"against {target.url}", action="CreateJob",
                )
            except AlreadyExists:
                pass  # created by an earlier reconcile; the cache has not seen it yet
            await self._set_status(
                lt, phase="Running", message=f"load running against {target.url}",
                start=True, job=name, conditions=[
                    ("ServiceResolved", "True", "ServiceFound", target.url),
                    ("RateBudget", "True", "WithinBudget",
                     f"{peak_rate(lt)} req/s at most fits the operator's caps"),
                    ("Complete", "False", "Running", "the workers are running"),
                ],
            )
            return Result.done()

        if job_condition(job, "Complete") is None and job_condition(job, "Failed") is None:
            # pods are read once, when the run has ended, not on every change of a running Job
            state = run_state(job, [])
            await self._set_status(lt, phase="Running", message=state.message, job=name)
            return Result.done()
        state = run_state(job, await self._pods(request.namespace, name))
        await self._finish(lt, state)
        self._reserved.pop(lt.metadata.uid or "", None)
        return Result.done()

    async def _body_problem(self, lt: LoadTest) -> PlanError | None:
        """A request body's ConfigMap or Secret key that does not exist (values unread)."""
        for ref in body_refs(lt):
            model: Any = Secret if ref.kind == "Secret" else ConfigMap
            try:
                obj = await Api(self.client, model, namespace=lt.namespace).get(ref.name)
            except NotFound:
                obj = None
            keys = set((obj.data or {}) if obj is not None else ())
            if ref.kind == "ConfigMap" and obj is not None:
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
                    f"deleted Job {meta.name} of an earlier spec", action="DeleteJob",
                )
            except NotFound:
                pass

    async def _finish(self, lt: LoadTest, state: RunState) -> None:
        extra: list[tuple[str, str, str, str]] = []
        state, thresholds = judge(lt, state)
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
            )
            self.recorder.event(lt, NORMAL, "Completed", state.message, action="CollectResults")
        else:
            await self._finish_failed(lt, state.reason, state.message, state.results, extra)
        stored = any(c[0] == "ResultsStored" and c[1] == "True" for c in extra)
        if lt.spec.cleanup == "post" and (stored or state.merged is None):
            await self._clean_up(lt)

    async def _clean_up(self, lt: LoadTest) -> None:
        """``cleanup: post``: the run's Job and pods go once the results are stored."""
        name = job_name(lt)
        try:
            await Api(self.client, Job, namespace=lt.namespace).delete(
                name, propagation_policy="Background")
        except NotFound:
            return
        self.recorder.event(lt, NORMAL, "CleanedUp", f"deleted Job {name} (cleanup: post)",
                            action="DeleteJob")

    async def _finish_failed(
        self, lt: LoadTest, reason: str, message: str, results: dict[str, Any] | None = None,
        extra: Iterable[tuple[str, str, str, str]] = (),
    ) -> None:
        await self._set_status(
            lt, phase="Failed", message=message, results=results, complete=True,
            conditions=[("Complete", "True", reason, message),
                        ("Failed", "True", reason, message), *extra],
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


def _rate_text(lt: LoadTest) -> str:
    stages = lt.spec.load.stages
    if stages:
        return f"{len(stages)} stage(s) peaking at {peak_rate(lt)} req/s"
    return f"{peak_rate(lt)} req/s"


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
    """The LoadTest controller: watches LoadTests, owns Jobs, watches Services."""
    recorder = recorder or EventRecorder(client, RecorderSettings(controller=CONTROLLER_NAME))
    reconciler = LoadTestReconciler(client, cache, settings, recorder, namespace=namespace)
    return (
        controller_for(LoadTest, reconciler.scope, cache=cache, decode=reconciler.decode,
                       predicates=[generation_changed])
        .owns(Job, reconciler.jobs_scope)
        .watches(Service, _loadtests_for_service(reconciler.loadtests.store))
        .named("loadtest")
        .with_settings(ControllerSettings(max_concurrent_reconciles=max_concurrent_reconciles))
        .build(reconciler)
    )
