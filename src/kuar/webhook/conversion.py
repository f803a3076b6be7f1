"""CRD version conversion (``ConversionReview``) with hub-and-spoke converters.

Place in the pipeline: the :class:`~kuar.webhook.server.WebhookServer` routes a parsed
:class:`~kuar.webhook.review.ConversionRequest` to a :class:`ConversionWebhook`, which finds the
:class:`HubAndSpoke` for each object's group and kind and converts it. The CRD points at it
through ``spec.conversion`` (see :func:`kuar.webhook.configuration.conversion_stanza`). Known
as ``conversion.Hub`` / ``Convertible`` in controller-runtime.

Hub and spoke: one version is the hub; every other version (a spoke) knows only how to go to
the hub and back. Converting v2 -> v3 is v2 -> hub -> v3, so n versions need 2(n-1)
functions, not n(n-1). The hub is usually the storage version.

Guarantees:
- Each converted object keeps the original ``metadata`` except ``labels`` and
  ``annotations``, which the API server lets a conversion change (it rejects any other
  metadata change); ``apiVersion`` is the desired one; objects already in the desired
  version are returned untouched; order is preserved.
- Any failure (unknown kind or version, a converter raising, an object not fitting its model)
  answers ``result.status: Failure`` with a message naming the object; the API server then
  fails the client's request with that message. Nothing is half-converted.
- Time budget (what the server calls, :meth:`ConversionWebhook.answer`): the converters run
  in a worker thread, so a slow one never blocks the event loop (other webhooks, health
  checks); when they take longer than ``handler_timeout`` (default 9 s, the same as an
  admission webhook's default budget) the answer is ``result.status: Failure`` saying "timed
  out", so the API server fails the client's request with a reason instead of hanging on.
Caveats: Python cannot stop a thread: a converter that never returns keeps its worker thread
(the event loop's default executor) busy, though every later review is still answered within
its budget. Losslessness is the converters' job; the usual way (shown in
``kuar_loadtest.api.conversion``) keeps fields missing from the other version in an annotation.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from pydantic import ValidationError

from kuar.webhook.codec import Codec, causes_from_error
from kuar.webhook.review import ConversionRequest, conversion_response

log = logging.getLogger("kuar.webhook")

H = TypeVar("H")
S = TypeVar("S")


DEFAULT_BUDGET = 9.0
"""Seconds: the same default budget as an admission webhook's (``timeout_seconds`` 10 - 1)."""


class ConversionError(Exception):
    """An object cannot be converted; the message is sent to the API server."""


@dataclass(frozen=True, kw_only=True)
class Spoke(Generic[S, H]):
    """One non-hub version: its codec and the two functions to and from the hub."""

    version: str
    codec: Codec[S]
    to_hub: Callable[[S], H]
    from_hub: Callable[[H], S]


