"""kuar-loadgen: the open-loop HTTP load generator that LoadTest pods run (imports nothing of kuar).

Map of the package, in pipeline order:

- :mod:`kuar_loadgen.spec` — :class:`LoadSpec`, the one contract with the controller (JSON in
  ``KUAR_LOADGEN_SPEC``, or CLI flags).
- :mod:`kuar_loadgen.schedule` — pure math: request ``i`` is due at ``t0 + i / rate``; shards
  and processes take disjoint slots of the indices.
- :mod:`kuar_loadgen.runner` — one process per core, a shared start, live progress, merge.
- :mod:`kuar_loadgen.worker` — one process's scheduler loop over :mod:`kuar_loadgen._client`,
  a raw asyncio HTTP/1.1 keep-alive client with the ``httptools`` parser.
- :mod:`kuar_loadgen.recorder` and :mod:`kuar_loadgen.result` — HDR histograms and counts; the
  versioned, mergeable result (:func:`merge_results`, :func:`compact` for the 4 KiB
  termination message). ``result`` is pure and may be imported by the controller.
- :mod:`kuar_loadgen.progress` — progress bar and Prometheus metrics.
- :mod:`kuar_loadgen.cli` — ``kuar-loadgen``.
"""

from kuar_loadgen.result import TERMINATION_MESSAGE_LIMIT, LoadResult, compact, merge_results
from kuar_loadgen.runner import Progress, WorkerError, run
from kuar_loadgen.spec import SPEC_ENV, LoadSpec, SpecError, spec_from_env

__all__ = [
    "SPEC_ENV",
    "TERMINATION_MESSAGE_LIMIT",
    "LoadResult",
    "LoadSpec",
    "Progress",
    "SpecError",
    "WorkerError",
    "compact",
    "merge_results",
    "run",
    "spec_from_env",
]
