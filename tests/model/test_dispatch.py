"""The `seqcast` dispatcher: one command, each subcommand's module imported when it runs."""

from __future__ import annotations

import importlib

import pytest

from model.dispatch import COMMANDS, main


def test_serve_is_the_service_and_the_rest_is_the_trainer() -> None:
    assert COMMANDS["serve"][0] == "app.cli"
    assert {module for name, (module, _) in COMMANDS.items() if name != "serve"} == {"model.cli"}


def test_every_subcommand_is_one_its_module_parses() -> None:
    for name, (module, _) in COMMANDS.items():
        parser = importlib.import_module(module).build_parser()
        with pytest.raises(SystemExit) as exit_:
            parser.parse_args([name, "--help"])
        assert exit_.value.code == 0


def test_help_lists_every_subcommand(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert all(name in out and summary in out for name, (_, summary) in COMMANDS.items())


def test_an_unknown_subcommand_is_refused_naming_the_commands(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["bogus"])
    assert exit_.value.code == 2
    assert "serve" in capsys.readouterr().err
