"""Helpers of the command-line tests."""

from __future__ import annotations

import argparse
from types import ModuleType


def command_parser(command_module: ModuleType) -> argparse.ArgumentParser:
    """A ``regiontag`` parser holding only ``command_module``'s command, so usage errors read as the user sees them."""
    root = argparse.ArgumentParser(prog="regiontag")
    command_module.add_parser(root.add_subparsers(dest="command"))
    return root
