"""ConfigMapGenerator: a small controller on kuar.runtime.

For each ``ConfigMapGenerator`` (see crd.yaml) it keeps a ConfigMap ``<name>-generated`` with
``spec.data``, owned by the generator (so deleting the child brings it back). It also records
every generator in a shared ConfigMap ``configmap-generator-index``; owner references cannot
clean that up, so a finalizer does, and deletes the child at the same time.
Status: ``observedGeneration``, ``configMapName`` and a ``Ready`` condition.

Run: ``python examples/configmap_generator/main.py --kubeconfig PATH [--namespace NS]``.
It installs its CRD, then reconciles until SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from pathlib import Path
from typing import Any

from kuar.client import (
    AlreadyExists,
    Client,
    NotFound,
    ResourceInfo,
    apply_manifests,
    load_config,
    load_manifests,
    wait_crd_established,
)
from kuar.runtime import (
    DynamicObject,
    InformerCache,
    ReconcileContextFilter,
    Request,
    Result,
    TerminalError,
    WatchConfig,
    controller_for,
    finalizer,
    generation_changed,
    is_controlled_by,
    set_condition,
    set_controller_reference,
    update_status,
)

GENERATOR = ResourceInfo("examples.kuar.dev", "v1", "ConfigMapGenerator", "configmapgenerators",
                         namespaced=True)
CONFIGMAP = ResourceInfo("", "v1", "ConfigMap", "configmaps", namespaced=True)
FINALIZER = "examples.kuar.dev/index-cleanup"
INDEX = "configmap-generator-index"
MERGE = "application/merge-patch+json"
log = logging.getLogger("configmap-generator")


class Generator:
    """The reconciler; reads generators and ConfigMaps from the shared informer cache."""

    def __init__(self, client: Client, cache: InformerCache, namespace: str | None) -> None:
        self.client = client
        self.generators = cache.informer(GENERATOR, WatchConfig(namespace=namespace))
        self.configmaps = cache.informer(CONFIGMAP, WatchConfig(namespace=namespace))

    async def reconcile(self, req: Request) -> Result | None:
        gen = self.generators.store.get(req)
        if gen is None:
            return None  # gone; the owned ConfigMap is garbage-collected by Kubernetes
        return await finalizer(
            self.client, GENERATOR, gen.metadata, FINALIZER,
            apply=lambda: self.apply(gen), cleanup=lambda: self.cleanup(gen),
        )

    async def apply(self, gen: DynamicObject) -> Result | None:
        name = f"{gen.name}-generated"
        want = dict(gen.spec.get("data") or {})
        current = self.configmaps.store.get(Request(gen.namespace, name))
        if current is not None and not is_controlled_by(current, gen):
            await self.set_ready(gen, "False", "ConfigMapExists",
                                 f"ConfigMap {name} exists and is not ours")
            raise TerminalError(f"ConfigMap {name} exists and is not owned by {gen.key}")
        if current is None or dict(current.get("data") or {}) != want:
            body: dict[str, Any] = {"apiVersion": "v1", "kind": "ConfigMap",
                                    "metadata": {"name": name, "namespace": gen.namespace},
                                    "data": want}
            set_controller_reference(body, gen, GENERATOR)
            if current is None:
                try:
                    await self.client.request("POST", CONFIGMAP.path(gen.namespace), body=body)
                except AlreadyExists:
                    return Result.requeue()  # our cache is behind; look again shortly
                log.info("created ConfigMap %s", name)
            else:
                body["metadata"]["resourceVersion"] = current.metadata.resource_version
                await self.client.request("PUT", CONFIGMAP.path(gen.namespace, name), body=body)
                log.info("updated ConfigMap %s", name)
        await self.set_index(gen.namespace, gen.name, name)
        await self.set_ready(gen, "True", "Generated", f"ConfigMap {name} is up to date", name)
        return None

    async def cleanup(self, gen: DynamicObject) -> Result | None:
        await self.set_index(gen.namespace, gen.name, None)
        # The garbage collector would delete the child too (owner reference), but only
        # after the generator is gone and at its own pace; deleting it here is immediate.
        with contextlib.suppress(NotFound):
            await self.client.request(
                "DELETE", CONFIGMAP.path(gen.namespace, f"{gen.name}-generated"))
        log.info("cleaned up after %s", gen.name)
        return None

    async def set_index(self, namespace: str, key: str, value: str | None) -> None:
        index = self.configmaps.store.get(Request(namespace, INDEX))
        if index is not None and (index.get("data") or {}).get(key) == value:
            return
        try:
            await self.client.request("PATCH", CONFIGMAP.path(namespace, INDEX),
                                      body={"data": {key: value}}, content_type=MERGE)
        except NotFound:
            if value is None:
                return
            body = {"metadata": {"name": INDEX, "namespace": namespace}, "data": {key: value}}
            await self.client.request("POST", CONFIGMAP.path(namespace), body=body)

    async def set_ready(self, gen: DynamicObject, status: Any, reason: str, message: str,
                        configmap: str | None = None) -> None:
        generation = gen.metadata.generation

        def mutate(obj: dict[str, Any]) -> None:
            st = obj["status"]
            st["observedGeneration"] = generation
            if configmap:
                st["configMapName"] = configmap
            st["conditions"] = set_condition(st.get("conditions"), "Ready", status, reason,
                                             message, observed_generation=generation)

        await update_status(self.client, GENERATOR, gen.key, mutate, current=gen)


async def run(kubeconfig: str | None, namespace: str | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    client = Client(await load_config(kubeconfig))
    try:
        await apply_manifests(client, load_manifests(Path(__file__).with_name("crd.yaml")))
        await wait_crd_established(client, "configmapgenerators.examples.kuar.dev")
        cache = InformerCache(client)
        reconciler = Generator(client, cache, namespace)
        controller = (
            # Status writes do not change the generation: skip them; the child's changes
            # (which have no generation) go through the owns() watch unfiltered.
            controller_for(GENERATOR, WatchConfig(namespace=namespace), cache=cache,
                           predicates=[generation_changed])
            .owns(CONFIGMAP)
            .named("configmap-generator")
            .build(reconciler.reconcile)
        )
        async with cache:
            log.info("running")
            task = asyncio.ensure_future(controller.run())
            await asyncio.wait([task, asyncio.ensure_future(stop.wait())],
                               return_when=asyncio.FIRST_COMPLETED)
            controller.stop()  # graceful: drains running reconciles
            await task
    finally:
        await client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", help="kubeconfig path (default: like kubectl)")
    parser.add_argument("--namespace", help="only this namespace (default: all)")
    args = parser.parse_args()
    handler = logging.StreamHandler()
    handler.addFilter(ReconcileContextFilter())
    handler.setFormatter(logging.Formatter(
        "%(asctime)s %(levelname)s %(name)s key=%(key)s reconcile_id=%(reconcile_id)s "
        "%(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    asyncio.run(run(args.kubeconfig, args.namespace))
    log.info("stopped")


if __name__ == "__main__":
    main()
