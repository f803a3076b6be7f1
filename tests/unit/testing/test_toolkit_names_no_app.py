"""The toolkit's test harness names no application: runners come from the app, passed in."""

from __future__ import annotations

from pathlib import Path

import kuar.testing

APPS = ("kuar_loadgen", "kuar_loadtest", "kuar_demo", "kuar.dev/loadgen", "kuar-loadgen")


def test_kuar_testing_source_names_no_application() -> None:
    root = Path(kuar.testing.__file__).parent
    offenders = [
        f"{path.relative_to(root)}: {app}"
        for path in sorted(root.rglob("*.py"))
        for app in APPS
        if app in path.read_text()
    ]
    assert offenders == []


def test_the_default_local_node_runs_nothing() -> None:
    from kuar.testing.localnode import LocalNodeSettings

    assert dict(LocalNodeSettings().runners) == {}
    assert LocalNodeSettings().resolve_env is None
