"""``regiontag.accuracy.plots``: accuracy curves and plots on fabricated evaluation tables."""

from __future__ import annotations

import numpy as np
import pytest
from regiontag.accuracy.plots import (
    accuracy_curve,
    breaking_points,
    write_accuracy_plots,
)

from tests.accuracy.fabricate import PNG_MAGIC, THRESHOLDS, passing_table


def test_accuracy_curves_use_baseline_plus_one_factor():
    table = passing_table()
    snr = accuracy_curve(table, "snr")
    assert snr["level"].tolist() == ["5", "10", "20"]
    assert snr["n"].tolist() == [1, 2, 5]  # the baseline brain sessions, cord excluded
    assert snr.set_index("level").loc["20", "dice"] == pytest.approx(np.mean([0.82, 0.78, 0.9]))
    assert snr.set_index("level").loc["5", "top1"] == 0.0
    thickness = accuracy_curve(table, "slice_thickness_mm")
    assert thickness["level"].tolist() == ["3", "5", "7"]
    rotation = accuracy_curve(table, "rotation_deg")  # actual rotation in 5-degree bins
    assert rotation["level"].tolist() == ["0-5", "5-10", "10-15", "20-25"]
    size = accuracy_curve(table, "lesion_size")  # healthy controls have no lesion size
    assert size["level"].tolist() == ["small", "medium"] and size["n"].tolist() == [1, 3]
    sentences = breaking_points({"slice_thickness_mm": thickness, "snr": snr}, THRESHOLDS)
    assert "lesion Dice below 0.75 at slice thickness (mm) = 5 (0.72), 7 (0.55)" in sentences
    assert any(s.startswith("pattern top-1 below 0.9 at SNR = 5 (0.00)") for s in sentences)
    with pytest.raises(ValueError, match="unknown factor"):
        accuracy_curve(table, "colour")


def test_plots_are_pngs_that_show_data(tmp_path):
    import matplotlib.image

    _, paths = write_accuracy_plots(passing_table(), THRESHOLDS, tmp_path)
    assert set(paths) == {"snr", "slice_thickness_mm", "rotation_deg", "lesion_size"}
    for factor, path in paths.items():
        assert path.name == f"accuracy_vs_{factor}.png"
        assert path.read_bytes()[:8] == PNG_MAGIC
        pixels = matplotlib.image.imread(path)
        assert pixels.shape[0] >= 300 and pixels.shape[1] >= 500
        # the Dice curve colour (#e53e3e) is drawn
        red = (np.abs(pixels[..., 0] - 0xE5 / 255) < 0.05) & (np.abs(pixels[..., 1] - 0x3E / 255) < 0.05)
        assert red.sum() > 50, factor
    # an empty table still gives a (labelled) figure
    empty = passing_table().iloc[0:0]
    _, empty_paths = write_accuracy_plots(empty, THRESHOLDS, tmp_path / "empty")
    assert all(path.read_bytes()[:8] == PNG_MAGIC for path in empty_paths.values())
