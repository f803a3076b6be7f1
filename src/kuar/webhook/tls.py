"""The serving certificate and the server's TLS context, reloadable without a restart.

Place in the pipeline: certificate sources (:mod:`kuar.webhook.certificates`) produce a
:class:`ServingCertificate`; the rotator (:mod:`kuar.webhook.rotation`) hands it to
:meth:`ReloadableTls.load`; the HTTPS server (:mod:`kuar.webhook.server`) serves with
:attr:`ReloadableTls.context`. See docs/decisions/0007-webhook-tls-server.md.

Guarantees:
- TLS 1.2 is the minimum version; plain HTTP and older TLS are refused at the handshake. On
  TLS 1.2 only ECDHE key exchange with AEAD ciphers is offered (:data:`TLS12_CIPHERS`).
- Client certificates are asked for only after :meth:`ReloadableTls.require_client_certificates`
  (then they are required and checked against the given CA bundle).
- :meth:`ReloadableTls.load` first loads the new pair into a scratch context, so a broken or
  mismatched pair raises :class:`CertificateError` and leaves the serving pair unchanged.
  Then it replaces the chain of the one live context: connections accepted afterwards
  present the new certificate, connections already open keep theirs (nothing is dropped).
- Private keys never appear in ``repr``, logs or exceptions; the temporary files that
  ``ssl`` needs to read a pair live in a private (0700) folder for the duration of the call.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import ssl
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization


class CertificateError(ValueError):
    """A certificate or key is unusable (bad PEM, key does not match, expired...)."""


@dataclass(frozen=True, slots=True)
class ServingCertificate:
    """A PEM certificate chain, its private key and the CA bundle that clients should trust."""

    cert_pem: bytes
    key_pem: bytes = field(repr=False)
    ca_pem: bytes
    """What goes into ``caBundle``: the issuing CA (possibly several PEM blocks)."""

    @property
    def leaf(self) -> x509.Certificate:
        """The first certificate of the chain (the server's own)."""
        try:
            return x509.load_pem_x509_certificate(self.cert_pem)
        except ValueError as exc:
            raise CertificateError(f"certificate is not valid PEM: {exc}") from None

    @property
    def not_before(self) -> dt.datetime:
        """Start of validity (UTC)."""
        return self.leaf.not_valid_before_utc

    @property
    def not_after(self) -> dt.datetime:
        """End of validity (UTC)."""
        return self.leaf.not_valid_after_utc

    @property
    def fingerprint(self) -> str:
        """SHA-256 of the leaf certificate (DER), hex: tells certificates apart in logs."""
        return self.leaf.fingerprint(hashes.SHA256()).hex()

    @property
    def dns_names(self) -> list[str]:
        """The leaf's DNS subject alternative names."""
        try:
            ext = self.leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        except x509.ExtensionNotFound:
            return []
        return list(ext.value.get_values_for_type(x509.DNSName))


def ca_fingerprints(bundle: bytes) -> set[str]:
    """SHA-256 fingerprints of every certificate in a PEM bundle."""
    try:
        certs = x509.load_pem_x509_certificates(bundle)
    except ValueError:
        return set()
    return {hashlib.sha256(c.public_bytes(serialization.Encoding.DER)).hexdigest()
            for c in certs}


def merge_bundles(*bundles: bytes) -> bytes:
    """One PEM bundle with every distinct certificate of ``bundles`` (first seen first)."""
    seen: set[bytes] = set()
    out: list[bytes] = []
    for bundle in bundles:
        try:
            certs = x509.load_pem_x509_certificates(bundle) if bundle.strip() else []
        except ValueError:
            continue
        for cert in certs:
            der = cert.public_bytes(serialization.Encoding.DER)
            if der not in seen:
                seen.add(der)
                out.append(cert.public_bytes(serialization.Encoding.PEM))
    return b"".join(out)


TLS12_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!PSK"
"""TLS 1.2 suites offered: ephemeral ECDH key exchange (forward secrecy) with an AEAD cipher
(AES-GCM, ChaCha20-Poly1305), ECDSA or RSA certificates. No CBC (Lucky13-style padding
oracles), no finite-field DHE (weak or unchecked groups), no static RSA key exchange. Go's
TLS client (the API server) offers all of these by default. TLS 1.3 suites are AEAD only and
are left as OpenSSL sets them."""


def new_server_context() -> ssl.SSLContext:
    """A server context: TLS 1.2+ (ECDHE + AEAD on 1.2), HTTP/1.1 by ALPN, no certificate yet."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.set_ciphers(TLS12_CIPHERS)
    ctx.set_alpn_protocols(["http/1.1"])
    ctx.options |= ssl.OP_NO_COMPRESSION
    return ctx


def _load_pair(ctx: ssl.SSLContext, cert: ServingCertificate) -> None:
    folder = tempfile.mkdtemp(prefix="kuar-tls-")
    try:
        os.chmod(folder, 0o700)
        cert_path, key_path = Path(folder, "tls.crt"), Path(folder, "tls.key")
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(cert.key_pem)
        cert_path.write_bytes(cert.cert_pem)
        try:
            ctx.load_cert_chain(str(cert_path), str(key_path))
        except ssl.SSLError as exc:
            # The message names the OpenSSL failure (e.g. KEY_VALUES_MISMATCH), never the key.
            raise CertificateError(f"certificate and key cannot be used: {exc.reason}") from None
    finally:
        for name in ("tls.key", "tls.crt"):
            Path(folder, name).unlink(missing_ok=True)
        os.rmdir(folder)


class ReloadableTls:
    """One live :class:`ssl.SSLContext` whose certificate can be replaced at any time."""

    def __init__(self, cert: ServingCertificate | None = None) -> None:
        """Create the context, serving ``cert`` if given."""
        self.context = new_server_context()
        self.current: ServingCertificate | None = None
        if cert is not None:
            self.load(cert)

    @staticmethod
    def validate(cert: ServingCertificate) -> None:
        """Raise :class:`CertificateError` unless ``cert`` is a usable, unexpired pair."""
        now = dt.datetime.now(dt.UTC)
        if cert.not_after <= now:
            raise CertificateError(f"certificate expired at {cert.not_after.isoformat()}")
        _load_pair(new_server_context(), cert)

    def load(self, cert: ServingCertificate) -> None:
        """Validate ``cert`` and serve it to new connections (see module guarantees)."""
        self.validate(cert)  # raises before the live context is touched
        _load_pair(self.context, cert)
        self.current = cert

    def require_client_certificates(self, ca_file: str) -> None:
        """Refuse clients without a certificate signed by a CA of ``ca_file`` (PEM bundle).

        Applies to connections accepted afterwards. Raises :class:`CertificateError` naming
        the file when it cannot be read or holds no usable certificate.
        """
        try:
            self.context.load_verify_locations(cafile=ca_file)
        except ssl.SSLError as exc:  # before OSError: SSLError is one
            raise CertificateError(
                f"client CA file {ca_file}: no usable certificate ({exc.reason})") from None
        except OSError as exc:
            raise CertificateError(
                f"client CA file {ca_file}: {exc.strerror or exc}") from None
        self.context.verify_mode = ssl.CERT_REQUIRED
