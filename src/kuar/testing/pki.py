"""Keys for the local control plane that are not certificates: the service-account signing key.

Place in the pipeline: used by :mod:`kuar.testing.controlplane` before the processes start.
The control plane's CA, serving certificates and client users come from the one
:class:`kuar.base.pki.CertificateAuthority`.
"""

from __future__ import annotations

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from kuar.base.pki import KeyPair, key_pem


def service_account_keys() -> KeyPair:
    """An RSA key pair for signing service-account tokens (``cert_pem`` holds the public key)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return KeyPair(public, key_pem(key))
