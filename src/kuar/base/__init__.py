"""The base layer: what the runtime, the webhooks and the test harness share.

Place in the pipeline: below :mod:`kuar.runtime`, :mod:`kuar.webhook`, :mod:`kuar.manager` and
:mod:`kuar.testing`; imports no other kuar package (import-linter contract).

- :mod:`kuar.base.clock`: :class:`Clock` (monotonic time, wall time, sleep), the system clock
  and :class:`ManualClock` for tests;
- :mod:`kuar.base.metrics`: :data:`REGISTRY`, the Prometheus registry every part records into
  and the manager's ``/metrics`` serves;
- :mod:`kuar.base.pki`: ECDSA keys, CSRs and the one :class:`CertificateAuthority` (webhook
  serving certificates, the CSR signer, the local control plane's CA and users);
- :mod:`kuar.base.files`: :func:`write_private`, secrets (keys, kubeconfigs) written to files
  that are 0600 from the start.
"""

from typing import TYPE_CHECKING, Any

from kuar.base.clock import SYSTEM_CLOCK, Clock, ManualClock, SystemClock
from kuar.base.files import write_private
from kuar.base.metrics import REGISTRY

if TYPE_CHECKING:
    from kuar.base.pki import CertificateAuthority, KeyPair, generate_key, key_pem, make_csr

_PKI = frozenset({"CertificateAuthority", "KeyPair", "generate_key", "key_pem", "make_csr"})


def __getattr__(name: str) -> Any:
    """Import :mod:`kuar.base.pki` on first use.

    ``cryptography`` costs ~10 MiB of RSS, which a controller that never issues a certificate
    need not pay.
    """
    if name in _PKI:
        from kuar.base import pki

        value = getattr(pki, name)
        globals()[name] = value  # later lookups are plain module attributes
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    """The module's names, the lazily imported ones included (for ``dir()`` and doc tools)."""
    return sorted({*globals(), *_PKI})

__all__ = [
    "REGISTRY",
    "SYSTEM_CLOCK",
    "CertificateAuthority",
    "Clock",
    "KeyPair",
    "ManualClock",
    "SystemClock",
    "generate_key",
    "key_pem",
    "make_csr",
    "write_private",
]
