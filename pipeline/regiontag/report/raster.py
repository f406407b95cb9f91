"""Fast 2-D raster helpers for the report figures: resizing, outlines, label boundaries.

The session report runs after every session, so its figures must cost a small
fraction of a session (issue 7: under 15%).  These helpers replace the
general-purpose ``scipy.ndimage`` calls the figures used with numpy
equivalents specialised for small 2-D display planes:

- bilinear resizing as two separable 1-D interpolations (row gathers) instead
  of ``map_coordinates`` on a full coordinate grid (and without BLAS, whose
  thread pool stalls on a busy machine);
- 4-neighbour binary erosion and dilation by array shifts, computed only
  inside the bounding box of the mask.

Results equal the ``scipy.ndimage`` ones (tests compare them).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np


def sample_positions(n_in: int, n_out: int) -> np.ndarray:
    """Source coordinates of ``n_out`` output pixel centres spread over ``n_in`` input pixels."""
    return (np.arange(n_out, dtype=np.float64) + 0.5) * n_in / n_out - 0.5


@lru_cache(maxsize=256)
def linear_taps(n_in: int, n_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """1-D linear interpolation taps: (low index, high index, weight of high), edges clamped like ``mode="nearest"``."""
    positions = np.clip(sample_positions(n_in, n_out), 0, n_in - 1)
    low = np.floor(positions).astype(np.intp)
    high = np.minimum(low + 1, n_in - 1)
    weight = (positions - low).astype(np.float32)
    for array in (low, high, weight):
        array.setflags(write=False)
    return low, high, weight


@lru_cache(maxsize=256)
def nearest_indices(n_in: int, n_out: int) -> np.ndarray:
    """Index of the nearest input pixel for each of ``n_out`` output pixels."""
    indices = np.clip(np.rint(sample_positions(n_in, n_out)).astype(int), 0, n_in - 1)
    indices.setflags(write=False)
    return indices


def resample_plane(plane: np.ndarray, shape: tuple[int, int], order: int) -> np.ndarray:
    """Resize a 2-D slice to ``shape`` pixels (pixel centres aligned; order 0 nearest, 1 bilinear).

    Parameters
    ----------
    plane : numpy.ndarray
        2-D slice; NaN counts as 0 for bilinear resizing.
    shape : tuple of int
        Output (rows, columns).
    order : int
        0: nearest neighbour (keeps the dtype; for masks and labels); 1: bilinear (float32).

    Returns
    -------
    numpy.ndarray
        The resized slice; equal to ``scipy.ndimage.map_coordinates(..., mode="nearest")``
        at the output pixel centres.
    """
    if order == 0:
        return plane[np.ix_(nearest_indices(plane.shape[0], shape[0]), nearest_indices(plane.shape[1], shape[1]))]
    values = np.nan_to_num(np.asarray(plane, dtype=np.float32), nan=0.0)
    low, high, weight = linear_taps(values.shape[0], shape[0])
    weight = weight[:, None]
    rows = values[low] * (1 - weight) + values[high] * weight
    low, high, weight = linear_taps(values.shape[1], shape[1])
    return rows[:, low] * (1 - weight) + rows[:, high] * weight


def _box(mask: np.ndarray, margin: int) -> tuple[slice, slice] | None:
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    columns = np.flatnonzero(mask.any(axis=0))
    return (
        slice(max(int(rows[0]) - margin, 0), min(int(rows[-1]) + margin + 1, mask.shape[0])),
        slice(max(int(columns[0]) - margin, 0), min(int(columns[-1]) + margin + 1, mask.shape[1])),
    )


def _erode_once(mask: np.ndarray) -> np.ndarray:
    """4-neighbour erosion; pixels outside the array count as set (``border_value=1``)."""
    eroded = mask.copy()
    eroded[1:, :] &= mask[:-1, :]
    eroded[:-1, :] &= mask[1:, :]
    eroded[:, 1:] &= mask[:, :-1]
    eroded[:, :-1] &= mask[:, 1:]
    return eroded


def _dilate_once(mask: np.ndarray) -> np.ndarray:
    """4-neighbour dilation."""
    dilated = mask.copy()
    dilated[1:, :] |= mask[:-1, :]
    dilated[:-1, :] |= mask[1:, :]
    dilated[:, 1:] |= mask[:, :-1]
    dilated[:, :-1] |= mask[:, 1:]
    return dilated


def outline(mask: np.ndarray, width: int) -> np.ndarray:
    """Inner outline of a 2-D boolean mask, ``width`` pixels thick.

    Same as ``mask & ~scipy.ndimage.binary_erosion(mask, iterations=width, border_value=1)``.
    """
    mask = np.asarray(mask, dtype=bool)
    drawn = np.zeros(mask.shape, dtype=bool)
    box = _box(mask, 1)
    if box is None:
        return drawn
    inside = mask[box]
    eroded = inside
    for _ in range(max(int(width), 1)):
        eroded = _erode_once(eroded)
    # the erosion inside the box equals the whole-image one except at box edges that are
    # image edges (border_value=1 there too), so the box result is exact
    drawn[box] = inside & ~eroded
    return drawn


def dilate(mask: np.ndarray, iterations: int = 1) -> np.ndarray:
    """4-neighbour binary dilation of a 2-D mask (``scipy.ndimage.binary_dilation`` with the default cross)."""
    mask = np.asarray(mask, dtype=bool)
    grown = np.zeros(mask.shape, dtype=bool)
    box = _box(mask, iterations)
    if box is None:
        return grown
    part = mask[box]
    for _ in range(iterations):
        part = _dilate_once(part)
    grown[box] = part
    return grown


def boundary(labels: np.ndarray) -> np.ndarray:
    """2-D boolean map of pixels whose 4-neighbour has another label (outlines of masks and parcels)."""
    edges = np.zeros(labels.shape, dtype=bool)
    vertical = labels[:-1, :] != labels[1:, :]
    horizontal = labels[:, :-1] != labels[:, 1:]
    edges[:-1, :] |= vertical
    edges[1:, :] |= vertical
    edges[:, :-1] |= horizontal
    edges[:, 1:] |= horizontal
    return edges & (labels > 0)


def blend_labels(
    rgb: np.ndarray,
    values: np.ndarray,
    drawn: np.ndarray,
    colors: dict[int, tuple[float, float, float]],
    alpha: float,
    default: tuple[float, float, float] = (0.8, 0.8, 0.8),
) -> None:
    """Blend a colour per label value into ``rgb`` (in place) where ``drawn`` is set."""
    selected = values[drawn]
    if selected.size == 0:
        return
    present, inverse = np.unique(selected, return_inverse=True)
    table = np.array([colors.get(int(value), default) for value in present], dtype=np.float32)
    rgb[drawn] = rgb[drawn] * (1 - alpha) + table[inverse.ravel()] * alpha
