"""kuar's CSR signer: approves and signs webhook serving certificates for one signer name.

Place in the pipeline: watches ``certificates.k8s.io/v1`` CertificateSigningRequests whose
``spec.signerName`` is its own (e.g. ``kuar.dev/webhook-serving``), as submitted by
:class:`~kuar.webhook.certificates.CsrSource`; approves those that :func:`review_csr` accepts
(``/approval`` subresource, ``Approved`` condition), denies the others (``Denied``), signs
approved ones with its CA and writes ``status.certificate`` (``/status`` subresource).
kube-controller-manager's built-in approver and signers ignore custom signer names, so
without this loop such a CSR would wait forever. Known as a "custom signer" in the Kubernetes
docs on certificate signing requests.

Guarantees (what it approves, and nothing else):
- ``spec.username`` is one of ``allowed_requesters``;
- the PKCS#10 request parses and its self-signature verifies;
- its DNS names are a non-empty subset of ``allowed_dns_names`` and its IP addresses a subset
  of ``allowed_ips``; no e-mail, URI or other name; the CN (if any) is one of those names;
- ``spec.usages`` are within ``digital signature``, ``key encipherment``, ``server auth``
  and include ``server auth``; the key is ECDSA P-256/P-384 or RSA >= 2048 bits.
The issued lifetime is ``min(spec.expirationSeconds, max_expiration)``. The CA lives in a
Secret (``tls.crt``/``tls.key``) created on first start; its certificate (no key) is
published in a ConfigMap for caBundle injection. CSRs already approved by someone else are
still signed only if they also pass :func:`review_csr` (no signing on another's word).
Errors: API errors during a pass are logged and the pass is retried after ``retry_delay``;
a watch that ends or expires (410) relists; a watch silent for ``watch_inactivity_timeout``
(no event, no bookmark) is reopened from the last resourceVersion, as the runtime's watcher
does. A CSR whose handling fails (any error but a Conflict or NotFound) is logged, gets a
Warning Event, and is retried with its own backoff (``csr_retry_initial`` doubling to
``csr_retry_max``): it never stops the signer or delays other CSRs. The CA key is never
logged.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import ClassVar

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from kuar.base.pki import CertificateAuthority
from kuar.client import (
    AlreadyExists,
    Api,
    ApiError,
    Client,
    Conflict,
    Gone,
    NotFound,
    TransportError,
)
from kuar.models.certificates.v1 import (
    CertificateSigningRequest,
    CertificateSigningRequestCondition,
    CertificateSigningRequestStatus,
)
from kuar.models.core.v1 import ConfigMap, ObjectReference, Secret
from kuar.models.events.v1 import Event
from kuar.resources import ObjectMeta

log = logging.getLogger("kuar.webhook.signer")

ALLOWED_USAGES = frozenset({"digital signature", "key encipherment", "server auth"})


@dataclass(frozen=True, kw_only=True)
class SignerSettings:
    """Whom the signer trusts, for which names, and where its CA lives."""

    signer_name: str = "kuar.dev/webhook-serving"
    """The ``spec.signerName`` this signer handles (a domain-prefixed path)."""
    allowed_requesters: frozenset[str]
    """User names allowed to request (e.g. the webhook's service account,
    ``system:serviceaccount:kuar-system:kuar-webhook``)."""
    allowed_dns_names: frozenset[str]
    """DNS names a certificate may carry (the webhook Service's names)."""
    allowed_ips: frozenset[str] = frozenset()
    """IP addresses a certificate may carry (``127.0.0.1`` for local development)."""
    namespace: str = "kuar-system"
    """Namespace of the CA Secret and ConfigMap."""
    ca_secret: str = "kuar-webhook-signer-ca"  # noqa: S105 - a name
    """Secret holding the CA certificate and key."""
    ca_configmap: str = "kuar-webhook-signer-ca"
    """ConfigMap where the CA certificate (``ca.crt``) is published."""
    ca_validity: dt.timedelta = dt.timedelta(days=3650)
    """Lifetime of a CA made by the signer."""
    max_expiration: dt.timedelta = dt.timedelta(days=30)
    """Longest certificate lifetime issued, whatever ``expirationSeconds`` asks."""
    retry_delay: float = 2.0
    """Seconds before retrying a pass that failed on an API error."""
    watch_inactivity_timeout: float = 90.0
    """A watch with no event and no bookmark for this long is dead: reopen it (the runtime
    watcher's default; the API server sends bookmarks about every minute)."""
    csr_retry_initial: float = 1.0
    """First wait before handling a CSR again after its handling failed."""
    csr_retry_max: float = 300.0
    """Longest wait between retries of one failing CSR."""


@dataclass(frozen=True, slots=True)
class Decision:
    """Whether to approve a CSR, with a reason (CamelCase) and a message."""

    approve: bool
    reason: str
    message: str


def _deny(message: str, reason: str = "KuarSignerPolicy") -> Decision:
    return Decision(False, reason, message)


def review_csr(csr: CertificateSigningRequest, settings: SignerSettings) -> Decision:
    """Pure policy: approve this CertificateSigningRequest or not (see module guarantees)."""
    spec = csr.spec
    user = spec.username or ""
    if user not in settings.allowed_requesters:
        return _deny(f"requester {user!r} is not allowed to get {settings.signer_name} "
                     "certificates")
    try:
        request = x509.load_pem_x509_csr(base64.b64decode(spec.request))
    except ValueError as exc:
        return _deny(f"spec.request is not a PEM certificate request: {exc}")
    if not request.is_signature_valid:
        return _deny("the certificate request's signature does not verify")
    key = request.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name not in ("secp256r1", "secp384r1"):
            return _deny(f"key curve {key.curve.name} is not allowed")
    elif isinstance(key, rsa.RSAPublicKey):
        if key.key_size < 2048:
            return _deny(f"RSA key of {key.key_size} bits is too small")
    else:
        return _deny(f"key type {type(key).__name__} is not allowed")
    usages = set(spec.usages or [])
    if not usages <= ALLOWED_USAGES or "server auth" not in usages:
        return _deny(f"usages {sorted(usages)} must include 'server auth' and stay within "
                     f"{sorted(ALLOWED_USAGES)}")
    try:
        sans = request.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return _deny("the request has no subject alternative names")
    dns = set(sans.get_values_for_type(x509.DNSName))
    ips = {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)}
    if len(dns) + len(ips) != len(list(sans)):
        return _deny("only DNS names and IP addresses are allowed in the request")
    if not dns and not ips:
        return _deny("the request names no DNS name or IP address")
    if extra := dns - settings.allowed_dns_names:
        return _deny(f"DNS names not allowed: {sorted(extra)}")
    if extra := ips - settings.allowed_ips:
        return _deny(f"IP addresses not allowed: {sorted(extra)}")
    for attr in request.subject:
        if attr.oid != NameOID.COMMON_NAME or str(attr.value) not in dns | ips:
            return _deny("the subject may only hold a common name equal to one of the names")
    return Decision(True, "KuarSignerApproved",
                    f"{user} may serve {', '.join(sorted(dns | ips))}")


