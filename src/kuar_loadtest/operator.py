"""The LoadTest operator process: the controller, the webhooks and the CSR signer under a manager.

Place in the pipeline: ``kuar loadtest run`` (the operator's container) and ``kuar demo`` call
:func:`build_manager`. Everything here is kuar's public API: :class:`kuar.manager.Manager`,
the runtime builder, the webhook server, certificate sources and the signer.

What runs where (several replicas, one Lease):
- every replica serves the webhooks (validator, defaulter, v1/v2 conversion) once it has a
  serving certificate, and passes ``/readyz`` only while it serves them, so the webhook
  Service routes only to replicas that answer;
- only the leader reconciles LoadTests and runs kuar's CSR signer.
Certificates come from the CSR API (the default: a key and a CertificateSigningRequest for the
Service's DNS names, signed by the leader's signer, CA injected into the webhook configurations
and the CRD's conversion stanza) or from files (``cert_dir``: ``tls.crt``, ``tls.key``,
``ca.crt``, e.g. a cert-manager Secret; cert-manager's cainjector then injects the CA).
Before anything starts, the manager checks (SelfSubjectAccessReview) the RBAC rules of
:mod:`kuar_loadtest.rbac` for the parts that run, and stays unready, naming what is missing.
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar
from urllib.parse import urlsplit

from kuar.client import Client, Permission, permissions_for, whoami
from kuar.manager import HealthSettings, LeaderElectionSettings, Manager, ManagerSettings
from kuar.manager.manager import Runnable
from kuar.webhook import (
    CaBundleInjector,
    CertificateManager,
    CertificateSource,
    CsrSource,
    FileSource,
    ServiceTarget,
    Signer,
    SignerSettings,
    WebhookServer,
    WebhookServerSettings,
)
from kuar_loadtest import rbac
from kuar_loadtest.controller import build_controller
from kuar_loadtest.settings import OperatorSettings
from kuar_loadtest.webhooks import LoadTestWebhookSettings, webhooks_for

log = logging.getLogger("kuar_loadtest.operator")


@dataclass(frozen=True, kw_only=True)
class WebhookOptions:
    """How this process serves the LoadTest webhooks (see the module docstring)."""

    host: str = "127.0.0.1"
    """Address to bind; a pod binds ``0.0.0.0`` so the API server reaches the pod's IP."""
    port: int = 9443
    """controller-runtime's webhook port; the webhook Service's targetPort."""
    service: ServiceTarget | None = None
    """The Service the API server calls: its DNS names go into the CSR."""
    url: str | None = None
    """Or the URL it calls (local runs: ``https://127.0.0.1:9443``); its host goes into the
    CSR (an IP address or a DNS name)."""
    cert_dir: Path | None = None
    """Read ``tls.crt``/``tls.key``/``ca.crt`` from here (re-read every 10 s) instead of
    asking the CSR API."""
    inject_ca: bool | None = None
    """Write the CA into the webhook configurations and the CRD (``None``: yes with the CSR
    API, no with ``cert_dir``, where cert-manager's cainjector does it)."""
    signer_namespace: str = rbac.NAMESPACE
    """Namespace of the signer's CA Secret and ConfigMap."""
    settings: LoadTestWebhookSettings = field(default_factory=LoadTestWebhookSettings)
    """Limits and defaults of the webhooks."""

    def __post_init__(self) -> None:
        if (self.service is None) == (self.url is None):
            raise ValueError("webhooks need exactly one of a Service or a URL")

    @property
    def uses_csr(self) -> bool:
        """Whether the certificate comes from the CSR API (and this process signs)."""
        return self.cert_dir is None

    @property
    def injects(self) -> bool:
        """Whether this process injects the CA bundle."""
        return self.uses_csr if self.inject_ca is None else self.inject_ca

    def names(self) -> tuple[list[str], list[str]]:
        """(DNS names, IP addresses) the serving certificate carries."""
        if self.service is not None:
            return self.service.dns_names, []
        host = urlsplit(self.url or "").hostname or ""
        try:
            return [], [str(ipaddress.ip_address(host))]
        except ValueError:
            return [host], []


@dataclass(frozen=True, kw_only=True)
class OperatorOptions:
    """How to run the operator."""

    settings: OperatorSettings = field(default_factory=OperatorSettings)
    """Limits and defaults of every LoadTest."""
    namespace: str | None = None
    """Watch one namespace only (``None``: all)."""
    leader_election: LeaderElectionSettings | None = None
    """Lease settings when several replicas run."""
    health: HealthSettings | None = field(default_factory=lambda: HealthSettings(port=0))
    """Probe and metrics server (``None``: none)."""
    max_concurrent_reconciles: int = 4
    """LoadTests reconciled at once."""
    handle_signals: bool = True
    """Stop gracefully on SIGTERM/SIGINT."""
    webhooks: WebhookOptions | None = None
    """Serve the webhooks (and, with the CSR API, sign) in this process; ``None``: do not."""
    check_access: bool = True
    """Check the RBAC rules of the running parts before starting (SelfSubjectAccessReview)."""
    access_recheck: float = 30.0
    """Seconds between access checks while rights are missing, and after the start."""
    drain_delay: float = 0.0
    """Seconds between failing readiness on SIGTERM and stopping the webhooks (a pod: ~5)."""


