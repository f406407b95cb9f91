"""Shared fixtures: the ../shared data folder (real scans, PAM50) and temporary caches."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def _shared_dir() -> Path | None:
    candidates = [os.environ.get("REGIONTAG_SHARED"), REPO_ROOT.parent / "shared"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "data").is_dir():
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The ``../shared`` folder beside the checkout; tests using it skip when it is absent."""
    found = _shared_dir()
    if found is None:
        pytest.skip("../shared/data not found beside the checkout (set REGIONTAG_SHARED to its folder)")
    return found


@pytest.fixture(scope="session")
def real_brain_dir(shared_dir: Path) -> Path:
    """Folder with the real clinical brain scans (patient12 FLAIR/T2W/T1W)."""
    path = shared_dir / "data" / "real" / "brain"
    if not path.is_dir():
        pytest.skip(f"{path} not found")
    return path


@pytest.fixture(scope="session")
def real_cord_dir(shared_dir: Path) -> Path:
    """Folder with the real cord T2 scan and its manual cord mask."""
    path = shared_dir / "data" / "real" / "cord"
    if not path.is_dir():
        pytest.skip(f"{path} not found")
    return path


@pytest.fixture(scope="session")
def pam50_dir(shared_dir: Path) -> Path:
    """The PAM50 spinal cord template and atlas (SCT)."""
    path = shared_dir / "data" / "pam50"
    if not path.is_dir():
        pytest.skip(f"{path} not found")
    return path
