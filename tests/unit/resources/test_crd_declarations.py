"""CRD generation: names, versions, subresources, columns, and clear declaration errors."""

from __future__ import annotations

from decimal import Decimal

import pytest

from kuar.resources import (
    CustomResource,
    DeclarationError,
    KubeModel,
    PrinterColumn,
    ScaleSubresource,
    crd_for,
    crds_for,
    find_resources,
)
from kuar.resources.crd import version_priority
from kuar_loadtest.api.v2 import LoadTest


class Spec(KubeModel):
    """A spec."""

    replicas: int = 1


def _error(*classes: type[CustomResource]) -> str:
    with pytest.raises(DeclarationError) as err:
        crd_for(*classes)
    return str(err.value)


def test_crd_name_is_plural_dot_group_with_list_kind_and_names() -> None:
    crd = crd_for(LoadTest)
    assert crd["metadata"]["name"] == "loadtests.beta.kuar.com"
    assert crd["spec"]["names"] == {"kind": "LoadTest", "listKind": "LoadTestList",
                                    "plural": "loadtests", "singular": "loadtest",
                                    "shortNames": ["lt"], "categories": ["kuar"]}


def test_status_subresource_is_on_when_the_class_has_status() -> None:
    assert crd_for(LoadTest)["spec"]["versions"][0]["subresources"] == {"status": {}}

    class NoStatus(CustomResource, group="x.kuar.dev", version="v1", kind="NoStatus"):
        spec: Spec

    assert "subresources" not in crd_for(NoStatus)["spec"]["versions"][0]


def test_two_versions_make_one_crd_ordered_by_kubernetes_priority() -> None:
    class ThingV1(CustomResource, group="x.kuar.dev", version="v1", kind="Thing",
                  storage=False):
        spec: Spec

    class ThingV2(CustomResource, group="x.kuar.dev", version="v2", kind="Thing"):
        spec: Spec

    class ThingV1beta1(CustomResource, group="x.kuar.dev", version="v1beta1", kind="Thing",
                       storage=False, served=False, deprecated=True,
                       deprecation_warning="use v2"):
        spec: Spec

    crds = crds_for([ThingV1, ThingV1beta1, ThingV2])
    assert len(crds) == 1
    versions = crds[0]["spec"]["versions"]
    assert [(v["name"], v["served"], v["storage"]) for v in versions] == [
        ("v2", True, True), ("v1", True, False), ("v1beta1", False, False)]
    assert versions[2]["deprecationWarning"] == "use v2"
    assert crd_for(ThingV2, ThingV1, ThingV1beta1) == crd_for(ThingV1beta1, ThingV1, ThingV2)


def test_version_priority_follows_kubernetes() -> None:
    names = ["v1alpha1", "foo", "v1", "v2beta1", "v11alpha2", "v2", "v1beta1", "v10"]
    assert sorted(names, key=version_priority) == [
        "v10", "v2", "v1", "v2beta1", "v1beta1", "v11alpha2", "v1alpha1", "foo"]


def test_two_storage_versions_are_refused() -> None:
    class AV1(CustomResource, group="x.kuar.dev", version="v1", kind="A"):
        spec: Spec

    class AV2(CustomResource, group="x.kuar.dev", version="v2", kind="A"):
        spec: Spec

    message = _error(AV1, AV2)
    assert "AV1, AV2" in message and "exactly one version must have storage=True" in message


def test_versions_disagreeing_on_scope_are_refused() -> None:
    class BV1(CustomResource, group="x.kuar.dev", version="v1", kind="B"):
        spec: Spec

    class BV2(CustomResource, group="x.kuar.dev", version="v2", kind="B", scope="Cluster",
              storage=False):
        spec: Spec

    assert "BV2: scope 'Cluster' differs" in _error(BV1, BV2)


def test_an_upper_case_plural_is_refused_naming_the_class() -> None:
    class Upper(CustomResource, group="x.kuar.dev", version="v1", kind="Upper",
                plural="Uppers"):
        spec: Spec

    assert _error(Upper).startswith("Upper: plural 'Uppers'")
    assert "upper-case" in _error(Upper)


def test_a_missing_group_is_refused() -> None:
    class NoGroup(CustomResource, version="v1", kind="NoGroup"):
        spec: Spec

    assert _error(NoGroup).startswith("NoGroup: missing group")


@pytest.mark.parametrize(
    ("keywords", "expected"),
    [
        ({"group": "nodot"}, "at least one dot"),
        ({"version": "V1"}, "version 'V1'"),
        ({"short_names": ["OK"]}, "short_names entry 'OK'"),
        ({"categories": ["a", "a"]}, "duplicates"),
        ({"singular": "Bad"}, "singular 'Bad'"),
        ({"scope": "Global"}, "scope 'Global'"),
        ({"deprecation_warning": "x"}, "needs deprecated=True"),
        ({"printer_columns": [PrinterColumn(name="X", json_path=".spec.nope")]},
         "printer column 'X': json_path .spec.nope names no field"),
        ({"printer_columns": [PrinterColumn(name="X", json_path="spec.replicas")]},
         "must start with '.'"),
        ({"status_subresource": True}, "needs a 'status' field"),
        ({"scale": ScaleSubresource()}, "status_replicas_path '.status.replicas'"),
        ({"scale": ScaleSubresource(spec_replicas_path=".spec.nope")},
         "spec_replicas_path '.spec.nope'"),
    ],
)
def test_declaration_mistakes_raise_a_clear_error(
    keywords: dict[str, object], expected: str
) -> None:
    base: dict[str, object] = {"group": "x.kuar.dev", "version": "v1", "kind": "Bad"}
    cls = type("Bad", (CustomResource,), {"__annotations__": {"spec": Spec}},
               **{**base, **keywords})
    message = _error(cls)
    assert message.startswith("Bad: ") and expected in message, message


def test_a_field_type_error_names_the_resource_class_and_the_field() -> None:
    class Inner(KubeModel):
        amount: Decimal = Decimal(0)

    class Outer(CustomResource, group="x.kuar.dev", version="v1", kind="Outer"):
        spec: Inner

    message = _error(Outer)
    assert message.startswith("Outer: Inner.amount: a union of number, string"), message


def test_find_resources_lists_the_loadtest_package_classes() -> None:
    found = find_resources("kuar_loadtest.api")
    assert LoadTest in found
    assert {c.__kuar_crd__.plural for c in found if c.__kuar_crd__ is not None} == {
        "loadtests", "loadtestruns"}
    assert [c.__module__ for c in found] == sorted(c.__module__ for c in found)


def test_a_class_without_kind_is_not_a_crd() -> None:
    class Base(CustomResource):
        pass

    assert "declares no kind" in _error(Base)
