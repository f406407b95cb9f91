"""Fixtures of the phantom tests."""

from __future__ import annotations

import pytest

from regiontag.phantoms.anatomy import Anatomy, load_anatomy


@pytest.fixture(scope="session")
def anatomy() -> Anatomy:
    """The phantom anatomy (ICBM152 2009c, about 8 s to build; cached per process)."""
    return load_anatomy()
