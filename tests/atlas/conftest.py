"""Fixtures of the atlas tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from regiontag.atlas.brain import brain_yaml_path


@pytest.fixture()
def broken_brain_yaml(tmp_path: Path) -> Callable[[Callable[[dict], None]], Path]:
    """``broken_brain_yaml(edit)``: a copy of the shipped brain.yaml changed by ``edit(content)``."""

    def write(edit: Callable[[dict], None]) -> Path:
        content = yaml.safe_load(brain_yaml_path().read_text())
        edit(content)
        path = tmp_path / "broken_brain.yaml"
        path.write_text(yaml.safe_dump(content, sort_keys=False))
        return path

    return write
