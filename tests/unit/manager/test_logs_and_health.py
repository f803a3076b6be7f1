"""Process logging (text/JSON on stderr) and the probe/metrics server's two listeners."""

from __future__ import annotations

import io
import json
import logging

import aiohttp
import pytest
from prometheus_client import CollectorRegistry, Counter

from kuar.manager import HealthServer, HealthSettings
from kuar.manager.logs import configure_logging
from kuar.runtime.log import ReconcileContext, reconcile_context


@pytest.fixture
def restore_root_logger():  # type: ignore[no-untyped-def]
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_logs_are_one_object_per_line_with_context_and_errors(restore_root_logger) -> None:
    out = io.StringIO()
    configure_logging("json", "debug", stream=out)
    log = logging.getLogger("kuar.test")
    log.debug("plain %s", "debug")
    token = reconcile_context.set(ReconcileContext("loadtest", "ns/a", "r-1"))
    try:
        log.info("with context", extra={"attempt": 2})
    finally:
        reconcile_context.reset(token)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        log.exception("failed")
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["msg"] for r in lines] == ["plain debug", "with context", "failed"]
    assert lines[0]["level"] == "debug" and lines[0]["logger"] == "kuar.test"
    assert lines[0]["ts"].endswith("Z")
    assert lines[1]["controller"] == "loadtest" and lines[1]["key"] == "ns/a"
    assert lines[1]["reconcileID"] == "r-1" and lines[1]["attempt"] == 2
    assert "RuntimeError: boom" in lines[2]["error"]


def test_configure_logging_replaces_its_handler_and_filters_by_level(restore_root_logger) -> None:
    first, second = io.StringIO(), io.StringIO()
    configure_logging("json", "info", stream=first)
    configure_logging("text", "warning", stream=second)
    logging.getLogger("kuar.test").info("hidden")
    logging.getLogger("kuar.test").warning("shown")
    assert first.getvalue() == ""
    assert second.getvalue().rstrip().endswith("WARNING kuar.test: shown")
    with pytest.raises(ValueError, match="log level"):
        configure_logging("text", "loud")
    with pytest.raises(ValueError, match="log format"):
        configure_logging("yaml", "info")  # type: ignore[arg-type]


async def test_metrics_listen_apart_from_the_probes_and_failing_checks_say_why() -> None:
    registry = CollectorRegistry()
    Counter("kuar_test_total", "a test counter", registry=registry).inc()
    server = HealthServer(registry, HealthSettings(port=0, metrics_port=0))
    server.readyz["access"] = lambda: False
    server.set_reason("access", "missing permissions: create jobs.batch")
    await server.start()
    try:
        assert server.metrics_port != server.port
        async with aiohttp.ClientSession() as http:
            base = f"http://127.0.0.1:{server.port}"
            async with http.get(f"{base}/readyz") as resp:
                assert resp.status == 500
                assert "access failed: missing permissions: create jobs.batch" in await resp.text()
            async with http.get(f"{base}/metrics") as resp:
                assert resp.status == 404
            async with http.get(f"http://127.0.0.1:{server.metrics_port}/metrics") as resp:
                assert "kuar_test_total 1.0" in await resp.text()
    finally:
        await server.stop()
