"""Spinal-cord figures of the session report (``regiontag.report.figures_cord``) on a synthetic cord."""

from __future__ import annotations

import numpy as np
import pytest

from regiontag.report.figures import BACKGROUND, LESION_COLOR, hex_rgb
from regiontag.report.figures_cord import (
    AXIAL_CELL_PX,
    CORD_REGION_COLORS,
    axial_levels,
    cord_axial_figure,
    cord_centre_x,
    cord_label_colors,
    cord_sagittal_figure,
    filled,
    short_region_name,
)
from tests.report.fabricate import png_pixels

SHAPE = (30, 30, 40)  # canonical RAS: x left-right, y posterior-anterior, z inferior-superior
ZOOMS = (1.0, 1.0, 2.0)
AFFINE = np.diag([1.0, 1.0, 2.0, 1.0])
LESION_RGB = np.rint(np.asarray(LESION_COLOR) * 255).astype(int)
NAMES = {1: "Spinal cord > Spinal white matter > Posterior column [left]",
         2: "Spinal cord > Spinal white matter > Posterior column [right]"}


@pytest.fixture(scope="module")
def cord():
    """A straight cord (radius 4 voxels) along z, a lesion in its posterior half on slices 15-24."""
    x, y, _ = np.indices(SHAPE)
    mask = ((x - 15) ** 2 + (y - 15) ** 2 <= 16).astype(np.uint8)
    background = np.where(mask > 0, 400.0, 100.0).astype(np.float32)
    background += np.random.default_rng(0).normal(0, 5, SHAPE).astype(np.float32)
    lesion = np.zeros(SHAPE, dtype=np.uint8)
    lesion[12:19, 11:15, 15:25] = 1
    lesion &= mask
    labels = np.where(mask > 0, np.where(x < 15, 1, 2), 0).astype(np.int16)
    return background, mask, lesion, labels


def lesion_pixels(pixels: np.ndarray) -> np.ndarray:
    """Pixels drawn in the lesion colour (exactly, or blended over grey with the fill alpha)."""
    red = pixels[..., 0].astype(int)
    return (red > 150) & (red - pixels[..., 1] > 90) & (red - pixels[..., 2] > 90)


def test_filled_and_names():
    canvas = filled((3, 4), BACKGROUND)
    assert canvas.shape == (3, 4, 3) and canvas.dtype == np.uint8
    assert (canvas == np.rint(hex_rgb(BACKGROUND) * 255)).all()
    assert filled((1, 1), "#ffffff", np.float32)[0, 0].tolist() == [1.0, 1.0, 1.0]
    assert short_region_name("Spinal cord > Spinal grey matter > Dorsal horn [left]") == "Dorsal horn [left]"
    assert short_region_name("Cord") == "Cord"


def test_cord_label_colors_by_keyword():
    names = {1: NAMES[1], 2: NAMES[2], 3: "Spinal cord > Lateral column [left]", 7: "something else"}
    colors = cord_label_colors(names, [1, 2, 3, 7, 9])
    posterior = dict(CORD_REGION_COLORS)[("posterior col", "dorsal col", "posterior funic", "dorsal funic")]
    assert colors[1] == posterior
    assert colors[2] == pytest.approx(tuple(0.82 * c for c in posterior))  # right side a shade darker
    assert colors[3] == (1.0, 0.6, 0.15)
    assert set(colors) == {1, 2, 3, 7, 9}  # unknown names keep a palette colour


def test_cord_centre_x(cord):
    _, mask, _, _ = cord
    np.testing.assert_allclose(cord_centre_x(mask), 15.0)
    shifted = np.zeros(SHAPE, dtype=np.uint8)
    shifted[10, 5, 0] = shifted[20, 5, 39] = 1  # centre 10 at the bottom, 20 at the top: interpolated between
    centre = cord_centre_x(shifted)
    assert centre[0] == 10 and centre[39] == 20 and centre[20] == pytest.approx(10 + 10 * 20 / 39)
    np.testing.assert_allclose(cord_centre_x(np.zeros(SHAPE)), SHAPE[0] / 2)


