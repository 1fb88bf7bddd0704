"""The console script imports only the module of the command it runs: the map it goes by must
name every command the modules register, with the module that registers it."""

from __future__ import annotations

import argparse

import pytest

from callcenter.cli import COMMAND_MODULES, build_parser


def _commands(parser: argparse.ArgumentParser) -> set[str]:
    (subparsers,) = (a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return set(subparsers.choices)


def test_the_map_names_every_registered_command() -> None:
    assert _commands(build_parser()) == set(COMMAND_MODULES)


@pytest.mark.parametrize("command", sorted(COMMAND_MODULES))
def test_each_command_is_registered_by_its_own_module(command: str) -> None:
    assert command in _commands(build_parser(command))


def test_an_unknown_command_gets_the_full_list() -> None:
    with pytest.raises(SystemExit) as exit_:
        build_parser("nonsense").parse_args(["nonsense"])
    assert exit_.value.code == 2
