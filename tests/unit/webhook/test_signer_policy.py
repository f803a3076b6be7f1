"""The CSR signer approves only the expected requester for the expected names."""

from __future__ import annotations

import base64
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from kuar.models.certificates.v1 import CertificateSigningRequest
from kuar.webhook import SignerSettings, review_csr
from kuar.webhook.certificates import generate_key, make_csr

DNS = ["hook.sys.svc", "hook.sys.svc.cluster.local"]
SETTINGS = SignerSettings(allowed_requesters=frozenset({"system:serviceaccount:sys:hook"}),
                          allowed_dns_names=frozenset(DNS), allowed_ips=frozenset({"127.0.0.1"}))


def csr(request: bytes, *, user: str = "system:serviceaccount:sys:hook",
        usages: tuple[str, ...] = ("digital signature", "key encipherment", "server auth"),
        ) -> CertificateSigningRequest:
    return CertificateSigningRequest.model_validate({"metadata": {"name": "c"}, "spec": {
        "request": base64.b64encode(request).decode(), "username": user,
        "signerName": SETTINGS.signer_name, "usages": list(usages)}})


def test_expected_requester_and_names_are_approved() -> None:
    decision = review_csr(csr(make_csr(generate_key(), DNS, ["127.0.0.1"])), SETTINGS)
    assert decision.approve, decision.message
    assert review_csr(csr(make_csr(generate_key(), DNS[:1])), SETTINGS).approve


def test_other_requester_is_denied() -> None:
    decision = review_csr(csr(make_csr(generate_key(), DNS), user="mallory"), SETTINGS)
    assert not decision.approve
    assert "mallory" in decision.message


def test_unexpected_names_and_ips_are_denied() -> None:
    assert "evil" in review_csr(csr(make_csr(generate_key(), [*DNS, "evil.io"])),
                                SETTINGS).message
    assert "10.0.0.1" in review_csr(csr(make_csr(generate_key(), DNS, ["10.0.0.1"])),
                                    SETTINGS).message


def test_client_auth_or_missing_server_auth_usage_is_denied() -> None:
    request = make_csr(generate_key(), DNS)
    assert not review_csr(csr(request, usages=("client auth",)), SETTINGS).approve
    assert not review_csr(csr(request, usages=("server auth", "client auth")), SETTINGS).approve


def _custom_csr(key: Any, subject: list[x509.NameAttribute],
                sans: list[x509.GeneralName] | None) -> bytes:
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(subject))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM)


def test_odd_requests_are_denied() -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    cn = [x509.NameAttribute(NameOID.COMMON_NAME, DNS[0])]
    no_sans = _custom_csr(key, cn, None)
    assert "alternative names" in review_csr(csr(no_sans), SETTINGS).message
    email = _custom_csr(key, cn, [x509.DNSName(DNS[0]), x509.RFC822Name("a@b.c")])
    assert "only DNS names" in review_csr(csr(email), SETTINGS).message
    org = _custom_csr(key, [*cn, x509.NameAttribute(NameOID.ORGANIZATION_NAME,
                                                     "system:masters")],
                      [x509.DNSName(DNS[0])])
    assert "subject" in review_csr(csr(org), SETTINGS).message
    weak = _custom_csr(rsa.generate_private_key(public_exponent=65537, key_size=1024), cn,
                       [x509.DNSName(DNS[0])])
    assert "too small" in review_csr(csr(weak), SETTINGS).message
    garbage = review_csr(csr(b"-----BEGIN CERTIFICATE REQUEST-----\nxx\n"), SETTINGS)
    assert not garbage.approve