@dataclass(frozen=True, kw_only=True)
class HubAndSpoke(Generic[H]):
    """Every version of one kind, converted through the hub version."""

    group: str
    kind: str
    hub_version: str
    hub: Codec[H]
    spokes: Sequence[Spoke[Any, H]] = ()
    plural: str = ""
    """The resource's plural name (default: lower-case kind + ``s``); names the CRD."""
    _by_version: dict[str, Spoke[Any, H]] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        by_version = {s.version: s for s in self.spokes}
        if len(by_version) != len(self.spokes) or self.hub_version in by_version:
            raise ValueError(f"{self.kind}.{self.group}: each version may appear once")
        object.__setattr__(self, "_by_version", by_version)

    @property
    def crd_name(self) -> str:
        """``<plural>.<group>``: the CRD whose ``spec.conversion`` points here."""
        return f"{self.plural or self.kind.lower() + 's'}.{self.group}"

    @property
    def versions(self) -> list[str]:
        """The hub version, then the spokes'."""
        return [self.hub_version, *self._by_version]

    def _decode(self, version: str, obj: Mapping[str, Any]) -> Any:
        codec = self.hub if version == self.hub_version else self._by_version[version].codec
        return codec.decode(obj)

    def convert(self, obj: Mapping[str, Any], desired_api_version: str) -> dict[str, Any]:
        """Convert one object to ``desired_api_version`` (raises :class:`ConversionError`)."""
        api_version = str(obj.get("apiVersion", ""))
        if api_version == desired_api_version:
            return dict(obj)
        src_group, _, src = api_version.rpartition("/")
        dst_group, _, dst = desired_api_version.rpartition("/")
        name = (obj.get("metadata") or {}).get("name", "?")
        where = f"{self.kind} {name!r} from {api_version} to {desired_api_version}"
        for group, version in ((src_group, src), (dst_group, dst)):
            if group != self.group or version not in self.versions:
                raise ConversionError(f"{where}: unknown version {group}/{version}")
        try:
            value = self._decode(src, obj)
            hub = value if src == self.hub_version else self._by_version[src].to_hub(value)
            out = hub if dst == self.hub_version else self._by_version[dst].from_hub(hub)
            codec = self.hub if dst == self.hub_version else self._by_version[dst].codec
            result = codec.encode(out)
        except ValidationError as exc:
            detail = "; ".join(str(c) for c in causes_from_error(exc))
            raise ConversionError(f"{where}: {detail}") from None
        except ConversionError:
            raise
        except Exception as exc:
            log.exception("conversion of %s failed", where)
            raise ConversionError(f"{where}: {type(exc).__name__}: {exc}") from None
        result["apiVersion"] = desired_api_version
        result["kind"] = obj.get("kind", self.kind)
        metadata = dict(obj.get("metadata") or {})
        new_meta = result.get("metadata") or {}
        for key in ("labels", "annotations"):
            if new_meta.get(key):
                metadata[key] = new_meta[key]
            else:
                metadata.pop(key, None)
        result["metadata"] = metadata
        return result


@dataclass(frozen=True, kw_only=True)
class ConversionWebhook:
    """The ``/convert`` endpoint: converts objects of any registered kind."""

    converters: Sequence[HubAndSpoke[Any]]
    path: str = "/convert"
    """URL path on the webhook server."""
    handler_timeout: float | None = None
    """Time budget of one review here; ``None`` is admission's default budget (9 s)."""

    @property
    def budget(self) -> float:
        """Seconds a review may take before it is answered with a failure."""
        return self.handler_timeout if self.handler_timeout is not None else DEFAULT_BUDGET

    def _find(self, obj: Mapping[str, Any]) -> HubAndSpoke[Any]:
        group = str(obj.get("apiVersion", "")).rpartition("/")[0]
        kind = obj.get("kind")
        for converter in self.converters:
            if converter.group == group and converter.kind == kind:
                return converter
        raise ConversionError(f"no converter for kind {kind!r} in group {group!r}")

    def review(self, request: ConversionRequest) -> dict[str, Any]:
        """Answer one ``ConversionReview`` (never raises)."""
        converted: list[dict[str, Any]] = []
        try:
            for obj in request.objects:
                converted.append(self._find(obj).convert(obj, request.desired_api_version))
        except ConversionError as exc:
            return conversion_response(request.uid, error=str(exc))
        return conversion_response(request.uid, converted=converted)

    async def answer(self, request: ConversionRequest) -> dict[str, Any]:
        """:meth:`review` in a worker thread, within :attr:`budget` (never raises)."""
        try:
            async with asyncio.timeout(self.budget):
                return await asyncio.to_thread(self.review, request)
        except TimeoutError:
            log.warning("conversion to %s timed out after %.1f s (uid %s)",
                        request.desired_api_version, self.budget, request.uid)
            return conversion_response(
                request.uid, error=f"conversion to {request.desired_api_version} timed out "
                                   f"after {self.budget:g} s")
