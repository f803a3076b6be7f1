"""caBundle injection: make the API server trust the webhook's current CA.

Place in the pipeline: called by the rotator (:mod:`kuar.webhook.rotation`) whenever the CA
changes, and usable alone (``kuar`` CLI, tests). Writes ``webhooks[*].clientConfig.caBundle``
of Validating/MutatingWebhookConfigurations and
``spec.conversion.webhook.clientConfig.caBundle`` of CRDs. Known as cert-manager's
``cainjector`` and the caBundle patching done by kopf's ``settings.admission.managed``.

Guarantees: each object is read, changed and written back with its ``resourceVersion``; a
conflict (someone else wrote in between) is retried up to 5 times. An object that does not
exist is skipped with a log line (it may be created later; the next rotation injects again),
so injection never fails a rotation for a missing object. Other API errors are raised.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from kuar.client import Client, Conflict, NotFound

log = logging.getLogger("kuar.webhook.injection")

VALIDATING = "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations"
MUTATING = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations"
CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


def _set_webhooks(obj: dict[str, Any], bundle: str) -> bool:
    changed = False
    for hook in obj.get("webhooks") or []:
        config = hook.setdefault("clientConfig", {})
        if config.get("caBundle") != bundle:
            config["caBundle"] = bundle
            changed = True
    return changed


def _set_conversion(obj: dict[str, Any], bundle: str) -> bool:
    conversion = (obj.get("spec") or {}).get("conversion") or {}
    if conversion.get("strategy") != "Webhook":
        return False
    config = conversion.setdefault("webhook", {}).setdefault("clientConfig", {})
    if config.get("caBundle") == bundle:
        return False
    config["caBundle"] = bundle
    return True


@dataclass(kw_only=True)
class CaBundleInjector:
    """Writes one CA bundle into the named configurations and CRDs."""

    client: Client
    validating: Sequence[str] = ()
    """Names of ValidatingWebhookConfigurations."""
    mutating: Sequence[str] = ()
    """Names of MutatingWebhookConfigurations."""
    crds: Sequence[str] = ()
    """Names of CRDs whose conversion webhook is served here."""

    async def _update(self, base: str, name: str, bundle: str, setter: Any) -> None:
        for _ in range(5):
            try:
                obj = await self.client.request("GET", f"{base}/{name}")
            except NotFound:
                log.info("caBundle: %s/%s does not exist (yet); skipped", base, name)
                return
            if not setter(obj, bundle):
                return
            try:
                await self.client.request("PUT", f"{base}/{name}", body=obj)
                log.info("caBundle injected into %s", name)
                return
            except Conflict:
                continue
        raise Conflict(code=409, reason="Conflict",
                       message=f"caBundle of {name}: still conflicting after 5 tries")

    async def inject(self, ca_pem: bytes) -> None:
        """Write ``ca_pem`` (one or more PEM certificates) everywhere this injector covers."""
        bundle = base64.b64encode(ca_pem).decode()
        for name in self.validating:
            await self._update(VALIDATING, name, bundle, _set_webhooks)
        for name in self.mutating:
            await self._update(MUTATING, name, bundle, _set_webhooks)
        for name in self.crds:
            await self._update(CRDS, name, bundle, _set_conversion)