def test_axial_levels(cord):
    _, mask, lesion, _ = cord
    levels = axial_levels(mask, lesion, 3)
    assert len(levels) == 3 and all(15 <= level <= 24 for level in levels)
    area = lesion.sum(axis=(0, 1))
    assert int(np.argmax(area)) in levels
    assert axial_levels(mask, None, 3) == [10, 20, 29]  # spread over the cord, quartiles
    assert axial_levels(mask, np.zeros(SHAPE), 3) == [10, 20, 29]
    assert axial_levels(np.zeros(SHAPE), None) == [SHAPE[2] // 2]


def test_axial_figure_shape_and_lesion_outline(cord):
    background, mask, lesion, labels = cord
    levels = [5, 18, 22]  # no lesion on slice 5
    pixels = png_pixels(cord_axial_figure(background, mask, labels, lesion, ZOOMS, AFFINE, NAMES, levels))
    title_px, gap, cell = 22, 8, AXIAL_CELL_PX
    legend_rows = 2  # two labels and the lesion swatch, two per row
    assert pixels.shape == (title_px + 2 * cell + gap + 12 + legend_rows * 17 + 6, 3 * 170 + 2 * gap, 3)
    width = pixels.shape[1]
    offset = (width - (gap + 3 * (cell + gap))) // 2
    top_row = slice(title_px, title_px + cell)
    bottom_row = slice(title_px + cell + gap, title_px + 2 * cell + gap)
    for column, level in enumerate(levels):
        left = offset + gap + column * (cell + gap)
        columns = slice(left, left + cell)
        assert not lesion_pixels(pixels[top_row, columns]).any()  # anatomy with the cord outline only
        drawn = np.argwhere(lesion_pixels(pixels[bottom_row, columns]))
        if level == 5:
            assert drawn.size == 0
        else:
            assert len(drawn) > 20
            # rows run anterior (top) to posterior (bottom): the posterior lesion is in the lower half
            assert drawn[:, 0].mean() > cell / 2
            assert np.all(np.abs(pixels[bottom_row, columns][tuple(drawn.T)] - LESION_RGB).max(axis=1) <= 1)


def test_axial_figure_without_labels_or_lesion(cord):
    background, mask, _, _ = cord
    pixels = png_pixels(cord_axial_figure(background, mask, None, None, ZOOMS, AFFINE, {}, [10, 20]))
    assert pixels.shape[0] == 22 + 2 * AXIAL_CELL_PX + 8 + 12 + 1 * 17 + 6  # legend: the lesion swatch only
    panels = pixels[22: 22 + 2 * AXIAL_CELL_PX + 8]
    assert not lesion_pixels(panels).any()


def test_sagittal_figure_shape_and_lesion_extent(cord):
    background, mask, lesion, _ = cord
    pixels = png_pixels(cord_sagittal_figure(background, mask, lesion, ZOOMS))
    title_px, axis_px = 24, 30
    panel_h = pixels.shape[0] - title_px - axis_px
    assert 370 <= panel_h <= 380  # the cord's 80 mm fill the 380 px panel height
    rows = np.flatnonzero(lesion_pixels(pixels[title_px: title_px + panel_h]).any(axis=1))
    # slices 15-24 of 40, superior at the top: display rows 15-24 of 40
    row_px = panel_h / SHAPE[2]
    assert abs(rows.min() - 15 * row_px) <= 3 and abs(rows.max() + 1 - 25 * row_px) <= 3
    without = png_pixels(cord_sagittal_figure(background, mask, None, ZOOMS))
    assert without.shape == pixels.shape
    assert not lesion_pixels(without).any()


def test_sagittal_figure_extent_label_is_drawn(cord):
    background, mask, lesion, _ = cord
    measured = png_pixels(cord_sagittal_figure(background, mask, lesion, ZOOMS))
    labelled = png_pixels(cord_sagittal_figure(background, mask, lesion, ZOOMS, "a much longer label C2-C5"))
    changed = np.argwhere((measured != labelled).any(axis=2))
    assert len(changed) > 50  # only the bracket text differs
    assert changed[:, 1].min() > measured.shape[1] / 3
