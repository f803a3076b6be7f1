"""Typed Kubernetes objects: the pydantic base classes every kind (built-in or custom) uses.

Place in the pipeline: the types that flow everywhere. :class:`kuar.client.Api` decodes server
JSON into them and encodes them back; :mod:`kuar.resources.crd` turns :class:`CustomResource`
subclasses into CustomResourceDefinitions; the runtime keys its caches by
:meth:`Resource.resource_info`. Known as ``k8s-openapi`` types / ``#[derive(CustomResource)]``
in kube-rs and ``runtime.Object`` in client-go.

Guarantees:
- Python attributes are snake_case, JSON names camelCase (``requests_per_second`` <->
  ``requestsPerSecond``); both are accepted on input, JSON names are produced on output.
- Fields the model does not declare are kept (``extra="allow"``) and written back by
  :meth:`Resource.encode`, so reading and replacing an object never drops data that a newer
  schema (or another controller) put there. The CRD schema is what decides whether the API
  server keeps unknown fields; see :mod:`kuar.resources.schema`.
- ``apiVersion`` and ``kind`` are filled from the class when absent (list items lack them).
Caveats: ``None`` means "absent": :meth:`Resource.encode` leaves out ``None`` values.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, GetJsonSchemaHandler
from pydantic.alias_generators import to_camel
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from kuar.resources.info import ResourceInfo
from kuar.resources.markers import VALIDATIONS, ListType, Rule, Time

MODEL_MARK = "x-kuar-model"
"""Private key put on each model's JSON schema so the CRD generator can name classes."""


