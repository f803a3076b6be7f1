"""The kuar side of bench/webhook: the LoadTest webhooks on one process (uvloop when present).

Run by ``bench.webhook``: ``python -m bench.webhook.kuar_server PORT CERT_DIR [reuse-port]``;
prints ``ready`` once listening and serves until killed. With ``reuse-port`` several copies
share the port (``SO_REUSEPORT``), as a user runs one process per core. On ``SIGUSR1`` it
writes the number of requests it has answered so far (the sum of
``controller_runtime_webhook_requests_total``) to ``CERT_DIR/count-<pid>``: the benchmark
reads how the kernel spread the load over the processes.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

from kuar.base.metrics import REGISTRY
from kuar.webhook import ServingCertificate, WebhookServer, WebhookServerSettings
from kuar_loadtest.webhooks import webhooks_for


async def main(port: int, cert_dir: Path, reuse_port: bool = False) -> None:
    cert = ServingCertificate(cert_pem=(cert_dir / "tls.crt").read_bytes(),
                              key_pem=(cert_dir / "tls.key").read_bytes(),
                              ca_pem=(cert_dir / "ca.crt").read_bytes())
    server = WebhookServer(**webhooks_for(), certificates=cert,
                           settings=WebhookServerSettings(host="127.0.0.1", port=port,
                                                          reuse_port=reuse_port))
    await server.start()
    asyncio.get_running_loop().add_signal_handler(signal.SIGUSR1, write_count, cert_dir)
    print("ready", flush=True)
    await asyncio.Event().wait()


def write_count(folder: Path) -> None:
    """Write the requests answered so far to ``folder/count-<pid>`` (atomically)."""
    served = sum(sample.value for metric in REGISTRY.collect()
                 if metric.name == "controller_runtime_webhook_requests"
                 for sample in metric.samples if sample.name.endswith("_total"))
    scratch = folder / f".count-{os.getpid()}"
    scratch.write_text(f"{served:.0f}")
    os.replace(scratch, folder / f"count-{os.getpid()}")


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main(int(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:] == ["reuse-port"]))
