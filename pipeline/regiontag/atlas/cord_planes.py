"""The plane of each cord cross-section: perpendicular to the centreline, turned onto the cord's own axes.

An axial slice cuts an oblique cord at an angle.  :func:`cross_section_planes`
maps in-slice offsets onto the plane perpendicular to the centreline tangent
(projection along the tangent: exact for a locally straight cord), and
:func:`cord_roll` finds how far the cord is turned about its own axis from the
major principal axis of each cross-section (the cord is wider left-right than
front-back).  :mod:`regiontag.atlas.cord_frames` builds the cord coordinates in
these planes; :mod:`regiontag.cord.cross_section` measures the area in them.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

#: Below this tilt (degrees) of the centreline from the slice normal the axial plane is the cross-section.
MIN_TILT_DEG = 5.0
#: Smoothing (mm along the cord) of the centroid curve before its tangent is taken.
TANGENT_SMOOTHING_MM = 3.0
#: The cord's own left-right axis is taken from a cross-section only when it is at least this elongated
#: (ratio of its principal half-axes; cervical cords are ~1.5-1.8, the round conus and thoracic cord less).
ROLL_MIN_ELONGATION = 1.2
#: Largest rotation (degrees) of the cord about its own axis that is believed; beyond it the slice says nothing.
ROLL_MAX_DEG = 30.0
#: Smoothing (mm along the cord) of the per-slice rotation.
ROLL_SMOOTHING_MM = 8.0


def unit_vectors(vectors: np.ndarray) -> np.ndarray:
    """Vectors scaled to unit length along the last axis (a zero vector stays ~0).

    Examples
    --------
    >>> np.round(unit_vectors(np.array([3.0, 4.0, 0.0])), 6).tolist()
    [0.6, 0.8, 0.0]
    """
    return vectors / (np.linalg.norm(vectors, axis=-1, keepdims=True) + 1e-12)


def centreline_tangents(points_mm: np.ndarray, *, smoothing_mm: float = TANGENT_SMOOTHING_MM) -> np.ndarray:
    """Unit tangents of an ordered polyline (n, 3) in mm, smoothed over ``smoothing_mm`` along it.

    Examples
    --------
    >>> import numpy as np
    >>> line = np.column_stack([np.zeros(10), 0.5 * np.arange(10), np.arange(10.0)])
    >>> np.round(centreline_tangents(line)[5], 3).tolist()
    [0.0, 0.447, 0.894]
    """
    points = np.asarray(points_mm, dtype=float)
    if len(points) < 2:
        return np.tile([0.0, 0.0, 1.0], (len(points), 1))
    step = float(np.median(np.linalg.norm(np.diff(points, axis=0), axis=1))) or 1.0
    smooth = ndimage.gaussian_filter1d(points, smoothing_mm / step, axis=0, mode="nearest") if len(points) >= 3 else points
    return unit_vectors(np.gradient(smooth, axis=0))


def cross_section_planes(tangents: np.ndarray, *, min_tilt_deg: float = MIN_TILT_DEG) -> np.ndarray:
    """Per tangent, the 2x2 map from in-slice world offsets (dx, dy) to the plane perpendicular to it.

    The offset ``d = (dx, dy, 0)`` is projected along the tangent ``t``: the result is
    ``(d . e_right, d . e_anterior)``, ``e_right`` the world +x axis made orthogonal to
    ``t`` and ``e_anterior = t x e_right`` (the world +y axis when ``t`` is +z).  The
    identity where the tilt is below ``min_tilt_deg``.

    Examples
    --------
    >>> import numpy as np
    >>> tilted = np.array([[0.0, np.sin(np.radians(30)), np.cos(np.radians(30))]])
    >>> np.round(cross_section_planes(tilted)[0], 3).tolist()  # anterior offsets shrink by cos(30)
    [[1.0, 0.0], [0.0, 0.866]]
    """
    tangents = unit_vectors(np.asarray(tangents, dtype=float))
    tangents = np.where(tangents[:, 2:3] < 0, -tangents, tangents)  # pointing superior
    planes = np.tile(np.eye(2), (len(tangents), 1, 1))
    tilt = np.degrees(np.arccos(np.clip(tangents[:, 2], 0.0, 1.0)))
    for row in np.flatnonzero(tilt >= min_tilt_deg):
        t = tangents[row]
        right = unit_vectors(np.array([1.0, 0.0, 0.0]) - t[0] * t)
        anterior = np.cross(t, right)
        planes[row] = [right[:2], anterior[:2]]
    return planes


def rotation(degrees: np.ndarray) -> np.ndarray:
    """(n, 2, 2) rotations taking a direction at ``degrees`` (from +x towards +y) onto +x.

    Examples
    --------
    >>> import numpy as np
    >>> np.round(rotation([90.0])[0] @ [0.0, 1.0], 6).tolist()
    [1.0, 0.0]
    """
    radians = np.radians(np.asarray(degrees, dtype=float))
    cos, sin = np.cos(radians), np.sin(radians)
    return np.stack([np.stack([cos, sin], -1), np.stack([-sin, cos], -1)], -2)


def cord_roll(
    offsets: list[np.ndarray], slice_mm: np.ndarray, *, min_elongation: float = ROLL_MIN_ELONGATION,
    max_deg: float = ROLL_MAX_DEG, smoothing_mm: float = ROLL_SMOOTHING_MM,
) -> np.ndarray:
    """Rotation of the cord about its own axis per cross-section (degrees), from the cord's own shape.

    The cord is wider left-right than front-back, so the major principal axis of
    each cross-section (as SCT's ``centermassrot`` PCA method uses) is its
    left-right axis.  Slices less elongated than ``min_elongation``, or whose axis
    is more than ``max_deg`` from the plane's x axis, say nothing; the others are
    smoothed along the cord (``smoothing_mm``) and interpolated across the silent
    ones (0 when no slice is elongated enough).

    Parameters
    ----------
    offsets : list of numpy.ndarray
        Per cross-section, the ``(2, n)`` offsets (mm) of its voxels from the centre in
        the cross-section plane (right, anterior).
    slice_mm : numpy.ndarray
        Position of each cross-section along the cord (mm), ascending or descending.

    Returns
    -------
    numpy.ndarray
        Roll per cross-section (degrees, from right towards anterior).

    Examples
    --------
    >>> import numpy as np
    >>> angle = np.radians(12.0)
    >>> axis = np.arange(-8, 8.1, 0.25)
    >>> grid = np.stack(np.meshgrid(axis, axis)).reshape(2, -1)
    >>> along, across = np.cos(angle) * grid[0] + np.sin(angle) * grid[1], -np.sin(angle) * grid[0] + np.cos(angle) * grid[1]
    >>> section = grid[:, (along / 6.5) ** 2 + (across / 4.0) ** 2 <= 1]
    >>> np.round(cord_roll([section] * 5, np.arange(5.0))).tolist()  # an ellipse turned 12 degrees
    [12.0, 12.0, 12.0, 12.0, 12.0]
    """
    roll = np.full(len(offsets), np.nan)
    for row, offset in enumerate(offsets):
        if offset.shape[1] < 6:
            continue
        cov = np.cov(offset)
        eigen = np.linalg.eigvalsh(cov)
        if eigen[0] <= 0 or np.sqrt(eigen[1] / eigen[0]) < min_elongation:
            continue
        angle = 0.5 * np.degrees(np.arctan2(2 * cov[0, 1], cov[0, 0] - cov[1, 1]))
        if abs(angle) <= max_deg:
            roll[row] = angle
    known = np.isfinite(roll)
    if not known.any():
        return np.zeros(len(offsets))
    position = np.asarray(slice_mm, dtype=float)
    order = np.argsort(position)
    filled = np.interp(position[order], position[order][known[order]], roll[order][known[order]])
    step = float(np.median(np.abs(np.diff(position[order])))) if len(position) > 1 else 1.0
    if len(filled) >= 3 and step > 0 and smoothing_mm > 0:
        filled = ndimage.gaussian_filter1d(filled, smoothing_mm / step, mode="nearest")
    result = np.empty(len(offsets))
    result[order] = filled
    return result
