"""Where serving certificates come from: a self-signed CA, mounted files, or the CSR API.

Place in the pipeline: a :class:`CertificateSource` is asked by the rotator
(:mod:`kuar.webhook.rotation`) for a :class:`~kuar.webhook.tls.ServingCertificate` at start
and again before expiry; the rotator loads it into the server and injects its CA bundle.

Three sources:
- :class:`SelfSignedSource` (local development): a CA made in memory (or read from a folder)
  issues short-lived serving certificates.
- :class:`FileSource` (cert-manager or similar): reads ``tls.crt``/``tls.key``/``ca.crt``
  from a mounted Secret; the rotator polls it, so a renewed Secret is picked up.
- :class:`CsrSource` (the seed's way): a fresh key and a CSR for the Service's DNS names are
  sent as a ``certificates.k8s.io/v1`` ``CertificateSigningRequest``; kuar's signer
  (:mod:`kuar.webhook.signer`) approves and signs it; the issued certificate is read back.
  The trusted CA comes from the ConfigMap the signer publishes.

Guarantees: keys are ECDSA P-256, made by ``cryptography``; a source never logs a key.
Errors: :class:`CertificateRequestError` when the CSR is denied, fails or is not issued in
``timeout`` seconds (the message names the CSR and the condition's reason).
"""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from kuar.base.files import write_private
from kuar.base.pki import (
    CertificateAuthority,
    generate_key,
    key_pem,
    make_csr,
)
from kuar.client import Api, Client, Gone, NotFound, TransportError
from kuar.models.certificates.v1 import (
    CertificateSigningRequest,
    CertificateSigningRequestCondition,
    CertificateSigningRequestSpec,
)
from kuar.models.core.v1 import ConfigMap
from kuar.resources import ObjectMeta
from kuar.webhook.tls import ServingCertificate

log = logging.getLogger("kuar.webhook.certificates")

SERVER_USAGES = ("digital signature", "key encipherment", "server auth")
CSR_PATH = CertificateSigningRequest.resource_info().path()
"""The CSR collection's URL (for tests that read CSRs raw)."""


def issue_serving_certificate(
    ca: CertificateAuthority, dns_names: Sequence[str], ips: Sequence[str] = (), *,
    validity: dt.timedelta = dt.timedelta(days=7),
) -> ServingCertificate:
    """A new key and serving certificate from ``ca``, with ``ca`` as the bundle to trust."""
    pair = ca.issue_serving(dns_names, ips, validity=validity)
    return ServingCertificate(cert_pem=pair.cert_pem, key_pem=pair.key_pem, ca_pem=pair.ca_pem)


class CertificateSource(Protocol):
    """Anything that can hand out the serving certificate to use now."""

    poll_interval: float | None
    """Seconds between checks for a replaced certificate (files); ``None``: only on renewal."""

    async def fetch(self) -> ServingCertificate:
        """The certificate to serve: new (issued now) or current (read from files)."""
        ...


@dataclass(kw_only=True)
class SelfSignedSource:
    """Local development: a self-signed CA issues each serving certificate.

    With ``ca_dir`` the CA is kept in ``ca.crt``/``ca.key`` there (0600) and reused across
    restarts, so a caBundle already installed stays valid.
    """

    dns_names: Sequence[str] = ("localhost",)
    ips: Sequence[str] = ("127.0.0.1",)
    validity: dt.timedelta = dt.timedelta(days=7)
    """Lifetime of each serving certificate; the rotator renews at 2/3 of it by default."""
    ca_dir: Path | None = None
    poll_interval: float | None = None
    ca: CertificateAuthority | None = None

    def _ca(self) -> CertificateAuthority:
        if self.ca is None:
            if self.ca_dir is not None and (self.ca_dir / "ca.key").exists():
                self.ca = CertificateAuthority.from_pem(
                    (self.ca_dir / "ca.crt").read_bytes(), (self.ca_dir / "ca.key").read_bytes())
            else:
                self.ca = CertificateAuthority.create("kuar-webhook-ca")
                if self.ca_dir is not None:
                    self.ca_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
                    (self.ca_dir / "ca.crt").write_bytes(self.ca.cert_pem)
                    # 0600 from the start, atomically, never through a planted symlink; the
                    # key last, as its presence means "a CA is here" on the next start
                    write_private(self.ca_dir / "ca.key", self.ca.key_pem)
        return self.ca

    async def fetch(self) -> ServingCertificate:
        """Issue a new serving certificate from the CA."""
        return issue_serving_certificate(self._ca(), list(self.dns_names), list(self.ips),
                                         validity=self.validity)


