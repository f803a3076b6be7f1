"""Run an example program as its own process, as a user would, and stop it with SIGTERM."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@dataclass
class Running:
    log_path: Path
    exit_code: int | None = None

    @property
    def log(self) -> str:
        return self.log_path.read_text()


@contextlib.asynccontextmanager
async def example(name: str, kubeconfig: Path, namespace: str, log_path: Path, *,
                  ready: str = "serving on", timeout: float = 60) -> AsyncIterator[Running]:
    """Start ``examples/<name>/main.py`` and wait until its log says ``ready``.

    On exit the program gets SIGTERM; ``exit_code`` holds its code (20 s at most).
    """
    running = Running(log_path)
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [sys.executable, str(EXAMPLES / name / "main.py"), "--kubeconfig", str(kubeconfig),
             "-n", namespace], stdout=log, stderr=subprocess.STDOUT)
    try:
        async with asyncio.timeout(timeout):
            while ready not in running.log:
                assert proc.poll() is None, running.log
                await asyncio.sleep(0.1)
        yield running
    finally:
        proc.send_signal(signal.SIGTERM)
        running.exit_code = await asyncio.to_thread(proc.wait, 20)
