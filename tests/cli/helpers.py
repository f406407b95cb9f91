"""Helpers of the command-line tests."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from types import ModuleType

import pytest


def command_parser(command_module: ModuleType) -> argparse.ArgumentParser:
    """A ``regiontag`` parser holding only ``command_module``'s command, so usage errors read as the user sees them."""
    root = argparse.ArgumentParser(prog="regiontag")
    command_module.add_parser(root.add_subparsers(dest="command"))
    return root


def usage_error(parse: Callable[[list[str]], object], argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    """The last stderr line of ``parse(argv)``, which must exit with status 2 (an argparse usage error)."""
    with pytest.raises(SystemExit) as exit_info:
        parse(argv)
    assert exit_info.value.code == 2
    return capsys.readouterr().err.strip().splitlines()[-1]
