"""kubebuilder's workflow in Python: scaffold an operator project and add kinds and webhooks.

Place in the pipeline: ``kuar init`` / ``kuar create api`` / ``kuar create webhook``
(:mod:`kuar.cli.scaffold`) call :mod:`.commands`; :mod:`.render` fills the templates in
``templates/``; :mod:`.project` records what was scaffolded (``PROJECT``) and writes files
without ever overwriting the author's code. Imports no other kuar package: the generated
project is checked by running ``kuar generate`` on it.
"""

from kuar.scaffold.commands import Outcome, create_api, create_webhook, init_project
from kuar.scaffold.names import ScaffoldError
from kuar.scaffold.project import MARK, Project

__all__ = ["MARK", "Outcome", "Project", "ScaffoldError", "create_api", "create_webhook",
           "init_project"]
