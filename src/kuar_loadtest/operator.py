"""The LoadTest operator process: the controller (and, when given, the webhooks) under a manager.

Place in the pipeline: ``kuar loadtest run`` and ``kuar demo`` call :func:`build_manager`.
Everything here is kuar's public API: :class:`kuar.manager.Manager`, the runtime builder and
the webhook server.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kuar.client import Client
from kuar.manager import HealthSettings, LeaderElectionSettings, Manager, ManagerSettings
from kuar.manager.manager import Runnable
from kuar_loadtest.controller import build_controller
from kuar_loadtest.settings import OperatorSettings


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


def build_manager(
    client: Client, options: OperatorOptions, *, extra: tuple[Runnable, ...] = ()
) -> Manager:
    """A manager running the LoadTest controller (and ``extra`` runnables, e.g. webhooks)."""
    manager = Manager(client, ManagerSettings(
        leader_election=options.leader_election, health=options.health,
        handle_signals=options.handle_signals,
    ))
    manager.add(build_controller(
        client, manager.cache, options.settings, namespace=options.namespace,
        max_concurrent_reconciles=options.max_concurrent_reconciles,
    ))
    for runnable in extra:
        manager.add(runnable)
    return manager
