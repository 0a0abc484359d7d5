"""Every `seqcast` subcommand has a description and every option a help text; `--preset`
offers the presets that exist."""

from __future__ import annotations

import argparse

import pytest

from app import cli as service_cli
from model import cli as trainer_cli
from model import dispatch
from model.presets import PRESETS


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (sub,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(sub.choices)


def _all_subcommands() -> dict[str, argparse.ArgumentParser]:
    found = {**_subcommands(trainer_cli.build_parser()), **_subcommands(service_cli.build_parser())}
    assert set(found) == set(dispatch.COMMANDS)  # each command `seqcast --help` lists is here
    return found


@pytest.mark.parametrize("name", list(dispatch.COMMANDS))
def test_every_subcommand_is_described_and_every_option_helped(name: str) -> None:
    parser = _all_subcommands()[name]
    assert parser.description and len(parser.description) > 20, name
    options = [a for a in parser._actions if not isinstance(a, argparse._HelpAction)]
    assert options, name
    for action in options:
        assert action.help and action.help != argparse.SUPPRESS, (name, action.option_strings)
    assert "%(default)s" not in parser.format_help() and parser.format_help().count("\n") > 5


def test_preset_lists_the_presets_that_exist() -> None:
    (preset,) = [a for a in _all_subcommands()["train"]._actions if "--preset" in a.option_strings]
    assert list(preset.choices or []) == list(PRESETS)
    assert preset.help is not None and all(name in preset.help for name in PRESETS)
