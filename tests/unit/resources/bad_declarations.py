"""A module whose only resource has an upper-case plural (for the CLI's error path)."""

from __future__ import annotations

from kuar.resources import CustomResource


class Broken(CustomResource, group="x.kuar.dev", version="v1", kind="Broken", plural="Brokens"):
    """Broken on purpose."""

    spec: dict[str, str] = {}
