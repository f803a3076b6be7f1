"""Webhook configuration generation: the objects that make the API server call the webhooks.

Place in the pipeline: fed by the webhook objects (:mod:`kuar.webhook.admission`,
:mod:`kuar.webhook.conversion`); produces ``admissionregistration.k8s.io/v1``
``ValidatingWebhookConfiguration``/``MutatingWebhookConfiguration`` objects and the CRD
``spec.conversion`` stanza, for ``kuar generate webhooks`` (files in ``deploy/webhooks/``),
for :func:`apply_configurations` and for tests. Known as controller-gen's ``webhook``
generator (the ``+kubebuilder:webhook`` markers) in kubebuilder.

Two ways to reach the server: :class:`ServiceTarget` (in a cluster: the API server calls the
webhook Service) or :class:`UrlTarget` (local development: a URL such as
``https://127.0.0.1:9443``).

Guarantees: output is deterministic (configurations sorted by name, webhooks by name), uses
``admissionReviewVersions: [v1]`` only, and every optional field is written explicitly
(``failurePolicy``, ``sideEffects``, ``timeoutSeconds``, ``matchPolicy``, selectors), so what
the API server does is visible in the file rather than left to its defaults.
"""

from __future__ import annotations

import base64
import contextlib
import importlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from kuar.client import Api, Client, NotFound
from kuar.models.admissionregistration.v1 import (
    MutatingWebhookConfiguration,
    ValidatingWebhookConfiguration,
)
from kuar.webhook.admission import AdmissionWebhook, MutatingWebhook, ValidatingWebhook
from kuar.webhook.conversion import ConversionWebhook

ADMISSION_GROUP = "admissionregistration.k8s.io/v1"
_KINDS: dict[str, type[ValidatingWebhookConfiguration | MutatingWebhookConfiguration]] = {
    "ValidatingWebhookConfiguration": ValidatingWebhookConfiguration,
    "MutatingWebhookConfiguration": MutatingWebhookConfiguration,
}


@dataclass(frozen=True, kw_only=True)
class ServiceTarget:
    """In a cluster: the API server calls ``https://<name>.<namespace>.svc:<port><path>``."""

    namespace: str
    name: str
    port: int = 443

    @property
    def dns_names(self) -> list[str]:
        """The names the serving certificate must carry."""
        return [f"{self.name}.{self.namespace}.svc",
                f"{self.name}.{self.namespace}.svc.cluster.local"]

    def client_config(self, path: str) -> dict[str, Any]:
        """``clientConfig`` by Service reference."""
        return {"service": {"namespace": self.namespace, "name": self.name,
                            "path": path, "port": self.port}}


@dataclass(frozen=True, kw_only=True)
class UrlTarget:
    """Local development: the API server calls ``<base_url><path>`` directly."""

    base_url: str
    """``https://host:port``; the API server refuses plain ``http``."""

    def __post_init__(self) -> None:
        if not self.base_url.startswith("https://"):
            raise ValueError(f"webhook URL must be https, got {self.base_url!r}")

    def client_config(self, path: str) -> dict[str, Any]:
        """``clientConfig`` by URL."""
        return {"url": self.base_url.rstrip("/") + path}


WebhookTarget = ServiceTarget | UrlTarget


def _client_config(target: WebhookTarget, path: str, ca_bundle: bytes | None) -> dict[str, Any]:
    config = target.client_config(path)
    if ca_bundle:
        config["caBundle"] = base64.b64encode(ca_bundle).decode()
    return config


def configuration_name(webhook: AdmissionWebhook[Any]) -> str:
    """The configuration holding ``webhook``: its ``configuration`` or ``<first label>s``."""
    return webhook.configuration or webhook.name.split(".")[0] + "s"


