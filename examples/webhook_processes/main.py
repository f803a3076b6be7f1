"""One admission webhook served by N processes on one port (SO_REUSEPORT), one per core.

Python runs one thread of Python code at a time, so a kuar webhook server uses one core. To use
N cores on one host, run N copies of the same server with
``WebhookServerSettings(reuse_port=True)`` on the same port: the kernel spreads new connections
over the N listening sockets (it balances connections, not requests). This program is that
set-up in one command:

- the parent makes a self-signed CA and one serving pair, writes them to a private temporary
  folder (0700; the key 0600), reserves a port, starts ``--processes`` workers, registers the
  mutating webhook by URL with the CA bundle, restarts a worker that dies, and on SIGTERM or
  Ctrl-C removes the configuration and stops the workers;
- each worker is a :class:`~kuar.webhook.WebhookServer` on that port with ``reuse_port=True``,
  reading the pair from the folder with a :class:`~kuar.webhook.FileSource` (every worker
  serves the same certificate and reloads it when the files are replaced, as with a mounted
  cert-manager Secret). Its webhook labels each ConfigMap created in ``--namespace`` with
  ``examples.kuar.dev/served-by: <the worker's pid>``, so you can see the spreading.

In a cluster the same worker runs as N containers of one pod (or N replicas behind the Service,
which kube-proxy balances by connection in the same way); the kubelet then restarts a dead one.
docs/guide/webhooks.md ("Scaling webhooks") has the measurements and caveats.

Run: ``python examples/webhook_processes/main.py --kubeconfig KUBECONFIG -n NAMESPACE
[--processes N] [--port PORT]``
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any

from kuar.base import write_private
from kuar.client import Client, load_config
from kuar.webhook import (
    RAW,
    Admission,
    AdmissionRule,
    CertificateManager,
    FileSource,
    MutatingWebhook,
    SelfSignedSource,
    UrlTarget,
    WebhookServer,
    WebhookServerSettings,
    apply_configurations,
    delete_configurations,
    webhook_configurations,
)

CONFIGMAPS = AdmissionRule(api_groups=("",), api_versions=("v1",), resources=("configmaps",),
                           operations=("CREATE",))
SERVED_BY = "examples.kuar.dev/served-by"


class ServedBy:
    """Labels a ConfigMap with the pid of the worker that answered."""

    def default(self, obj: dict[str, Any], admission: Admission[Any]) -> None:
        obj.setdefault("metadata", {}).setdefault("labels", {})[SERVED_BY] = str(os.getpid())


def webhook(namespace: str) -> MutatingWebhook[dict[str, Any]]:
    """The webhook, the same in the parent (its configuration) and in every worker."""
    return MutatingWebhook(
        name="served-by.examples.kuar.dev", path="/served-by", rules=(CONFIGMAPS,), codec=RAW,
        defaulter=ServedBy(), configuration=f"served-by-{namespace}",
        namespace_selector={"matchLabels": {"kubernetes.io/metadata.name": namespace}})


def stop_on_signals() -> asyncio.Event:
    """An event set by SIGTERM or SIGINT."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    return stop


async def worker(namespace: str, port: int, certs: Path) -> None:
    """One serving process: prints ``ready`` once listening, serves until SIGTERM."""
    source = FileSource(cert_file=certs / "tls.crt", key_file=certs / "tls.key",
                        ca_file=certs / "ca.crt")
    server = WebhookServer(webhooks=[webhook(namespace)],
                           certificates=CertificateManager(source),
                           settings=WebhookServerSettings(host="127.0.0.1", port=port,
                                                          reuse_port=True))
    stop = stop_on_signals()
    await server.start()
    try:
        print("ready", flush=True)
        await stop.wait()
    finally:
        await server.stop()


def reserve_port(port: int) -> socket.socket:
    """A bound, not listening ``SO_REUSEPORT`` socket: it holds the port (``0``: a free one)
    until the workers listen on it, and receives no connection itself."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind(("127.0.0.1", port))
    return sock


class Workers:
    """The N worker processes: started, waited for, restarted when one dies, stopped."""

    def __init__(self, namespace: str, port: int, certs: Path, count: int) -> None:
        self.argv = [__file__, "--worker", "-n", namespace, "--port", str(port),
                     "--certs", str(certs)]
        self.procs: list[asyncio.subprocess.Process] = []
        self.count = count

    async def start_one(self) -> asyncio.subprocess.Process:
        """Start a worker and wait for its ``ready`` line."""
        proc = await asyncio.create_subprocess_exec(sys.executable, *self.argv,
                                                    stdout=asyncio.subprocess.PIPE)
        assert proc.stdout is not None
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        if line.strip() != b"ready":
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            raise RuntimeError(f"a worker did not start (exit code {await proc.wait()})")
        return proc

    async def start(self) -> None:
        """Start every worker."""
        self.procs = list(await asyncio.gather(*(self.start_one() for _ in range(self.count))))

    async def keep_up(self) -> None:
        """Restart a worker that exited."""
        for i, proc in enumerate(self.procs):
            if proc.returncode is not None:
                self.procs[i] = await self.start_one()
                print(f"worker {proc.pid} exited with code {proc.returncode}; restarted as "
                      f"{self.procs[i].pid}", flush=True)

    async def stop(self) -> None:
        """SIGTERM every worker and wait (10 s each, then SIGKILL)."""
        for proc in self.procs:
            if proc.returncode is None:
                proc.terminate()
        for proc in self.procs:
            try:
                await asyncio.wait_for(proc.wait(), 10)
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def main(kubeconfig: str | None, namespace: str, processes: int, port: int) -> None:
    """The parent: certificate, workers, configuration; serve until SIGTERM or Ctrl-C."""
    stop = stop_on_signals()
    client = Client(await load_config(kubeconfig))
    cert = await SelfSignedSource(dns_names=["localhost"], ips=["127.0.0.1"]).fetch()
    hooks = [webhook(namespace)]
    configs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="kuar-webhook-processes-") as folder:
        certs = Path(folder)
        (certs / "tls.crt").write_bytes(cert.cert_pem)
        write_private(certs / "tls.key", cert.key_pem)
        (certs / "ca.crt").write_bytes(cert.ca_pem)
        reserved = reserve_port(port)
        port = reserved.getsockname()[1]
        workers = Workers(namespace, port, certs, processes)
        try:
            await workers.start()
            reserved.close()
            url = f"https://127.0.0.1:{port}"
            configs = webhook_configurations(hooks, UrlTarget(base_url=url),
                                             ca_bundle=cert.ca_pem)
            await apply_configurations(client, configs, field_manager="webhook-processes")
            pids = ", ".join(str(p.pid) for p in workers.procs)
            print(f"serving on {url} with {processes} processes (pids {pids}) for ConfigMaps "
                  f"in {namespace}", flush=True)
            while not stop.is_set():  # restart a worker that died, twice a second
                await workers.keep_up()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 0.5)
        finally:
            reserved.close()
            if configs:
                await delete_configurations(client, configs)
            await workers.stop()
            await client.close()
    print("stopped", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="one webhook served by N processes on one port")
    parser.add_argument("--kubeconfig", default=None)
    parser.add_argument("-n", "--namespace", default="default")
    parser.add_argument("--processes", type=int, default=2, help="worker processes (one a core)")
    parser.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--certs", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        asyncio.run(worker(args.namespace, args.port, args.certs))
    else:
        asyncio.run(main(args.kubeconfig, args.namespace, args.processes, args.port))
