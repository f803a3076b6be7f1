"""Just data: an application reads its rollout plan from CanaryConfig custom resources.

Run: ``python examples/just_data/main.py --kubeconfig PATH [--namespace NS] [--install]``.
With ``--install`` it first installs the CanaryConfig CRD (generated from ``canary.py``) and the
sample objects in ``data.yaml``, and shows that the API server refuses a config breaking the
CRD's rule. Then it lists every CanaryConfig through ``Api[CanaryConfig]`` and prints each
plan. Nothing runs in the cluster: the custom resource is only data.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from canary import CanaryConfig, CanarySpec, Step

from kuar.client import Api, Client, Invalid, apply_manifests, load_config, load_manifests
from kuar.resources import ObjectMeta, crd_for

HERE = Path(__file__).parent


def plan(config: CanaryConfig) -> str:
    """One line describing the rollout of ``config``."""
    steps = " -> ".join(f"{s.weight}% ({s.pause})" for s in config.spec.steps)
    return (f"{config.name}: shift {config.spec.service} {steps}; "
            f"abort above {config.spec.max_error_rate:.1%} errors")


async def install(client: Client, namespace: str) -> None:
    """Install the CRD and the sample data; show a config the API server refuses."""
    await apply_manifests(client, [crd_for(CanaryConfig)], field_manager="just-data")
    await apply_manifests(client, load_manifests(HERE / "data.yaml"), namespace=namespace,
                          field_manager="just-data")
    bad = CanaryConfig(metadata=ObjectMeta(name="half-way"),
                       spec=CanarySpec(service="cart", steps=[Step(weight=50)]))
    try:
        await Api(client, CanaryConfig, namespace=namespace).create(bad)
    except Invalid as exc:
        print(f"refused half-way: {exc.causes[0].message if exc.causes else exc.message}")


async def main(kubeconfig: str | None, namespace: str | None, do_install: bool) -> None:
    async with Client(await load_config(kubeconfig)) as client:
        ns = namespace or client.namespace
        if do_install:
            await install(client, ns)
        configs = Api(client, CanaryConfig, namespace=ns)
        async for config in configs.list_all():
            print(plan(config))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", default=None)
    parser.add_argument("--namespace", default=None)
    parser.add_argument("--install", action="store_true")
    args = parser.parse_args()
    asyncio.run(main(args.kubeconfig, args.namespace, args.install))
