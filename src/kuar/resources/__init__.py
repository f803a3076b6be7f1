"""Typed Kubernetes resources and CRD generation; pure (no I/O, no HTTP).

Place in the pipeline: the bottom layer. ``kuar.client`` encodes and decodes these types,
``kuar.runtime`` keys caches by :meth:`Resource.resource_info`, ``kuar generate crds`` writes
the CRDs of :class:`CustomResource` subclasses.

- :mod:`kuar.resources.model`: :class:`KubeModel`, :class:`Resource`, :class:`CustomResource`,
  :class:`ObjectMeta`, :class:`DynamicObject`
- :mod:`kuar.resources.markers`: CEL rules, list/map types, int-or-string, embedded resources
- :mod:`kuar.resources.schema`: structural OpenAPI v3 schemas
- :mod:`kuar.resources.crd`: CustomResourceDefinitions
- :mod:`kuar.resources.builtin`: ConfigMap, Secret, Namespace, Service, Pod, Job, Event, Lease
"""

from kuar.resources.builtin import (
    ConfigMap,
    Container,
    EnvVar,
    Event,
    Job,
    JobSpec,
    JobStatus,
    Lease,
    LeaseSpec,
    Namespace,
    ObjectReference,
    Pod,
    PodSpec,
    PodTemplateSpec,
    Scale,
    ScaleSpec,
    ScaleStatus,
    Secret,
    Service,
    ServicePort,
    ServiceSpec,
)
from kuar.resources.crd import crd_for, crds_for, dump_crd, find_resources, render_crds
from kuar.resources.info import ResourceInfo
from kuar.resources.markers import (
    EmbeddedResource,
    Format,
    IntOrString,
    ListType,
    MapType,
    PreserveUnknownFields,
    Rule,
)
from kuar.resources.model import (
    Condition,
    Conditions,
    CustomResource,
    DynamicObject,
    KubeModel,
    ListMeta,
    ObjectMeta,
    OwnerReference,
    PrinterColumn,
    Resource,
    ScaleSubresource,
    Status,
)
from kuar.resources.schema import DeclarationError, structural_schema

__all__ = [
    "Condition",
    "Conditions",
    "ConfigMap",
    "Container",
    "CustomResource",
    "DeclarationError",
    "DynamicObject",
    "EmbeddedResource",
    "EnvVar",
    "Event",
    "Format",
    "IntOrString",
    "Job",
    "JobSpec",
    "JobStatus",
    "KubeModel",
    "Lease",
    "LeaseSpec",
    "ListMeta",
    "ListType",
    "MapType",
    "Namespace",
    "ObjectMeta",
    "ObjectReference",
    "OwnerReference",
    "Pod",
    "PodSpec",
    "PodTemplateSpec",
    "PreserveUnknownFields",
    "PrinterColumn",
    "Resource",
    "ResourceInfo",
    "Rule",
    "Scale",
    "ScaleSpec",
    "ScaleStatus",
    "ScaleSubresource",
    "Secret",
    "Service",
    "ServicePort",
    "ServiceSpec",
    "Status",
    "crd_for",
    "crds_for",
    "dump_crd",
    "find_resources",
    "render_crds",
    "structural_schema",
]
