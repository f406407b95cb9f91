"""Cord self-checks: jumps, CSA range, CSF ring, contrast, field-of-view edge, the cord's inferior end."""

from __future__ import annotations

import numpy as np
import pandas as pd

from regiontag.config import CordConfig
from regiontag.cord.qc import (
    centreline_jumps,
    conus_end,
    cord_qc_warnings,
    csa_outliers,
    edge_slices,
    slice_ranges,
)


def _table(n=20, jump_at=None, csa=70.0):
    z = np.arange(n, dtype=float)[::-1] * 2.0
    x = np.zeros(n)
    if jump_at is not None:
        x[n - 1 - jump_at :] += 8.0  # 8 mm sideways from canonical slice ``jump_at`` down
    return pd.DataFrame({
        "slice": np.arange(n)[::-1], "x_mm": x, "y_mm": np.zeros(n), "z_mm": z,
        "distance_mm": z.max() - z, "csa_mm2": np.full(n, csa), "vertebral_level": [""] * n,
    })


def test_slice_ranges():
    assert slice_ranges([9, 3, 4, 5]) == "3-5, 9"
    assert slice_ranges([]) == ""


def test_jump_is_found_and_a_steady_tilt_is_not():
    assert centreline_jumps(_table(jump_at=6)) == [6]
    tilted = _table()
    tilted["x_mm"] = 0.58 * tilted["z_mm"]  # 30 degrees
    assert centreline_jumps(tilted) == []


def test_csa_outliers_and_edge_slices():
    table = _table()
    table.loc[table["slice"].isin([3, 4]), "csa_mm2"] = 150.0
    assert sorted(csa_outliers(table, (25, 110))) == [3, 4]
    mask = np.zeros((10, 10, 5), bool)
    mask[4:6, 4:6, :] = True
    mask[0, 5, 2] = True
    assert edge_slices(mask) == [2]


def test_warnings_name_the_check_and_the_slices():
    table = _table()
    mask = np.zeros((30, 30, 20), bool)
    mask[10:15, 10:15] = True
    scores = np.full(20, 0.8)
    scores[5:9] = 0.05  # the path left the canal here
    contrast = np.full(20, 0.6)
    warnings, qc = cord_qc_warnings(table, mask, scores, contrast, CordConfig())
    assert warnings == [
        "no CSF ring around the cord (outside the spinal canal or effaced canal) at slices 5-8: check cord_mask.nii.gz"
    ]
    assert qc["no_csf_ring_slices"] == [5, 6, 7, 8] and qc["csa_range_mm2"] == [70.0, 70.0]
    # a single doubtful slice is not worth a warning, a jump always is
    scores[6:9] = 0.8
    assert cord_qc_warnings(table, mask, np.where(np.arange(20) == 5, 0.05, 0.8), contrast, CordConfig())[0] == []
    warnings, _ = cord_qc_warnings(_table(jump_at=6), mask, np.full(20, 0.8), contrast, CordConfig())
    assert len(warnings) == 1 and "jumps" in warnings[0] and "slices 6" in warnings[0]


def _sac(cord_from: int, below: float):
    """Canonical T2-like volume: cord (0.4) from slice ``cord_from`` up, canal content ``below`` beneath."""
    volume = np.full((30, 30, 60), 0.2, dtype=np.float32)
    volume[10:20, 10:20, :cord_from] = below
    volume[12:18, 12:18, cord_from:] = 0.4
    return volume


def test_conus_ends_in_csf_and_a_lost_cord_does_not():
    table = _table(n=30)
    table["slice"] += 30  # cord slices 30..59
    centres = np.full((60, 2), 15.0)
    conus = conus_end(table, _sac(30, below=1.0), centres, (1.0, 1.0, 1.0))
    assert conus["slice"] == 30 and conus["ends_in_csf"] and conus["csf_ratio"] > 2
    lost = conus_end(table, _sac(30, below=0.4), centres, (1.0, 1.0, 1.0))
    assert lost["slice"] == 30 and not lost["ends_in_csf"]
    assert conus_end(_table(n=60), _sac(0, 1.0), centres, (1.0, 1.0, 1.0)) is None  # cord reaches the bottom


def test_one_faint_ring_slice_between_clear_ones_is_not_a_cord_outside_the_canal():
    table = _table()
    scores = np.full(20, 0.8)
    scores[[3, 9]] = 0.05  # two isolated thick slices with a faint ring
    warnings, qc = cord_qc_warnings(table, np.zeros((9, 9, 20), bool), scores, np.full(20, 0.6), CordConfig())
    assert qc["no_csf_ring_slices"] == [] and not any("CSF ring" in warning for warning in warnings)
    scores[[10, 11]] = 0.05  # a run of faint slices stays reported
    warnings, qc = cord_qc_warnings(table, np.zeros((9, 9, 20), bool), scores, np.full(20, 0.6), CordConfig())
    assert qc["no_csf_ring_slices"] == [9, 10, 11]
