"""Certificate rotation: get a serving certificate, serve it, and renew it before it expires.

Place in the pipeline: between a :class:`~kuar.webhook.certificates.CertificateSource` and the
server's :class:`~kuar.webhook.tls.ReloadableTls`; it also drives the
:class:`~kuar.webhook.injection.CaBundleInjector` so the API server trusts what is served.
Known as ``certwatcher`` in controller-runtime (files only) and cert-manager's renewal
(``renewBefore``).

Guarantees:
- :meth:`CertificateManager.start` returns only once a certificate is loaded (and its CA
  bundle injected, when an injector is given); it raises if the first one cannot be had.
- Order on every change: when the CA changes, the bundle holding both the new and the
  previous CA is injected first, then the new pair is served; the API server therefore
  trusts the new certificate before it is ever presented (``ca_settle`` seconds after the
  injection), and connections already open keep working (see :mod:`kuar.webhook.tls`). No
  request is dropped by a rotation.
- Issuing sources (self-signed, CSR) are asked for a new certificate at
  :func:`renewal_time` (by default when 2/3 of the lifetime has passed, cert-manager's
  default); file sources are re-read every ``poll_interval`` and a changed pair is served.
- A failed renewal is logged and retried with exponential backoff (``retry_min`` to
  ``retry_max`` seconds) while the current certificate keeps being served.
Caveats: the clock and sleep are injectable for tests; the bundle keeps the last two CAs only.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from dataclasses import dataclass

from kuar.base.clock import SYSTEM_CLOCK, Clock
from kuar.webhook.certificates import CertificateSource
from kuar.webhook.injection import CaBundleInjector
from kuar.webhook.tls import ReloadableTls, ServingCertificate, ca_fingerprints, merge_bundles

log = logging.getLogger("kuar.webhook.rotation")



@dataclass(frozen=True, kw_only=True)
class RotationSettings:
    """When to renew and how to retry."""

    renew_fraction: float = 2 / 3
    """Renew once this fraction of the lifetime has passed (cert-manager's default)."""
    renew_before: dt.timedelta | None = None
    """Renew this long before expiry instead (wins over ``renew_fraction`` when set)."""
    retry_min: float = 1.0
    """First retry delay in seconds after a failed renewal."""
    retry_max: float = 60.0
    """Longest retry delay; a renewal is tried at least this often until it works."""
    ca_settle: float = 2.0
    """Seconds between injecting a bundle with a new CA and serving a certificate from it:
    API servers see configuration changes through a watch, typically within milliseconds;
    two seconds covers a busy one."""


def renewal_time(cert: ServingCertificate, settings: RotationSettings) -> dt.datetime:
    """When ``cert`` should be replaced."""
    if settings.renew_before is not None:
        return cert.not_after - settings.renew_before
    lifetime = cert.not_after - cert.not_before
    return cert.not_before + lifetime * settings.renew_fraction


class CertificateManager:
    """Keeps a :class:`ReloadableTls` serving a valid certificate from ``source``."""

    def __init__(
        self,
        source: CertificateSource,
        *,
        injector: CaBundleInjector | None = None,
        settings: RotationSettings | None = None,
        tls: ReloadableTls | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        """Prepare; nothing is fetched until :meth:`start`."""
        self.source = source
        self.injector = injector
        self.settings = settings or RotationSettings()
        self.tls = tls or ReloadableTls()
        self._clock = clock
        self._task: asyncio.Task[None] | None = None
        self._bundle = b""
        self.rotations = 0
        """How many times a new certificate was served after the first."""
        self.changed = asyncio.Event()
        """Set after each rotation (tests wait on it; clear it yourself)."""

    @property
    def current(self) -> ServingCertificate | None:
        """The certificate being served."""
        return self.tls.current

    @property
    def ca_bundle(self) -> bytes:
        """The bundle last injected (new CA first, then the previous one)."""
        return self._bundle or (self.current.ca_pem if self.current else b"")

    async def apply(self, cert: ServingCertificate) -> bool:
        """Serve ``cert`` (inject its CA first if it changed); False if already served."""
        old = self.current
        if old is not None and old.fingerprint == cert.fingerprint and old.key_pem == cert.key_pem:
            return False
        self.tls.validate(cert)  # a broken pair must not reach the caBundle either
        bundle = merge_bundles(cert.ca_pem, old.ca_pem) if old is not None else cert.ca_pem
        if ca_fingerprints(bundle) != ca_fingerprints(self._bundle):
            if self.injector is not None:
                await self.injector.inject(bundle)
                if old is not None and ca_fingerprints(cert.ca_pem) != ca_fingerprints(
                        old.ca_pem):
                    await self._clock.sleep(self.settings.ca_settle)
            self._bundle = bundle
        self.tls.load(cert)
        if old is not None:
            self.rotations += 1
            log.info("serving a new certificate %s (valid until %s)",
                     cert.fingerprint[:16], cert.not_after.isoformat())
            self.changed.set()
        return True

    async def refresh(self) -> bool:
        """Fetch from the source now and serve the result if it differs."""
        return await self.apply(await self.source.fetch())

    async def start(self) -> None:
        """Get and serve the first certificate, then renew in the background."""
        await self.refresh()
        self._task = asyncio.create_task(self._loop(), name="kuar-webhook-cert-rotation")

    async def stop(self) -> None:
        """Stop renewing (the current certificate stays loaded)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def _next_wait(self) -> float:
        assert self.current is not None
        wait = (renewal_time(self.current, self.settings) - self._clock.now()).total_seconds()
        if self.source.poll_interval is not None:
            wait = min(wait, self.source.poll_interval)
        return max(0.0, wait)

    async def _loop(self) -> None:
        delay = self.settings.retry_min
        while True:
            await self._clock.sleep(self._next_wait())
            assert self.current is not None
            due = self._clock.now() >= renewal_time(self.current, self.settings)
            if self.source.poll_interval is None and not due:
                continue
            try:
                changed = await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("certificate renewal failed (%s: %s); retrying in %.0f s",
                            type(exc).__name__, exc, delay)
                await self._clock.sleep(delay)
                delay = min(delay * 2, self.settings.retry_max)
                continue
            delay = self.settings.retry_min
            if due and not changed:
                log.warning("certificate %s is due for renewal (expires %s) but the source "
                            "still has the same one", self.current.fingerprint[:16],
                            self.current.not_after.isoformat())
                await self._clock.sleep(self.settings.retry_max)
