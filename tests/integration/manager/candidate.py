"""A manager process with leader election, for the leader-election fault tests.

Usage: python -m tests.integration.manager.candidate KUBECONFIG LEASE_NAME NAMESPACE
Prints ``LEADING <identity> <monotonic>`` when its leader-only runnable starts and
``STOPPED`` when it has stopped.
"""

from __future__ import annotations

import asyncio
import sys
import time

from kuar.client import Client, load_config
from kuar.manager import LeaderElectionSettings, Manager, ManagerSettings


class Announce:
    needs_leader_election = True

    def __init__(self, identity: str) -> None:
        self.identity = identity

    async def run(self) -> None:
        print(f"LEADING {self.identity} {time.time():.3f}", flush=True)
        await asyncio.Event().wait()


async def main(kubeconfig: str, lease: str, namespace: str) -> None:
    client = Client(await load_config(kubeconfig))
    election = LeaderElectionSettings(name=lease, namespace=namespace)
    manager = Manager(client, ManagerSettings(leader_election=election, health=None))
    manager.add(Announce(election.identity))
    print(f"CANDIDATE {election.identity}", flush=True)
    try:
        await manager.run()
    finally:
        await client.close()
        print("STOPPED", flush=True)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
