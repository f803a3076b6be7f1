"""LoadTest conversion between v2 (the hub and storage version) and v1 (a spoke).

Place in the pipeline: registered in ``kuar_loadtest.webhooks.conversion``; the API server
sends ``ConversionReview``s to it whenever a client reads or writes a LoadTest in a version
other than the stored one.

Guarantees: lossless both ways. Data with no place in the other version is kept in an
annotation and restored on the way back: ``loadtest.beta.kuar.com/v2-fields`` holds what v1
cannot express (``target.headers``, ``load.rampUp``, any unknown field), and
``loadtest.beta.kuar.com/v1-fields`` what v2 cannot. No default is added: a field absent in
one version is absent in the other.

The functions work on plain dicts (the :data:`kuar.webhook.RAW` codec) rather than the typed
models on purpose: a stored object that no longer fits a model (written before a constraint
existed) must still be readable in both versions, and decoding would apply model defaults.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from kuar.webhook import RAW, HubAndSpoke, Spoke
from kuar_loadtest.api.status import GROUP

V2_FIELDS = "loadtest.beta.kuar.com/v2-fields"
V1_FIELDS = "loadtest.beta.kuar.com/v1-fields"
TARGET_FIELDS = ("service", "scheme", "port", "paths")
LOAD_FIELDS = ("requestsPerSecond", "workers", "duration")


def _annotations(obj: dict[str, Any]) -> dict[str, str]:
    meta = obj.setdefault("metadata", {})
    annotations: dict[str, str] = meta.get("annotations") or {}
    meta["annotations"] = annotations
    return annotations


def _tidy(obj: dict[str, Any]) -> dict[str, Any]:
    meta = obj.get("metadata") or {}
    if not meta.get("annotations"):
        meta.pop("annotations", None)
    return obj


def _leftovers(obj: dict[str, Any], key: str) -> dict[str, Any]:
    raw = _annotations(obj).pop(key, None)
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def v2_to_v1(obj: dict[str, Any]) -> dict[str, Any]:
    """Hub to spoke: flatten ``target`` and ``load``; keep v2-only data in an annotation."""
    out = copy.deepcopy(obj)
    spec2 = out.pop("spec", None) or {}
    target = dict(spec2.pop("target", None) or {})
    load = dict(spec2.pop("load", None) or {})
    spec1: dict[str, Any] = _leftovers(out, V1_FIELDS)
    spec1.update({k: target.pop(k) for k in TARGET_FIELDS if k in target})
    spec1.update({k: load.pop(k) for k in LOAD_FIELDS if k in load})
    kept = {name: part for name, part in (("target", target), ("load", load), ("spec", spec2))
            if part}
    if kept:
        _annotations(out)[V2_FIELDS] = json.dumps(kept, sort_keys=True, separators=(",", ":"))
    out["spec"] = spec1
    return _tidy(out)


def v1_to_v2(obj: dict[str, Any]) -> dict[str, Any]:
    """Spoke to hub: nest into ``target`` and ``load``; restore v2-only data."""
    out = copy.deepcopy(obj)
    spec1 = dict(out.pop("spec", None) or {})
    kept = _leftovers(out, V2_FIELDS)
    target: dict[str, Any] = dict(kept.get("target") or {})
    load: dict[str, Any] = dict(kept.get("load") or {})
    target.update({k: spec1.pop(k) for k in TARGET_FIELDS if k in spec1})
    load.update({k: spec1.pop(k) for k in LOAD_FIELDS if k in spec1})
    if spec1:
        _annotations(out)[V1_FIELDS] = json.dumps(spec1, sort_keys=True, separators=(",", ":"))
    spec2: dict[str, Any] = dict(kept.get("spec") or {})
    spec2.update({"target": target, "load": load})
    out["spec"] = spec2
    return _tidy(out)


LOADTEST_CONVERSION: HubAndSpoke[dict[str, Any]] = HubAndSpoke(
    group=GROUP, kind="LoadTest", hub_version="v2", hub=RAW,
    spokes=[Spoke(version="v1", codec=RAW, to_hub=v1_to_v2, from_hub=v2_to_v1)],
)
"""v2 is the hub (and the storage version); v1 is a spoke."""
