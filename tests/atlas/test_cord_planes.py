"""Cross-section planes of an oblique cord and its turn about its own axis (``regiontag.atlas.cord_planes``)."""

from __future__ import annotations

import numpy as np
import pytest

from regiontag.atlas.cord_planes import centreline_tangents, cord_roll, cross_section_planes, rotation


def _ellipse(half_width: float, half_depth: float, degrees: float, step: float = 0.25) -> np.ndarray:
    """(2, n) in-plane offsets of an elliptical section turned ``degrees`` from +x towards +y."""
    axis = np.arange(-9.0, 9.0 + step / 2, step)
    grid = np.stack(np.meshgrid(axis, axis)).reshape(2, -1)
    along, across = rotation([degrees])[0] @ grid
    return grid[:, (along / half_width) ** 2 + (across / half_depth) ** 2 <= 1.0]


def test_tangents_of_a_straight_tilted_line_are_its_direction():
    direction = np.array([0.3, -0.4, 1.0]) / np.linalg.norm([0.3, -0.4, 1.0])
    line = np.arange(20.0)[:, None] * direction
    assert np.allclose(centreline_tangents(line), direction, atol=1e-6)
    assert centreline_tangents(line[:1]).tolist() == [[0.0, 0.0, 1.0]]


def test_planes_project_along_the_tangent_and_keep_near_axial_slices():
    tilt = np.radians(40.0)
    planes = cross_section_planes(np.array([[np.sin(tilt), 0.0, np.cos(tilt)], [0.0, 0.02, 1.0]]))
    # tilted towards the right: right-left offsets shrink by cos(40), front-back ones stay
    assert np.allclose(planes[0], [[np.cos(tilt), 0.0], [0.0, 1.0]], atol=1e-9)
    assert np.array_equal(planes[1], np.eye(2))  # 1.1 degrees: below MIN_TILT_DEG
    # a tangent pointing down is the same line
    assert np.allclose(cross_section_planes(-np.array([[np.sin(tilt), 0.0, np.cos(tilt)]]))[0], planes[0])


@pytest.mark.parametrize("degrees", [-20.0, 0.0, 8.0, 25.0])
def test_roll_is_the_major_axis_of_an_elongated_section(degrees):
    sections = [_ellipse(6.5, 4.0, degrees)] * 6
    assert np.allclose(cord_roll(sections, np.arange(6.0)), degrees, atol=0.6)


def test_roll_ignores_round_sections_and_turns_beyond_the_limit():
    assert np.allclose(cord_roll([_ellipse(5.0, 4.8, 20.0)] * 4, np.arange(4.0)), 0.0)  # too round to tell
    assert np.allclose(cord_roll([_ellipse(6.5, 4.0, 60.0)] * 4, np.arange(4.0)), 0.0)  # beyond ROLL_MAX_DEG
    # silent slices take the turn of their neighbours along the cord
    sections = [_ellipse(6.5, 4.0, 10.0), _ellipse(5.0, 4.9, 0.0), _ellipse(6.5, 4.0, 10.0)]
    assert np.allclose(cord_roll(sections, np.array([0.0, 1.0, 2.0]), smoothing_mm=0.0), 10.0, atol=0.6)
