"""nginx (the Debian package) on 127.0.0.1 with a throw-away prefix, pinned to one core."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

BODY = b"kuar-loadgen benchmark: a small static file served by nginx.\n"

CONFIG = """
worker_processes 1;
daemon off;
master_process on;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 8192; }}
http {{
  access_log off;
  keepalive_requests 1000000;
  keepalive_timeout 75s;
  client_body_temp_path {prefix}/tmp; proxy_temp_path {prefix}/tmp;
  fastcgi_temp_path {prefix}/tmp; uwsgi_temp_path {prefix}/tmp; scgi_temp_path {prefix}/tmp;
  server {{
    listen 127.0.0.1:{port} backlog=4096;
    root {prefix}/html;
  }}
}}
"""


@dataclass(frozen=True)
class Nginx:
    url: str
    pid: int


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def nginx(core: int | None) -> Iterator[Nginx]:
    """Start nginx serving /index.html; stop it (by its pid) on exit."""
    binary = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(binary).exists():
        raise FileNotFoundError("nginx")
    with tempfile.TemporaryDirectory(prefix="kuar-bench-nginx-") as tmp:
        prefix = Path(tmp)
        prefix.chmod(0o755)  # nginx workers run as an unprivileged user and must read html/
        (prefix / "html").mkdir()
        (prefix / "tmp").mkdir()
        (prefix / "html" / "index.html").write_bytes(BODY)
        port = free_port()
        (prefix / "nginx.conf").write_text(CONFIG.format(prefix=prefix, port=port))
        cmd = [binary, "-p", str(prefix), "-c", str(prefix / "nginx.conf"),
               "-e", str(prefix / "error.log")]
        if core is not None:
            cmd = ["taskset", "-c", str(core), *cmd]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        url = f"http://127.0.0.1:{port}/index.html"
        try:
            deadline = time.monotonic() + 10
            while True:
                try:
                    with urllib.request.urlopen(url, timeout=1) as r:
                        if r.read() == BODY:
                            break
                except OSError:
                    if proc.poll() is not None or time.monotonic() > deadline:
                        log = prefix / "error.log"
                        err = log.read_text() if log.exists() else ""
                        raise RuntimeError(f"nginx did not start: {err}") from None
                    time.sleep(0.05)
            yield Nginx(url=url, pid=proc.pid)
        finally:
            proc.terminate()  # SIGTERM to the master (our child): fast shutdown
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
