"""Talking to the API server: configuration, transport, errors, discovery and manifests.

The only package of kuar that speaks HTTP to kube-apiserver. Typed access (``Api[T]``) builds
on :class:`Client`.
"""

from kuar.client.access import Permission, can_i, missing_access, permissions_for, whoami
from kuar.client.api import Api, ApiWatchEvent, ObjectList
from kuar.client.config import ClientConfig, ConfigError, load_config
from kuar.client.discovery import (
    Discovery,
    ResourceInfo,
    UnknownKind,
    extension_groups,
    openapi_v3,
    server_version,
)
from kuar.client.errors import (
    AlreadyExists,
    ApiError,
    BadRequest,
    Cause,
    Conflict,
    Forbidden,
    Gone,
    Invalid,
    MethodNotAllowed,
    NotFound,
    ServerError,
    ServerTimeout,
    TooManyRequests,
    TransportError,
    Unauthorized,
)
from kuar.client.manifests import (
    ManifestError,
    apply_manifests,
    load_manifests,
    parse_manifests,
    wait_crd_established,
)
from kuar.client.transport import Client

__all__ = [
    "AlreadyExists",
    "Api",
    "ApiError",
    "ApiWatchEvent",
    "BadRequest",
    "Cause",
    "Client",
    "ClientConfig",
    "ConfigError",
    "Conflict",
    "Discovery",
    "Forbidden",
    "Gone",
    "Invalid",
    "ManifestError",
    "MethodNotAllowed",
    "NotFound",
    "ObjectList",
    "Permission",
    "ResourceInfo",
    "ServerError",
    "ServerTimeout",
    "TooManyRequests",
    "TransportError",
    "Unauthorized",
    "UnknownKind",
    "apply_manifests",
    "can_i",
    "extension_groups",
    "load_config",
    "load_manifests",
    "missing_access",
    "openapi_v3",
    "parse_manifests",
    "permissions_for",
    "server_version",
    "wait_crd_established",
    "whoami",
]
