"""The kuar side of bench/webhook: the LoadTest webhooks on one process (uvloop when present).

Run by ``bench.webhook``: ``python -m bench.webhook.kuar_server PORT CERT_DIR [reuse-port]``;
prints ``ready`` once listening and serves until killed. With ``reuse-port`` several copies
share the port (``SO_REUSEPORT``), as a user runs one process per core.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

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
    print("ready", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    asyncio.run(main(int(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:] == ["reuse-port"]))
