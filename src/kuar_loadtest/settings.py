"""Operator-wide settings of the LoadTest controller (flags and environment map to these).

Place in the pipeline: read once at start by :mod:`kuar_loadtest.operator`; passed to the pure
planners (:mod:`.desired`, :mod:`.status`) and the controller.
"""

from __future__ import annotations

from dataclasses import dataclass

LOADGEN_IMAGE = "kuar.dev/loadgen:0.1.0"


@dataclass(frozen=True, kw_only=True)
class OperatorSettings:
    """Limits and defaults for every LoadTest this operator runs."""

    image: str = LOADGEN_IMAGE
    """The load-generator image (runs ``kuar-loadgen``; kuar's local node runs it as a
    process)."""
    max_requests_per_second: int = 50_000
    """Operator-wide cap on ``spec.requestsPerSecond``: a LoadTest above it fails (and the
    validating webhook denies it), so one object cannot turn the cluster into a flood source."""
    max_total_requests_per_second: int = 100_000
    """Cap on the sum of ``requestsPerSecond`` of every running LoadTest this operator runs:
    many objects, each under the per-object cap, still cannot add up to a flood. A LoadTest
    that would cross it waits (Pending, ``RateBudgetExceeded``) until others finish."""
    max_namespace_requests_per_second: int = 50_000
    """The same cap per namespace, so one team cannot use the whole budget."""
    max_concurrent_runs: int | None = None
    """Runs this operator starts at once, in all namespaces (k6-operator issue 439); a
    LoadTest over the cap waits in phase Queued with its ``queuePosition`` (first come, first
    served). ``None``: no cap."""
    max_namespace_concurrent_runs: int | None = None
    """The same cap per namespace."""
    queue_retry: float = 2.0
    """How soon a Queued LoadTest looks again for a free slot."""
    max_duration: float = 3600.0
    """Longest ``spec.duration`` in seconds (an hour); a longer LoadTest fails
    (``DurationAboveCap``)."""
    allowed_endpoint_cidrs: tuple[str, ...] = ()
    """Addresses that a Service *without a selector* may point at. Such a Service's endpoints
    are written by hand, so they can name any host; with the default (none) such Services are
    refused as targets (``EndpointsNotAllowed``). Services with a selector are always fine: the
    cluster fills their endpoints with its own pods. Set it to the pod network of a cluster
    whose selector-less Services you trust (kuar's local node: its pod range)."""
    worker_cpu_limit: str = "1"
    """CPU limit of each worker pod: one core, what one kuar-loadgen process uses."""
    worker_memory_limit: str = "256Mi"
    """Memory limit of each worker pod (a worker's histograms and buffers need far less)."""
    per_pod_requests_per_second: int = 5_000
    """Rate one worker pod is given when ``spec.workers`` is not set: half of what one core
    of kuar-loadgen sustains (bench/loadgen), leaving room for slow targets."""
    max_workers: int = 100
    """Upper bound on worker pods per LoadTest (k6-operator breaks near 500, #408)."""
    coordinated_start: bool = True
    """Start the workers of a run together once every worker pod is Running: the controller
    writes one start time into the run's LoadTestRun (``status.startAt``) and each worker
    watches it with a projected service-account token (:mod:`kuar_loadtest.start`). Off: each
    Job carries a start time ``start_delay`` after its creation, and pods that start later
    begin at once (no API access needed by the workers)."""
    start_lead: float = 5.0
    """With ``coordinated_start``: seconds between the moment every worker pod is Running and
    the shared start. A pod is Running when its process starts, so the lead must cover a
    worker's own start (Python imports, connections) as well as the watch event: 10 workers
    starting at once on 2 cores at load average 10 needed up to 4.5 s (a 2 s lead gave 876 ms
    of skew, 5 s gave 1-3 ms; docs/decisions/0021)."""
    runner_start_timeout: float = 300.0
    """With ``coordinated_start``: how long the worker pods may take to be Running, from the
    Job's creation; past it the run fails (``RunnersNotStarted``) naming the pods still waiting
    and why (five minutes: an image pull or a scale-up of the cluster fits)."""
    runner_service_account: str = "kuar-loadgen"
    """With ``coordinated_start``: the ServiceAccount worker pods run as when the LoadTest's
    ``spec.runner.serviceAccountName`` is unset. The operator creates it (if missing) in the
    LoadTest's namespace and binds it to a Role that may only read LoadTestRuns there."""
    start_delay: float = 3.0
    """Without ``coordinated_start``: seconds between creating the Job and the shared start
    time of all its pods, so pods that start a little later still share one schedule."""
    job_deadline_slack: float = 120.0
    """The Job's activeDeadlineSeconds is the test's duration plus this slack: a stuck worker
    cannot run forever."""
    request_timeout: float = 10.0
    """Per-request timeout handed to workers, in seconds."""
    ca_file: str | None = None
    """Path, inside worker pods, of a PEM bundle to verify https targets with (mount it with a
    volume in a real cluster; kuar's local node shares this machine's files). ``None`` uses
    the system's trust store."""
    budget_retry: float = 10.0
    """How soon a LoadTest waiting for rate budget looks again."""
    missing_service_retry: float = 10.0
    """How soon to look again for a Service that does not exist (a Service watch also
    triggers a reconcile as soon as it appears)."""
    # --- run history (issue 16) ---
    history_limit: int = 10
    """LoadTestRun records kept per LoadTest when its spec sets no ``historyLimit``; older
    ones are deleted when a run ends."""
