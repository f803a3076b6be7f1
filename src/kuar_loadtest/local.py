"""The LoadTest app on a local cluster: webhooks served on 127.0.0.1, the local node's runner.

Place in the pipeline: ``kuar demo`` and tests use :func:`local_webhooks` to run the
validator, the defaulter and the v1/v2 conversion webhook against a local API server. A
self-signed CA (kuar.webhook's :class:`SelfSignedSource`) signs the serving certificate; its
caBundle is injected into the webhook configurations and into the CRD's conversion stanza,
which this function installs (v2 storage, v1 served). In a cluster, ``deploy/`` holds the
Service-based configurations instead.

kuar's local node (``kuar.testing.localnode``) runs only what the application allows:
:func:`local_runners` maps the operator's load-worker image (:data:`OperatorSettings.image`,
one constant) to :data:`loadgen_runner`: ``python -m kuar_loadgen`` plus the container's args,
which may use only kuar-loadgen's own flags (``--result-file``/``--ca-file`` naming files in
the pod's folder), with only the env names of the worker's contract (``KUAR_LOADGEN_SPEC``,
``JOB_COMPLETION_INDEX``, ``KUAR_RESOLVE``); the node refuses any other. :data:`RESOLVE_ENV`
is the variable in which the worker expects the Service map.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from kuar.client import Api, Client, NotFound, wait_crd_established
from kuar.models.apiextensions.v1 import CustomResourceDefinition
from kuar.resources import crd_for
from kuar.webhook import (
    CaBundleInjector,
    CertificateManager,
    SelfSignedSource,
    UrlTarget,
    WebhookServer,
    WebhookServerSettings,
    apply_configurations,
    conversion_stanza,
    delete_configurations,
    webhook_configurations,
)
from kuar.webhook.configuration import configuration_name
from kuar_loadgen.mix import BODY_ENV_PREFIX, MAX_KINDS
from kuar_loadgen.spec import JOB_INDEX_ENV, RESOLVE_ENV, SPEC_ENV
from kuar_loadtest.api import v1, v2
from kuar_loadtest.api.run import LoadTestRun
from kuar_loadtest.settings import OperatorSettings
from kuar_loadtest.webhooks import LoadTestWebhookSettings, build

CRD_NAME = "loadtests.beta.kuar.com"

__all__ = ["CRD_NAME", "RESOLVE_ENV", "LoadgenRunner", "install_crd", "loadgen_runner",
           "loadtest_crd", "loadtestrun_crd", "local_runners", "local_webhooks"]


def _loadgen_argv(container: Mapping[str, Any]) -> list[str]:
    """Run the load worker as a local process: ``python -m kuar_loadgen`` plus the args.

    In a cluster the image's entry point is ``kuar-loadgen``; the container's args are the
    same either way.
    """
    return [sys.executable, "-m", "kuar_loadgen", *(container.get("args") or [])]


LOADGEN_FLAGS = frozenset({
    "--url", "--path", "--rps", "--duration", "--timeout", "--processes", "--connections",
    "--resolve", "--header", "--shard-index", "--shard-count", "--start-at", "--insecure",
    "--verify", "--loop", "--json", "--progress", "--no-progress", "-h", "--help",
    "--stage", "--start-rate", "--threshold", "--abort-on-fail", "--threshold-exit",
    "--no-threshold-exit", "--start-from-run", "--start-timeout",
})
"""kuar-loadgen's own flags that a pod's args may use (``--metrics-*`` bind ports: not here)."""

@dataclass(frozen=True, kw_only=True)
class LoadgenRunner:
    """A runner for kuar's local node (its ``Runner`` protocol): argv plus allow-lists."""

    command: Callable[[Mapping[str, Any]], list[str]]
    """Container JSON -> argv."""
    allowed_flags: frozenset[str]
    """kuar-loadgen's flags a pod's args may use."""
    path_flags: frozenset[str]
    """Flags naming a file: it must be in the pod's own folder."""
    allowed_env: frozenset[str]
    """The env names of the worker's contract."""

    def argv(self, container: Mapping[str, Any]) -> list[str]:
        """The local process's argv for ``container``."""
        return self.command(container)


loadgen_runner = LoadgenRunner(
    command=_loadgen_argv,
    allowed_flags=LOADGEN_FLAGS,
    path_flags=frozenset({"--result-file", "--ca-file", "--api-token-file", "--api-ca-file",
                          "--spec-file"}),
    allowed_env=frozenset({SPEC_ENV, JOB_INDEX_ENV, RESOLVE_ENV,
                           *(f"{BODY_ENV_PREFIX}{i}" for i in range(MAX_KINDS))}),
)
"""The load worker on kuar's local node: its flags and the env names of its contract only."""


def local_runners(settings: OperatorSettings | None = None) -> dict[str, LoadgenRunner]:
    """Image -> runner for kuar's local node: the operator's load-worker image, exact tag.

    Pass it as ``LocalNodeSettings(runners=local_runners(), resolve_env=RESOLVE_ENV)``; give
    the same ``settings`` as the operator's when it runs another image.
    """
    return {(settings or OperatorSettings()).image: loadgen_runner}


def loadtest_crd(url: str, ca_bundle: bytes | None = None) -> dict[str, Any]:
    """The generated v1 + v2 CRD whose conversion webhook is at ``url``."""
    return crd_for(v1.LoadTest, v2.LoadTest,
                   conversion=conversion_stanza(UrlTarget(base_url=url), ca_bundle=ca_bundle))


def loadtestrun_crd() -> dict[str, Any]:
    """The generated LoadTestRun CRD (one version, no conversion)."""
    return crd_for(LoadTestRun)


async def install_crd(client: Client, crd: dict[str, Any], *, manager: str = "kuar") -> None:
    """Server-side apply a CRD and wait until it is Established."""
    applied = await Api(client, CustomResourceDefinition).apply(
        CustomResourceDefinition.decode(crd), field_manager=manager, force=True)
    await wait_crd_established(client, applied.name, timeout=30)


@contextlib.asynccontextmanager
async def local_webhooks(
    client: Client, settings: LoadTestWebhookSettings | None = None, *, port: int = 0
) -> AsyncIterator[WebhookServer]:
    """Serve the LoadTest webhooks on 127.0.0.1, install CRD and configurations; undo on exit.

    The CRD stays installed on exit (deleting it would delete every LoadTest); the webhook
    configurations are removed, so the API server does not call a server that is gone.
    """
    validating, mutating, conversion = build(settings)
    injector = CaBundleInjector(client=client, validating=[configuration_name(validating)],
                                mutating=[configuration_name(mutating)], crds=[CRD_NAME])
    certificates = CertificateManager(SelfSignedSource(), injector=injector)
    server = WebhookServer(
        webhooks=[validating, mutating], conversions=[conversion], certificates=certificates,
        settings=WebhookServerSettings(host="127.0.0.1", port=port),
    )
    await server.start()
    configs: list[dict[str, Any]] = []
    try:
        target = UrlTarget(base_url=server.url)
        configs = webhook_configurations([validating, mutating], target,
                                         ca_bundle=certificates.ca_bundle)
        await apply_configurations(client, configs)
        await install_crd(client, loadtest_crd(server.url, certificates.ca_bundle))
        await install_crd(client, loadtestrun_crd())
        yield server
    finally:
        with contextlib.suppress(NotFound, OSError):
            await delete_configurations(client, configs)
        await server.stop()
