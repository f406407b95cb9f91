"""Command-line command groups, one module each (see regiontag.cli.main)."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from regiontag.config import Config


def load_config_or_report(command: str, path: str | Path | None) -> Config | None:
    """The run configuration (defaults overridden by ``path``), or None after printing why not.

    Parameters
    ----------
    command : str
        Command name for the message (``regiontag COMMAND: <file>: <field>: <problem>`` on stderr).
    path : str or Path, optional
        ``--config`` file.

    Returns
    -------
    Config or None
        None when the file is missing or invalid; the command then exits with status 2.
    """
    from regiontag.config import ConfigError, load_config

    try:
        return load_config(path)
    except ConfigError as error:
        print(f"regiontag {command}: {error}", file=sys.stderr)
        return None


_RST_ROLE = re.compile(r":[a-z]+:`~?([^`]+)`")
_RST_LITERAL = re.compile(r"``([^`]+)``")


def plain_help(docstring: str | None) -> str:
    """A module docstring as ``--help`` text: rst literals and roles without their markup.

    Examples
    --------
    >>> plain_help("Writes ``OUT/truth/`` for :func:`regiontag.accuracy.evaluate`.")
    'Writes OUT/truth/ for regiontag.accuracy.evaluate.'
    """
    text = _RST_ROLE.sub(r"\1", docstring or "")
    return _RST_LITERAL.sub(r"\1", text)
