"""Settings of the local node, and the runner contract the application fills in.

Place in the pipeline: read by every part of :mod:`kuar.testing.localnode` (node, pods,
routing). The toolkit names no program here: which images the node may run, and under which
environment variable a program finds the Service map, come from the application that starts
the node (an application's own module for local runs provides both, next to its other
local-development helpers).

A :class:`Runner` also declares what a Pod may ask of its program: the flags its args may use,
the flags whose value is a file (kept inside the pod's own folder), and the environment
variables the application's contract sets. The node refuses anything else before starting a
process (:mod:`.pods`), since a pod spec is not trusted with this machine's user.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol


class Runner(Protocol):
    """How to run one image locally, and what a container of it may ask for.

    Every ``-x``/``--name`` in the container's args must be in :attr:`allowed_flags` or
    :attr:`path_flags` (``--name=value`` counts as ``--name``); every env name in
    :attr:`allowed_env`; the value of a :attr:`path_flags` flag must be a file inside the pod's
    own folder (after the container's ``volumeMounts[].mountPath`` are replaced by the pod's
    local volume folders and its ``terminationMessagePath`` by its local termination-log file;
    so a flag may name a file of a mounted volume). Args that are not flags (values) pass as
    they are. An application defines its own (any object with these members;
    :class:`CommandRunner` is one).
    """

    @property
    def allowed_flags(self) -> frozenset[str]:
        """Flags of the program that the container's args may use; empty: none."""
        ...

    @property
    def path_flags(self) -> frozenset[str]:
        """Flags (also allowed) whose value is a file path: it must stay in the pod folder."""
        ...

    @property
    def allowed_env(self) -> frozenset[str]:
        """Environment variable names the container may set (the application's contract)."""
        ...

    def argv(self, container: Mapping[str, Any]) -> list[str]:
        """The argv of the local process that stands for ``container``.

        ``container`` is its JSON, as the API server holds it; called only once the container
        passed the checks.
        """
        ...


@dataclass(frozen=True, kw_only=True)
class CommandRunner:
    """A :class:`Runner` made of a function ``container JSON -> argv`` and the allow-lists."""

    command: Callable[[Mapping[str, Any]], list[str]]
    """Turns a container spec into the argv of its local process."""
    allowed_flags: frozenset[str] = frozenset()
    """Flags of the program that the container's args may use; empty: none."""
    path_flags: frozenset[str] = frozenset()
    """Flags (also allowed) whose value is a file path: it must stay in the pod folder."""
    allowed_env: frozenset[str] = frozenset()
    """Environment variable names the container may set; empty: none."""

    def argv(self, container: Mapping[str, Any]) -> list[str]:
        """The local process's argv for ``container``."""
        return self.command(container)


@dataclass(frozen=True, kw_only=True)
class LocalNodeSettings:
    """How the local node presents itself, and what it may run."""

    name: str = "kuar-local-node"
    """Node name; Pods bound to it (``spec.nodeName``) run here."""
    pod_cidr: str = "10.244.0.0/24"
    """Addresses handed to Pods for the API's sake only: nothing is sent to them."""
    cpu: str = "2"
    """Advertised CPU capacity: this machine's 2 cores."""
    memory: str = "8Gi"
    """Advertised memory: a share of this machine, enough for load-generator pods."""
    max_pods: int = 110
    """The kubelet's default pod limit."""
    lease_duration: int = 40
    """Node lease length in seconds (the kubelet's default)."""
    renew_interval: float = 10.0
    """Lease renewal period (the kubelet renews every 10 s)."""
    runners: Mapping[str, Runner] = field(default_factory=dict)
    """Image -> how to run it locally. A key with a tag (``name:tag``) matches that image
    only; a key without one matches every tag of the name. Empty by default: the toolkit runs
    no program of its own choosing, so every Pod fails with ``UnsupportedImage``. A Pod whose
    args or env go beyond its runner's allow-lists fails with ``ForbiddenArgs`` or
    ``ForbiddenEnv`` and nothing runs."""
    resolve_env: str | None = None
    """Environment variable that carries the Service map (JSON ``host:port -> 127.0.0.1:port``)
    into each process; the program's own contract names it. ``None``: no map is passed. The
    node sets it last: a container's own value never replaces it."""
    root_dir: Path | None = None
    """Parent folder for the node's temporary folder; ``None`` uses the system one."""


def image_name(image: str) -> str:
    """``registry/name:tag@digest`` -> ``registry/name``."""
    name = image.split("@", 1)[0]
    slash = name.rfind("/")
    colon = name.rfind(":")
    return name[:colon] if colon > slash else name


def runner_for(runners: Mapping[str, Runner], image: str) -> Runner | None:
    """The runner of ``image``: an exact ``name:tag`` key first, then the bare name."""
    return runners.get(image.split("@", 1)[0]) or runners.get(image_name(image))
