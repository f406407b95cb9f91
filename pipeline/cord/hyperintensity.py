"""T2 hyperintensity inside the cord: robust z-scores against normal-appearing cord tissue.

Inside an in-plane eroded cord mask (the outermost ``detection_erosion_mm`` sees
CSF partial volume), intensities are divided by a smooth level along the cord
(robust cubic fit of per-slice lower quartiles: the bias field) and each voxel is
compared with the same position of the cross-section (normalised cord
coordinates u, v) in the other slices: this captures the grey/white pattern
(grey matter is slightly brighter on T2) and edge partial volume; location and
spread are median and MAD after iterative removal of upward outliers.  Lesions are voxels with ``z >= lesion_z_threshold``, grown by
hysteresis into neighbours with ``z >= lesion_hysteresis * threshold``, and
clusters below ``min_lesion_mm3`` are dropped.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from pipeline.config import CordConfig


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


def _robust_location_spread(values: np.ndarray, iterations: int = 4) -> tuple[float, float]:
    """Median and MAD-based spread with upward outliers (> 2.5 spreads) removed iteratively.

    Lesions are upward outliers of a cell's intensities; partial volume at the edge
    widens the spread symmetrically, so it is kept.
    """
    keep = np.ones(values.size, dtype=bool)
    location, spread = float(np.median(values)), 0.0
    for _ in range(iterations):
        kept = values[keep]
        location = float(np.median(kept))
        spread = float(1.4826 * np.median(np.abs(kept - location))) + 1e-9
        new_keep = values <= location + 2.5 * spread
        if new_keep.sum() < 8 or np.array_equal(new_keep, keep):
            break
        keep = new_keep
    return location, spread


def _slice_trend(volume: np.ndarray, domain: np.ndarray) -> np.ndarray:
    """Smooth intensity level per slice (bias along the cord) from lower-quantile slice levels."""
    n_slices = volume.shape[2]
    slices = np.nonzero(domain.any(axis=(0, 1)))[0]
    levels = np.array([np.percentile(volume[:, :, k][domain[:, :, k]], 25) for k in slices])
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
    each cell the bias-corrected intensities of all slices give a location (median)
    and a spread (MAD) after iterative removal of upward outliers, so lesions
    covering less than about half of the slices do not lift the reference.

    Parameters
    ----------
    volume : ndarray
        Canonical T2 intensities.
    cord_mask : ndarray
        Canonical boolean cord mask.
    u, v : ndarray
        Normalised cord coordinates per voxel (NaN outside), see ``pipeline.cord.coordinates``.
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
    smoothed = ndimage.gaussian_filter(volume.astype(np.float32), sigma=(0.4 / zooms[0], 0.4 / zooms[1], 0))
    trend = _slice_trend(smoothed, domain)
    index = np.nonzero(domain)
    ratio = smoothed[index] / trend[index[2]]
    cell_u = np.clip(((u[index] + 1) / 2 * n_bins).astype(int), 0, n_bins - 1)
    cell_v = np.clip(((v[index] + 1) / 2 * n_bins).astype(int), 0, n_bins - 1)
    cell = cell_u * n_bins + cell_v
    location = np.zeros(n_bins * n_bins)
    spread = np.full(n_bins * n_bins, np.nan)
    order = np.argsort(cell, kind="stable")
    bounds = np.searchsorted(cell[order], np.arange(n_bins * n_bins + 1))
    for number in range(n_bins * n_bins):
        members = ratio[order[bounds[number] : bounds[number + 1]]]
        if members.size >= 8:
            location[number], spread[number] = _robust_location_spread(members)
    typical = np.nanmedian(spread) if np.isfinite(spread).any() else 1.0
    spread = np.where(np.isfinite(spread), np.maximum(spread, typical), typical)
    fallback, _ = _robust_location_spread(ratio)
    location = np.where(location > 0, location, fallback)
    zmap[index] = (ratio - location[cell]) / spread[cell]
    return zmap, domain


def detect_cord_lesions(
    zmap: np.ndarray,
    domain: np.ndarray,
    zooms: np.ndarray,
    config: CordConfig,
    cord_mask: np.ndarray | None = None,
) -> np.ndarray:
    """Lesion mask: z >= threshold, hysteresis growth within the domain, small clusters removed.

    With ``cord_mask``, rim voxels (cord minus domain) touching a lesion in-plane join it.
    """
    seeds = (zmap >= config.lesion_z_threshold) & domain
    candidates = (zmap >= config.lesion_hysteresis * config.lesion_z_threshold) & domain
    structure = np.ones((3, 3, 3), dtype=bool)
    clusters, n_clusters = ndimage.label(candidates, structure=structure)
    if n_clusters == 0:
        return np.zeros(zmap.shape, dtype=bool)
    seeded = np.unique(clusters[seeds])
    lesions = np.isin(clusters, seeded[seeded > 0])
    if cord_mask is not None:  # lesions reach the cord surface: add the adjacent rim (CSF partial volume)
        rim = cord_mask & ~domain
        in_plane = np.zeros((3, 3, 3), dtype=bool)
        in_plane[:, :, 1] = True
        steps = int(np.ceil(config.detection_erosion_mm / min(zooms[0], zooms[1]))) + 1
        lesions |= ndimage.binary_dilation(lesions, structure=in_plane, iterations=steps, mask=rim | lesions)
    clusters, n_clusters = ndimage.label(lesions, structure=structure)
    if n_clusters == 0:
        return lesions
    voxel_mm3 = float(np.prod(zooms))
    sizes = ndimage.sum(lesions, clusters, index=np.arange(1, n_clusters + 1)) * voxel_mm3
    keep = np.nonzero(sizes >= max(config.min_lesion_mm3, 1e-9))[0] + 1
    return np.isin(clusters, keep)