def webhook_entry(
    webhook: AdmissionWebhook[Any], target: WebhookTarget, ca_bundle: bytes | None = None
) -> dict[str, Any]:
    """One ``webhooks[]`` entry."""
    entry: dict[str, Any] = {
        "name": webhook.name,
        "admissionReviewVersions": ["v1"],
        "clientConfig": _client_config(target, webhook.path, ca_bundle),
        "rules": [r.to_wire() for r in webhook.rules],
        "failurePolicy": webhook.failure_policy,
        "sideEffects": webhook.side_effects,
        "timeoutSeconds": webhook.timeout_seconds,
        "matchPolicy": webhook.match_policy,
        "namespaceSelector": dict(webhook.namespace_selector or {}),
        "objectSelector": dict(webhook.object_selector or {}),
    }
    if webhook.match_conditions:
        entry["matchConditions"] = [{"name": c.name, "expression": c.expression}
                                    for c in webhook.match_conditions]
    if isinstance(webhook, MutatingWebhook):
        entry["reinvocationPolicy"] = webhook.reinvocation_policy
    return entry


def webhook_configurations(
    webhooks: Iterable[AdmissionWebhook[Any]],
    target: WebhookTarget,
    *,
    ca_bundle: bytes | None = None,
    labels: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Validating/MutatingWebhookConfigurations for ``webhooks``, grouped by configuration."""
    groups: dict[tuple[str, str], list[AdmissionWebhook[Any]]] = {}
    for hook in webhooks:
        kind = ("MutatingWebhookConfiguration" if isinstance(hook, MutatingWebhook)
                else "ValidatingWebhookConfiguration")
        groups.setdefault((kind, configuration_name(hook)), []).append(hook)
    out = []
    for (kind, name), hooks in sorted(groups.items()):
        names = [h.name for h in hooks]
        if len(set(names)) != len(names):
            raise ValueError(f"{kind} {name}: webhook names must be unique, got {names}")
        metadata: dict[str, Any] = {"name": name}
        if labels:
            metadata["labels"] = dict(labels)
        out.append({
            "apiVersion": ADMISSION_GROUP, "kind": kind, "metadata": metadata,
            "webhooks": [webhook_entry(h, target, ca_bundle)
                         for h in sorted(hooks, key=lambda h: h.name)],
        })
    return out


def conversion_stanza(
    target: WebhookTarget, path: str = "/convert", ca_bundle: bytes | None = None
) -> dict[str, Any]:
    """The CRD ``spec.conversion`` that sends conversions to the webhook server."""
    return {"strategy": "Webhook",
            "webhook": {"conversionReviewVersions": ["v1"],
                        "clientConfig": _client_config(target, path, ca_bundle)}}


def find_webhooks(
    module: ModuleType | str,
) -> tuple[list[AdmissionWebhook[Any]], list[ConversionWebhook]]:
    """The webhook objects defined at the top level of ``module`` (for the generator)."""
    mod = importlib.import_module(module) if isinstance(module, str) else module
    admission: list[AdmissionWebhook[Any]] = []
    conversion: list[ConversionWebhook] = []
    for value in vars(mod).values():
        if isinstance(value, ValidatingWebhook | MutatingWebhook):
            admission.append(value)
        elif isinstance(value, ConversionWebhook):
            conversion.append(value)
        elif isinstance(value, list | tuple):
            admission.extend(v for v in value if isinstance(v, ValidatingWebhook |
                                                             MutatingWebhook))
    unique = {id(w): w for w in admission}
    return sorted(unique.values(), key=lambda w: w.name), conversion


async def apply_configurations(
    client: Client, configurations: Sequence[dict[str, Any]], *, field_manager: str = "kuar"
) -> None:
    """Create or update configurations by server-side apply (forcing ownership)."""
    for config in configurations:
        model = _KINDS[config["kind"]]
        await Api(client, model).apply(model.model_validate(config),
                                       field_manager=field_manager, force=True)


async def delete_configurations(client: Client, configurations: Sequence[dict[str, Any]]) -> None:
    """Delete configurations (missing ones are fine)."""
    for config in configurations:
        with contextlib.suppress(NotFound):
            await Api(client, _KINDS[config["kind"]]).delete(config["metadata"]["name"])
