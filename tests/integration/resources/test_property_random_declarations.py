"""Property: randomly generated valid declarations give CRDs the real API server accepts.

Bounded for CI: 12 examples (``KUAR_PROPERTY_EXAMPLES`` raises it for a deeper local run).
Each example installs one CRD, waits for Established, creates (dry run) one object with the
declared defaults and deletes the CRD.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path
from typing import Annotated, Any, Literal

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from pydantic import Field, create_model

from kuar.client import (
    Api,
    Client,
    NotFound,
    apply_manifests,
    load_config,
    wait_crd_established,
)
from kuar.resources import (
    CustomResource,
    IntOrString,
    KubeModel,
    ListType,
    ObjectMeta,
    PreserveUnknownFields,
    Rule,
    crd_for,
)

pytestmark = pytest.mark.controlplane

NAMES = st.from_regex(r"[a-z][a-z0-9]{0,6}(_[a-z0-9]{1,4})?", fullmatch=True)
PATTERNS = [r"^[a-z]+$", r"^[A-Za-z0-9_-]*$", r"^x"]


@st.composite
def int_field(draw: st.DrawFn) -> tuple[Any, Any]:
    low = draw(st.integers(-1000, 1000))
    high = draw(st.integers(low, low + 10_000))
    default = draw(st.integers(low, high))
    rule = draw(st.booleans())
    annotation: Any = int
    if rule:
        annotation = Annotated[int, Rule(f"self >= {low}", message=f"must be >= {low}")]
    return annotation, Field(default=default, ge=low, le=high)


@st.composite
def str_field(draw: st.DrawFn) -> tuple[Any, Any]:
    if draw(st.booleans()):
        values = draw(st.lists(st.from_regex(r"[A-Za-z][a-z]{0,5}", fullmatch=True),
                               min_size=1, max_size=4, unique=True))
        return Literal[tuple(values)], Field(default=values[0])
    pattern = draw(st.sampled_from([None, *PATTERNS]))
    max_len = draw(st.integers(1, 64))
    default = "x" * draw(st.integers(1, max_len)) if pattern != r"^[a-z]+$" else "xy"[:max_len]
    return str, Field(default=default, max_length=max_len, pattern=pattern)


def scalar_fields() -> st.SearchStrategy[tuple[Any, Any]]:
    return st.one_of(
        int_field(),
        str_field(),
        st.just((bool, Field(default=False))),
        st.floats(-1e6, 1e6, allow_nan=False).map(
            lambda f: (float, Field(default=f, ge=-1e6, le=1e6))),
        st.just((IntOrString, Field(default=80))),
        st.just((Annotated[list[str], ListType.set()], Field(default_factory=list,
                                                             max_length=16))),
        st.just((Annotated[list[int], ListType.atomic()], Field(default_factory=list))),
        st.just((dict[str, str], Field(default_factory=dict))),
        st.just((Annotated[dict[str, Any], PreserveUnknownFields()], Field(default_factory=dict))),
        st.just((str | None, Field(default=None))),
    )


_counter = iter(range(10**9))


@st.composite
def model(draw: st.DrawFn, depth: int = 0, keyed: bool = False) -> type[KubeModel]:
    names = draw(st.lists(NAMES, min_size=1, max_size=6, unique=True))
    fields: dict[str, Any] = {}
    if keyed:  # items of a map list: a required scalar key
        fields["key_name"] = (str, Field(min_length=1, max_length=63))
        names = [n for n in names if n != "key_name"]
    for name in names:
        if depth < 2 and draw(st.integers(0, 4)) == 0:
            if draw(st.booleans()):
                sub = draw(model(depth + 1))
                fields[name] = (sub | None, Field(default=None))
            else:
                sub = draw(model(depth + 1, keyed=True))
                fields[name] = (Annotated[list[sub], ListType.map("keyName")],  # type: ignore[valid-type]
                                Field(default_factory=list, max_length=32))
        else:
            fields[name] = draw(scalar_fields())
    return create_model(f"M{next(_counter)}", __base__=KubeModel, **fields)


async def _install_and_use(kubeconfig: Path, spec_model: type[KubeModel]) -> None:
    suffix = uuid.uuid4().hex[:8]
    kind = f"Rand{suffix.capitalize()}"
    resource = create_model(kind, __base__=CustomResource,
                            __cls_kwargs__={"group": "random.kuar.dev", "version": "v1",
                                            "kind": kind},
                            spec=(spec_model, Field(default_factory=spec_model)))
    assert issubclass(resource, CustomResource)
    crd = crd_for(resource)
    async with Client(await load_config(kubeconfig)) as client:
        await apply_manifests(client, [crd], field_manager="kuar-property")
        await wait_crd_established(client, crd["metadata"]["name"])
        api = Api(client, resource, namespace="default")
        obj = resource(metadata=ObjectMeta(name="sample"))
        for _ in range(50):  # the new kind is served a moment after Established
            try:
                created = await api.create(obj, dry_run=True)
                break
            except NotFound:
                await asyncio.sleep(0.1)
        else:
            raise AssertionError("the new kind was never served")
        assert created.spec == obj.spec
        await client.request(
            "DELETE", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"
            f"{crd['metadata']['name']}")


# No shrinking: each example costs a CRD round trip, and shrinking one failure took minutes.
@settings(max_examples=int(os.environ.get("KUAR_PROPERTY_EXAMPLES", "12")), deadline=None,
          phases=[Phase.explicit, Phase.reuse, Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(spec_model=model())
def test_random_valid_declarations_are_accepted_by_the_api_server(
    kubeconfig: Path, spec_model: type[KubeModel]
) -> None:
    asyncio.run(_install_and_use(kubeconfig, spec_model))
