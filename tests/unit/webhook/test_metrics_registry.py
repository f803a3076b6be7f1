"""Issue 14, finding 12: webhook metrics reach the manager's /metrics by default.

The webhook server used to record into prometheus_client's global registry while the manager
serves kuar's own, so a pod's /metrics never showed a webhook request.
"""

from __future__ import annotations

from typing import Any

import aiohttp
from prometheus_client import generate_latest

from kuar.base import REGISTRY
from kuar.manager import Manager, ManagerSettings
from kuar.webhook import (
    Admission,
    AdmissionRule,
    ServingCertificate,
    ValidatingWebhook,
    Validator,
    WebhookServer,
    WebhookServerSettings,
)
from kuar.webhook.codec import RAW
from tests.unit.webhook.conftest import admission_review, client_context, loadtest


class Allow(Validator[dict[str, Any]]):
    def validate_create(self, obj: dict[str, Any], admission: Admission[Any]) -> None:
        return None


async def test_webhook_metrics_land_in_the_registry_the_manager_serves(
    serving: ServingCertificate,
) -> None:
    hook = ValidatingWebhook(name="metrics-default.kuar.dev", path="/m", codec=RAW,
                             validator=Allow(),
                             rules=(AdmissionRule(api_groups=("beta.kuar.com",),
                                                  api_versions=("v1",), resources=("loadtests",)),))
    server = WebhookServer(webhooks=[hook], certificates=serving,
                           settings=WebhookServerSettings(host="127.0.0.1", port=0))
    await server.start()
    try:
        connector = aiohttp.TCPConnector(ssl=client_context(serving.ca_pem))
        review = admission_review(loadtest())
        async with aiohttp.ClientSession(connector=connector) as http, \
                http.post(f"{server.url}/m", json=review) as resp:
            assert resp.status == 200
    finally:
        await server.stop()
    settings = ManagerSettings(health=None, handle_signals=False)
    manager = Manager(None, settings)  # type: ignore[arg-type]
    assert manager.registry is REGISTRY  # what /metrics serves when given no other
    served = generate_latest(manager.registry).decode()
    sample = ('controller_runtime_webhook_requests_total'
              '{code="200",webhook="metrics-default.kuar.dev"}')
    assert sample in served
