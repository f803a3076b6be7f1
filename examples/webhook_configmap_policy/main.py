"""A ConfigMap policy as admission webhooks, run locally against any API server.

- validating ``policy.examples.kuar.dev``: a ConfigMap may not hold a key that looks like a
  credential (``password``, ``token``, ``secret`` in its name); the denial names the field
  (``data[db-password]``) and says to use a Secret;
- mutating ``owner.examples.kuar.dev``: adds the label ``examples.kuar.dev/owner`` with the
  requesting user's name when it is missing.

The serving certificate comes from a self-signed CA (local development), the API server
reaches the server by URL (https://127.0.0.1:PORT), and the CA bundle is injected into both
configurations. Only ConfigMaps in ``--namespace`` are sent to it. On SIGTERM or Ctrl-C it
removes its configurations and stops.

Run: ``python examples/webhook_configmap_policy/main.py --kubeconfig KUBECONFIG -n NAMESPACE``
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from typing import Any

from kuar.client import Client, load_config
from kuar.webhook import (
    RAW,
    Admission,
    AdmissionRule,
    CaBundleInjector,
    CertificateManager,
    FieldErrors,
    MutatingWebhook,
    SelfSignedSource,
    UrlTarget,
    ValidatingWebhook,
    Validator,
    WebhookServer,
    WebhookServerSettings,
    apply_configurations,
    delete_configurations,
    webhook_configurations,
)

CONFIGMAPS = AdmissionRule(api_groups=("",), api_versions=("v1",), resources=("configmaps",),
                  operations=("CREATE", "UPDATE"))
SUSPICIOUS = ("password", "token", "secret")
OWNER = "examples.kuar.dev/owner"


class NoCredentials(Validator[dict[str, Any]]):
    def check(self, obj: dict[str, Any]) -> list[str]:
        errors = FieldErrors()
        for key in (obj.get("data") or {}):
            if any(word in key.lower() for word in SUSPICIOUS):
                errors.forbidden(f"data[{key}]", "looks like a credential; use a Secret")
        errors.raise_if_any()
        return [] if obj.get("data") else ["this ConfigMap holds no data"]

    def validate_create(self, obj: dict[str, Any], admission: Admission[Any]) -> list[str]:
        return self.check(obj)

    def validate_update(self, old: dict[str, Any], new: dict[str, Any],
                        admission: Admission[Any]) -> list[str]:
        return self.check(new)


class Owner:
    def default(self, obj: dict[str, Any], admission: Admission[Any]) -> None:
        labels = obj.setdefault("metadata", {}).setdefault("labels", {})
        user = admission.request.user_info.username or "unknown"
        labels.setdefault(OWNER, "".join(c if c.isalnum() or c in "-_." else "-"
                                         for c in user)[:63].strip("-_.") or "unknown")


async def main(kubeconfig: str | None, namespace: str) -> None:
    client = Client(await load_config(kubeconfig))
    only_ns = {"matchLabels": {"kubernetes.io/metadata.name": namespace}}
    hooks = [
        ValidatingWebhook(name="policy.examples.kuar.dev", path="/policy", rules=(CONFIGMAPS,),
                          codec=RAW, validator=NoCredentials(), namespace_selector=only_ns,
                          configuration=f"configmap-policy-{namespace}"),
        MutatingWebhook(name="owner.examples.kuar.dev", path="/owner", rules=(CONFIGMAPS,),
                        codec=RAW, defaulter=Owner(), namespace_selector=only_ns,
                        configuration=f"configmap-owner-{namespace}"),
    ]
    names = [f"configmap-policy-{namespace}", f"configmap-owner-{namespace}"]
    manager = CertificateManager(
        SelfSignedSource(dns_names=["localhost"], ips=["127.0.0.1"]),
        injector=CaBundleInjector(client=client, validating=names[:1], mutating=names[1:]))
    server = WebhookServer(webhooks=hooks, certificates=manager,
                           settings=WebhookServerSettings(host="127.0.0.1", port=0))
    await server.start()
    configs = webhook_configurations(hooks, UrlTarget(base_url=server.url),
                                     ca_bundle=manager.ca_bundle)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await apply_configurations(client, configs, field_manager="configmap-policy-example")
        print(f"serving on {server.url} for ConfigMaps in {namespace}", flush=True)
        await stop.wait()
    finally:
        await delete_configurations(client, configs)
        await server.stop()
        await client.close()
        print("stopped", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="ConfigMap policy admission webhooks")
    parser.add_argument("--kubeconfig", default=None)
    parser.add_argument("-n", "--namespace", default="default")
    args = parser.parse_args()
    asyncio.run(main(args.kubeconfig, args.namespace))
