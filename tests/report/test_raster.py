"""The fast raster helpers of the report equal their reference implementations."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from regiontag.report.raster import (
    blend_labels,
    boundary,
    dilate,
    outline,
    resample_plane,
)


def _random_mask(rng: np.random.Generator, shape: tuple[int, int], touch_edge: bool = False) -> np.ndarray:
    mask = ndimage.gaussian_filter(rng.random(shape), 2.5) > 0.52
    if touch_edge:
        mask[:, :3] = True  # outlines must treat the image border as inside (border_value=1)
    return mask


@pytest.mark.parametrize("shape,out", [((30, 18), (120, 75)), ((125, 70), (288, 144)), ((40, 40), (25, 31))])
def test_bilinear_resize_equals_map_coordinates(shape, out):
    rng = np.random.default_rng(1)
    plane = rng.random(shape).astype(np.float32)
    plane[3, 4] = np.nan  # NaN counts as 0
    rows = (np.arange(out[0]) + 0.5) * shape[0] / out[0] - 0.5
    columns = (np.arange(out[1]) + 0.5) * shape[1] / out[1] - 0.5
    expected = ndimage.map_coordinates(np.nan_to_num(plane), np.meshgrid(rows, columns, indexing="ij"), order=1,
                                       mode="nearest")
    resized = resample_plane(plane, out, 1)
    assert resized.shape == out and resized.dtype == np.float32
    np.testing.assert_allclose(resized, expected, atol=1e-5)


def test_nearest_resize_keeps_labels():
    labels = np.arange(12, dtype=np.int32).reshape(3, 4)
    resized = resample_plane(labels, (9, 8), 0)
    assert resized.dtype == np.int32 and set(np.unique(resized)) == set(range(12))
    np.testing.assert_array_equal(resized[::3, ::2], labels)


@pytest.mark.parametrize("width", [1, 2, 3])
@pytest.mark.parametrize("touch_edge", [False, True])
def test_outline_equals_scipy_erosion(width, touch_edge):
    mask = _random_mask(np.random.default_rng(width), (90, 70), touch_edge)
    expected = mask & ~ndimage.binary_erosion(mask, iterations=width, border_value=1)
    np.testing.assert_array_equal(outline(mask, width), expected)
    assert not outline(np.zeros((5, 5), bool), 2).any()


@pytest.mark.parametrize("iterations", [1, 2])
def test_dilate_equals_scipy_dilation(iterations):
    mask = _random_mask(np.random.default_rng(7), (60, 50), touch_edge=True)
    np.testing.assert_array_equal(dilate(mask, iterations), ndimage.binary_dilation(mask, iterations=iterations))


def test_boundary_equals_a_pixel_by_pixel_check():
    labels = ndimage.zoom(np.random.default_rng(3).integers(0, 4, (6, 5)), 4, order=0)
    expected = np.zeros(labels.shape, bool)
    for row in range(labels.shape[0]):
        for column in range(labels.shape[1]):
            neighbours = [(row + dr, column + dc) for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1))]
            expected[row, column] = labels[row, column] > 0 and any(
                labels[r, c] != labels[row, column] for r, c in neighbours
                if 0 <= r < labels.shape[0] and 0 <= c < labels.shape[1]
            )
    np.testing.assert_array_equal(boundary(labels), expected)
    assert expected.any() and not expected.all()


def test_blend_labels_colours_each_label():
    rgb = np.zeros((2, 3, 3), np.float32)
    values = np.array([[1, 2, 0], [2, 1, 7]])
    blend_labels(rgb, values, values > 0, {1: (1.0, 0.0, 0.0), 2: (0.0, 1.0, 0.0)}, alpha=0.5)
    np.testing.assert_allclose(rgb[0, 0], [0.5, 0, 0])
    np.testing.assert_allclose(rgb[0, 1], [0, 0.5, 0])
    np.testing.assert_allclose(rgb[1, 2], [0.4, 0.4, 0.4])  # unknown label: default grey
    np.testing.assert_allclose(rgb[0, 2], [0, 0, 0])
