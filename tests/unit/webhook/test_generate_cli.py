"""``kuar generate webhooks``: stdout, files, --check, --url, and the committed deploy/webhooks."""

from __future__ import annotations

from pathlib import Path

import yaml
from click.testing import CliRunner

from kuar.cli.main import cli

REPO = Path(__file__).parents[3]


def test_committed_deploy_webhooks_are_up_to_date() -> None:
    result = CliRunner().invoke(cli, ["generate", "webhooks", "kuar_loadtest.webhooks",
                                      "--output-dir", str(REPO / "deploy/webhooks"), "--check"])
    assert result.exit_code == 0, result.output
    assert "3 webhook file(s)" in result.output


def test_stdout_by_url_with_a_ca_bundle(tmp_path: Path) -> None:
    ca = tmp_path / "ca.crt"
    ca.write_bytes(b"-----BEGIN CERTIFICATE-----\n")
    result = CliRunner().invoke(cli, ["generate", "webhooks", "kuar_loadtest.webhooks",
                                      "--url", "https://127.0.0.1:9443", "--ca-bundle", str(ca)])
    assert result.exit_code == 0, result.output
    docs = list(yaml.safe_load_all(result.output))
    assert [d.get("kind") for d in docs] == ["MutatingWebhookConfiguration",
                                             "ValidatingWebhookConfiguration", None]
    validator = docs[1]["webhooks"][0]
    assert validator["clientConfig"]["url"] == \
        "https://127.0.0.1:9443/validate-beta-kuar-com-v2-loadtest"
    assert validator["clientConfig"]["caBundle"] == "LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg=="
    assert docs[2]["spec"]["conversion"]["webhook"]["clientConfig"]["url"].endswith("/convert")


def test_check_reports_stale_files_and_write_fixes_them(tmp_path: Path) -> None:
    runner = CliRunner()
    args = ["generate", "webhooks", "kuar_loadtest.webhooks", "--output-dir", str(tmp_path),
            "--service", "ops/hooks:8443"]
    stale = runner.invoke(cli, [*args, "--check"])
    assert stale.exit_code == 1
    assert "missing or stale" in stale.output
    assert runner.invoke(cli, args).exit_code == 0
    assert runner.invoke(cli, [*args, "--check"]).exit_code == 0
    config = yaml.safe_load((tmp_path / "kuar-validator.yaml").read_text())
    assert config["webhooks"][0]["clientConfig"]["service"] == {
        "namespace": "ops", "name": "hooks", "path": "/validate-beta-kuar-com-v2-loadtest",
        "port": 8443}


def test_bad_arguments_are_one_line_errors() -> None:
    runner = CliRunner()
    both = runner.invoke(cli, ["generate", "webhooks", "kuar_loadtest.webhooks", "--url",
                               "https://x", "--service", "a/b"])
    assert both.exit_code == 2
    http = runner.invoke(cli, ["generate", "webhooks", "kuar_loadtest.webhooks", "--url",
                               "http://x"])
    assert http.exit_code == 1 and "https" in http.output
    missing = runner.invoke(cli, ["generate", "webhooks", "no_such_module_here"])
    assert missing.exit_code == 1
    empty = runner.invoke(cli, ["generate", "webhooks", "json"])
    assert empty.exit_code == 1 and "no webhooks" in empty.output
