"""Coordinated start: when every worker pod of a run is Running, one shared start time (pure).

Place in the pipeline: :mod:`kuar_loadtest.controller` calls :func:`start_decision` with the
run's Job and its pods (from the operator's Pod informer) while the run waits for its start;
it writes the returned time, once, into ``status.startAt`` of the run's LoadTestRun, which
every worker watches (:mod:`kuar_loadgen.barrier`). No I/O here.

Rules:
- The run starts when as many distinct worker pods (by completion index) are Running as the
  Job's ``parallelism``: the start time is ``now + settings.start_lead``, a lead long enough
  for the watch event to reach every worker (one status write, fanned out by the API server:
  nothing here grows with the number of workers but the count of pods).
- Until then it waits; the wait is bounded by ``settings.runner_start_timeout`` counted from
  the Job's creation. Past it the run fails with reason ``RunnersNotStarted`` and a message
  naming the pods still waiting (at most :data:`NAMED_PODS` of them) and why, as the kubelet
  or the scheduler reported it (``ContainerCreating``, ``ImagePullBackOff``, ``Unschedulable:
  0/3 nodes are available...``), and how many pods were never created.

While it waits, :func:`mount_messages` and :func:`names_source` tell the controller whether a
request body's ConfigMap or Secret is what the pods wait for (the operator may not read
Secrets: the node that mounts them says so).

Caveat: "Running" means the pod's containers were started, not that the worker finished its
warm-up; the lead covers that (the worker prints how late it got the time when it did).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from kuar.models.batch.v1 import Job
from kuar.models.core.v1 import ContainerStateWaiting, Pod

INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"
"""Where the Job controller writes a pod's completion index (Indexed Jobs)."""
NAMED_PODS = 5
"""How many waiting pods a ``RunnersNotStarted`` message names (then "and N more")."""


@dataclass(frozen=True, slots=True)
class StartDecision:
    """What to do with a run waiting for its start."""

    action: Literal["wait", "start", "fail"]
    """``wait`` (look again when a pod changes, or after ``retry_after``), ``start`` (write
    ``start_at``) or ``fail`` (the pods did not start in time)."""
    message: str
    """For the status, the Event, or the log."""
    start_at: dt.datetime | None = None
    """The shared start time (``start``), to the millisecond."""
    retry_after: float | None = None
    """Seconds until the wait times out (``wait``)."""


def start_decision(job: Job, pods: Sequence[Pod], now: dt.datetime, *, lead: float,
                   timeout: float) -> StartDecision:
    """Whether the run of ``job`` may start now (see the module's rules)."""
    workers = (job.spec.parallelism if job.spec else None) or 1
    running = running_indexes(pods)
    if len(running) >= workers:
        at = now + dt.timedelta(seconds=lead)
        at = at.replace(microsecond=at.microsecond // 1000 * 1000)
        return StartDecision("start", f"all {workers} worker pod(s) are Running; they start "
                                      f"at {at.isoformat(timespec='milliseconds')}",
                             start_at=at)
    created = job.metadata.creation_timestamp or now
    waited = (now - created).total_seconds()
    text = f"{len(running)} of {workers} worker pod(s) Running"
    if waited < timeout:
        return StartDecision("wait", f"{text}; waiting for the rest to start",
                             retry_after=max(0.1, timeout - waited))
    return StartDecision("fail", f"{text} after {timeout:g}s: {waiting_pods(pods, workers)}")


def running_indexes(pods: Sequence[Pod]) -> set[str]:
    """Completion indexes (else names) of the pods that are Running and not being deleted."""
    out = set()
    for pod in pods:
        if pod.metadata.deletion_timestamp is not None or pod.status is None:
            continue
        if pod.status.phase == "Running":
            out.add(_index(pod))
    return out


def _index(pod: Pod) -> str:
    """The pod's completion index (its name when it has none): one per worker."""
    return (pod.metadata.annotations or {}).get(INDEX_ANNOTATION) or pod.name


def waiting_pods(pods: Sequence[Pod], workers: int) -> str:
    """The pods not Running and why, e.g. ``pod x-1-abc: ImagePullBackOff (...)``."""
    waiting = [p for p in pods if p.status is None or p.status.phase != "Running"]
    parts = [f"pod {p.name}: {pod_wait_reason(p)}" for p in
             sorted(waiting, key=lambda p: p.name)[:NAMED_PODS]]
    if len(waiting) > NAMED_PODS:
        parts.append(f"and {len(waiting) - NAMED_PODS} more")
    missing = workers - len({_index(p) for p in pods if p.metadata.deletion_timestamp is None})
    if missing > 0:
        parts.append(f"{missing} pod(s) not created (see the Job's Events)")
    return "; ".join(parts) or "no pod is waiting (they ended)"


def pod_wait_reason(pod: Pod) -> str:
    """Why one pod is not Running, in the words the kubelet or the scheduler used."""
    status = pod.status
    if status is None:
        return "Pending (no status yet)"
    for container in status.container_statuses or []:
        waiting = container.state.waiting if container.state is not None else None
        if waiting is not None and waiting.reason:
            return _with(waiting.reason, waiting.message)
        terminated = container.state.terminated if container.state is not None else None
        if terminated is not None:
            return _with(terminated.reason or f"exited {terminated.exit_code}",
                         terminated.message)
    for condition in status.conditions or []:
        if condition.status == "False" and condition.reason:
            return _with(condition.reason, condition.message)
    if status.reason:
        return _with(status.reason, status.message)
    return status.phase or "Pending"


def _with(reason: str, message: str | None) -> str:
    text = " ".join((message or "").split())
    return f"{reason} ({text[:200]})" if text else reason


MOUNT_WAIT_REASONS = ("ContainerCreating", "CreateContainerConfigError")
"""Waiting reasons of a pod whose volume or env source is missing (kubelet and local node)."""


def mount_waits(pods: Sequence[Pod]) -> list[ContainerStateWaiting]:
    """The waiting states of containers that wait for a volume or env source."""
    out = []
    for pod in pods:
        for container in (pod.status.container_statuses if pod.status else None) or []:
            waiting = container.state.waiting if container.state is not None else None
            if waiting is not None and waiting.reason in MOUNT_WAIT_REASONS:
                out.append(waiting)
    return out


def mount_messages(pods: Sequence[Pod]) -> list[str]:
    """What the node said about pods that wait for a volume or env source (may be empty).

    kuar's process node puts ``MountVolume.SetUp failed for volume "kuar-run" : secret "x" not
    found`` in the container's ``waiting.message``; a kubelet says it in a ``FailedMount``
    Event instead (the controller reads those when this finds nothing).
    """
    return [w.message for w in mount_waits(pods) if w.message]


def names_source(message: str, kind: str, namespace: str, name: str) -> bool:
    """Whether a kubelet's or the local node's message names ConfigMap/Secret ``name``.

    Forms: ``secret "x" not found``, ``secret "x" has no key "k"``, ``couldn't find key k in
    Secret ns/x``, ``configmap "x" not found``.
    """
    text = message.lower()
    what = kind.lower()
    return (f'{what} "{name.lower()}"' in text
            or f"{what} {namespace.lower()}/{name.lower()}" in text)
