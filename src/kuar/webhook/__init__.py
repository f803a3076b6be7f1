"""Admission and conversion webhooks over TLS, with certificate management.

Place in the pipeline: the API server calls these over HTTPS during admission (after
authentication and authorization, before storage) and when it converts a custom resource
between versions. Depends on :mod:`kuar.client` (CSR API, caBundle injection) and pydantic
models; run by the manager or alone.

- :mod:`kuar.webhook.review`: AdmissionReview / ConversionReview (v1) parsing and answers
- :mod:`kuar.webhook.codec`: typed decode/encode pairs, field causes in Kubernetes wording
- :mod:`kuar.webhook.admission`: :class:`ValidatingWebhook`, :class:`MutatingWebhook`,
  :class:`Validator`, :class:`Defaulter`, :class:`Denied`, :class:`FieldErrors`
- :mod:`kuar.webhook.conversion`: hub-and-spoke :class:`ConversionWebhook`
- :mod:`kuar.webhook.server`: the HTTPS :class:`WebhookServer`
- :mod:`kuar.webhook.tls`: :class:`ServingCertificate`, the reloadable TLS context
- :mod:`kuar.webhook.certificates`: self-signed, file and CSR-API certificate sources
- :mod:`kuar.webhook.rotation`: :class:`CertificateManager` (renewal before expiry)
- :mod:`kuar.webhook.signer`: kuar's CSR :class:`Signer` controller
- :mod:`kuar.webhook.injection`: :class:`CaBundleInjector`
- :mod:`kuar.webhook.configuration`: Validating/MutatingWebhookConfiguration generation

Use (see ``examples/webhook_configmap_policy`` and ``kuar_loadtest.webhooks``)::

    class Check(Validator[LoadTest]):
        async def validate_create(self, obj, admission):
            errors = FieldErrors()
            if obj.spec.requests_per_second > 100_000:
                errors.invalid("spec.requestsPerSecond", obj.spec.requests_per_second,
                               "must be at most 100000")
            errors.raise_if_any()

    hook = ValidatingWebhook.for_resource(LoadTest, Check(), name="validator.kuar.com")
    manager = CertificateManager(SelfSignedSource(), injector=CaBundleInjector(
        client=client, validating=["validators"]))
    async with WebhookServer(webhooks=[hook], certificates=manager):
        ...  # kuar generate webhooks MODULE writes the configuration
"""

from kuar.base.pki import CertificateAuthority
from kuar.webhook.admission import (
    Admission,
    AdmissionRule,
    AdmissionWebhook,
    Defaulter,
    Denied,
    FieldErrors,
    MatchCondition,
    MutatingWebhook,
    ValidatingWebhook,
    Validator,
)
from kuar.webhook.certificates import (
    CertificateRequestError,
    CertificateSource,
    CsrSource,
    FileSource,
    SelfSignedSource,
    issue_serving_certificate,
)
from kuar.webhook.codec import RAW, Codec, FieldCause
from kuar.webhook.configuration import (
    ServiceTarget,
    UrlTarget,
    apply_configurations,
    conversion_stanza,
    delete_configurations,
    find_webhooks,
    webhook_configurations,
)
from kuar.webhook.conversion import ConversionError, ConversionWebhook, HubAndSpoke, Spoke
from kuar.webhook.injection import CaBundleInjector
from kuar.webhook.review import AdmissionRequest, ConversionRequest, ReviewError
from kuar.webhook.rotation import CertificateManager, RotationSettings, renewal_time
from kuar.webhook.server import WebhookServer, WebhookServerSettings
from kuar.webhook.signer import Signer, SignerSettings, review_csr
from kuar.webhook.tls import CertificateError, ReloadableTls, ServingCertificate

__all__ = [
    "RAW",
    "Admission",
    "AdmissionRequest",
    "AdmissionRule",
    "AdmissionWebhook",
    "CaBundleInjector",
    "CertificateAuthority",
    "CertificateError",
    "CertificateManager",
    "CertificateRequestError",
    "CertificateSource",
    "Codec",
    "ConversionError",
    "ConversionRequest",
    "ConversionWebhook",
    "CsrSource",
    "Defaulter",
    "Denied",
    "FieldCause",
    "FieldErrors",
    "FileSource",
    "HubAndSpoke",
    "MatchCondition",
    "MutatingWebhook",
    "ReloadableTls",
    "ReviewError",
    "RotationSettings",
    "SelfSignedSource",
    "ServiceTarget",
    "ServingCertificate",
    "Signer",
    "SignerSettings",
    "Spoke",
    "UrlTarget",
    "ValidatingWebhook",
    "Validator",
    "WebhookServer",
    "WebhookServerSettings",
    "apply_configurations",
    "conversion_stanza",
    "delete_configurations",
    "find_webhooks",
    "issue_serving_certificate",
    "renewal_time",
    "review_csr",
    "webhook_configurations",
]
