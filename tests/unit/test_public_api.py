"""kuar_loadtest is built only on kuar's public API: it imports no ``_private`` module of kuar."""

from __future__ import annotations

import ast
from pathlib import Path

import kuar_loadtest


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append(node.module)
            names += [f"{node.module}.{alias.name}" for alias in node.names]
    return names


def test_kuar_loadtest_imports_no_private_kuar_module() -> None:
    root = Path(kuar_loadtest.__file__).parent
    offenders = []
    for path in sorted(root.rglob("*.py")):
        for name in _imports(path):
            parts = name.split(".")
            if parts[0] == "kuar" and any(
                p.startswith("_") and not p.startswith("__") for p in parts[1:]
            ):
                offenders.append(f"{path.relative_to(root)}: {name}")
    assert offenders == []
