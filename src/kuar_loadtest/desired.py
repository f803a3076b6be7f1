"""What a LoadTest compiles into: the target URL and the Indexed Job of worker pods (pure).

Place in the pipeline: called by :mod:`kuar_loadtest.controller` with objects read from the
informer cache; returns typed objects (:mod:`kuar.models`) the controller creates. No I/O here,
so every rule is unit-tested (the seed's "compiler" pattern).

Rules:
- The target is the Service named in ``spec.target.service`` in the LoadTest's own namespace;
  never another namespace (a name with dots or a URL is refused by validation).
- The port: ``spec.target.port`` when set (it must be one of the Service's ports), else the
  Service's only port, else its port named after the scheme (``http``/``https``), else its
  first port.
- Workers: ``spec.load.workers`` when set, else ``ceil(requestsPerSecond / per_pod_rps)``, at most
  ``max_workers``. Every worker gets the whole rate and the shard count; worker ``i`` issues
  requests ``i, i+N, ...`` (kuar_loadgen's exact sharding), so together they hold the rate.
- Each run is named after the LoadTest's generation: a spec change makes a new Job (a new
  run) and the old run's Job is deleted.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

from kuar.models.batch.v1 import Job, JobSpec
from kuar.models.core.v1 import (
    Affinity,
    ConfigMap,
    ConfigMapProjection,
    Container,
    KeyToPath,
    PodAffinityTerm,
    PodAntiAffinity,
    PodSpec,
    PodTemplateSpec,
    ProjectedVolumeSource,
    ResourceRequirements,
    SecretProjection,
    Service,
    ServiceAccount,
    ServiceAccountTokenProjection,
    Volume,
    VolumeMount,
    VolumeProjection,
)
from kuar.models.discovery.v1 import EndpointSlice
from kuar.models.meta.v1 import LabelSelector
from kuar.models.rbac.v1 import Role, RoleBinding, RoleRef, Subject
from kuar.resources import ObjectMeta, OwnerReference
from kuar_loadgen.mix import RequestKind
from kuar_loadgen.spec import LoadSpec, SpecError
from kuar_loadtest.api.v2 import LoadTest, RunnerTemplate
from kuar_loadtest.rbac import OPERATOR, RUNNER_ROLE, RUNNER_RULES
from kuar_loadtest.settings import OperatorSettings

LABEL_LOADTEST = "kuar.dev/loadtest"
LABEL_RUN = "kuar.dev/run"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGER = "kuar-loadtest"
"""The value of :data:`LABEL_MANAGED_BY` on every Job and pod of a run (the selector of the
operator's Pod informer)."""
TERMINATION_LOG = "/dev/termination-log"
RUN_VOLUME = "kuar-run"
RUN_MOUNT = "/var/run/kuar.dev/run"
"""The run volume of a worker pod (one projected volume, read-only): ``spec.json`` (the worker
spec, from the run's ConfigMap ``<run>-spec``), ``body-<i>`` (request ``i``'s body from its
ConfigMap or Secret key), and with coordinated start ``token`` (a projected service-account
token, rotated by the kubelet) and ``ca.crt`` (the cluster CA from ``kube-root-ca.crt``)."""
SPEC_KEY = "spec.json"
"""The run ConfigMap's key (and the run volume's file) holding the worker spec."""
SPEC_SUFFIX = "-spec"
"""The run ConfigMap is named after the run (the Job) with this suffix."""
MAX_CONFIGMAP = 1024 * 1024
"""What the API server lets one ConfigMap hold: keys and values, 1 MiB in all."""
API_TOKEN_SECONDS = 3600
"""Lifetime asked for the projected token (the kubelet renews it at 80 %)."""

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


class PlanError(ValueError):
    """The LoadTest cannot be compiled; ``reason`` is a condition reason."""

    def __init__(self, reason: str, message: str) -> None:
        """Record the machine-readable reason and the human message."""
        super().__init__(message)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class ResolvedTarget:
    """Where the workers send requests."""

    url: str
    port: int


def parse_duration(text: str, field: str = "spec.load.duration") -> float:
    """A Go-style duration (``90s``, ``1m30s``, ``250ms``) in seconds."""
    parts = _DURATION.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise PlanError("InvalidDuration", f"{field} {text!r} is not a duration like 30s")
    return sum(float(n) * _UNIT[u] for n, u in parts)


def peak_rate(lt: LoadTest) -> int:
    """The highest rate the LoadTest asks for: ``requestsPerSecond``, or its stages' peak."""
    load = lt.spec.load
    if load.stages:
        return max([load.start_rate or 0, *(s.target for s in load.stages)])
    return load.requests_per_second or 0


def stage_pairs(lt: LoadTest) -> tuple[tuple[float, float], ...]:
    """The stages as ``(seconds, target)`` pairs (empty for a constant rate)."""
    out = []
    for i, stage in enumerate(lt.spec.load.stages or []):
        seconds = parse_duration(stage.duration, f"spec.load.stages[{i}].duration")
        if seconds <= 0:
            raise PlanError("InvalidStage",
                            f"spec.load.stages[{i}].duration: must be greater than 0")
        out.append((seconds, float(stage.target)))
    return tuple(out)


def run_seconds(lt: LoadTest) -> float:
    """How long the run sends: the stages' sum, or ``spec.load.duration``."""
    stages = stage_pairs(lt)
    return sum(d for d, _ in stages) if stages else parse_duration(lt.spec.load.duration)


@dataclass(frozen=True, slots=True)
class BodyRef:
    """A request body kept in a ConfigMap or Secret key (the pod reads it as a file)."""

    index: int
    """The request's index in ``spec.target.requests``."""
    kind: str
    """``ConfigMap`` or ``Secret``."""
    name: str
    key: str

    @property
    def file(self) -> str:
        """The body's file in the run volume (relative to the spec file's folder)."""
        return f"body-{self.index}"

    @property
    def field(self) -> str:
        """The spec field that names it."""
        ref = "configMapKeyRef" if self.kind == "ConfigMap" else "secretKeyRef"
        return f"spec.target.requests[{self.index}].bodyFrom.{ref}"


def body_refs(lt: LoadTest) -> list[BodyRef]:
    """The ConfigMap and Secret keys the request mix reads its bodies from."""
    out = []
    for i, req in enumerate(lt.spec.target.requests or []):
        source = req.body_from
        if source is None:
            continue
        if source.secret_key_ref is not None:
            out.append(BodyRef(i, "Secret", source.secret_key_ref.name or "",
                               source.secret_key_ref.key))
        elif source.config_map_key_ref is not None:
            out.append(BodyRef(i, "ConfigMap", source.config_map_key_ref.name or "",
                               source.config_map_key_ref.key))
    return out


def request_kinds(lt: LoadTest) -> tuple[RequestKind, ...]:
    """The worker's request mix (bodies from keys become ``body_file`` references)."""
    refs = {r.index: r for r in body_refs(lt)}
    kinds = []
    for i, req in enumerate(lt.spec.target.requests or []):
        kinds.append(RequestKind(
            method=req.method, path=req.path, headers=tuple((req.headers or {}).items()),
            body=req.body or "", body_file=refs[i].file if i in refs else "",
            weight=req.weight))
    return tuple(kinds)


def resolve_target(lt: LoadTest, service: Service | None) -> ResolvedTarget:
    """The URL of the LoadTest's Service (see the module's port rule)."""
    spec = lt.spec.target
    ns = lt.metadata.namespace
    if service is None:
        raise PlanError(
            "ServiceNotFound", f"Service {spec.service!r} not found in namespace {ns!r}"
        )
    if service.spec is not None and service.spec.type == "ExternalName":
        # an ExternalName Service points anywhere outside the cluster: never a load target
        raise PlanError(
            "ExternalNameNotAllowed",
            f"Service {spec.service!r} is of type ExternalName "
            f"({service.spec.external_name!r}); load goes only to Services in the cluster",
        )
    ports = list((service.spec.ports if service.spec else None) or [])
    if not ports:
        raise PlanError("ServiceHasNoPorts", f"Service {spec.service!r} has no ports")
    if spec.port is not None:
        chosen = next((p for p in ports if p.port == spec.port), None)
        if chosen is None:
            numbers = ", ".join(str(p.port) for p in ports)
            raise PlanError(
                "PortNotFound",
                f"Service {spec.service!r} has no port {spec.port} (it has {numbers})",
            )
    elif len(ports) == 1:
        chosen = ports[0]
    else:
        chosen = next((p for p in ports if p.name == spec.scheme), ports[0])
    port = chosen.port
    return ResolvedTarget(f"{spec.scheme}://{spec.service}.{ns}.svc:{port}", port)


def endpoint_problem(
    lt: LoadTest, service: Service, slices: Iterable[EndpointSlice], settings: OperatorSettings
) -> PlanError | None:
    """Why a Service without a selector cannot be a target (``None`` when it may be).

    Hand-written endpoints can name any host, so every address must be inside
    ``settings.allowed_endpoint_cidrs``; a hostname never is.
    """
    if service.spec is not None and service.spec.selector:
        return None  # the cluster fills its endpoints from its own pods
    allowed = [ipaddress.ip_network(c, strict=False) for c in settings.allowed_endpoint_cidrs]
    outside = sorted({
        address for s in slices for e in s.endpoints or [] for address in e.addresses
        if not _inside(address, allowed)
    })
    if not allowed or outside:
        where = (f"its endpoints {', '.join(outside[:5])} are outside "
                 f"{', '.join(settings.allowed_endpoint_cidrs)}" if allowed and outside else
                 "the operator allows no addresses for Services without a selector")
        return PlanError(
            "EndpointsNotAllowed",
            f"Service {lt.spec.target.service!r} has no selector and {where}; load goes only to "
            "pods of the cluster",
        )
    return None


def _inside(address: str, networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False  # a hostname (FQDN slices): not an address we can vouch for
    return any(ip in net for net in networks)


def cap_problem(lt: LoadTest, settings: OperatorSettings) -> PlanError | None:
    """Why ``lt`` may never run under this operator (rate or duration above its caps)."""
    rate = peak_rate(lt)
    if rate > settings.max_requests_per_second:
        return PlanError(
            "RateAboveCap",
            f"spec.load: a rate of {rate} req/s is above the operator's "
            f"cap of {settings.max_requests_per_second}",
        )
    duration = run_seconds(lt)
    if duration > settings.max_duration:
        return PlanError(
            "DurationAboveCap",
            f"spec.load: a duration of {duration:g}s is above the operator's cap of "
            f"{settings.max_duration:g}s",
        )
    return None


def budget_problem(
    lt: LoadTest, running: Iterable[LoadTest], settings: OperatorSettings
) -> PlanError | None:
    """Why ``lt`` must wait: it would cross the operator-wide or its namespace's total rate.

    ``running`` are the LoadTests now running (``lt`` itself is left out of the sums).
    """
    others = [o for o in running if o.metadata.uid != lt.metadata.uid]
    total = sum(peak_rate(o) for o in others)
    in_namespace = sum(peak_rate(o) for o in others if o.namespace == lt.namespace)
    rate = peak_rate(lt)
    if in_namespace + rate > settings.max_namespace_requests_per_second:
        return PlanError(
            "RateBudgetExceeded",
            f"namespace {lt.namespace} already runs {in_namespace} req/s; {rate} more would "
            f"cross its cap of {settings.max_namespace_requests_per_second}; waiting",
        )
    if total + rate > settings.max_total_requests_per_second:
        return PlanError(
            "RateBudgetExceeded",
            f"the operator already runs {total} req/s; {rate} more would cross its cap of "
            f"{settings.max_total_requests_per_second}; waiting",
        )
    return None


def queue_problem(
    lt: LoadTest, running: Iterable[LoadTest], queued: Iterable[LoadTest],
    settings: OperatorSettings,
) -> tuple[PlanError, int] | None:
    """Why ``lt`` must wait for a run slot, and its place in the queue (1 = next).

    First come, first served: ``queued`` (the LoadTests now Queued) are ordered by creation
    time; ``lt`` starts only when a slot is free in its namespace and operator-wide and no
    LoadTest queued before it could take that slot.
    """
    total_cap, ns_cap = settings.max_concurrent_runs, settings.max_namespace_concurrent_runs
    if total_cap is None and ns_cap is None:
        return None
    me = lt.metadata.uid
    busy = [o for o in running if o.metadata.uid != me]
    line = sorted((o for o in [*queued, lt]), key=_arrival)
    line = [o for i, o in enumerate(line) if o.metadata.uid not in
            {x.metadata.uid for x in line[:i]}]  # one place each
    ahead = line[:[o.metadata.uid for o in line].index(me)]

    def fits(o: LoadTest, taken: list[LoadTest]) -> bool:
        if total_cap is not None and len(taken) >= total_cap:
            return False
        same = sum(1 for t in taken if t.namespace == o.namespace)
        return ns_cap is None or same < ns_cap

    taken = list(busy)
    for o in ahead:  # those queued before get the free slots first
        if fits(o, taken):
            taken.append(o)
    if fits(lt, taken):
        return None
    position = len(ahead) + 1
    where = (f"namespace {lt.namespace} runs {sum(1 for t in busy if t.namespace == lt.namespace)}"
             f" of {ns_cap}" if ns_cap is not None else "")
    cap = f"{len(busy)} of {total_cap} runs" if total_cap is not None else ""
    detail = "; ".join(x for x in (cap, where) if x)
    return PlanError("ConcurrencyLimit",
                     f"queued at position {position}: {detail}; waiting for a run to end"), position


def _arrival(lt: LoadTest) -> tuple[str, str, str]:
    created = lt.metadata.creation_timestamp
    return (created.isoformat() if created else "", lt.namespace or "", lt.name)


def worker_count(lt: LoadTest, settings: OperatorSettings) -> int:
    """How many worker pods share the rate."""
    rate = peak_rate(lt)
    wanted = lt.spec.load.workers or math.ceil(rate / settings.per_pod_requests_per_second)
    return max(1, min(wanted, settings.max_workers, max(rate, 1)))


def job_name(lt: LoadTest) -> str:
    """``<loadtest>-run-<generation>``, shortened with a hash to fit a label value (63)."""
    suffix = f"-run-{lt.metadata.generation or 1}"
    name = lt.metadata.name or ""
    if len(name) + len(suffix) > 52:  # Job pods add "-<index>-<random 5>" to this
        digest = hashlib.sha256(name.encode()).hexdigest()[:6]
        name = f"{name[: 52 - len(suffix) - 7]}-{digest}"
    return name + suffix


def load_spec(
    lt: LoadTest, target: ResolvedTarget, settings: OperatorSettings, *, workers: int,
    start_at: float | None,
) -> LoadSpec:
    """The worker contract for this run (each pod reads its shard index from the Job).

    A spec the worker would refuse (the webhook was down) is a :class:`PlanError`; so is one
    whose JSON (inline bodies included) would not fit in the run's ConfigMap (1 MiB).
    """
    try:
        spec = _load_spec(lt, target, settings, workers=workers, start_at=start_at)
    except SpecError as exc:
        raise PlanError("InvalidSpec", f"spec: {exc}") from None
    size = len(spec_json(spec).encode()) + len(SPEC_KEY)
    if size > MAX_CONFIGMAP:
        raise PlanError("SpecTooLarge",
                        f"the worker spec is {size} bytes with its inline bodies, more than a "
                        f"ConfigMap holds ({MAX_CONFIGMAP}); keep large bodies in ConfigMap or "
                        "Secret keys (spec.target.requests[].bodyFrom), up to 1 MiB each")
    return spec


def spec_json(spec: LoadSpec) -> str:
    """The worker spec as a pod gets it: JSON without ``shard_index``.

    Each pod of the Indexed Job takes its shard from its own completion index
    (``JOB_COMPLETION_INDEX``); with a ``shard_index`` in the spec, every pod would be shard 0
    and send the same requests.
    """
    data = spec.to_dict()
    del data["shard_index"]
    return json.dumps(data, separators=(",", ":"), sort_keys=True)


def _load_spec(
    lt: LoadTest, target: ResolvedTarget, settings: OperatorSettings, *, workers: int,
    start_at: float | None,
) -> LoadSpec:
    return LoadSpec(
        urls=(target.url,),
        rps=float(peak_rate(lt)),
        duration=run_seconds(lt),
        stages=stage_pairs(lt),
        start_rate=float(lt.spec.load.start_rate or 0) if lt.spec.load.stages else 0.0,
        paths=tuple(lt.spec.target.paths),
        headers=tuple((lt.spec.target.headers or {}).items()),
        requests=request_kinds(lt),
        thresholds=tuple(lt.spec.thresholds or ()) if lt.spec.abort_on_fail else (),
        abort_on_fail=bool(lt.spec.abort_on_fail),
        timeout=settings.request_timeout,
        shard_count=workers,
        start_at=start_at,
        ca_file=settings.ca_file,
    )


def _affinity(runner: RunnerTemplate, labels: dict[str, str]) -> Affinity | None:
    """The template's affinity, plus one worker per node when ``separate``."""
    if not runner.separate:
        return runner.affinity
    affinity = runner.affinity.model_copy(deep=True) if runner.affinity else Affinity()
    anti = affinity.pod_anti_affinity or PodAntiAffinity()
    term = PodAffinityTerm(
        topology_key="kubernetes.io/hostname",
        label_selector=LabelSelector(match_labels={
            LABEL_LOADTEST: labels[LABEL_LOADTEST], LABEL_RUN: labels[LABEL_RUN]}))
    anti.required_during_scheduling_ignored_during_execution = [
        *(anti.required_during_scheduling_ignored_during_execution or []), term]
    affinity.pod_anti_affinity = anti
    return affinity


def _body_source(ref: BodyRef) -> VolumeProjection:
    """A body key as one file of the run volume (the value never passes through the Job)."""
    items = [KeyToPath(key=ref.key, path=ref.file)]
    if ref.kind == "Secret":
        return VolumeProjection(secret=SecretProjection(name=ref.name, items=items))
    return VolumeProjection(config_map=ConfigMapProjection(name=ref.name, items=items))


def runner_service_account(lt: LoadTest, settings: OperatorSettings) -> str:
    """The ServiceAccount the run's worker pods use (the template's, else the operator's)."""
    runner = lt.spec.runner
    return (runner.service_account_name if runner is not None and runner.service_account_name
            else settings.runner_service_account)


def runner_identity(namespace: str, account: str, settings: OperatorSettings
                    ) -> list[ServiceAccount | Role | RoleBinding]:
    """The runners' ServiceAccount, Role and RoleBinding in ``namespace`` (created if missing).

    The Role grants :data:`kuar_loadtest.rbac.RUNNER_RULES` only: get and watch LoadTestRuns
    of that namespace. The binding of the default account is named like the Role; another
    account (``spec.runner.serviceAccountName``) gets its own binding.
    """
    labels = {LABEL_MANAGED_BY: MANAGER}
    binding = RUNNER_ROLE if account == settings.runner_service_account else (
        f"{RUNNER_ROLE}-{account}"[:253])
    return [
        ServiceAccount(metadata=ObjectMeta(name=account, namespace=namespace, labels=labels)),
        Role.model_validate({
            "metadata": {"name": RUNNER_ROLE, "namespace": namespace, "labels": labels},
            "rules": OPERATOR.merged_rules(RUNNER_RULES)}),
        RoleBinding(metadata=ObjectMeta(name=binding, namespace=namespace, labels=labels),
                    role_ref=RoleRef(api_group="rbac.authorization.k8s.io", kind="Role",
                                     name=RUNNER_ROLE),
                    subjects=[Subject(kind="ServiceAccount", name=account,
                                      namespace=namespace)]),
    ]


def start_timeout(settings: OperatorSettings) -> int:
    """How long a worker waits for its start time: the controller's wait, its lead, a minute.

    Longer than the controller's own limit, so the controller, which names the waiting
    pods, is the one that reports a start that never came.
    """
    return math.ceil(settings.runner_start_timeout + settings.start_lead + 60)


def _barrier_args(namespace: str, run: str, settings: OperatorSettings) -> list[str]:
    return ["--start-from-run", f"{namespace}/{run}",
            "--api-token-file", f"{RUN_MOUNT}/token", "--api-ca-file", f"{RUN_MOUNT}/ca.crt",
            "--start-timeout", str(start_timeout(settings))]


def _run_volume(lt: LoadTest, run: str, barrier: bool) -> Volume:
    """The run volume: the spec, the bodies from keys, and (barrier) the API credential."""
    sources = [VolumeProjection(config_map=ConfigMapProjection(
        name=f"{run}{SPEC_SUFFIX}", items=[KeyToPath(key=SPEC_KEY, path=SPEC_KEY)]))]
    sources += [_body_source(ref) for ref in body_refs(lt)]
    if barrier:  # the worker's own API credential, declared (no automounted token)
        sources += [
            VolumeProjection(service_account_token=ServiceAccountTokenProjection(
                path="token", expiration_seconds=API_TOKEN_SECONDS)),
            VolumeProjection(config_map=ConfigMapProjection(
                name="kube-root-ca.crt", items=[KeyToPath(key="ca.crt", path="ca.crt")])),
        ]
    return Volume(name=RUN_VOLUME, projected=ProjectedVolumeSource(sources=sources))


def run_configmap(lt: LoadTest, spec: LoadSpec, job: Job) -> ConfigMap:
    """The run's ConfigMap ``<run>-spec`` with the worker spec, owned by the run's Job.

    Garbage collection removes it with the Job (the next run, ``cleanup: post``, or the
    LoadTest's deletion).
    """
    meta = job.metadata
    return ConfigMap(
        metadata=ObjectMeta(
            name=f"{meta.name}{SPEC_SUFFIX}", namespace=meta.namespace,
            labels={LABEL_MANAGED_BY: MANAGER, LABEL_LOADTEST: lt.name},
            owner_references=[OwnerReference(api_version="batch/v1", kind="Job",
                                             name=meta.name or "", uid=meta.uid or "",
                                             controller=True)]),
        data={SPEC_KEY: spec_json(spec)})


def run_spec(lt: LoadTest, target: ResolvedTarget, settings: OperatorSettings, *,
             start_at: float | None = None) -> LoadSpec:
    """The worker spec of a run (``start_at`` only without coordinated start)."""
    return load_spec(lt, target, settings, workers=worker_count(lt, settings),
                     start_at=None if settings.coordinated_start else start_at)


def desired_job(
    lt: LoadTest, target: ResolvedTarget, settings: OperatorSettings, *,
    start_at: float | None = None, name: str | None = None, spec: LoadSpec | None = None,
) -> Job:
    """The Indexed Job of worker pods, owned by the LoadTest.

    It is named ``name`` (the run's name), or :func:`job_name` when that is unset. With
    ``settings.coordinated_start`` the workers wait for the start time of the LoadTestRun of
    that name (``--start-from-run``), reading it with the projected token of
    :func:`runner_service_account`; otherwise they share ``start_at`` (Unix seconds).
    ``spec`` is the run's :func:`run_spec` when the caller has it already (computed here
    otherwise).
    """
    workers = worker_count(lt, settings)
    barrier = settings.coordinated_start
    if spec is None:
        spec = run_spec(lt, target, settings, start_at=start_at)
    run = name or job_name(lt)
    labels = {
        "app.kubernetes.io/name": "kuar-loadgen",
        LABEL_MANAGED_BY: MANAGER,
        LABEL_LOADTEST: lt.name,
        LABEL_RUN: str(lt.metadata.generation or 1),
    }
    owner = OwnerReference(
        api_version=LoadTest.resource_info().api_version, kind="LoadTest", name=lt.name,
        uid=lt.metadata.uid or "", controller=True, block_owner_deletion=True,
    )
    worker = Container(
        name="loadgen",
        image=settings.image,
        # a crossed threshold is the controller's verdict on the merged result, not a pod's
        args=["--json", "--no-progress", "--no-threshold-exit", "--result-file",
              TERMINATION_LOG, "--spec-file", f"{RUN_MOUNT}/{SPEC_KEY}",
              *(_barrier_args(lt.namespace or "", run, settings) if barrier else [])],
        volume_mounts=[VolumeMount(name=RUN_VOLUME, mount_path=RUN_MOUNT, read_only=True)],
        termination_message_path=TERMINATION_LOG,
        termination_message_policy="FallbackToLogsOnError",
        resources=ResourceRequirements(
            requests={"cpu": "100m", "memory": "64Mi"},
            limits={"cpu": settings.worker_cpu_limit, "memory": settings.worker_memory_limit},
        ),
    )
    runner = lt.spec.runner or RunnerTemplate()
    if runner.resources is not None and runner.resources.requests:
        assert worker.resources is not None
        worker.resources.requests = dict(runner.resources.requests)
    pod_labels = {**(runner.labels or {}), **labels}
    return Job(
        metadata=ObjectMeta(name=run, namespace=lt.namespace, labels=labels,
                            owner_references=[owner]),
        spec=JobSpec(
            completion_mode="Indexed",
            completions=workers,
            parallelism=workers,
            backoff_limit=0,
            active_deadline_seconds=math.ceil(
                spec.duration + settings.job_deadline_slack + (
                    settings.runner_start_timeout + settings.start_lead if barrier
                    else settings.start_delay)
            ),
            template=PodTemplateSpec(
                metadata=ObjectMeta(labels=pod_labels, annotations=runner.annotations),
                spec=PodSpec(
                    restart_policy="Never",
                    termination_grace_period_seconds=5,
                    automount_service_account_token=False,
                    containers=[worker],
                    node_selector=runner.node_selector,
                    tolerations=runner.tolerations,
                    affinity=_affinity(runner, labels),
                    service_account_name=(runner_service_account(lt, settings) if barrier
                                          else runner.service_account_name),
                    volumes=[_run_volume(lt, run, barrier)],
                    priority_class_name=runner.priority_class_name,
                ),
            ),
        ),
    )
