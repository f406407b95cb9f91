"""Longitudinal lesion extent, vertebral levels and the CSA ratio."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from regiontag.config import CordConfig
from regiontag.cord.levels import csa_ratio, lesion_table, level_at, level_method, level_range
from regiontag.cord.segmentation import CENTERLINE_COLUMNS


def _straight_centerline(n_slices: int, step_mm: float, area: np.ndarray | None = None) -> pd.DataFrame:
    """Centreline of a straight cord on slices 0..n-1 (slice n-1 at the top)."""
    slices = np.arange(n_slices)[::-1]
    z = slices * step_mm
    return pd.DataFrame(
        {
            "slice": slices,
            "x_mm": 0.0,
            "y_mm": 0.0,
            "z_mm": z,
            "distance_mm": z.max() - z,
            "csa_mm2": 80.0 if area is None else area[slices],
            "vertebral_level": "",
        },
        columns=CENTERLINE_COLUMNS,
    )


def test_levels_need_an_anchor():
    assert level_at([0.0, 50.0], CordConfig()).tolist() == ["", ""]
    assert level_range(0.0, 50.0, CordConfig()) == ""
    assert "not estimated" in level_method(CordConfig())


def test_levels_counted_from_the_anchor():
    config = CordConfig(top_vertebral_level="C2", segment_length_mm=18.0)
    assert level_at([0.0, 17.9, 18.0, 90.0], config).tolist() == ["C2", "C2", "C3", "C7"]
    assert level_at([110.0], config).tolist() == ["T1"]
    assert level_range(20.0, 75.0, config) == "C3-C6"
    assert level_range(20.0, 30.0, config) == "C3"
    assert "C2" in level_method(config) and "+/- 1 level" in level_method(config)


def test_invalid_anchor_is_rejected():
    with pytest.raises(ValueError):
        CordConfig(top_vertebral_level="C9")


def test_lesion_table_lengths_and_extensive_flag():
    config = CordConfig(top_vertebral_level="C1", segment_length_mm=18.0)
    n_slices, step = 120, 1.0
    mask = np.zeros((10, 10, n_slices), dtype=bool)
    mask[4:6, 4:6, 20:80] = True  # 60 slices -> 60 mm: 3.3 segments
    mask[2:4, 2:4, 100:110] = True  # 10 mm
    table = lesion_table(mask, _straight_centerline(n_slices, step), config)
    assert list(table["length_mm"]) == pytest.approx([60.0, 10.0])
    assert list(table["longitudinally_extensive"]) == [True, False]
    long, short = table.iloc[0], table.iloc[1]
    assert long["top_mm"] == pytest.approx(119 - 79) and long["bottom_mm"] == pytest.approx(119 - 20)
    assert long["vertebral_levels"] == "C3-C6"
    assert short["vertebral_levels"] == "C1-C2"
    assert short["segments"] == pytest.approx(10 / 18)


def test_lesion_length_uses_distance_along_a_curved_cord():
    n_slices = 50
    centerline = _straight_centerline(n_slices, 2.0)
    centerline["distance_mm"] = centerline["distance_mm"] * 1.25  # oblique cord: 2.5 mm per slice
    mask = np.zeros((5, 5, n_slices), dtype=bool)
    mask[2, 2, 10:20] = True
    table = lesion_table(mask, centerline, CordConfig())
    assert table["length_mm"].iloc[0] == pytest.approx(10 * 2.5)


def test_csa_ratio_detects_swelling():
    config = CordConfig(csa_reference_mm=10.0)
    area = np.full(100, 80.0)
    area[40:60] = 100.0  # slices 40..59 swollen
    centerline = _straight_centerline(100, 1.0, area)
    top, bottom = 99 - 59, 99 - 40
    assert csa_ratio(centerline, top, bottom, config) == pytest.approx(1.25)
    assert np.isnan(csa_ratio(centerline, 0.0, 99.0, config))  # no reference outside the lesion


def test_cord_config_rejects_unordered_area_bounds():
    with pytest.raises(ValueError, match="min_csa_mm2"):
        CordConfig(min_csa_mm2=150.0, max_csa_mm2=140.0)
