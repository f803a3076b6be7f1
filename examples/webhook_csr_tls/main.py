"""The seed's three steps for a webhook certificate, as a program.

1. create a private key and a certificate signing request for the webhook's address;
2. send the CSR to the API server (a ``certificates.k8s.io/v1`` CertificateSigningRequest)
   and receive the certificate, approved and signed by kuar's signer (run here too, with its
   CA in a Secret of ``--namespace``);
3. serve the admission webhook over TLS with that certificate; the API server trusts it
   through the caBundle injected into the webhook configuration.

The webhook itself denies ConfigMaps in ``--namespace`` that have no ``app`` label. On SIGTERM
or Ctrl-C it removes its configuration and stops.

Run: ``python examples/webhook_csr_tls/main.py --kubeconfig KUBECONFIG -n NAMESPACE``
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from typing import Any

from kuar.client import Client, load_config, whoami
from kuar.webhook import (
    RAW,
    Admission,
    AdmissionRule,
    CaBundleInjector,
    CertificateManager,
    CsrSource,
    FieldErrors,
    Signer,
    SignerSettings,
    UrlTarget,
    ValidatingWebhook,
    Validator,
    WebhookServer,
    WebhookServerSettings,
    apply_configurations,
    delete_configurations,
    webhook_configurations,
)


class NeedsAppLabel(Validator[dict[str, Any]]):
    def validate_create(self, obj: dict[str, Any], admission: Admission[Any]) -> None:
        errors = FieldErrors()
        if "app" not in ((obj.get("metadata") or {}).get("labels") or {}):
            errors.required("metadata.labels[app]", "every ConfigMap here names its app")
        errors.raise_if_any()


async def main(kubeconfig: str | None, namespace: str) -> None:
    client = Client(await load_config(kubeconfig))
    signer_name = f"kuar.dev/example-{namespace}"
    configuration = f"needs-app-label-{namespace}"
    # The signer approves only this program's own identity, for exactly these names.
    signer = Signer(client, SignerSettings(
        signer_name=signer_name, allowed_requesters=frozenset({await whoami(client)}),
        allowed_dns_names=frozenset({"localhost"}), allowed_ips=frozenset({"127.0.0.1"}),
        namespace=namespace))
    await signer.start()
    source = CsrSource(client=client, dns_names=["localhost"], ips=["127.0.0.1"],
                       signer_name=signer_name, expiration_seconds=3600,
                       ca_configmap=(namespace, "kuar-webhook-signer-ca", "ca.crt"))
    manager = CertificateManager(source, injector=CaBundleInjector(
        client=client, validating=[configuration]))
    hook = ValidatingWebhook(
        name="app-label.examples.kuar.dev", path="/app-label", codec=RAW,
        validator=NeedsAppLabel(), configuration=configuration,
        rules=(AdmissionRule(api_groups=("",), api_versions=("v1",), resources=("configmaps",),
                    operations=("CREATE",)),),
        namespace_selector={"matchLabels": {"kubernetes.io/metadata.name": namespace}})
    server = WebhookServer(webhooks=[hook], certificates=manager,
                           settings=WebhookServerSettings(host="127.0.0.1", port=0))
    await server.start()  # steps 1 and 2 happen here: key, CSR, approval, issued certificate
    configs = webhook_configurations([hook], UrlTarget(base_url=server.url),
                                     ca_bundle=manager.ca_bundle)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await apply_configurations(client, configs, field_manager="csr-tls-example")
        print(f"serving on {server.url} with the certificate of CertificateSigningRequest "
              f"{source.last_csr_name}", flush=True)
        await stop.wait()
    finally:
        await delete_configurations(client, configs)
        await server.stop()
        await signer.stop()
        await client.close()
        print("stopped", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="a webhook served with a CSR-API certificate")
    parser.add_argument("--kubeconfig", default=None)
    parser.add_argument("-n", "--namespace", default="default")
    args = parser.parse_args()
    asyncio.run(main(args.kubeconfig, args.namespace))
