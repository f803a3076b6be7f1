"""The LoadTest webhooks: the seed's ``kuar-validator``, a defaulter, and v1/v2 conversion.

Place in the pipeline: the API server calls these (through the configurations that
``kuar generate webhooks kuar_loadtest.webhooks`` writes to ``deploy/webhooks/``) when a
LoadTest is created or updated, and when it is read or written in the other version. Built on
the public :mod:`kuar.webhook` API only.

- ``kuar-validator`` / ``validator.kuar.com`` (the seed's names): CREATE and UPDATE of
  ``loadtests``. The webhooks see every LoadTest as v2 (the storage version; a v1 write is
  converted first), so denials name v2 fields: ``spec.target.scheme`` not http or https,
  ``spec.load.requestsPerSecond`` <= 0 or above ``max_requests_per_second``, a
  ``spec.target.paths[i]`` not starting with ``/`` or holding spaces or control characters
  (CR/LF would inject headers into the worker's requests), a ``spec.target.service`` that is
  not a DNS-1035 label, a ``spec.schedule.cron`` that does not parse or a
  ``spec.schedule.timeZone`` that is not a known IANA zone. Non-ASCII paths (``/€``) are
  allowed and stored as written: the worker sends them percent-encoded (one place for the
  rule, whatever the spec came from: this webhook, the webhook failing open, or a person's
  ``--path`` flag).
  Warns (allows) when one worker would carry more than ``warn_rps_per_worker``.
- ``kuar-defaulter`` / ``defaulter.kuar.com``: fills ``target.scheme`` (http), ``target.paths``
  (``/``) and ``load.duration`` (60s); ``port`` and ``workers`` are left to the controller.
- ``conversion`` at ``/convert``: v2 (hub, storage) <-> v1 (see ``api/conversion.py``).

Both admission webhooks fail open (``failurePolicy: Ignore``) by default: the CRD's schema
already holds the same defaults and the hard limits (scheme enum, path pattern, rate between 1
and 1e6), and the controller refuses a rate above its cap (``RateAboveCap``), so an object
admitted while no operator answers is never run unchecked; failing closed would instead block
every LoadTest write whenever the operator is down or not yet installed
(docs/decisions/0010-install-tree.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from kuar.webhook import (
    Admission,
    ConversionWebhook,
    FieldErrors,
    MutatingWebhook,
    ValidatingWebhook,
    Validator,
)
from kuar_loadgen.spec import path_problem
from kuar_loadtest.api.conversion import LOADTEST_CONVERSION
from kuar_loadtest.api.v2 import LoadTest
from kuar_loadtest.loadmodel import check_load, check_requests, check_thresholds
from kuar_loadtest.schedule import ScheduleError, parse_schedule

DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
SCHEMES = ("http", "https")


@dataclass(frozen=True, kw_only=True)
class LoadTestWebhookSettings:
    """Limits and defaults of the LoadTest webhooks."""

    max_requests_per_second: int = 50_000
    """Cap on ``spec.requestsPerSecond``: protects the cluster (the schema allows 1e6); the
    same default as the operator's own cap (``OperatorSettings``)."""
    warn_rps_per_worker: int = 10_000
    """Above this many requests per second per worker, warn (one pod rarely sustains it)."""
    default_scheme: str = "http"
    """The seed's example uses https, but plain http needs no certificate on the target."""
    default_paths: tuple[str, ...] = ("/",)
    """The root path: every web server answers it."""
    default_duration: str = "60s"
    """One minute: long enough for a steady rate, short enough not to be forgotten."""
    failure_policy: Literal["Fail", "Ignore"] = "Ignore"
    """What the API server does when the webhooks cannot be reached: admit (the schema and
    the controller enforce the same limits; see the module docstring). Tests that must prove
    the webhook answered set ``Fail``."""


