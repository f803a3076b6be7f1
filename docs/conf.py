"""Sphinx configuration of kuar's documentation site (``make docs`` -> build/docs).

Warnings are errors (``-W -n`` in the Makefile): a broken link between pages, a missing
cross-reference to a kuar name or a public name without a docstring fails the build.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "_ext"))

project = "kuar"
author = "The kuar authors"
copyright = "The kuar authors"
release = "0.1.0"

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "kuar_sphinx",
]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "_ext"]
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]

# API reference: the names in each public package's __all__, documented ones only (the docstring
# check makes sure every one of them is documented).
autodoc_default_options = {"members": True, "member-order": "alphabetical"}
autodoc_typehints = "signature"
autodoc_class_signature = "separated"
autodoc_preserve_defaults = True
add_module_names = False

# Only references to kuar's own names must resolve; the standard library, pydantic, aiohttp
# and the rest have no inventory here (no network during the build).
nitpicky = True
nitpick_ignore_regex = [
    (r"py:.*", r"(?!kuar)(?!~kuar).*"),
    # type variables (T, H, S) and the generated built-in models (kuar.models.*.v1.Pod...)
    (r"py:.*", r"kuar\..*\.[A-Z]"),
    (r"py:.*", r"kuar\.models\..*"),
]
# Internal types that appear in public signatures but are not public names themselves (each
# listed, so a new one fails the build until someone decides).
nitpick_ignore = [
    ("py:class", "kuar.resources.rbac.PolicyRule"),
    ("py:class", "kuar.runtime.metrics.RuntimeMetrics"),
    ("py:class", "kuar.testing.process.Process"),
    ("py:class", "kuar.webhook.signer.Decision"),
]
# ``type[...]`` in a signature matches every attribute called ``type`` (Sphinx' own
# ambiguity warning); every other reference warning stays an error.
suppress_warnings = ["ref.python"]

html_theme = "furo"
html_title = "kuar"
html_static_path = ["_static"]
html_css_files = ["kuar.css"]
html_copy_source = False
html_show_sourcelink = False
