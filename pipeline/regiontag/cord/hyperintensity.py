"""T2 hyperintensity inside the cord: robust z-scores against normal-appearing cord tissue.

Inside an in-plane eroded cord mask (the outermost ``detection_erosion_mm`` sees
CSF partial volume), intensities are divided by a smooth level along the cord
(robust cubic fit of per-slice 10th percentiles: the bias field) and each voxel is
compared with the same position of the cross-section (normalised cord
coordinates u, v) in the other slices: this captures the grey/white pattern
(grey matter is slightly brighter on T2) and edge partial volume; location and
spread come from lower quantiles, so long lesions do not lift the reference.  Lesions are voxels with ``z >= lesion_z_threshold``, grown by
hysteresis into neighbours with ``z >= lesion_hysteresis * threshold``, and
clusters below ``min_lesion_mm3`` are dropped.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from regiontag.config import CordConfig

#: Gaussian smoothing (sigma, mm) before z-scoring: in-plane, in-plane, along the cord.
SMOOTHING_MM = np.array([0.4, 0.4, 0.0])


def eroded_in_plane(mask: np.ndarray, zooms: np.ndarray, erosion_mm: float) -> np.ndarray:
    """Cord mask eroded in each axial slice by one voxel and by at least ``erosion_mm`` (mm, anisotropic).

    The one-voxel erosion matters for thick voxels (e.g. 2.5 mm left-right in a
    sagittal scan): their edge voxels mix cord and CSF however large they are.
    """
    if erosion_mm <= 0:
        return mask.copy()
    out = np.zeros_like(mask)
    cross = ndimage.generate_binary_structure(2, 1)
    for index in np.nonzero(mask.any(axis=(0, 1)))[0]:
        plane = mask[:, :, index]
        distance = ndimage.distance_transform_edt(plane, sampling=zooms[:2])
        out[:, :, index] = (distance > erosion_mm) & ndimage.binary_erosion(plane, structure=cross)
    return out


def _lower_quantiles(values: np.ndarray) -> tuple[float, float]:
    """(P10, spread from P5..P25) of a cell's values: lower quantiles ignore upward outliers (lesions).

    For a normal distribution P25 - P5 = 0.971 sigma.
    """
    p5, p10, p25 = np.percentile(values, [5, 10, 25])
    return float(p10), float((p25 - p5) / 0.971)


def _slice_trend(volume: np.ndarray, domain: np.ndarray) -> np.ndarray:
    """Smooth intensity level per slice (bias along the cord) from per-slice 10th percentiles."""
    n_slices = volume.shape[2]
    slices = np.nonzero(domain.any(axis=(0, 1)))[0]
    # the 10th percentile of a slice stays normal unless a lesion fills ~90 % of the cross-section
    levels = np.array([np.percentile(volume[:, :, k][domain[:, :, k]], 10) for k in slices])
    trend = np.full(n_slices, np.nan)
    if slices.size < 8:
        trend[:] = np.median(levels)
        return trend
    keep = np.ones(slices.size, dtype=bool)
    degree = 3 if slices.size >= 20 else 1
    scale = max(slices.max() - slices.min(), 1)
    x = (slices - slices.min()) / scale
    for _ in range(4):
        coefficients = np.polyfit(x[keep], levels[keep], degree)
        residual = levels - np.polyval(coefficients, x)
        mad = 1.4826 * np.median(np.abs(residual[keep] - np.median(residual[keep]))) + 1e-9
        keep = np.abs(residual) <= 2.5 * mad
        if keep.sum() < degree + 2:
            keep = np.ones(slices.size, dtype=bool)
            break
    coefficients = np.polyfit(x[keep], levels[keep], degree)
    trend = np.polyval(coefficients, np.clip((np.arange(n_slices) - slices.min()) / scale, 0, 1))
    return np.maximum(trend, 1e-6)


def cord_zmap(
    volume: np.ndarray,
    cord_mask: np.ndarray,
    u: np.ndarray,
    v: np.ndarray,
    zooms: np.ndarray,
    config: CordConfig,
    n_bins: int = 10,
) -> tuple[np.ndarray, np.ndarray]:
    """Robust hyperintensity z-map inside the cord.

    The normal appearance of the cord is learned from the subject itself: the
    cross-section is divided into ``n_bins`` x ``n_bins`` cells of normalised cord
    coordinates (grey/white matter pattern, partial volume at the edge), and in
    each cell the bias-corrected intensities of all slices give a location (from
    the 10th percentile) and a spread (from the 5th-25th percentiles, bounded by
    the typical spread of all cells), so lesions covering most of the slices of a
    cell (a long lesion in a short field of view) do not lift its reference.

    Parameters
    ----------
    volume : ndarray
        Canonical T2 intensities.
    cord_mask : ndarray
        Canonical boolean cord mask.
    u, v : ndarray
        Normalised cord coordinates per voxel (NaN outside), see ``regiontag.atlas.cord_frames``.
    zooms : ndarray
        Voxel sizes (mm).
    config : CordConfig
    n_bins : int
        Cells per axis of the cross-section.

    Returns
    -------
    zmap : ndarray
        float32, 0 outside the detection domain.
    domain : ndarray
        Boolean detection domain (in-plane eroded cord).
    """
    domain = eroded_in_plane(cord_mask, zooms, config.detection_erosion_mm)
    if domain.sum() < 0.3 * cord_mask.sum():  # very thin masks (coarse voxels): keep the whole cord
        domain = cord_mask.copy()
    domain &= np.isfinite(u) & np.isfinite(v)
    zmap = np.zeros(volume.shape, dtype=np.float32)
    if domain.sum() < 50:
        return zmap, domain
    smoothed = ndimage.gaussian_filter(volume.astype(np.float32), sigma=tuple(SMOOTHING_MM / np.asarray(zooms)))
    trend = _slice_trend(smoothed, domain)
    index = np.nonzero(domain)
    ratio = smoothed[index] / trend[index[2]]
    cell_u = np.clip(((u[index] + 1) / 2 * n_bins).astype(int), 0, n_bins - 1)
    cell_v = np.clip(((v[index] + 1) / 2 * n_bins).astype(int), 0, n_bins - 1)
    cell = cell_u * n_bins + cell_v
    low = np.full(n_bins * n_bins, np.nan)
    spread = np.full(n_bins * n_bins, np.nan)
    order = np.argsort(cell, kind="stable")
    bounds = np.searchsorted(cell[order], np.arange(n_bins * n_bins + 1))
    for number in range(n_bins * n_bins):
        members = ratio[order[bounds[number] : bounds[number + 1]]]
        if members.size >= 8:
            low[number], spread[number] = _lower_quantiles(members)
    typical = np.nanmedian(spread) if np.isfinite(spread).any() else 1.0
    # a cell's own spread is trusted between 1 and 1.5 typical spreads: wider cells see edge
    # partial volume, but a cell mostly covered by a long lesion must not inflate it further
    spread = np.clip(np.where(np.isfinite(spread), spread, typical), typical, 1.5 * typical)
    fallback, _ = _lower_quantiles(ratio)
    low = np.where(np.isfinite(low), low, fallback)
    location = low + 1.2816 * spread  # P10 = mean - 1.28 sigma
    zmap[index] = (ratio - location[cell]) / spread[cell]
    return zmap, domain


def _radial_rim(lesions: np.ndarray, domain: np.ndarray, cord_mask: np.ndarray, zooms: np.ndarray) -> np.ndarray:
    """Rim voxels (cord outside the detection domain) whose nearest in-plane domain voxel is a lesion.

    Lesions reaching the cord surface (dorsal columns) extend radially through the
    partial-volume rim, without spreading around it.
    """
    added = np.zeros_like(lesions)
    for index in np.nonzero(lesions.any(axis=(0, 1)))[0]:
        rim = cord_mask[:, :, index] & ~domain[:, :, index]
        if not rim.any() or not domain[:, :, index].any():
            continue
        _, nearest = ndimage.distance_transform_edt(~domain[:, :, index], sampling=zooms[:2], return_indices=True)
        from_lesion = lesions[:, :, index][nearest[0], nearest[1]]
        added[:, :, index] = rim & from_lesion
    return added


def detect_cord_lesions(
    zmap: np.ndarray,
    domain: np.ndarray,
    zooms: np.ndarray,
    config: CordConfig,
    cord_mask: np.ndarray | None = None,
) -> np.ndarray:
    """Lesion mask: z >= threshold, hysteresis growth within the domain, small clusters removed.

    With ``cord_mask``, rim voxels (cord minus domain) radially outside a lesion join it.
    """
    seeds = (zmap >= config.lesion_z_threshold) & domain
    candidates = (zmap >= config.lesion_hysteresis * config.lesion_z_threshold) & domain
    structure = np.ones((3, 3, 3), dtype=bool)
    clusters, n_clusters = ndimage.label(candidates, structure=structure)
    if n_clusters == 0:
        return np.zeros(zmap.shape, dtype=bool)
    seeded = np.unique(clusters[seeds])
    lesions = np.isin(clusters, seeded[seeded > 0])
    if cord_mask is not None:
        lesions |= _radial_rim(lesions, domain, cord_mask, zooms)
    clusters, n_clusters = ndimage.label(lesions, structure=structure)
    if n_clusters == 0:
        return lesions
    voxel_mm3 = float(np.prod(zooms))
    sizes = ndimage.sum(lesions, clusters, index=np.arange(1, n_clusters + 1)) * voxel_mm3
    keep = np.nonzero(sizes >= max(config.min_lesion_mm3, 1e-9))[0] + 1
    return np.isin(clusters, keep)
