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
5. When the Job ends, the pods' results are merged: status gets phase, results,
   ``completionTime`` and conditions; the full merged result (histogram and per-second
   series, for ``kuar loadtest report``) goes to the ConfigMap ``<name>-results``, owned by the
   LoadTest.
Deleting a LoadTest deletes its Job, pods and results through owner references (garbage
collection); no finalizer is needed because nothing outside the cluster must be cleaned up.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterable, Mapping
from typing import Any

from kuar.client import AlreadyExists, ApiError, Client, NotFound
from kuar.models.batch.v1 import Job
from kuar.models.core.v1 import Service
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
    patch_status,
    set_condition,
)
from kuar_loadtest.api.v1 import LoadTest
from kuar_loadtest.desired import (
    LABEL_LOADTEST,
    PlanError,
    desired_job,
    job_name,
    resolve_target,
)
from kuar_loadtest.settings import OperatorSettings
from kuar_loadtest.status import RunState, run_state

log = logging.getLogger("kuar_loadtest.controller")

LOADTESTS = LoadTest.resource_info()
JOBS = Job.resource_info()
SERVICES = Service.resource_info()
CONTROLLER_NAME = "kuar.dev/loadtest-controller"
RESULTS_SUFFIX = "-results"


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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
        self.jobs = cache.informer(JOBS, self.jobs_scope)
        self.services = cache.informer(SERVICES, self.scope)

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
        obj = lt.encode()
        if lt.spec.requests_per_second > self.settings.max_requests_per_second:
            await self._finish_failed(
                lt, obj, "RateAboveCap",
                f"spec.requestsPerSecond {lt.spec.requests_per_second} is above the operator's "
                f"cap of {self.settings.max_requests_per_second}",
            )
            raise TerminalError("requestsPerSecond above the operator's cap")
        service = self.services.store.get(Request(request.namespace, lt.spec.service))
        try:
            target = resolve_target(lt, None if service is None else dict(service))
        except PlanError as exc:
            if exc.reason != "ServiceNotFound":  # the Service exists but cannot be targeted
                await self._finish_failed(lt, obj, exc.reason, str(exc))
                return Result.done()
            await self._set_status(lt, obj, phase="Pending", message=str(exc), conditions=[
                ("ServiceResolved", "False", exc.reason, str(exc)),
            ])
            self.recorder.event(obj, WARNING, exc.reason, str(exc), action="ResolveService")
            return Result.requeue(after=self.settings.missing_service_retry)

        name = job_name(lt)
        await self._delete_old_runs(lt, keep=name)
        job = self.jobs.store.get(Request(request.namespace, name))
        if job is None:
            manifest = desired_job(
                lt, target, self.settings, start_at=time.time() + self.settings.start_delay
            )
            try:
                await self.client.request(
                    "POST", JOBS.path(request.namespace), body=manifest
                )
                workers = manifest["spec"]["parallelism"]
                self.recorder.event(
                    obj, NORMAL, "Started",
                    f"started {workers} worker pod(s) at {lt.spec.requests_per_second} req/s "
                    f"against {target.url}", action="CreateJob",
                )
            except AlreadyExists:
                pass  # created by an earlier reconcile; the cache has not seen it yet
            await self._set_status(
                lt, obj, phase="Running", message=f"load running against {target.url}",
                start=True, job=name, conditions=[
                    ("ServiceResolved", "True", "ServiceFound", target.url),
                    ("Complete", "False", "Running", "the workers are running"),
                ],
            )
            return Result.done()

        pods = await self._pods(request.namespace, name)
        state = run_state(dict(job), pods)
        if state.phase == "Running":
            await self._set_status(lt, obj, phase="Running", message=state.message, job=name)
            return Result.done()
        await self._finish(lt, obj, state)
        return Result.done()

    async def _pods(self, namespace: str, job: str) -> list[dict[str, Any]]:
        # Read once per finished run, straight from the API: caching every pod of the
        # namespace would cost memory for a one-off read.
        listed = await self.client.request(
            "GET", f"/api/v1/namespaces/{namespace}/pods",
            params={"labelSelector": f"job-name={job}"},
        )
        return list(listed.get("items") or [])

    async def _delete_old_runs(self, lt: LoadTest, *, keep: str) -> None:
        for job in self.jobs.store.list(lt.metadata.namespace):
            meta = job.metadata
            if meta.labels.get(LABEL_LOADTEST) != lt.metadata.name or meta.name == keep:
                continue
            if meta.deletion_timestamp:
                continue
            try:
                await self.client.request(
                    "DELETE", JOBS.path(meta.namespace, meta.name),
                    body={"propagationPolicy": "Background"},
                )
                self.recorder.event(
                    lt.encode(), NORMAL, "RunReplaced",
                    f"deleted Job {meta.name} of an earlier spec", action="DeleteJob",
                )
            except NotFound:
                pass

    async def _finish(self, lt: LoadTest, obj: Mapping[str, Any], state: RunState) -> None:
        if state.merged is not None:
            await self._store_results(lt, state.merged.to_json())
        if state.phase == "Succeeded":
            await self._set_status(
                lt, obj, phase="Succeeded", message=state.message, results=state.results,
                complete=True, conditions=[("Complete", "True", state.reason, state.message)],
            )
            self.recorder.event(obj, NORMAL, "Completed", state.message, action="CollectResults")
        else:
            await self._finish_failed(lt, obj, state.reason, state.message, state.results)

    async def _finish_failed(
        self, lt: LoadTest, obj: Mapping[str, Any], reason: str, message: str,
        results: dict[str, Any] | None = None,
    ) -> None:
        await self._set_status(
            lt, obj, phase="Failed", message=message, results=results, complete=True,
            conditions=[("Complete", "True", reason, message),
                        ("Failed", "True", reason, message)],
        )
        self.recorder.event(obj, WARNING, reason, message, action="Fail")

    async def _store_results(self, lt: LoadTest, payload: str) -> None:
        meta = lt.metadata
        body = {
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {
                "name": f"{meta.name}{RESULTS_SUFFIX}", "namespace": meta.namespace,
                "labels": {LABEL_LOADTEST: str(meta.name)},
                "ownerReferences": [{
                    "apiVersion": LOADTESTS.api_version, "kind": "LoadTest",
                    "name": meta.name, "uid": meta.uid, "controller": True,
                }],
            },
            "data": {"result.json": payload, "generation": str(meta.generation or 1)},
        }
        await self.client.request(
            "PATCH", f"/api/v1/namespaces/{meta.namespace}/configmaps/{meta.name}{RESULTS_SUFFIX}",
            params={"fieldManager": "kuar-loadtest", "force": True}, body=body,
            content_type="application/apply-patch+yaml",
        )

    async def _set_status(
        self, lt: LoadTest, obj: Mapping[str, Any], *, phase: str, message: str,
        job: str | None = None, results: dict[str, Any] | None = None, start: bool = False,
        complete: bool = False, conditions: Iterable[tuple[str, str, str, str]] = (),
    ) -> None:
        current = dict(obj.get("status") or {})
        generation = lt.metadata.generation or 1
        new: dict[str, Any] = {"phase": phase, "message": message[:1024],
                               "observedGeneration": generation}
        if job is not None:
            new["jobName"] = job
        if start:
            new["startTime"] = _now()
            new["completionTime"] = None
            new["results"] = None
        if complete:
            new["completionTime"] = _now()
        if results is not None:
            new["results"] = results
        merged_conditions = current.get("conditions") or []
        for ctype, cstatus, reason, text in conditions:
            merged_conditions = set_condition(
                merged_conditions, ctype, cstatus,  # type: ignore[arg-type]
                reason, text[:1024], observed_generation=generation,
            )
        if conditions:
            new["conditions"] = merged_conditions
        if all(current.get(k) == v for k, v in new.items()):
            return  # nothing new: no write, no watch event
        try:
            key = Request(lt.metadata.namespace or "", lt.metadata.name or "")
            await patch_status(self.client, LOADTESTS, key, new)
        except NotFound:
            return
        except ApiError as exc:
            log.warning("status of %s/%s not written: %s", lt.metadata.namespace,
                        lt.metadata.name, exc)
            raise


def _loadtests_for_service(cache_store: Any) -> Any:
    def map_fn(service: Any) -> list[Request]:
        ns, name = service.namespace, service.name
        return [
            Request(ns, lt.metadata.name or "")
            for lt in cache_store.list(ns)
            if lt.spec.service == name
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
        .owns(JOBS, reconciler.jobs_scope)
        .watches(SERVICES, _loadtests_for_service(reconciler.loadtests.store))
        .named("loadtest")
        .with_settings(ControllerSettings(max_concurrent_reconciles=max_concurrent_reconciles))
        .build(reconciler)
    )
