"""``kuar generate``: files generated from code and from the API server.

Place in the pipeline: registered on the ``kuar`` command by :mod:`kuar.cli.main`. One module
per generator, each a plain ``click.command`` added here and nowhere else; the generators share
:mod:`._files` (``-d/--output-dir``, ``--check``, writing) and never import each other or this
package:

- ``crds MODULE``: CustomResourceDefinitions of typed resources (:mod:`.crds`);
- ``rbac MODULE``: ServiceAccount, (Cluster)Roles and bindings of RbacRules (:mod:`.rbac`);
- ``webhooks MODULE``: admission webhook configurations and CRD conversion patches
  (:mod:`.webhooks`);
- ``models``: typed models of the built-in kinds from an API server's OpenAPI v3
  (:mod:`.models`).
"""

from __future__ import annotations

import click

from kuar.cli.generate.crds import crds
from kuar.cli.generate.models import models
from kuar.cli.generate.rbac import rbac
from kuar.cli.generate.webhooks import render_webhooks, webhooks

__all__ = ["generate", "render_webhooks"]


@click.group("generate")
def generate() -> None:
    """Generate CRDs, RBAC, webhook configurations (from Python modules) and typed models.

    CRDs, RBAC and webhook configurations come from a Python module's declarations; typed
    models of the built-in kinds from an API server's OpenAPI v3. Each command writes its files
    into --output-dir, or checks with --check that the files there are up to date (for CI);
    crds, rbac and webhooks print YAML to stdout without --output-dir.
    """


for command in (crds, rbac, webhooks, models):
    generate.add_command(command)
