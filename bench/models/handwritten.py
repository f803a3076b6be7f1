"""The hand-written built-in models kuar had before kuar.models (a copy kept for comparison).

bench.models decodes the same Pods with these and with the generated ``kuar.models.core.v1.Pod``.
"""

from __future__ import annotations

from typing import Any

from pydantic import AwareDatetime, Field

from kuar.resources.markers import IntOrString
from kuar.resources.model import KubeModel, ObjectMeta, Resource


class ObjectReference(KubeModel):
    """A reference to another object (``regarding`` of an Event, ``involvedObject``)."""

    api_version: str | None = None
    kind: str | None = None
    name: str | None = None
    namespace: str | None = None
    uid: str | None = None
    resource_version: str | None = None
    field_path: str | None = None


class ConfigMap(Resource, version="v1", kind="ConfigMap"):
    """Configuration data as string (``data``) or base64 (``binaryData``) values."""

    data: dict[str, str] | None = None
    binary_data: dict[str, str] | None = None
    immutable: bool | None = None


class Secret(Resource, version="v1", kind="Secret"):
    """Secret data; ``data`` values are base64, ``string_data`` is write-only plain text."""

    type: str | None = None
    data: dict[str, str] | None = None
    string_data: dict[str, str] | None = None
    immutable: bool | None = None


class Namespace(Resource, version="v1", kind="Namespace", namespaced=False):
    """A namespace (``spec.finalizers`` and ``status.phase`` are kept as plain dicts)."""

    spec: dict[str, Any] | None = None
    status: dict[str, Any] | None = None


class ServicePort(KubeModel):
    """One port of a Service."""

    port: int
    name: str | None = None
    protocol: str | None = None
    target_port: IntOrString | None = None
    node_port: int | None = None


class ServiceSpec(KubeModel):
    """The fields of a Service that kuar reads; the rest are kept as extras."""

    selector: dict[str, str] | None = None
    ports: list[ServicePort] | None = None
    type: str | None = None
    cluster_ip: str | None = Field(default=None, alias="clusterIP")


class Service(Resource, version="v1", kind="Service"):
    """A stable address for a set of pods."""

    spec: ServiceSpec | None = None
    status: dict[str, Any] | None = None


class EnvVar(KubeModel):
    """An environment variable of a container."""

    name: str
    value: str | None = None
    value_from: dict[str, Any] | None = None


class Container(KubeModel):
    """A container of a pod (ports, probes, volume mounts... are kept as extras)."""

    name: str
    image: str | None = None
    command: list[str] | None = None
    args: list[str] | None = None
    env: list[EnvVar] | None = None
    resources: dict[str, Any] | None = None


class PodSpec(KubeModel):
    """What a pod runs and where."""

    containers: list[Container]
    restart_policy: str | None = None
    node_name: str | None = None
    service_account_name: str | None = None


class PodStatus(KubeModel):
    """A pod's observed state."""

    phase: str | None = None
    conditions: list[dict[str, Any]] | None = None
    pod_ip: str | None = Field(default=None, alias="podIP")
    start_time: AwareDatetime | None = None


class Pod(Resource, version="v1", kind="Pod"):
    """A group of containers on one node."""

    spec: PodSpec | None = None
    status: PodStatus | None = None


class PodTemplateSpec(KubeModel):
    """A pod to create: metadata and spec."""

    metadata: ObjectMeta | None = None
    spec: PodSpec | None = None


class JobSpec(KubeModel):
    """How many pods a Job runs, for how long, and from which template."""

    template: PodTemplateSpec
    parallelism: int | None = None
    completions: int | None = None
    backoff_limit: int | None = None
    active_deadline_seconds: int | None = None
    ttl_seconds_after_finished: int | None = None
    selector: dict[str, Any] | None = None
    suspend: bool | None = None


class JobCondition(KubeModel):
    """A condition of a Job (``Complete``, ``Failed``, ``Suspended``...)."""

    type: str
    status: str
    reason: str | None = None
    message: str | None = None
    last_transition_time: AwareDatetime | None = None


class JobStatus(KubeModel):
    """A Job's progress."""

    active: int | None = None
    succeeded: int | None = None
    failed: int | None = None
    ready: int | None = None
    start_time: AwareDatetime | None = None
    completion_time: AwareDatetime | None = None
    conditions: list[JobCondition] | None = None


class Job(Resource, group="batch", version="v1", kind="Job"):
    """Pods that run to completion."""

    spec: JobSpec | None = None
    status: JobStatus | None = None


class Event(Resource, group="events.k8s.io", version="v1", kind="Event"):
    """Something that happened to an object (events.k8s.io/v1, as ``kubectl events`` reads)."""

    event_time: str | None = None
    """A MicroTime (RFC 3339 with microseconds), kept as text to round-trip exactly."""
    reporting_controller: str | None = None
    reporting_instance: str | None = None
    action: str | None = None
    reason: str | None = None
    regarding: ObjectReference | None = None
    related: ObjectReference | None = None
    note: str | None = None
    type: str | None = None
    """``Normal`` or ``Warning``."""
    series: dict[str, Any] | None = None


class LeaseSpec(KubeModel):
    """Who holds a lease, since when, and for how long."""

    holder_identity: str | None = None
    lease_duration_seconds: int | None = None
    acquire_time: str | None = None
    """A MicroTime, kept as text to round-trip exactly."""
    renew_time: str | None = None
    """A MicroTime, kept as text to round-trip exactly."""
    lease_transitions: int | None = None


class Lease(Resource, group="coordination.k8s.io", version="v1", kind="Lease"):
    """A lease (leader election and heartbeats)."""

    spec: LeaseSpec | None = None


class ScaleSpec(KubeModel):
    """The desired replicas."""

    replicas: int | None = None


class ScaleStatus(KubeModel):
    """The observed replicas and the pods' label selector (as a string)."""

    replicas: int = 0
    selector: str | None = None


class Scale(Resource, group="autoscaling", version="v1", kind="Scale"):
    """The ``scale`` subresource of a workload or a custom resource."""

    spec: ScaleSpec = Field(default_factory=ScaleSpec)
    status: ScaleStatus | None = None
