"""The kopf side of bench/controller: an ``@kopf.on.event`` handler with the same logic.

Run by ``bench.controller`` as ``python -m bench.controller.kopf_side --kubeconfig K
--namespace NS --workers W [--expect N]``; needs ``kopf`` (the ``bench`` extra).

Why ``on.event``: it is kopf's level-style handler (called for every watch event, no state
kept in annotations), so it does the same API work as the other sides: when
``status.observedGeneration`` lags ``metadata.generation`` it sets it through kopf's
``patch`` (a merge patch of the status subresource). kopf's change-detecting handlers
(``on.create``/``on.update``/``on.resume``) would add a write of kopf's own annotation per
object, i.e. more work than the other sides do.

Settings (docs/decisions/0017-fair-benchmarks.md says why):
- by default kopf's own defaults: ``queueing.worker_limit = None`` (one worker per object,
  no limit) and ``queueing.idle_timeout = 5`` s; ``--workers`` is ignored. kopf's
  ``persistence.consistency_timeout`` stays at its default: after a patch the worker waits for
  the object's patched version to come back by the watch (kopf's consistency guarantee);
- with ``--limit-10`` the settings this benchmark used before (issue 17 found them to cap
  kopf): ``queueing.worker_limit = --workers`` and ``queueing.idle_timeout = 0.01`` s. A kopf
  worker belongs to one object and holds its slot while it idles, so 10 slots cap kopf near
  1,000 objects/s however fast the rest of it is;
- what kopf's documentation offers for speed: uvloop (kopf's ``uvloop`` extra; ``kopf run``
  uses it when installed, as here), ``posting.enabled = False`` (no Kubernetes Events; the
  other sides post none);
- ``scanning.disabled = True``: no extra watches of CRDs and namespaces;
- standalone (no peering), one namespace, uvloop (as ``kopf run`` uses when installed),
  logging at WARNING. kopf has no client-side rate limiter.
kopf keeps no object cache: ``SYNCED`` is printed once the handler has seen ``--expect``
distinct objects, i.e. once kopf has processed the initial list.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from typing import Any

import kopf

from bench.controller.workload import RESOURCE

_args: argparse.Namespace | None = None
_seen: set[str] = set()


async def flush_every(seconds: float) -> None:
    """Flush stdout now and then: one pipe write per reconcile would wake the driver each time."""
    while True:
        await asyncio.sleep(seconds)
        sys.stdout.flush()


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    assert _args is not None
    asyncio.get_running_loop().create_task(flush_every(0.05))
    if _args.limit_10:
        settings.queueing.worker_limit = _args.workers
        settings.queueing.idle_timeout = 0.01
    settings.posting.enabled = False
    settings.scanning.disabled = True


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    # kopf's own kubeconfig reader (KUBECONFIG is set in cli()); the fallback it picks by
    # itself depends on which client libraries happen to be installed.
    return kopf.login_with_kubeconfig(**kwargs)


@kopf.on.event(RESOURCE.group, RESOURCE.version, RESOURCE.plural)
async def reconcile(event: kopf.RawEvent, body: kopf.Body, patch: kopf.Patch,
                    name: str, **_: Any) -> None:
    sys.stdout.write(f"R {name} {time.time_ns()}\n")
    assert _args is not None
    if _args.expect and name not in _seen:
        _seen.add(name)
        if len(_seen) == _args.expect:
            print(f"SYNCED {time.time_ns()}", flush=True)
    if event.get("type") == "DELETED":
        return
    generation = body.metadata.get("generation")
    if body.status.get("observedGeneration") != generation:
        patch.status["observedGeneration"] = generation


def cli() -> None:
    global _args
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--workers", type=int, default=10,
                        help="worker limit with --limit-10 (ignored otherwise)")
    parser.add_argument("--limit-10", action="store_true",
                        help="the previous settings: worker_limit=--workers, idle_timeout=0.01")
    parser.add_argument("--expect", type=int, default=0,
                        help="print SYNCED after this many distinct objects")
    _args = parser.parse_args()
    os.environ["KUBECONFIG"] = _args.kubeconfig
    kopf.configure(quiet=True)
    operator = kopf.operator(standalone=True, namespaces=[_args.namespace], clusterwide=False)
    print(f"START {time.time_ns()}", flush=True)
    try:
        import uvloop
    except ImportError:
        asyncio.run(operator)
    else:
        uvloop.run(operator)


if __name__ == "__main__":
    cli()
