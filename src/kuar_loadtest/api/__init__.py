"""The LoadTest API types, one module per version; ``kuar generate crds`` reads them.

Place in the pipeline: the contract of the extension. ``v2`` is the storage version and the
conversion hub, which the controller, the webhooks and the CLI use; ``v1`` (the seed's shape)
stays served. This package re-exports the v1 names for code written against the seed's shape
(the API server converts); new code imports ``kuar_loadtest.api.v2``. ``deploy/crds/`` is
generated from both.
"""

from kuar_loadtest.api.v1 import LoadTest, LoadTestSpec, LoadTestStatus

__all__ = ["LoadTest", "LoadTestSpec", "LoadTestStatus"]
