"""Fixtures of the report tests: a fabricated batch output folder (see ``tests/report/fabricate.py``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.report.fabricate import fabricate_batch


@pytest.fixture(scope="module")
def batch_dir(tmp_path_factory) -> Path:
    """A fabricated batch (brain ok, cord warning, failed session), one per test module (tests write reports)."""
    output_dir = tmp_path_factory.mktemp("report") / "out"
    fabricate_batch(output_dir)
    return output_dir
