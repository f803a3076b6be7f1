"""The built docs and a ``kuar loadtest report`` HTML file, opened in headless Chromium.

Debian's ``chromium`` (``make chromium``, part of ``make test``) driven by Playwright with
``executable_path``. Every page of the site loads without console errors or failed requests
and every link within the site resolves (file and ``#fragment``); the report, produced by the
real ``kuar loadtest report`` command from a real load-generator run against a local server,
shows every plot with a nonzero size. One screenshot of each is kept in ``build/screenshots``
(a CI artifact, not committed).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from html import escape as html_escape
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlparse

import pytest
from aiohttp import web
from playwright.async_api import Browser, Page, async_playwright

from kuar.client import Api, Client, apply_manifests, load_config
from kuar.models.core.v1 import ConfigMap
from kuar.resources import ObjectMeta
from kuar.testing import ControlPlane, ControlPlaneSettings, eventually_async
from kuar_loadtest.api.run import LoadTestRun
from kuar_loadtest.local import local_webhooks
from tests.docs.conftest import ROOT, SCREENSHOTS, SITE

sys.path.insert(0, str(ROOT / "docs" / "_ext"))
import loadtest_manual  # docs/_ext is not a package

pytestmark = pytest.mark.controlplane

CHROMIUM = os.environ.get("KUAR_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
SITE_INDEX = SITE / "index.html"
PHASES = {"Pending", "Running", "Succeeded", "Failed"}
SEED = ROOT / "src" / "kuar_loadtest" / "seed" / "my-loadtest.yaml"


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    assert Path(CHROMIUM).exists(), f"{CHROMIUM} missing: run `make chromium` (apt-get)"
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            await browser.close()


class PageProblems:
    """Console errors, uncaught exceptions and failed requests of one page."""

    def __init__(self, page: Page) -> None:
        self.errors: list[str] = []
        page.on("console", lambda m: self.errors.append(f"console: {m.text}")
                if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"exception: {e}"))
        page.on("requestfailed", lambda r: self.errors.append(
            f"request failed: {r.url} {r.failure}"))


async def _visit(browser: Browser, path: Path) -> tuple[list[str], set[str], list[str]]:
    """Open one page: its problems, its element ids and the links on it."""
    page = await browser.new_page()  # one page per document: listeners see only its messages
    try:
        seen = PageProblems(page)
        await page.goto(path.as_uri(), wait_until="load")
        ids = await page.eval_on_selector_all("[id]", "els => els.map(e => e.id)")
        hrefs = await page.eval_on_selector_all("a[href]", "els => els.map(a => a.href)")
        if path == SITE_INDEX:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(SCREENSHOTS / "docs-index.png"), full_page=True)
        return seen.errors, set(ids), hrefs
    finally:
        await page.close()


# The first test to ask for docs_site pays for the build (30 s on a quiet 2-core machine,
# 150 s when it is shared with four other builds), hence more than the default 300 s.
@pytest.mark.timeout(600)
def test_the_site_builds_with_warnings_as_errors(docs_site: Path) -> None:
    # the build is the session fixture (-W -n: a warning fails it); here its size is checked
    pages = list(docs_site.rglob("*.html"))
    assert len(pages) >= 20, pages
    manual = (docs_site / "loadtest" / "manual.html").read_text()
    for resource in loadtest_manual.resources("kuar_loadtest.api"):
        for part in ("spec", "status"):
            missing = [r.path for r in loadtest_manual.field_rows(resource, part)
                       if f">{r.path}<" not in manual]
            assert missing == [], f"{resource.resource_info().version} {part}: {missing}"
    reasons = {r.reason for r in loadtest_manual.reason_rows("kuar_loadtest", PHASES)}
    assert {"Completed", "TargetUnreachable", "ServiceNotFound"} <= reasons
    assert [r for r in reasons if f">{html_escape(r)}<" not in manual] == []


# One browser page per document, three at a time; a few seconds per page on a loaded
# 2-core machine, hence more than the default 300 s.
@pytest.mark.timeout(600)
async def test_every_page_loads_cleanly_and_every_link_resolves(docs_site: Path) -> None:
    pages = sorted(docs_site.rglob("*.html"))
    gate = asyncio.Semaphore(3)
    async with chromium() as browser:
        async def visit(path: Path) -> tuple[list[str], set[str], list[str]]:
            async with gate:
                return await _visit(browser, path)

        visits = dict(zip(pages, await asyncio.gather(*map(visit, pages)), strict=True))
    problems = {str(p.relative_to(docs_site)): v[0] for p, v in visits.items() if v[0]}
    assert problems == {}
    ids = {p: v[1] for p, v in visits.items()}
    links = [(p, href) for p, v in visits.items() for href in v[2] if href.startswith("file:")]
    external = sum(1 for v in visits.values() for href in v[2] if not href.startswith("file:"))
    broken = []
    for source, href in links:
        url, fragment = urldefrag(href)
        target = Path(unquote(urlparse(url).path))
        if target.is_dir():
            target = target / "index.html"
        if not target.exists():
            broken.append(f"{source.relative_to(docs_site)} -> {href}: no such file")
        elif fragment and target in ids and unquote(fragment) not in ids[target]:
            broken.append(f"{source.relative_to(docs_site)} -> {href}: no #{fragment}")
    assert broken == []
    print(f"{len(pages)} pages, {len(links)} links within the site checked, "
          f"{external} external links not followed")
    assert len(pages) >= 20 and len(links) > len(pages)


async def _hello(request: web.Request) -> web.Response:
    return web.Response(text="ok")


async def _load_result() -> str:
    """A real run of the load generator against a local server: its JSON result."""
    app = web.Application()
    app.router.add_get("/{tail:.*}", _hello)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        run = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "kuar_loadgen", "--url", f"http://127.0.0.1:{port}/",
            "--rps", "200", "--duration", "3", "--processes", "1", "--json", "--no-progress",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(run.communicate(), 60)
    finally:
        await runner.cleanup()
    assert run.returncode == 0, err.decode()
    return out.decode().strip().splitlines()[-1]


async def _report(kubeconfig: Path, html: Path) -> Path:
    """``kuar loadtest report my-loadtest --html FILE``, the real command."""
    report = await asyncio.to_thread(subprocess.run, [
        sys.executable, "-m", "kuar.cli", "loadtest", "report", "my-loadtest", "-n", "default",
        "--kubeconfig", str(kubeconfig), "--html", str(html)],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "COLUMNS": "200", "MPLBACKEND": "Agg"})
    assert report.returncode == 0, report.stderr
    assert "my-loadtest" in report.stdout
    return html


async def test_the_loadtest_report_shows_its_plots(tmp_path: Path) -> None:
    # A control plane of its own: the LoadTest CRD installed here (both versions, conversion
    # by the operator's webhooks) must not change the one other tests install on the shared
    # plane (kubectl explain would show another version).
    result = await _load_result()
    plane = ControlPlane(ControlPlaneSettings())
    await asyncio.to_thread(plane.start)
    try:
        async with Client(await load_config(plane.kubeconfig)) as client, \
                local_webhooks(client):
            await apply_manifests(client, _yaml_docs(SEED), field_manager="docs-test")
            # an Established CRD can still answer 429 "storage is (re)initializing" for a
            # moment; the report lists the LoadTest's runs
            await eventually_async(
                lambda: Api(client, LoadTestRun, namespace="default").list(), timeout=30)
            await client.request(
                "PATCH", "/apis/beta.kuar.com/v1/namespaces/default/loadtests/my-loadtest/status",
                body={"status": {"phase": "Succeeded", "observedGeneration": 1,
                                 "message": "measured by the docs test"}},
                content_type="application/merge-patch+json")
            await Api(client, ConfigMap, namespace="default").create(ConfigMap(
                metadata=ObjectMeta(name="my-loadtest-results"), data={"result.json": result}))
            html = await _report(plane.kubeconfig, tmp_path / "report.html")
    finally:
        await asyncio.to_thread(plane.stop)

    async with chromium() as browser:
        page = await browser.new_page(viewport={"width": 1000, "height": 800})
        seen = PageProblems(page)
        await page.goto(html.as_uri(), wait_until="load")
        plots = await page.eval_on_selector_all("img", """imgs => imgs.map(i => ({
            alt: i.alt, complete: i.complete, natural: [i.naturalWidth, i.naturalHeight],
            box: [i.getBoundingClientRect().width, i.getBoundingClientRect().height]}))""")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(SCREENSHOTS / "loadtest-report.png"), full_page=True)
        title = await page.title()
    assert seen.errors == []
    assert title == "LoadTest my-loadtest"
    assert [p["alt"] for p in plots] == [
        "latency by percentile", "achieved rate over time", "latency p50 and p99 per second",
        "errors per second"]  # no LoadTestRun here: no history plot
    for plot in plots:
        assert plot["complete"] and min(plot["natural"]) > 0 and min(plot["box"]) > 0, plot
    assert json.loads(result)["requests"] > 0


def _yaml_docs(path: Path) -> list[dict[str, object]]:
    import yaml

    return [d for d in yaml.safe_load_all(path.read_text()) if d]
