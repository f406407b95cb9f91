"""``python -m regiontag`` runs the command line."""

from __future__ import annotations

import subprocess
import sys

import regiontag.__main__ as module_entry
from regiontag import __version__
from regiontag.cli.main import main


def test_module_entry_is_the_command_line():
    assert module_entry.main is main


def test_python_dash_m_prints_the_version():
    completed = subprocess.run([sys.executable, "-m", "regiontag", "--version"], capture_output=True, text=True,
                               timeout=120)
    assert completed.returncode == 0
    assert completed.stdout.strip() == f"regiontag {__version__}"
