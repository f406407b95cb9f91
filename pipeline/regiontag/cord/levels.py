"""Longitudinal position of cord lesions: distance along the cord, length, vertebral levels.

Positions are measured along the centreline (``centerline.csv``, ``distance_mm``
from the most superior cord slice of the scan).  A lesion's length is the
centreline distance between its most superior and most inferior slices plus one
slice step.  *Longitudinally extensive* means a length of at least three
vertebral segments.  The segment height is measured from the image when the
vertebral bodies and discs in front of the cord show a clear period
(:mod:`regiontag.cord.vertebrae`, ``cord.estimate_segment_length``); otherwise
``cord.segment_length_mm`` is used (18 mm by default: the mean height of a
cervical vertebra plus disc in adults, roughly 15-20 mm).

Vertebral levels are only estimated when the level at the top of the field of
view is known (``cord.top_vertebral_level``, e.g. ``"C2"`` for a standard
cervical protocol whose field of view starts at the odontoid); levels then
follow by counting segments (measured or configured height) along the cord.  The
uncertainty is about +/- 1 level in the cervical cord and grows caudally
(segment heights vary by 20-30 % between people and levels; cord and vertebral
segments drift apart below C5).  No landmark detector is run: without an anchor
the level columns stay empty and the method says so.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import ndimage

from regiontag.config import CordConfig

LEVEL_NAMES = [f"C{n}" for n in range(1, 8)] + [f"T{n}" for n in range(1, 13)] + [f"L{n}" for n in range(1, 6)]
LESION_COLUMNS = [
    "lesion", "voxels", "top_mm", "bottom_mm", "length_mm", "segments",
    "longitudinally_extensive", "vertebral_levels",
]


def level_method(config: CordConfig) -> str:
    """One sentence on how vertebral levels were (or were not) estimated."""
    if config.top_vertebral_level is None:
        return "vertebral levels not estimated: no anchor level (set cord.top_vertebral_level)"
    return (
        f"vertebral levels counted from {config.top_vertebral_level} at the top of the scan in "
        f"{config.segment_length_mm:g} mm segments along the cord (about +/- 1 level)"
    )


def level_at(distance_mm: np.ndarray | float, config: CordConfig) -> np.ndarray:
    """Vertebral level name at centreline distances from the top of the scan ('' without anchor)."""
    distance = np.atleast_1d(np.asarray(distance_mm, dtype=float))
    if config.top_vertebral_level is None:
        return np.full(distance.shape, "", dtype=object)
    start = LEVEL_NAMES.index(config.top_vertebral_level)
    index = start + np.floor(np.maximum(distance, 0) / config.segment_length_mm).astype(int)
    index = np.clip(index, 0, len(LEVEL_NAMES) - 1)
    return np.asarray([LEVEL_NAMES[i] for i in index], dtype=object)


def level_range(top_mm: float, bottom_mm: float, config: CordConfig) -> str:
    """``"C3-C6"`` (or ``"C4"``) for a span along the cord; '' when levels are not estimated."""
    if config.top_vertebral_level is None or not np.isfinite(top_mm):
        return ""
    first, last = level_at([top_mm, bottom_mm], config)
    return first if first == last else f"{first}-{last}"


def slice_distances(centerline: pd.DataFrame, n_slices: int) -> np.ndarray:
    """Distance from the top (mm) for every canonical slice index (NaN outside the cord's range)."""
    distance = np.full(n_slices, np.nan)
    if centerline.empty:
        return distance
    table = centerline.sort_values("slice")
    slices = table["slice"].to_numpy(int)
    inside = np.arange(n_slices)
    inside = inside[(inside >= slices.min()) & (inside <= slices.max())]
    distance[inside] = np.interp(inside, slices, table["distance_mm"].to_numpy(float))
    return distance


def slice_step_mm(centerline: pd.DataFrame) -> float:
    """Mean centreline distance between consecutive slices (mm)."""
    if len(centerline) < 2:
        return 0.0
    table = centerline.sort_values("slice")
    span = table["distance_mm"].max() - table["distance_mm"].min()
    return float(span / max(table["slice"].max() - table["slice"].min(), 1))


def span_length(slice_indices: np.ndarray, distances: np.ndarray, step_mm: float) -> tuple[float, float, float]:
    """(top_mm, bottom_mm, length_mm) of the slices a structure occupies."""
    values = distances[np.unique(slice_indices)]
    values = values[np.isfinite(values)]
    if values.size == 0:
        return np.nan, np.nan, 0.0
    top, bottom = float(values.min()), float(values.max())
    return top, bottom, bottom - top + step_mm


def lesion_table(lesion_mask: np.ndarray, centerline: pd.DataFrame, config: CordConfig) -> pd.DataFrame:
    """One row per lesion (26-connected cluster of a canonical lesion mask) with its longitudinal extent.

    Parameters
    ----------
    lesion_mask : ndarray
        Boolean lesion mask on the canonical grid of the centreline (z = slice index).
    centerline : pandas.DataFrame
        Output of :func:`regiontag.cord.segmentation.segment_cord`.
    config : CordConfig
        ``segment_length_mm`` and ``top_vertebral_level``.

    Returns
    -------
    pandas.DataFrame
        Columns ``LESION_COLUMNS``, longest lesion first.
    """
    clusters, n_clusters = ndimage.label(lesion_mask, structure=np.ones((3, 3, 3), dtype=bool))
    distances = slice_distances(centerline, lesion_mask.shape[2])
    step = slice_step_mm(centerline)
    rows = []
    for label, found in enumerate(ndimage.find_objects(clusters), start=1):
        if found is None:
            continue
        voxels = np.nonzero(clusters[found] == label)
        slices = voxels[2] + found[2].start
        top, bottom, length = span_length(slices, distances, step)
        rows.append(
            {
                "lesion": label,
                "voxels": int(voxels[0].size),
                "top_mm": top,
                "bottom_mm": bottom,
                "length_mm": length,
                "segments": length / config.segment_length_mm,
                "longitudinally_extensive": bool(length >= 3 * config.segment_length_mm),
                "vertebral_levels": level_range(top, bottom, config),
            }
        )
    table = pd.DataFrame(rows, columns=LESION_COLUMNS)
    return table.sort_values("length_mm", ascending=False, ignore_index=True)


def csa_ratio(centerline: pd.DataFrame, top_mm: float, bottom_mm: float, config: CordConfig) -> float:
    """Median cord area along [top, bottom] over the median area within ``csa_reference_mm`` above and below.

    NaN when no cord is measured on either side (lesion spans the field of view).
    """
    if centerline.empty or not np.isfinite(top_mm):
        return np.nan
    distance = centerline["distance_mm"].to_numpy(float)
    area = centerline["csa_mm2"].to_numpy(float)
    inside = (distance >= top_mm) & (distance <= bottom_mm)
    margin = 2.0
    reach = config.csa_reference_mm
    reference = ((distance < top_mm - margin) & (distance >= top_mm - margin - reach)) | (
        (distance > bottom_mm + margin) & (distance <= bottom_mm + margin + reach)
    )
    if not inside.any() or reference.sum() < 2:
        return np.nan
    return float(np.median(area[inside]) / np.median(area[reference]))
