"""The LoadTest API types, one module per version (``v1``); ``kuar generate crds`` reads them.

Place in the pipeline: the contract of the extension. The controller, the webhooks and the
tests use these types; ``deploy/crds/`` is generated from them.
"""

from kuar_loadtest.api.v1 import LoadTest, LoadTestSpec, LoadTestStatus

__all__ = ["LoadTest", "LoadTestSpec", "LoadTestStatus"]
