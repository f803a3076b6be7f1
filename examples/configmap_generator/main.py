"""ConfigMapGenerator: a small controller on kuar's typed resources, manager and builder.

For each ``ConfigMapGenerator`` it keeps a ConfigMap ``<name>-generated`` with ``spec.data``,
owned by the generator (so deleting the child brings it back). It also records every
generator in a shared ConfigMap ``configmap-generator-index``; owner references cannot clean
that up, so a finalizer does, and deletes the child at the same time.
Status: ``observedGeneration``, ``configMapName`` and a ``Ready`` condition.

Run: ``python examples/configmap_generator/main.py --kubeconfig PATH [--namespace NS]``.
It installs its CRD (generated from the class below), then reconciles until SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
from typing import Any

from kuar.client import Api, Client, NotFound, apply_manifests, load_config, wait_crd_established
from kuar.manager import Manager, ManagerSettings
from kuar.models.core.v1 import ConfigMap
from kuar.resources import (
    Conditions,
    CustomResource,
    KubeModel,
    ObjectMeta,
    PrinterColumn,
    crd_for,
)
from kuar.runtime import (
    ReconcileContextFilter,
    Request,
    Result,
    TerminalError,
    WatchConfig,
    controller_for,
    finalizer,
    generation_changed,
    is_controlled_by,
    owner_reference,
    set_condition,
)
from kuar.runtime.conditions import Status

FINALIZER = "examples.kuar.dev/index-cleanup"
INDEX = "configmap-generator-index"
log = logging.getLogger("configmap-generator")


class GeneratorSpec(KubeModel):
    data: dict[str, str] = {}


class GeneratorStatus(KubeModel):
    observed_generation: int | None = None
    config_map_name: str | None = None
    conditions: Conditions | None = None


class ConfigMapGenerator(
    CustomResource, group="examples.kuar.dev", version="v1", kind="ConfigMapGenerator",
    short_names=["cmg"], printer_columns=[
        PrinterColumn(name="ConfigMap", json_path=".status.configMapName"),
        PrinterColumn(name="Ready", json_path='.status.conditions[?(@.type=="Ready")].status'),
    ],
):
    spec: GeneratorSpec = GeneratorSpec()
    status: GeneratorStatus | None = None


class Reconciler:
    def __init__(self, manager: Manager, scope: WatchConfig) -> None:
        self.client = manager.client
        self.generators = manager.cache.informer(ConfigMapGenerator, scope)
        self.configmaps = manager.cache.informer(ConfigMap, scope)
        self.status = Api(self.client, ConfigMapGenerator)
        self.writes = Api(self.client, ConfigMap, field_manager="configmap-generator")

    async def __call__(self, req: Request) -> Result | None:
        gen = self.generators.store.get(req)
        if gen is None:
            return None  # gone; the owned ConfigMap is garbage-collected by Kubernetes
        return await finalizer(self.client, ConfigMapGenerator.resource_info(), gen.metadata,
                               FINALIZER, apply=lambda: self.apply(req, gen),
                               cleanup=lambda: self.cleanup(req, gen))

    async def apply(self, req: Request, gen: ConfigMapGenerator) -> None:
        name = f"{gen.name}-generated"
        current = self.configmaps.store.get(Request(req.namespace, name))
        if current is not None and not is_controlled_by(current, gen):
            await self.set_ready(gen, "False", "ConfigMapExists", f"{name} exists, not ours")
            raise TerminalError(f"ConfigMap {name} exists and is not owned by {gen.name}")
        if current is None or current.data != gen.spec.data:
            child = ConfigMap(data=gen.spec.data, metadata=ObjectMeta(
                name=name, namespace=gen.namespace, owner_references=[owner_reference(gen)]))
            await self.writes.apply(child, force=True)  # server-side apply: create or update
            log.info("wrote ConfigMap %s", name)
        await self.set_index(req, name)
        await self.set_ready(gen, "True", "Generated", f"ConfigMap {name} is up to date", name)

    async def cleanup(self, req: Request, gen: ConfigMapGenerator) -> None:
        await self.set_index(req, None)
        # Garbage collection would delete the child too, but only once the generator is gone.
        with contextlib.suppress(NotFound):
            await self.writes.delete(f"{req.name}-generated", namespace=req.namespace)

    async def set_index(self, req: Request, value: str | None) -> None:
        index = self.configmaps.store.get(Request(req.namespace, INDEX))
        if index is not None and (index.data or {}).get(req.name) == value:
            return
        try:
            await self.writes.patch(INDEX, {"data": {req.name: value}}, namespace=req.namespace)
        except NotFound:
            if value is not None:
                await self.writes.create(ConfigMap(data={req.name: value}, metadata=ObjectMeta(
                    name=INDEX, namespace=req.namespace)))

    async def set_ready(self, gen: ConfigMapGenerator, status: Status, reason: str,
                        message: str, configmap: str | None = None) -> None:
        generation = gen.metadata.generation
        conditions = gen.status.conditions if gen.status else None
        new: dict[str, Any] = {"observedGeneration": generation, "conditions": set_condition(
            conditions, "Ready", status, reason, message, observed_generation=generation)}
        if configmap:
            new["configMapName"] = configmap
        await self.status.patch_status(gen.name, {"status": new}, namespace=gen.namespace)


async def run(kubeconfig: str | None, namespace: str | None) -> None:
    async with Client(await load_config(kubeconfig)) as client:
        await apply_manifests(client, [crd_for(ConfigMapGenerator)])
        await wait_crd_established(client, "configmapgenerators.examples.kuar.dev")
        manager = Manager(client, ManagerSettings(health=None))  # stops on SIGINT/SIGTERM
        scope = WatchConfig(namespace=namespace)
        # Status writes do not change the generation: skip them; the child's changes (which
        # have no generation) go through the owns() watch unfiltered.
        manager.add(
            controller_for(ConfigMapGenerator, scope, cache=manager.cache,
                           predicates=[generation_changed])
            .owns(ConfigMap)
            .named("configmap-generator")
            .build(Reconciler(manager, scope))
        )
        await manager.run()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", help="kubeconfig path (default: like kubectl)")
    parser.add_argument("--namespace", help="only this namespace (default: all)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s "
                        "key=%(key)s reconcile_id=%(reconcile_id)s %(message)s")
    logging.getLogger().handlers[0].addFilter(ReconcileContextFilter())
    asyncio.run(run(args.kubeconfig, args.namespace))
    log.info("stopped")


if __name__ == "__main__":
    main()