def _has_condition(csr: CertificateSigningRequest, kind: str) -> bool:
    return any(c.type == kind for c in (csr.status and csr.status.conditions) or ())


@dataclass
class Signer:
    """The signer controller (a runnable: :meth:`start`/:meth:`stop`, or :meth:`run`)."""

    client: Client
    settings: SignerSettings
    ca: CertificateAuthority | None = None
    signed: list[str] = field(default_factory=list)
    denied: list[str] = field(default_factory=list)
    _task: asyncio.Task[None] | None = field(default=None, repr=False)
    _api: Api[CertificateSigningRequest] | None = field(default=None, repr=False)
    _failures: dict[str, tuple[int, float]] = field(default_factory=dict, repr=False)
    """CSR name -> (consecutive failures, monotonic time before which it is not retried)."""
    _retries: set[asyncio.Task[None]] = field(default_factory=set, repr=False)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    needs_leader_election: ClassVar[bool] = True
    """Under a manager, only the leader signs (two signers would race on one CSR)."""

    @property
    def _csrs(self) -> Api[CertificateSigningRequest]:
        if self._api is None:
            self._api = Api(self.client, CertificateSigningRequest, field_manager="kuar-signer")
        return self._api

    async def ensure_ca(self) -> CertificateAuthority:
        """Load the CA from its Secret, creating both (and the ConfigMap) when missing."""
        s = self.settings
        secrets = Api(self.client, Secret, namespace=s.namespace, field_manager="kuar-signer")
        try:
            ca = self._ca_from(await secrets.get(s.ca_secret))
        except NotFound:
            ca = CertificateAuthority.create(f"{s.signer_name} CA", s.ca_validity)
            secret = Secret(
                metadata=ObjectMeta(name=s.ca_secret, namespace=s.namespace),
                type="kubernetes.io/tls",
                data={"tls.crt": base64.b64encode(ca.cert_pem).decode(),
                      "tls.key": base64.b64encode(ca.key_pem).decode()})
            try:
                await secrets.create(secret)
                log.info("created signer CA Secret %s/%s", s.namespace, s.ca_secret)
            except AlreadyExists:  # another replica won the race: use its CA
                ca = self._ca_from(await secrets.get(s.ca_secret))
        self.ca = ca
        published = ConfigMap(metadata=ObjectMeta(name=s.ca_configmap, namespace=s.namespace),
                              data={"ca.crt": ca.cert_pem.decode()})
        await Api(self.client, ConfigMap, namespace=s.namespace).apply(
            published, field_manager="kuar-signer", force=True)
        return ca

    @staticmethod
    def _ca_from(secret: Secret) -> CertificateAuthority:
        data = secret.data or {}
        return CertificateAuthority.from_pem(base64.b64decode(data["tls.crt"]),
                                             base64.b64decode(data["tls.key"]))

    async def handle(self, csr: CertificateSigningRequest) -> None:
        """Approve or deny, then sign: one step of the loop for one CSR."""
        if csr.spec.signer_name != self.settings.signer_name:
            return
        if (csr.status and csr.status.certificate) or _has_condition(csr, "Denied") \
                or _has_condition(csr, "Failed"):
            return
        name = csr.name
        decision = review_csr(csr, self.settings)
        if not _has_condition(csr, "Approved"):
            kind = "Approved" if decision.approve else "Denied"
            status = csr.status or CertificateSigningRequestStatus()
            status.conditions = [*(status.conditions or ()), CertificateSigningRequestCondition(
                type=kind, status="True", reason=decision.reason, message=decision.message,
                last_update_time=dt.datetime.now(dt.UTC))]
            csr.status = status
            csr = await self._csrs.replace(csr, subresource="approval")
            if not decision.approve:
                self.denied.append(name)
                log.warning("denied CertificateSigningRequest %s: %s", name, decision.message)
                return
            log.info("approved CertificateSigningRequest %s: %s", name, decision.message)
        elif not decision.approve:
            log.warning("not signing approved CertificateSigningRequest %s: %s", name,
                        decision.message)
            return
        await self._sign(name, csr)

    async def _sign(self, name: str, csr: CertificateSigningRequest) -> None:
        assert self.ca is not None
        spec = csr.spec
        request = x509.load_pem_x509_csr(base64.b64decode(spec.request))
        sans = request.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        lifetime = self.settings.max_expiration
        if spec.expiration_seconds:
            lifetime = min(lifetime, dt.timedelta(seconds=spec.expiration_seconds))
        pem = self.ca.sign(
            request.public_key(), subject=request.subject,
            dns_names=sans.get_values_for_type(x509.DNSName),
            ips=[str(ip) for ip in sans.get_values_for_type(x509.IPAddress)],
            validity=lifetime)
        csr.status = csr.status or CertificateSigningRequestStatus()
        csr.status.certificate = base64.b64encode(pem).decode()
        await self._csrs.replace_status(csr)
        self.signed.append(name)
        log.info("signed CertificateSigningRequest %s (valid %s)", name, lifetime)

    async def _handle_all(self, items: Iterable[CertificateSigningRequest]) -> None:
        for csr in items:
            name = csr.metadata.name or ""
            failures, not_before = self._failures.get(name, (0, 0.0))
            if failures and time.monotonic() < not_before:
                continue  # backing off; its retry task handles it when the time comes
            try:
                await self.handle(csr)
            except (Conflict, NotFound):
                # Changed or deleted meanwhile: the watch delivers the newer version.
                continue
            except Exception as exc:  # one bad CSR must not stop the signer
                await self._failed(csr, failures + 1, exc)
                continue
            self._failures.pop(name, None)

    async def _failed(self, csr: CertificateSigningRequest, failures: int, exc: Exception) -> None:
        name = csr.metadata.name or ""
        s = self.settings
        delay = min(s.csr_retry_initial * 2 ** (failures - 1), s.csr_retry_max)
        self._failures[name] = (failures, time.monotonic() + delay)
        message = f"cannot handle CertificateSigningRequest {name}: {exc}"
        log.warning("%s (attempt %d; retrying in %.1f s)", message, failures, delay)
        with contextlib.suppress(Exception):  # the Event is best effort
            await self._warn(csr, message[:1024])
        task = asyncio.create_task(self._retry(name, delay), name=f"kuar-signer-retry-{name}")
        self._retries.add(task)
        task.add_done_callback(self._retries.discard)

    async def _retry(self, name: str, delay: float) -> None:
        await asyncio.sleep(delay)
        try:
            csr = await self._csrs.get(name)
        except NotFound:
            self._failures.pop(name, None)
            return
        except Exception as exc:
            log.warning("cannot read CertificateSigningRequest %s to retry it: %s", name, exc)
            return
        await self._handle_all([csr])

    async def _warn(self, csr: CertificateSigningRequest, message: str) -> None:
        """A Warning Event about ``csr`` (events.k8s.io/v1), as the runtime's recorder writes."""
        now = dt.datetime.now(dt.UTC)
        await Api(self.client, Event, namespace="default").create(Event(
            metadata=ObjectMeta(generate_name=f"{csr.metadata.name}."),
            event_time=now, reporting_controller=self.settings.signer_name,
            reporting_instance="kuar-signer", action="Sign", reason="SigningFailed",
            type="Warning", note=message,
            regarding=ObjectReference(api_version="certificates.k8s.io/v1",
                                      kind="CertificateSigningRequest",
                                      name=csr.metadata.name, uid=csr.metadata.uid),
        ))

    async def run(self) -> None:
        """List and watch forever (until cancelled)."""
        selector = f"spec.signerName={self.settings.signer_name}"
        while True:
            try:
                if self.ca is None:
                    await self.ensure_ca()
                listed = await self._csrs.list(field_selector=selector)
                await self._handle_all(listed.items)
                self.ready.set()
                rv = listed.resource_version
                while True:
                    events = self._csrs.watch(
                        resource_version=rv, field_selector=selector, bookmarks=True,
                        timeout_seconds=300,
                    )
                    try:
                        while True:
                            # a stream silent past the timeout is dead: reopen it, resuming
                            async with asyncio.timeout(self.settings.watch_inactivity_timeout):
                                event = await anext(events)
                            rv = event.resource_version or rv
                            if event.type in ("ADDED", "MODIFIED") and event.object is not None:
                                await self._handle_all([event.object])
                    except StopAsyncIteration:
                        pass
                    except TimeoutError:
                        log.warning("CSR watch silent for %.0f s; reopening",
                                    self.settings.watch_inactivity_timeout)
                    finally:
                        with contextlib.suppress(Exception):
                            await events.aclose()  # type: ignore[attr-defined]
            except asyncio.CancelledError:
                raise
            except Gone:
                continue
            except (ApiError, TransportError) as exc:
                log.warning("signer pass failed (%s); retrying in %.0f s", exc,
                            self.settings.retry_delay)
                await asyncio.sleep(self.settings.retry_delay)

    async def start(self) -> None:
        """Ensure the CA, then run :meth:`run` in the background; returns when it has listed."""
        await self.ensure_ca()
        self._task = asyncio.create_task(self.run(), name="kuar-csr-signer")
        ready = asyncio.ensure_future(self.ready.wait())
        done, _ = await asyncio.wait({ready, self._task}, return_when=asyncio.FIRST_COMPLETED)
        if self._task in done:
            ready.cancel()
            self._task.result()

    async def stop(self) -> None:
        """Cancel the loop and any pending retries."""
        for task in list(self._retries):
            task.cancel()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
