"""Settings of the local node, and the runner contract the application fills in.

Place in the pipeline: read by every part of :mod:`kuar.testing.localnode` (node, pods,
routing). The toolkit names no program here: which images the node may run, and under which
environment variable a program finds the Service map, come from the application that starts
the node (an application's own module for local runs provides both, next to its other
local-development helpers).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Runner = Callable[[Mapping[str, Any]], list[str]]
"""Turns a container spec (its JSON, as the API server holds it) into the argv of the local
process that stands for the container."""


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
    no program of its own choosing, so every Pod fails with ``UnsupportedImage``."""
    resolve_env: str | None = None
    """Environment variable that carries the Service map (JSON ``host:port -> 127.0.0.1:port``)
    into each process; the program's own contract names it. ``None``: no map is passed."""
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
