"""Locating a PAM50 folder and vertebral spans on the PAM50 grid (folder search moved from tests/cord/test_template_space.py)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from regiontag.atlas.pam50.space import (
    REQUIRED_FILES,
    Pam50NotFoundError,
    Pam50Space,
    find_pam50_dir,
    missing_pam50_file,
)
from regiontag.config import ConfigError


def _fake_pam50(folder: Path) -> Path:
    for name in REQUIRED_FILES:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(b"")
    return folder


def test_pam50_folder_precedence(tmp_path):
    given, configured, sct = (_fake_pam50(tmp_path / name) for name in ("given", "configured", "sct"))
    (tmp_path / "sct_root" / "data").mkdir(parents=True)
    (tmp_path / "sct_root" / "data" / "PAM50").symlink_to(sct, target_is_directory=True)
    environ = {"SCT_DIR": str(tmp_path / "sct_root")}
    assert find_pam50_dir(given, configured, environ) == given
    assert find_pam50_dir(None, configured, environ) == configured
    assert find_pam50_dir(None, None, environ) == tmp_path / "sct_root" / "data" / "PAM50"
    # a .yaml cord atlas in cord.atlas_path is not PAM50: SCT_DIR is used
    yaml_atlas = tmp_path / "cord.yaml"
    yaml_atlas.write_text("name: cord\n")
    assert find_pam50_dir(None, yaml_atlas, environ) == tmp_path / "sct_root" / "data" / "PAM50"


def test_bad_pam50_folders_are_named(tmp_path):
    incomplete = _fake_pam50(tmp_path / "incomplete")
    (incomplete / "template" / "PAM50_levels.nii.gz").unlink()
    with pytest.raises(Pam50NotFoundError, match="PAM50_levels.nii.gz not found"):
        find_pam50_dir(incomplete, None, {})
    with pytest.raises(Pam50NotFoundError, match="cord.atlas_path"):
        find_pam50_dir(None, incomplete, {})
    with pytest.raises(Pam50NotFoundError, match="SCT_DIR"):
        find_pam50_dir(None, None, {"SCT_DIR": str(tmp_path / "no_sct")})


def test_missing_pam50_file_names_the_first_missing_one(tmp_path):
    assert missing_pam50_file(tmp_path / "nowhere") == "the folder itself"
    assert missing_pam50_file(tmp_path) == REQUIRED_FILES[0]
    folder = _fake_pam50(tmp_path / "pam50")
    assert missing_pam50_file(folder) == ""
    (folder / "atlas" / "info_label.txt").unlink()
    assert missing_pam50_file(folder) == "atlas/info_label.txt"
    assert issubclass(Pam50NotFoundError, ConfigError)
    with pytest.raises(Pam50NotFoundError, match="not given: pass --pam50 DIR"):
        find_pam50_dir(None, None, {})


def _space(slice_levels: list[int], distances_mm: list[float]) -> Pam50Space:
    """A Pam50Space with only what the span computations use: slice levels and the centerline."""
    n = len(slice_levels)
    centerline = pd.DataFrame({"slice": np.arange(n), "distance_mm": distances_mm, "csa_mm2": np.ones(n)})
    pam = SimpleNamespace(cord=np.ones((1, 1, n), bool))
    return Pam50Space(pam=pam, atlas=None, radius=np.zeros((1, 1, n)), slice_levels=np.asarray(slice_levels),
                      centerline=centerline, reference_shape=(1, 1, n), reference_affine=np.eye(4))


def test_span_segments_counts_level_shares():
    # C2 slices 0-3, C3 slices 4-7, C4 slices 8-11, C5 slices 12-15; 1 mm apart
    space = _space([2] * 4 + [3] * 4 + [4] * 4 + [5] * 4, list(np.arange(16.0)))
    assert space.span_segments(4.0, 7.0) == ("C3", pytest.approx(1.0))
    text, segments = space.span_segments(2.0, 9.0)  # half of C2, all of C3, half of C4
    assert text == "C2-C4" and segments == pytest.approx(2.0)
    assert space.span_levels(2.0, 9.0) == ("C2-C4", False)
    assert space.span_levels(0.0, 11.0) == ("C2-C4", True)  # 3 segments: longitudinally extensive
    assert space.span_segments(float("nan"), 3.0) == ("", 0.0)
    assert space.span_segments(40.0, 50.0) == ("", 0.0)
    np.testing.assert_allclose(space.slice_distances(), np.arange(16.0))
