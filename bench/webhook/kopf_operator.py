"""The kopf side of bench/webhook: kopf's own webhook server with the same LoadTest validation.

Run by ``bench.webhook`` as ``kopf run --standalone --quiet -A bench/webhook/kopf_operator.py``
with ``KUAR_BENCH_PORT`` and ``KUAR_BENCH_CERTS`` set; kopf needs the LoadTest CRD installed
(it discovers resources before it serves admission requests). It validates the v2 shape (the
storage version, which the API server hands to admission webhooks) with kuar_loadtest's
rules: ``spec.target.scheme``, the ``spec.load.requestsPerSecond`` cap, ``spec.target.paths``
(leading ``/``, no spaces or control characters) and a DNS-1035 ``spec.target.service``.
"""

from __future__ import annotations

import os
import re
import unicodedata
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


def path_problem(path: str) -> str | None:
    """kuar_loadgen.spec.path_problem's rule, written out (kopf's side imports no kuar)."""
    if not path.startswith("/"):
        return "must start with '/'"
    for i, c in enumerate(path):
        if c.isspace() or unicodedata.category(c) == "Cc":
            return f"must not contain spaces or control characters ({c!r} at {i})"
    return None


@kopf.on.validate("beta.kuar.com", "v2", "loadtests", id="validate-beta-kuar-com-v2-loadtest")
def validate(spec: Any, **_: Any) -> None:
    errors = []
    target, load = spec.get("target") or {}, spec.get("load") or {}
    if target.get("scheme") not in ("http", "https"):
        errors.append(f"spec.target.scheme: Unsupported value: {target.get('scheme')!r}")
    rps = load.get("requestsPerSecond")
    if rps is None:
        errors.append("spec.load.requestsPerSecond: Required value: or spec.load.stages")
    elif not isinstance(rps, int) or rps <= 0 or rps > MAX_RPS:
        errors.append(f"spec.load.requestsPerSecond: Invalid value: {rps}")
    for i, path in enumerate(target.get("paths") or []):
        problem = path_problem(str(path))
        if problem is not None:
            errors.append(f"spec.target.paths[{i}]: Invalid value: {path!r}: {problem}")
    service = target.get("service", "")
    if len(service) > 63 or not DNS1035.match(service):
        errors.append(f"spec.target.service: Invalid value: {service!r}: a DNS-1035 label")
    if errors:
        raise kopf.AdmissionError("; ".join(errors), code=422)
