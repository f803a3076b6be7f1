"""``kuar loadtest run``: logs on stderr from its first line; bad input is one clear record."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kuar.cli", "loadtest", "run", *args],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})


@pytest.mark.parametrize(("args", "message"), [
    (["--health-bind", "nonsense"], "--health-bind must be HOST:PORT"),
    (["--metrics-bind", "127.0.0.1:99999"], "--metrics-bind must be HOST:PORT"),
    (["--webhook-service", "no-slash"], "--webhook-service must be NAMESPACE/NAME[:PORT]"),
    (["--webhook-url", "http://127.0.0.1:9443"], "--webhook-url must be https://HOST:PORT"),
    (["--webhook-service", "a/b", "--webhook-url", "https://127.0.0.1:1"], "not both"),
    (["--cert-dir", "/nonexistent"], "--cert-dir needs --webhook-service"),
])
def test_bad_flags_are_one_json_error_record(args: list[str], message: str) -> None:
    proc = run("--log-format", "json", *args)
    assert proc.returncode == 2, proc.stderr
    assert proc.stdout == ""
    records = [json.loads(line) for line in proc.stderr.splitlines()]  # every line is JSON
    assert records[0]["msg"].startswith("kuar-loadtest-operator ")
    errors = [r for r in records if r["level"] == "error"]
    assert len(errors) == 1 and message in errors[0]["msg"]


def test_a_missing_kubeconfig_is_logged_and_exits_1(tmp_path) -> None:  # type: ignore[no-untyped-def]
    proc = run("--log-format", "text", "--health-bind", "127.0.0.1:0",
               "--metrics-bind", "127.0.0.1:0", env={"KUBECONFIG": str(tmp_path / "none")})
    assert proc.returncode == 1
    lines = proc.stderr.splitlines()
    assert "INFO" in lines[0] and "kuar-loadtest-operator" in lines[0]
    assert "ERROR" in lines[-1] and f"kubeconfig {tmp_path / 'none'} does not exist" in lines[-1]


def test_servers_bind_loopback_locally_and_all_addresses_in_a_pod(
    tmp_path, monkeypatch: pytest.MonkeyPatch  # type: ignore[no-untyped-def]
) -> None:
    from kuar_loadtest import cli

    token = tmp_path / "token"
    monkeypatch.setattr(cli, "SA_TOKEN", str(token))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
    assert cli._default_host() == "127.0.0.1"  # no token mounted: not a pod
    token.write_text("t")
    assert cli._default_host() == "0.0.0.0"
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST")
    assert cli._default_host() == "127.0.0.1"


def test_worker_flags_reach_the_operator_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """--image and --worker-ca-file become the settings every Job is built from (a target with
    its own CA, like kuar's HTTPS demo service, is verified with that file in each worker)."""
    from types import SimpleNamespace
    from typing import Any

    from click.testing import CliRunner

    from kuar_loadtest import cli
    from kuar_loadtest.api.v2 import LoadTest
    from kuar_loadtest.desired import ResolvedTarget, desired_job, run_spec

    built: list[Any] = []

    class Manager:
        async def run(self) -> None:
            return None

    class FakeClient:
        def __init__(self, config: Any) -> None:
            self.config = SimpleNamespace(server="https://127.0.0.1:1")

        async def close(self) -> None:
            return None

    async def fake_config(path: str | None) -> None:
        return None

    def fake_build(client: Any, options: Any) -> Manager:
        built.append(options)
        return Manager()

    monkeypatch.setattr(cli, "configure_logging", lambda *a: None)  # keep the root logger as is
    monkeypatch.setattr(cli, "load_config", fake_config)
    monkeypatch.setattr(cli, "Client", FakeClient)
    monkeypatch.setattr(cli, "build_manager", fake_build)
    result = CliRunner().invoke(cli.loadtest, [
        "run", "--log-format", "json", "--image", "kuar.dev/loadgen:0.1.0@sha256:" + "0" * 64,
        "--worker-ca-file", "/etc/kuar/target-ca.crt"])
    assert result.exit_code == 0, result.output
    [options] = built
    assert options.settings.ca_file == "/etc/kuar/target-ca.crt"
    assert options.settings.image == "kuar.dev/loadgen:0.1.0@sha256:" + "0" * 64
    lt = LoadTest.decode({"apiVersion": "beta.kuar.com/v2", "kind": "LoadTest",
                          "metadata": {"name": "t", "namespace": "n", "uid": "u"},
                          "spec": {"target": {"service": "web", "scheme": "https"},
                                   "load": {"requestsPerSecond": 10}}})
    target = ResolvedTarget("https://web.n.svc:443", 443)
    job = desired_job(lt, target, options.settings, start_at=0.0).encode()
    [container] = job["spec"]["template"]["spec"]["containers"]
    assert container["image"] == options.settings.image
    assert run_spec(lt, target, options.settings).ca_file == "/etc/kuar/target-ca.crt"

    built.clear()
    assert CliRunner().invoke(cli.loadtest, ["run"]).exit_code == 0
    assert built[0].settings.ca_file is None
