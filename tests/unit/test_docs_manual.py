"""The LoadTest manual's generators: fields from a schema, conditions and reasons from source."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

from pydantic import Field

from kuar.resources import CustomResource, KubeModel, ListType

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "docs" / "_ext"))

import loadtest_manual


class Inner(KubeModel):
    """Inner."""

    name: str = Field(min_length=1)
    """The name."""


class SampleSpec(KubeModel):
    """Spec."""

    rate: int = Field(default=5, ge=1, le=10)
    """How fast."""
    items: Annotated[list[Inner], ListType.atomic()] = []
    """Things."""


class Sample(CustomResource, group="docs.kuar.dev", version="v1", kind="Sample"):
    """A sample."""

    spec: SampleSpec


def test_field_rows_walk_nested_objects_and_lists() -> None:
    rows = {r.path: r for r in loadtest_manual.field_rows(Sample, "spec")}
    assert list(rows) == ["spec", "spec.rate", "spec.items", "spec.items[].name"]
    assert rows["spec.rate"].default == "5"
    assert rows["spec.rate"].constraints == ">= 1; <= 10"
    assert rows["spec.rate"].description == "How fast."
    assert rows["spec.items[].name"].required
    assert rows["spec.items"].type == "array of object"


def test_reasons_and_conditions_are_found_in_source(tmp_path: Path, monkeypatch) -> None:
    package = tmp_path / "doc_reasons_sample"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "logic.py").write_text(
        'WAITING = "StillWaiting"\n'
        "class PlanError(ValueError):\n    pass\n"
        "class RunState:\n    pass\n"
        "def plan(n):\n"
        '    raise PlanError("TooBig", f"n {n} is too big")\n'
        "def state(ok):\n"
        '    if ok:\n        return RunState("Succeeded", "Done", "all good")\n'
        '    return RunState("Pending", WAITING, "later")\n'
        "def conditions(exc, ok):\n"
        '    return [("Ready", "False", exc.reason, str(exc)),\n'
        '            ("Complete", str(ok), "Finished" if ok else "NotYet", "msg")]\n'
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    rows = loadtest_manual.reason_rows("doc_reasons_sample", {"Pending", "Succeeded"})
    found = [(r.reason, r.condition, r.phase, r.where, r.message) for r in rows]
    assert found == [
        ("TooBig", "", "", "logic.plan", "n <n> is too big"),
        ("Done", "", "Succeeded", "logic.state", "all good"),
        ("StillWaiting", "", "Pending", "logic.state", "later"),
        ("<exc.reason>", "Ready=False", "", "logic.conditions", "<str(exc)>"),
        ("Finished", "Complete=True/False", "", "logic.conditions", "msg"),
        ("NotYet", "Complete=True/False", "", "logic.conditions", "msg"),
    ]
