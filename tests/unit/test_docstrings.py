"""Every public name of kuar has a docstring (the docs build fails on one without, too)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "docs" / "_ext"))

import public_api


def test_every_public_name_has_a_docstring() -> None:
    assert [str(m) for m in public_api.undocumented()] == []


def test_the_check_finds_a_name_without_a_docstring(tmp_path: Path, monkeypatch) -> None:
    package = tmp_path / "kuar_doccheck_sample"
    package.mkdir()
    (package / "__init__.py").write_text(
        '__all__ = ["Good", "Bad", "LIMIT", "BARE", "Data"]\n'
        "from dataclasses import dataclass\n"
        "class Good:\n    '''Documented.'''\n    def run(self):\n        pass\n"
        "def Bad():\n    pass\n"
        "LIMIT = 3\n'''How many.'''\n"
        "BARE = 4\n"
        "@dataclass\nclass Data:\n    x: int = 0\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    found = [m.name for m in public_api.undocumented(("kuar_doccheck_sample",))]
    assert found == ["Good.run", "Bad", "BARE", "Data"]