@dataclass(kw_only=True)
class FileSource:
    """Certificates mounted from a Secret (cert-manager's ``tls.crt``, ``tls.key``, ``ca.crt``).

    Kubernetes replaces a mounted Secret atomically (a symlink swap), so reading the files
    gives either the old or the new pair, never a mix; a mismatched read is rejected by
    :class:`~kuar.webhook.tls.ReloadableTls` and retried at the next poll.
    """

    cert_file: Path
    key_file: Path
    ca_file: Path | None = None
    """The CA to inject; ``None`` uses the chain's last certificate."""
    poll_interval: float | None = 10.0

    async def fetch(self) -> ServingCertificate:
        """Read the current files."""
        cert = await asyncio.to_thread(self.cert_file.read_bytes)
        key = await asyncio.to_thread(self.key_file.read_bytes)
        if self.ca_file is not None:
            ca = await asyncio.to_thread(self.ca_file.read_bytes)
        else:
            chain = x509.load_pem_x509_certificates(cert)
            ca = chain[-1].public_bytes(serialization.Encoding.PEM)
        return ServingCertificate(cert_pem=cert, key_pem=key, ca_pem=ca)


class CertificateRequestError(RuntimeError):
    """A CertificateSigningRequest was denied, failed, or not issued in time."""


def _condition(
    csr: CertificateSigningRequest, kind: str
) -> CertificateSigningRequestCondition | None:
    for cond in (csr.status and csr.status.conditions) or ():
        if cond.type == kind and cond.status == "True":
            return cond
    return None


@dataclass(kw_only=True)
class CsrSource:
    """The seed's way: a key and CSR, a ``CertificateSigningRequest``, the issued certificate.

    The client's identity is the CSR's requester (``spec.username``), which the signer checks.
    It needs RBAC: ``create``/``get``/``watch`` on ``certificatesigningrequests`` and ``get`` on
    the CA ConfigMap.
    """

    client: Client
    dns_names: Sequence[str]
    ips: Sequence[str] = ()
    signer_name: str = "kuar.dev/webhook-serving"
    expiration_seconds: int = 7 * 24 * 3600
    """Requested lifetime (the API server's minimum is 600 s)."""
    name_prefix: str = "kuar-webhook-"
    ca_configmap: tuple[str, str, str] = ("kuar-system", "kuar-webhook-signer-ca", "ca.crt")
    """(namespace, name, key) of the ConfigMap where the signer publishes its CA."""
    ca_pem: bytes | None = None
    """A fixed CA bundle instead of reading the ConfigMap."""
    timeout: float = 60.0
    """Seconds to wait for approval and issuance."""
    poll_interval: float | None = None
    last_csr_name: str = ""

    async def _ca(self) -> bytes:
        if self.ca_pem is not None:
            return self.ca_pem
        ns, name, key = self.ca_configmap
        cm = await Api(self.client, ConfigMap, namespace=ns).get(name)
        data = (cm.data or {}).get(key)
        if not data:
            raise CertificateRequestError(f"ConfigMap {ns}/{name} has no {key!r}")
        return str(data).encode()

    async def fetch(self) -> ServingCertificate:
        """Submit a new CSR and wait until it is issued (see the class docstring)."""
        key = generate_key()
        csr_pem = make_csr(key, list(self.dns_names), list(self.ips))
        request = CertificateSigningRequest(
            metadata=ObjectMeta(generate_name=self.name_prefix),
            spec=CertificateSigningRequestSpec(
                request=base64.b64encode(csr_pem).decode(), signer_name=self.signer_name,
                usages=list(SERVER_USAGES), expiration_seconds=self.expiration_seconds),
        )
        created = await self._csrs.create(request)
        name = created.name
        self.last_csr_name = name
        log.info("submitted CertificateSigningRequest %s for %s", name,
                 ", ".join([*self.dns_names, *self.ips]))
        try:
            async with asyncio.timeout(self.timeout):
                cert = await self._wait_issued(name, created)
        except TimeoutError:
            raise CertificateRequestError(
                f"CertificateSigningRequest {name} not issued in {self.timeout:g} s") from None
        return ServingCertificate(cert_pem=cert, key_pem=key_pem(key), ca_pem=await self._ca())

    @property
    def _csrs(self) -> Api[CertificateSigningRequest]:
        return Api(self.client, CertificateSigningRequest)

    def _issued(self, name: str, csr: CertificateSigningRequest) -> bytes | None:
        for kind in ("Denied", "Failed"):
            cond = _condition(csr, kind)
            if cond is not None:
                raise CertificateRequestError(
                    f"CertificateSigningRequest {name} {kind.lower()}: "
                    f"{cond.reason or ''}: {cond.message or ''}")
        certificate = csr.status.certificate if csr.status else None
        return base64.b64decode(certificate) if certificate else None

    async def _wait_issued(self, name: str, csr: CertificateSigningRequest) -> bytes:
        while True:
            issued = self._issued(name, csr)
            if issued is not None:
                return issued
            try:
                csr = await self._csrs.get(name)
            except NotFound:
                raise CertificateRequestError(
                    f"CertificateSigningRequest {name} was deleted") from None
            issued = self._issued(name, csr)
            if issued is not None:
                return issued
            try:
                async for event in self._csrs.watch(
                    resource_version=csr.metadata.resource_version,
                    field_selector=f"metadata.name={name}", timeout_seconds=30,
                ):
                    if event.type in ("ADDED", "MODIFIED") and event.object is not None:
                        csr = event.object
                        issued = self._issued(name, csr)
                        if issued is not None:
                            return issued
            except (TransportError, Gone):
                await asyncio.sleep(0.2)