class KubeModel(BaseModel):
    """Base of every typed object and sub-object (specs, statuses, items).

    Class keywords: ``rules=[Rule(...)]`` adds CEL rules on this object,
    ``preserve_unknown_fields=True`` makes the CRD keep fields the class does not declare.
    Attribute docstrings become the field descriptions that ``kubectl explain`` prints.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="allow",
        use_attribute_docstrings=True,
    )

    __kuar_rules__: ClassVar[tuple[Rule, ...]] = ()
    __kuar_preserve_unknown__: ClassVar[bool] = False

    def __init_subclass__(
        cls,
        *,
        rules: Sequence[Rule] | None = None,
        preserve_unknown_fields: bool | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init_subclass__(**kwargs)
        if rules is not None:
            cls.__kuar_rules__ = tuple(rules)
        if preserve_unknown_fields is not None:
            cls.__kuar_preserve_unknown__ = preserve_unknown_fields

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core_schema)
        target = handler.resolve_ref_schema(schema)
        target[MODEL_MARK] = {
            "name": cls.__name__,
            "fields": {
                (info.alias or name): name for name, info in cls.model_fields.items()
            },
        }
        if cls.__kuar_rules__:
            target[VALIDATIONS] = [r.to_schema() for r in cls.__kuar_rules__]
        if cls.__kuar_preserve_unknown__:
            target["x-kubernetes-preserve-unknown-fields"] = True
        return schema


class OwnerReference(KubeModel):
    """An object this one belongs to; garbage collection deletes it with its owner."""

    api_version: str
    kind: str
    name: str
    uid: str
    controller: bool | None = None
    block_owner_deletion: bool | None = None


class ObjectMeta(KubeModel):
    """Standard object metadata (``metadata``)."""

    name: str | None = None
    generate_name: str | None = None
    namespace: str | None = None
    uid: str | None = None
    resource_version: str | None = None
    generation: int | None = None
    creation_timestamp: Time | None = None
    deletion_timestamp: Time | None = None
    deletion_grace_period_seconds: int | None = None
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None
    finalizers: list[str] | None = None
    owner_references: Annotated[list[OwnerReference], ListType.map("uid")] | None = None
    managed_fields: list[dict[str, Any]] | None = None
    self_link: str | None = None


class ListMeta(KubeModel):
    """Metadata of a list answer: its resourceVersion and the continue token of paging."""

    resource_version: str | None = None
    continue_: str | None = Field(default=None, alias="continue")
    remaining_item_count: int | None = None


class Condition(KubeModel):
    """A standard condition (``metav1.Condition``), with the API server's own limits."""

    type: str = Field(max_length=316, pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$")  # noqa: E501
    """The kind of condition, in CamelCase (e.g. ``Ready``)."""
    status: Literal["True", "False", "Unknown"]
    """Whether the condition holds."""
    observed_generation: int | None = Field(default=None, ge=0)
    """The ``metadata.generation`` the condition was computed from."""
    last_transition_time: Time
    """When ``status`` last changed."""
    reason: str = Field(min_length=1, max_length=1024, pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")  # noqa: E501
    """A CamelCase word explaining the last transition."""
    message: str = Field(default="", max_length=32768)
    """A human-readable explanation."""


Conditions = Annotated[list[Condition], ListType.map("type")]
"""A list of conditions, merged by ``type`` (how server-side apply and CRDs expect them)."""


@dataclass(frozen=True, kw_only=True)
class PrinterColumn:
    """A column of ``kubectl get`` (``additionalPrinterColumns``)."""

    name: str
    json_path: str
    """A JSONPath into the object, e.g. ``.spec.replicas``."""
    type: Literal["integer", "number", "string", "boolean", "date"] = "string"
    description: str | None = None
    format: str | None = None
    priority: int = 0
    """0 shows the column in the standard view; higher numbers only with ``-o wide``."""


@dataclass(frozen=True, kw_only=True)
class ScaleSubresource:
    """The ``scale`` subresource: where replicas live, so ``kubectl scale`` and HPAs work."""

    spec_replicas_path: str = ".spec.replicas"
    status_replicas_path: str = ".status.replicas"
    label_selector_path: str | None = None


@dataclass(frozen=True, kw_only=True)
class CrdOptions:
    """What a :class:`CustomResource` subclass declared in its class keywords."""

    group: str
    version: str
    kind: str
    plural: str
    singular: str
    short_names: tuple[str, ...]
    categories: tuple[str, ...]
    scope: str
    served: bool
    storage: bool
    deprecated: bool
    deprecation_warning: str | None
    printer_columns: tuple[PrinterColumn, ...]
    status_subresource: bool | None
    scale: ScaleSubresource | None
    list_kind: str | None


def default_plural(kind: str) -> str:
    """English plural of a lower-cased kind, as kubebuilder guesses (``Policy``: ``policies``)."""
    low = kind.lower()
    if low.endswith("y") and low[-2:-1] not in ("a", "e", "i", "o", "u"):
        return low[:-1] + "ies"
    if low.endswith(("s", "x", "z", "ch", "sh")):
        return low + "es"
    return low + "s"


class Resource(KubeModel):
    """A top-level Kubernetes object: ``apiVersion``, ``kind``, ``metadata`` and its own fields.

    Subclasses name their kind with class keywords: ``group``, ``version``, ``kind`` and
    optionally ``plural`` (default: English plural of the kind) and ``namespaced`` (default
    true). Intermediate bases may leave them out.
    """

    __kuar_resource__: ClassVar[ResourceInfo | None] = None

    api_version: str = ""
    kind: str = ""
    metadata: ObjectMeta = Field(default_factory=ObjectMeta)

    def __init_subclass__(
        cls,
        *,
        group: str | None = None,
        version: str | None = None,
        kind: str | None = None,
        plural: str | None = None,
        namespaced: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init_subclass__(**kwargs)
        if kind is not None:
            if version is None:
                raise TypeError(f"{cls.__name__}: kind={kind!r} needs version=")
            cls.__kuar_resource__ = ResourceInfo(
                group or "", version, kind, plural or default_plural(kind), namespaced
            )

    def model_post_init(self, context: Any, /) -> None:
        """Fill ``apiVersion`` and ``kind`` from the class when the data lacks them."""
        info = type(self).__kuar_resource__
        if info is not None:
            if not self.api_version:
                self.api_version = info.api_version
            if not self.kind:
                self.kind = info.kind

    @classmethod
    def resource_info(cls) -> ResourceInfo:
        """Group, version, kind, plural and scope of this class (raises if it declares none)."""
        if cls.__kuar_resource__ is None:
            raise TypeError(f"{cls.__name__} declares no kind (class keywords group/version/kind)")
        return cls.__kuar_resource__

    @classmethod
    def decode(cls, data: Mapping[str, Any]) -> Self:
        """Build a typed object from the API server's decoded JSON (validates it)."""
        return cls.model_validate(data)

    def encode(self, *, exclude_unset: bool = False) -> dict[str, Any]:
        """The JSON-ready dict for the API server (camelCase names, ``None`` left out).

        ``exclude_unset`` also leaves out fields never set (used by server-side apply, so a
        manager owns only the fields it has an opinion about).
        """
        return self.model_dump(
            mode="json", by_alias=True, exclude_none=True, exclude_unset=exclude_unset
        )

    @property
    def name(self) -> str:
        """``metadata.name`` (empty when unset)."""
        return self.metadata.name or ""

    @property
    def namespace(self) -> str | None:
        """``metadata.namespace``."""
        return self.metadata.namespace


class CustomResource(Resource):
    """A kind served from a CustomResourceDefinition generated from this class.

    Class keywords (besides ``group``/``version``/``kind``/``plural`` of :class:`Resource`):
    ``singular``, ``short_names``, ``categories``, ``scope`` (``"Namespaced"`` or
    ``"Cluster"``), ``served``, ``storage``, ``deprecated``, ``deprecation_warning``,
    ``printer_columns``, ``status_subresource`` (default: on when the class has a ``status``
    field), ``scale`` and ``list_kind``. Mistakes are reported when the CRD is generated
    (:func:`kuar.resources.crd_for`), naming this class.
    """

    __kuar_crd__: ClassVar[CrdOptions | None] = None

    def __init_subclass__(
        cls,
        *,
        group: str | None = None,
        version: str | None = None,
        kind: str | None = None,
        plural: str | None = None,
        singular: str | None = None,
        short_names: Sequence[str] = (),
        categories: Sequence[str] = (),
        scope: Literal["Namespaced", "Cluster"] = "Namespaced",
        served: bool = True,
        storage: bool = True,
        deprecated: bool = False,
        deprecation_warning: str | None = None,
        printer_columns: Sequence[PrinterColumn] = (),
        status_subresource: bool | None = None,
        scale: ScaleSubresource | None = None,
        list_kind: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init_subclass__(
            group=group, version=version, kind=kind, plural=plural,
            namespaced=scope != "Cluster", **kwargs,
        )
        if kind is not None:
            info = cls.resource_info()
            cls.__kuar_crd__ = CrdOptions(
                group=info.group, version=info.version, kind=kind, plural=info.plural,
                singular=singular if singular is not None else kind.lower(),
                short_names=tuple(short_names), categories=tuple(categories), scope=scope,
                served=served, storage=storage, deprecated=deprecated,
                deprecation_warning=deprecation_warning,
                printer_columns=tuple(printer_columns), status_subresource=status_subresource,
                scale=scale, list_kind=list_kind,
            )
        else:
            cls.__kuar_crd__ = None


class DynamicObject(Resource):
    """Any object, untyped beyond metadata: everything else is kept as extra fields.

    Use it with an explicit :class:`~kuar.resources.ResourceInfo` for kinds without a class
    (``Api(client, DynamicObject, resource=info)``); read fields with ``obj.model_extra``.
    """

    def __getitem__(self, key: str) -> Any:
        """``obj["spec"]``: a field the class does not declare."""
        extra = self.model_extra or {}
        if key in extra:
            return extra[key]
        raise KeyError(key)


class Status(Resource, version="v1", kind="Status"):
    """The ``Status`` answer of a delete (and of errors, which become exceptions instead)."""

    status: str | None = None
    message: str | None = None
    reason: str | None = None
    code: int | None = None
    details: dict[str, Any] | None = None
