"""Names a scaffolded project derives from the command line, and their checks.

Place in the pipeline: the first step of every ``kuar init`` / ``kuar create`` command; a bad
name raises :class:`ScaffoldError` before any file is written. Pure.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass

DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
KIND = re.compile(r"^[A-Z][a-z0-9]+([A-Z][a-z0-9]*)*$")
VERSION = re.compile(r"^v[1-9][0-9]*((alpha|beta)[1-9][0-9]*)?$")


class ScaffoldError(Exception):
    """Bad input or a file that would be overwritten; nothing has been written."""


def check_project(name: str) -> str:
    """A project name: a DNS label (it names the namespace, the image and the package)."""
    if len(name) > 40 or not DNS_LABEL.match(name):
        raise ScaffoldError(
            f"project {name!r} must be a lower-case DNS label of at most 40 characters "
            "(letters, digits and '-', starting with a letter), e.g. 'guestbook'")
    return name


def check_domain(domain: str) -> str:
    """The domain appended to every group (``--domain example.com``)."""
    if len(domain) > 200 or "." not in domain or not DNS_SUBDOMAIN.match(domain):
        raise ScaffoldError(
            f"domain {domain!r} is not a DNS subdomain with a dot (e.g. 'example.com')")
    return domain


def full_group(group: str, domain: str) -> str:
    """``--group batch`` in domain ``example.com`` is the API group ``batch.example.com``."""
    full = f"{group}.{domain}"
    if not group or len(full) > 253 or not DNS_SUBDOMAIN.match(group):
        raise ScaffoldError(
            f"group {group!r} is not a DNS subdomain (lower-case letters, digits, '-' and "
            f"'.'; e.g. 'batch', which gives the API group 'batch.{domain}')")
    return full


def check_version(version: str) -> str:
    """``v1``, ``v2alpha1``, ``v1beta2``: Kubernetes' API versions."""
    if not VERSION.match(version):
        raise ScaffoldError(
            f"version {version!r} must be vN, vNalphaM or vNbetaM (e.g. v1, v1alpha1, v2beta1)")
    return version


def check_kind(kind: str) -> str:
    """A kind is CamelCase: an upper-case letter, then letters and digits (``CronJob``)."""
    if len(kind) > 63 or not KIND.match(kind):
        raise ScaffoldError(
            f"kind {kind!r} must be CamelCase: an upper-case first letter, then letters and "
            "digits (e.g. 'CronJob')")
    return kind


def snake(kind: str) -> str:
    """``CronJob`` -> ``cron_job`` (module names)."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", kind).lower()


def plural(kind: str) -> str:
    """Kubebuilder's plural: ``CronJob`` -> ``cronjobs``, ``Policy`` -> ``policies``."""
    lower = kind.lower()
    if re.search(r"[^aeiou]y$", lower):
        return lower[:-1] + "ies"
    if re.search(r"(s|x|z|ch|sh)$", lower):
        return lower + "es"
    return lower + "s"


def module_name(text: str) -> str:
    """A Python identifier for a group or project (``my-app.v2`` -> ``my_app_v2``)."""
    name = re.sub(r"[^a-z0-9_]", "_", text.lower())
    return name + "_" if keyword.iskeyword(name) else name


@dataclass(frozen=True)
class KindNames:
    """Every name one kind's files use."""

    group: str
    """The short group (``batch``)."""
    full_group: str
    """The API group (``batch.example.com``)."""
    kind: str
    """``CronJob``."""

    @property
    def snake(self) -> str:
        """``cron_job``: the module of the kind in each package."""
        return snake(self.kind)

    @property
    def plural(self) -> str:
        """``cronjobs``: the resource."""
        return plural(self.kind)

    @property
    def group_module(self) -> str:
        """``batch``: the package under ``api/``."""
        return module_name(self.group)

    @property
    def crd(self) -> str:
        """``cronjobs.batch.example.com``."""
        return f"{self.plural}.{self.full_group}"
