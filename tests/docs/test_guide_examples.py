"""Every Python example of the user guide runs: pages as modules, their ``test_*`` as tests.

The tests talk to the session's local control plane (kuar.testing fixtures). A page's
blocks that only define things run when this module is imported; a definition that does
not work fails the collection of this file, naming the page and line.
"""

from __future__ import annotations

import inspect

import pytest

from tests.docs.snippets import guide_pages, load_page

pytestmark = pytest.mark.controlplane

EXAMPLES = {}
for _page in guide_pages():
    _module = load_page(_page)
    for _name, _fn in vars(_module).items():
        if _name.startswith("test_") and inspect.isfunction(_fn):
            _test = f"test_{_page.stem.replace('-', '_')}__{_name.removeprefix('test_')}"
            globals()[_test] = _fn
            EXAMPLES[_test] = _page


def test_every_guide_page_with_examples_has_a_test() -> None:
    pages = {p.name for p in guide_pages()}
    tested = {p.name for p in EXAMPLES.values()}
    assert pages == tested, f"pages whose examples no test exercises: {pages - tested}"