class LoadTestValidator(Validator[LoadTest]):
    """Checks a LoadTest's spec (the seed's ``kuar-validator``)."""

    def __init__(self, settings: LoadTestWebhookSettings | None = None) -> None:
        """Use ``settings`` (default limits when omitted)."""
        self.settings = settings or LoadTestWebhookSettings()

    def check(self, obj: LoadTest) -> list[str]:
        """Raise :class:`~kuar.webhook.Denied` naming each bad field; return warnings."""
        target, load, errors = obj.spec.target, obj.spec.load, FieldErrors()
        if target.scheme not in SCHEMES:
            errors.not_supported("spec.target.scheme", target.scheme, SCHEMES)
        rps = check_load(load, errors, cap=self.settings.max_requests_per_second)
        check_thresholds(obj.spec.thresholds, errors)
        check_requests(target, errors)
        for i, path in enumerate(target.paths):
            problem = path_problem(path)  # the worker's own rule (kuar_loadgen.spec)
            if problem is not None:
                errors.invalid(f"spec.target.paths[{i}]", path, problem)
        if len(target.service) > 63 or not DNS1035_LABEL.match(target.service):
            errors.invalid(
                "spec.target.service", target.service,
                "a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
                "start with an alphabetic character, end with an alphanumeric character, "
                "and be at most 63 characters")
        if obj.spec.schedule is not None:  # run history and schedules (issue 16)
            try:
                parse_schedule(obj.spec.schedule)
            except ScheduleError as exc:
                value = (obj.spec.schedule.time_zone if exc.field.endswith("timeZone")
                         else obj.spec.schedule.cron)
                errors.invalid(exc.field, value, str(exc))
        errors.raise_if_any()
        warnings = []
        per_worker = rps / load.workers if load.workers else 0  # unset: the operator sizes it
        if per_worker > self.settings.warn_rps_per_worker:
            warnings.append(f"spec.load: {per_worker:.0f} req/s per worker is above "
                            f"{self.settings.warn_rps_per_worker}; consider more workers")
        return warnings

    async def validate_create(self, obj: LoadTest, admission: Admission[LoadTest]) -> list[str]:
        """Check a new LoadTest."""
        return self.check(obj)

    async def validate_update(
        self, old: LoadTest, new: LoadTest, admission: Admission[LoadTest]
    ) -> list[str]:
        """Check a changed LoadTest (the same rules as on create)."""
        return self.check(new)


class LoadTestDefaulter:
    """Fills the optional fields of a LoadTest."""

    def __init__(self, settings: LoadTestWebhookSettings | None = None) -> None:
        """Use ``settings`` (default values when omitted)."""
        self.settings = settings or LoadTestWebhookSettings()

    async def default(self, obj: LoadTest, admission: Admission[LoadTest]) -> None:
        """Set scheme, paths and duration where the user left them out.

        ``port`` and ``workers`` stay unset on purpose: the controller takes the port from the
        target Service and sizes the workers from ``requestsPerSecond``.
        """
        s, target, load = self.settings, obj.spec.target, obj.spec.load
        if "scheme" not in target.model_fields_set:
            target.scheme = s.default_scheme  # type: ignore[assignment]
        if "paths" not in target.model_fields_set or not target.paths:
            target.paths = list(s.default_paths)
        if "duration" not in load.model_fields_set and not load.stages:
            load.duration = s.default_duration


def build(
    settings: LoadTestWebhookSettings | None = None,
) -> tuple[ValidatingWebhook[LoadTest], MutatingWebhook[LoadTest], ConversionWebhook]:
    """The three LoadTest webhooks with ``settings`` (the module-level ones use defaults)."""
    settings = settings or LoadTestWebhookSettings()
    validating = ValidatingWebhook.for_resource(
        LoadTest, LoadTestValidator(settings), name="validator.kuar.com",
        configuration="kuar-validator", operations=("CREATE", "UPDATE"),
        failure_policy=settings.failure_policy, side_effects="None", timeout_seconds=5)
    mutating = MutatingWebhook.for_resource(
        LoadTest, LoadTestDefaulter(settings), name="defaulter.kuar.com",
        configuration="kuar-defaulter", operations=("CREATE", "UPDATE"),
        failure_policy=settings.failure_policy, side_effects="None", timeout_seconds=5)
    return validating, mutating, ConversionWebhook(converters=[LOADTEST_CONVERSION])


validator, defaulter, conversion = build()
"""Module-level webhooks found by ``kuar generate webhooks kuar_loadtest.webhooks``."""


def webhooks_for(settings: LoadTestWebhookSettings | None = None) -> dict[str, Any]:
    """Keyword arguments for :class:`kuar.webhook.WebhookServer` (webhooks and conversions)."""
    v, m, c = build(settings)
    return {"webhooks": [v, m], "conversions": [c]}
