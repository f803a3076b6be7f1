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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

from kuar.client import Api, Client, Conflict, NotFound
from kuar.models.admissionregistration.v1 import (
    MutatingWebhookConfiguration,
    ValidatingWebhookConfiguration,
)
from kuar.models.apiextensions.v1 import CustomResourceDefinition, WebhookClientConfig
from kuar.resources import Resource

log = logging.getLogger("kuar.webhook.injection")

T = TypeVar("T", bound=Resource)
WebhookConfiguration = ValidatingWebhookConfiguration | MutatingWebhookConfiguration


def _set_webhooks(obj: WebhookConfiguration, bundle: str) -> bool:
    changed = False
    for hook in obj.webhooks or ():
        if hook.client_config.ca_bundle != bundle:
            hook.client_config.ca_bundle = bundle
            changed = True
    return changed


def _set_conversion(crd: CustomResourceDefinition, bundle: str) -> bool:
    conversion = crd.spec.conversion
    if conversion is None or conversion.strategy != "Webhook" or conversion.webhook is None:
        return False  # the API server refuses a Webhook strategy without its webhook stanza
    webhook = conversion.webhook
    webhook.client_config = webhook.client_config or WebhookClientConfig()
    if webhook.client_config.ca_bundle == bundle:
        return False
    webhook.client_config.ca_bundle = bundle
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

    async def _update(
        self, model: type[T], name: str, bundle: str, setter: Callable[[T, str], bool]
    ) -> None:
        api = Api(self.client, model, field_manager="kuar-cainjector")
        for _ in range(5):
            try:
                obj = await api.get(name)
            except NotFound:
                log.info("caBundle: %s %s does not exist (yet); skipped", model.__name__, name)
                return
            if not setter(obj, bundle):
                return
            try:
                await api.replace(obj)
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
            await self._update(ValidatingWebhookConfiguration, name, bundle, _set_webhooks)
        for name in self.mutating:
            await self._update(MutatingWebhookConfiguration, name, bundle, _set_webhooks)
        for name in self.crds:
            await self._update(CustomResourceDefinition, name, bundle, _set_conversion)
