"""Keys, certificate requests and one certificate authority, for webhooks and the local cluster.

Place in the pipeline: the base layer. :mod:`kuar.webhook` issues serving certificates with it
(self-signed source, the CSR signer) and :mod:`kuar.testing` makes the local control plane's CA,
serving certificates and client users with it. Built on ``cryptography``; nothing here is
hand-rolled crypto. Known as ``k8s.io/client-go/util/cert`` in client-go.

Guarantees: keys are ECDSA P-256; serving certificates carry ``serverAuth`` and the names as
SANs, client certificates carry ``clientAuth`` with CN = user and O = groups (how Kubernetes
reads client-certificate users); a CA signs leaf certificates only (path length 0) and never
past its own expiry. Caveat: private keys are unencrypted PEM: write them to 0600 files or keep
them in memory; never log them.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PrivateKey = ec.EllipticCurvePrivateKey


@dataclass(frozen=True, slots=True)
class KeyPair:
    """A PEM certificate, its PEM private key, and the PEM of the CA that issued it."""

    cert_pem: bytes
    key_pem: bytes = field(repr=False)
    ca_pem: bytes = b""


def generate_key() -> PrivateKey:
    """A new ECDSA P-256 private key."""
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    """PKCS#8 PEM of a private key (unencrypted: it is written only to a 0600 file or memory)."""
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _sans(dns_names: Sequence[str], ips: Sequence[str]) -> x509.SubjectAlternativeName:
    names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns_names]
    names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ips]
    return x509.SubjectAlternativeName(names)


def _common_name(name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])


def make_csr(key: PrivateKey, dns_names: Sequence[str], ips: Sequence[str] = ()) -> bytes:
    """A PEM PKCS#10 request for a serving certificate (CN = first DNS name)."""
    if not dns_names and not ips:
        raise ValueError("a serving certificate needs at least one DNS name or IP address")
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(_common_name(dns_names[0] if dns_names else ips[0]))
        .add_extension(_sans(dns_names, ips), critical=False)
        .sign(key, hashes.SHA256())
    )
    return csr.public_bytes(serialization.Encoding.PEM)


def _usage(*, server: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True, content_commitment=False, key_encipherment=server,
        data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
        encipher_only=False, decipher_only=False)


class CertificateAuthority:
    """A CA that issues serving and client certificates: made here, or loaded from PEM."""

    def __init__(self, cert: x509.Certificate, key: PrivateKey) -> None:
        """Wrap an existing CA certificate and key (see :meth:`create`, :meth:`from_pem`)."""
        self.cert = cert
        self._key = key

    def __repr__(self) -> str:
        return f"CertificateAuthority({self.cert.subject.rfc4514_string()})"

    @classmethod
    def create(cls, common_name: str = "kuar-ca",
               validity: dt.timedelta = dt.timedelta(days=365)) -> CertificateAuthority:
        """A new self-signed CA."""
        key = generate_key()
        name = _common_name(common_name)
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + validity)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, content_commitment=False, key_encipherment=False,
                data_encipherment=False, key_agreement=False, key_cert_sign=True,
                crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(cert, key)

    @classmethod
    def from_pem(cls, cert_pem: bytes, key_pem_bytes: bytes) -> CertificateAuthority:
        """Load a CA from PEM; the key must be ECDSA (what :meth:`create` makes)."""
        cert = x509.load_pem_x509_certificate(cert_pem)
        key = serialization.load_pem_private_key(key_pem_bytes, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError("the CA key must be an ECDSA key")
        return cls(cert, key)

    @property
    def cert_pem(self) -> bytes:
        """The CA certificate in PEM (what goes into ``caBundle`` or a kubeconfig)."""
        return self.cert.public_bytes(serialization.Encoding.PEM)

    @property
    def key_pem(self) -> bytes:
        """The CA key in PEM (to store in a Secret; never log it)."""
        return key_pem(self._key)

    def _build(self, public_key: Any, subject: x509.Name, validity: dt.timedelta,
               now: dt.datetime | None) -> x509.CertificateBuilder:
        now = now or dt.datetime.now(dt.UTC)
        not_after = min(now + validity, self.cert.not_valid_after_utc)
        return (
            x509.CertificateBuilder().subject_name(subject).issuer_name(self.cert.subject)
            .public_key(public_key).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=1)).not_valid_after(not_after)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                self._key.public_key()), critical=False)
        )

    def sign(self, public_key: Any, *, subject: x509.Name, dns_names: Sequence[str],
             ips: Sequence[str] = (), validity: dt.timedelta,
             now: dt.datetime | None = None) -> bytes:
        """A PEM serving certificate (``serverAuth``) for ``public_key`` (e.g. from a CSR)."""
        cert = (
            self._build(public_key, subject, validity, now)
            .add_extension(_usage(server=True), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(_sans(dns_names, ips), critical=False)
            .sign(self._key, hashes.SHA256())
        )
        return cert.public_bytes(serialization.Encoding.PEM)

    def issue_serving(self, dns_names: Sequence[str], ips: Sequence[str] = (), *,
                      validity: dt.timedelta = dt.timedelta(days=7),
                      common_name: str | None = None) -> KeyPair:
        """A new key and serving certificate for the names and addresses (CN: the first)."""
        if not dns_names and not ips:
            raise ValueError("a serving certificate needs at least one DNS name or IP address")
        key = generate_key()
        subject = _common_name(common_name or (dns_names[0] if dns_names else ips[0]))
        cert = self.sign(key.public_key(), subject=subject, dns_names=dns_names, ips=ips,
                         validity=validity)
        return KeyPair(cert, key_pem(key), self.cert_pem)

    def issue_client(self, user: str, groups: Sequence[str] = (), *,
                     validity: dt.timedelta = dt.timedelta(days=365)) -> KeyPair:
        """A client certificate: CN is the Kubernetes user name, each O a group."""
        key = generate_key()
        attrs = [x509.NameAttribute(NameOID.COMMON_NAME, user)]
        attrs += [x509.NameAttribute(NameOID.ORGANIZATION_NAME, g) for g in groups]
        cert = (
            self._build(key.public_key(), x509.Name(attrs), validity, None)
            .add_extension(_usage(server=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .sign(self._key, hashes.SHA256())
        )
        return KeyPair(cert.public_bytes(serialization.Encoding.PEM), key_pem(key),
                       self.cert_pem)
