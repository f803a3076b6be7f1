"""kuar's command-line conventions hold for every command, plugins included (README)."""

from __future__ import annotations

from collections.abc import Iterator

import click
from click.testing import CliRunner

from kuar.cli.main import cli


def _commands(group: click.Group, path: str = "kuar") -> Iterator[tuple[str, click.Command]]:
    for name, command in sorted(group.commands.items()):
        yield f"{path} {name}", command
        if isinstance(command, click.Group):
            yield from _commands(command, f"{path} {name}")


def test_o_is_always_an_output_format_and_folders_are_output_dir() -> None:
    found = dict(_commands(cli))
    assert {"kuar generate crds", "kuar generate models", "kuar loadtest report",
            "kuar apply"} <= set(found)
    for path, command in found.items():
        for param in command.params:
            if "-o" in param.opts or "--output" in param.opts:
                assert param.opts == ["-o", "--output"], path
                assert isinstance(param.type, click.Choice) and "json" in param.type.choices, path
            if "--output-dir" in param.opts:
                assert param.opts == ["-d", "--output-dir"], path
    for name in ("crds", "rbac", "webhooks", "models"):
        opts = [o for p in found[f"kuar generate {name}"].params for o in p.opts]
        assert "--output-dir" in opts and "--check" in opts, name


def test_failures_are_one_lower_case_error_line() -> None:
    runner = CliRunner()
    usage = runner.invoke(cli, ["generate", "crds", "json", "--no-such-flag"])
    assert usage.exit_code == 2
    assert usage.output.splitlines()[-1] == "error: No such option '--no-such-flag'."
    failed = runner.invoke(cli, ["generate", "crds", "json"])
    assert failed.exit_code == 1
    assert failed.output == "error: json declares no CustomResource classes\n"
    assert "Error:" not in usage.output + failed.output


def test_generate_help_names_everything_it_generates() -> None:
    text = CliRunner().invoke(cli, ["generate", "--help"]).output
    for what in ("CRDs", "RBAC", "webhook configurations", "typed models"):
        assert what in text