class _Webhooks:
    """The webhook server with its certificate source, run on every replica."""

    needs_leader_election: ClassVar[bool] = False

    def __init__(self, client: Client, options: WebhookOptions, manager: Manager) -> None:
        self.client = client
        self.options = options
        self.manager = manager
        self.server: WebhookServer | None = None

    def __repr__(self) -> str:
        return "LoadTestWebhooks"

    def _source(self) -> CertificateSource:
        o = self.options
        if o.cert_dir is not None:
            ca = o.cert_dir / "ca.crt"
            return FileSource(cert_file=o.cert_dir / "tls.crt", key_file=o.cert_dir / "tls.key",
                              ca_file=ca if ca.exists() else None)
        dns, ips = o.names()
        return CsrSource(client=self.client, dns_names=dns, ips=ips,
                         signer_name=rbac.SIGNER_NAME, timeout=120.0,
                         ca_configmap=(o.signer_namespace, rbac.SIGNER_CA, "ca.crt"))

    def ready(self) -> bool:
        """Serving (readiness: the webhook Service routes only to replicas that answer)."""
        return self.server is not None and self.server.ready.is_set()

    async def run(self) -> None:
        o = self.options
        injector = CaBundleInjector(client=self.client, validating=[rbac.VALIDATING],
                                    mutating=[rbac.MUTATING], crds=[rbac.CRD]) \
            if o.injects else None
        self.server = WebhookServer(
            **webhooks_for(o.settings),
            certificates=CertificateManager(self._source(), injector=injector),
            settings=WebhookServerSettings(host=o.host, port=o.port),
            registry=self.manager.registry)
        await self.server.serve()


class _Signer:
    """kuar's CSR signer, trusting this process's own identity, run by the leader only."""

    needs_leader_election: ClassVar[bool] = True

    def __init__(self, client: Client, options: WebhookOptions) -> None:
        self.client = client
        self.options = options

    def __repr__(self) -> str:
        return "LoadTestCsrSigner"

    async def run(self) -> None:
        me = await whoami(self.client)
        dns, ips = self.options.names()
        signer = Signer(self.client, SignerSettings(
            signer_name=rbac.SIGNER_NAME, allowed_requesters=frozenset({me}),
            allowed_dns_names=frozenset(dns), allowed_ips=frozenset(ips),
            namespace=self.options.signer_namespace, ca_secret=rbac.SIGNER_CA,
            ca_configmap=rbac.SIGNER_CA))
        log.info("CSR signer %s signs for %s, requested by %s", rbac.SIGNER_NAME,
                 ", ".join([*dns, *ips]), me)
        await signer.run()


def required_access(options: OperatorOptions) -> tuple[Permission, ...]:
    """The permissions the parts that ``options`` runs need (from :mod:`kuar_loadtest.rbac`)."""
    needed = permissions_for(rbac.CONTROLLER_RULES, options.namespace)
    if options.leader_election is not None:
        needed += permissions_for(rbac.LEADER_RULES, options.leader_election.namespace)
    hooks = options.webhooks
    if hooks is not None:
        if hooks.uses_csr:
            needed += permissions_for(rbac.CSR_RULES)
            needed += permissions_for(rbac.SIGNER_RULES)
            needed += permissions_for(rbac.SIGNER_NAMESPACED_RULES, hooks.signer_namespace)
        if hooks.injects:
            needed += permissions_for(rbac.INJECTION_RULES)
    return tuple(needed)


def build_manager(
    client: Client, options: OperatorOptions, *, extra: tuple[Runnable, ...] = ()
) -> Manager:
    """A manager running the LoadTest controller (webhooks and signer when asked) and extra."""
    manager = Manager(client, ManagerSettings(
        leader_election=options.leader_election, health=options.health,
        handle_signals=options.handle_signals,
        required_access=required_access(options) if options.check_access else (),
        access_recheck=options.access_recheck, drain_delay=options.drain_delay,
    ))
    manager.add(build_controller(
        client, manager.cache, options.settings, namespace=options.namespace,
        max_concurrent_reconciles=options.max_concurrent_reconciles,
    ))
    if options.webhooks is not None:
        hooks = _Webhooks(client, options.webhooks, manager)
        manager.add(hooks)
        manager.add_ready_check("webhooks", hooks.ready)
        if manager.health is not None:
            manager.health.set_reason("webhooks", "no serving certificate yet")
        if options.webhooks.uses_csr:
            manager.add(_Signer(client, options.webhooks))
    for runnable in extra:
        manager.add(runnable)
    return manager
