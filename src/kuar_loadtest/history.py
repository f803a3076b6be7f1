"""LoadTestRun records: one per run, written when it starts and ends, the oldest deleted.

Place in the pipeline: :mod:`kuar_loadtest.controller` calls :class:`RunRecords` when it
starts a run (:meth:`RunRecords.started`), when the run ends (:meth:`RunRecords.finished`)
and after that (:meth:`RunRecords.collect`, which deletes what :func:`select_expired`
picks). The records are read from the controller's informer cache of LoadTestRuns.

Guarantees: every write is safe to repeat (a record that exists is left as it is; a finish
rewrites the same status). A record is owned by its LoadTest (deleted with it). Garbage
collection keeps the newest ``historyLimit`` records (the spec's, else the operator's
default) and never deletes the running run or the run named as ``spec.baseline.run``.
Caveat: the records are a history of summaries; the full merged result (histogram,
per-second series) is kept for the latest run only, in the ``<name>-results`` ConfigMap.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterable, Sequence

from kuar.client import AlreadyExists, Api, Client, NotFound
from kuar.resources import ObjectMeta, OwnerReference
from kuar_loadtest.api.run import LoadTestRun, LoadTestRunSpec, LoadTestRunStatus, Trigger
from kuar_loadtest.api.status import Comparison, LoadTestResults
from kuar_loadtest.api.v2 import LoadTest
from kuar_loadtest.desired import LABEL_LOADTEST

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def _started(run: LoadTestRun) -> tuple[dt.datetime, str]:
    status = run.status
    when = (status.start_time if status else None) or run.metadata.creation_timestamp or _EPOCH
    return when, run.metadata.name or ""


def runs_of(runs: Iterable[LoadTestRun], loadtest: LoadTest) -> list[LoadTestRun]:
    """The records of ``loadtest`` (by owner UID), oldest first."""
    uid = loadtest.metadata.uid
    mine = [r for r in runs if any(o.uid == uid for o in r.metadata.owner_references or [])]
    return sorted(mine, key=_started)


def select_expired(runs: Sequence[LoadTestRun], keep: int, protect: Iterable[str]) -> list[str]:
    """Names of the records beyond the newest ``keep``, except running and ``protect``ed ones."""
    protected = set(protect)
    newest_first = sorted(runs, key=_started, reverse=True)
    return [r.metadata.name or "" for r in newest_first[keep:]
            if (r.metadata.name or "") not in protected
            and (r.status is None or r.status.phase not in (None, "Running"))]


class RunRecords:
    """Writes the LoadTestRun records of the LoadTest controller."""

    def __init__(self, client: Client) -> None:
        """Bind to the API client."""
        self.client = client

    async def started(self, lt: LoadTest, name: str, trigger: Trigger,
                      scheduled_time: dt.datetime | None, now: dt.datetime) -> bool:
        """Create the record of a run that starts now; ``False`` if it exists already."""
        meta = lt.metadata
        record = LoadTestRun(
            metadata=ObjectMeta(
                name=name, namespace=meta.namespace, labels={LABEL_LOADTEST: lt.name},
                owner_references=[OwnerReference(
                    api_version=LoadTest.resource_info().api_version, kind="LoadTest",
                    name=lt.name, uid=meta.uid or "", controller=True)]),
            spec=LoadTestRunSpec(
                load_test=lt.name, trigger=trigger, scheduled_time=scheduled_time,
                generation=meta.generation or 1,
                load_test_spec=lt.spec.model_dump(mode="json", by_alias=True,
                                                  exclude_none=True)),
        )
        runs = Api(self.client, LoadTestRun, namespace=meta.namespace)
        try:
            await runs.create(record)
        except AlreadyExists:
            return False
        await self._status(runs, name, LoadTestRunStatus(phase="Running", start_time=now))
        return True

    async def finished(self, lt: LoadTest, name: str, *, phase: str, reason: str,
                       message: str, now: dt.datetime, results: LoadTestResults | None = None,
                       comparison: Comparison | None = None) -> None:
        """Write how the run ended into its record (nothing if the record is gone)."""
        status = LoadTestRunStatus.model_validate({
            "phase": phase, "reason": reason, "message": message[:1024],
            "completionTime": now.isoformat()})
        status.results = results
        status.comparison = comparison
        await self._status(Api(self.client, LoadTestRun, namespace=lt.namespace), name, status)

    async def collect(self, lt: LoadTest, runs: Sequence[LoadTestRun], keep: int,
                      protect: Iterable[str]) -> list[str]:
        """Delete the records :func:`select_expired` picks; return their names."""
        api = Api(self.client, LoadTestRun, namespace=lt.namespace)
        deleted = []
        for name in select_expired(runs, keep, protect):
            with contextlib.suppress(NotFound):
                await api.delete(name)
            deleted.append(name)
        return deleted

    @staticmethod
    async def _status(api: Api[LoadTestRun], name: str, status: LoadTestRunStatus) -> None:
        body = {"status": status.model_dump(mode="json", by_alias=True, exclude_unset=True)}
        with contextlib.suppress(NotFound):
            await api.patch_status(name, body)
