"""The kopf side of bench/webhook: kopf's own webhook server with the same LoadTest validation.

Run by ``bench.webhook`` as ``kopf run --standalone --quiet -A bench/webhook/kopf_operator.py``
with ``KUAR_BENCH_PORT`` and ``KUAR_BENCH_CERTS`` set; kopf needs the LoadTest CRD installed
(it discovers resources before it serves admission requests).
"""

from __future__ import annotations

import os
import re
from typing import Any

import kopf

DNS1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
MAX_RPS = 50_000


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    certs = os.environ["KUAR_BENCH_CERTS"]
    settings.admission.server = kopf.WebhookServer(
        addr="127.0.0.1", port=int(os.environ["KUAR_BENCH_PORT"]), host="127.0.0.1",
        certfile=f"{certs}/tls.crt", pkeyfile=f"{certs}/tls.key")
    settings.admission.managed = None
    settings.posting.enabled = False


@kopf.on.validate("beta.kuar.com", "v1", "loadtests", id="validate-beta-kuar-com-v1-loadtest")
def validate(spec: Any, **_: Any) -> None:
    errors = []
    if spec.get("scheme") not in ("http", "https"):
        errors.append(f"spec.scheme: Unsupported value: {spec.get('scheme')!r}")
    rps = spec.get("requestsPerSecond", 0)
    if not isinstance(rps, int) or rps <= 0 or rps > MAX_RPS:
        errors.append(f"spec.requestsPerSecond: Invalid value: {rps}")
    for i, path in enumerate(spec.get("paths") or []):
        if not str(path).startswith("/"):
            errors.append(f"spec.paths[{i}]: Invalid value: {path!r}: must start with '/'")
    service = spec.get("service", "")
    if len(service) > 63 or not DNS1035.match(service):
        errors.append(f"spec.service: Invalid value: {service!r}: a DNS-1035 label")
    if errors:
        raise kopf.AdmissionError("; ".join(errors), code=422)
