"""Fixtures of the pattern tests (plain helpers are in ``tests/patterns/helpers.py``)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from regiontag.patterns import load_library
from regiontag.resources import patterns_dir


@pytest.fixture(scope="module")
def library():
    """The shipped library (read-only)."""
    return load_library(patterns_dir())


@pytest.fixture()
def library_dir(tmp_path) -> Path:
    """A copy of the shipped library folder that a test may change."""
    target = tmp_path / "patterns"
    shutil.copytree(patterns_dir(), target)
    return target
