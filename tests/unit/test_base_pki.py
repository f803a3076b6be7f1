"""The one CA (kuar.base.pki) issues certificates Kubernetes reads users and groups from."""

from __future__ import annotations

import ipaddress

from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from kuar.base.pki import CertificateAuthority


def test_client_certificate_carries_user_and_groups_and_chains_to_ca() -> None:
    ca = CertificateAuthority.create()
    pair = ca.issue_client("alice", ["dev", "ops"])
    cert = x509.load_pem_x509_certificate(pair.cert_pem)
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "alice"
    groups = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    assert groups == ["dev", "ops"]
    usage = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert ExtendedKeyUsageOID.CLIENT_AUTH in usage
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem)
    cert.verify_directly_issued_by(ca_cert)


def test_serving_certificate_has_dns_and_ip_names() -> None:
    ca = CertificateAuthority.create()
    cert = x509.load_pem_x509_certificate(
        ca.issue_serving(["localhost"], ["127.0.0.1"], common_name="api").cert_pem
    )
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert san.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1")]
