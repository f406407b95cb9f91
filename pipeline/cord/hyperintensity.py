"""T2 hyperintensity inside the cord: robust z-scores against normal-appearing cord tissue.

Inside an in-plane eroded cord mask (the outermost ``detection_erosion_mm`` sees
CSF partial volume), each voxel is compared with normal-appearing tissue of its
own class (white matter or grey matter, from the cord atlas labels; grey matter
is slightly brighter on T2): the class level along the cord is a robust smooth
fit (cubic in z, slices deviating by more than 2.5 MAD rejected iteratively, so
long lesions do not lift the reference), the spread is the MAD of residuals of
white matter.  Lesions are voxels with ``z >= lesion_z_threshold``, grown by
hysteresis into neighbours with ``z >= lesion_hysteresis * threshold``, and
clusters below ``min_lesion_mm3`` are dropped.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from pipeline.config import CordConfig


def eroded_in_plane(mask: np.ndarray, zooms: np.ndarray, erosion_mm: float) -> np.ndarray:
    """Cord mask eroded by ``erosion_mm`` within each axial slice (anisotropic voxels in mm)."""
    if erosion_mm <= 0:
        return mask.copy()
    out = np.zeros_like(mask)
    for index in np.nonzero(mask.any(axis=(0, 1)))[0]:
        distance = ndimage.distance_transform_edt(mask[:, :, index], sampling=zooms[:2])
        out[:, :, index] = distance > erosion_mm
    return out


def _robust_trend(slices: np.ndarray, values: np.ndarray, n_slices: int, iterations: int = 4) -> np.ndarray:
    """Smooth level per slice: robust cubic fit of per-slice medians along z."""
    trend = np.full(n_slices, np.nan)
    if slices.size == 0:
        return trend
    if slices.size < 8:
        trend[:] = np.median(values)
        return trend
    keep = np.ones(slices.size, dtype=bool)
    degree = 3 if slices.size >= 20 else 1
    scale = max(slices.max() - slices.min(), 1)
    x = (slices - slices.min()) / scale
    for _ in range(iterations):
        coefficients = np.polyfit(x[keep], values[keep], degree)
        residual = values - np.polyval(coefficients, x)
        mad = 1.4826 * np.median(np.abs(residual[keep] - np.median(residual[keep]))) + 1e-9
        keep = np.abs(residual) <= 2.5 * mad
        if keep.sum() < degree + 2:
            keep = np.ones(slices.size, dtype=bool)
            break
    coefficients = np.polyfit(x[keep], values[keep], degree)
    all_x = (np.arange(n_slices) - slices.min()) / scale
    return np.polyval(coefficients, np.clip(all_x, 0, 1))


def cord_zmap(
    volume: np.ndarray,
    cord_mask: np.ndarray,
    grey_mask: np.ndarray | None,
    zooms: np.ndarray,
    config: CordConfig,
) -> tuple[np.ndarray, np.ndarray]:
    """Robust hyperintensity z-map inside the cord.

    Parameters
    ----------
    volume : ndarray
        Canonical T2 intensities.
    cord_mask : ndarray
        Canonical boolean cord mask.
    grey_mask : ndarray or None
        Grey-matter voxels of the cord (atlas labels); None: one tissue class.
    zooms : ndarray
        Voxel sizes (mm).
    config : CordConfig

    Returns
    -------
    zmap : ndarray
        float32, 0 outside the detection domain.
    domain : ndarray
        Boolean detection domain (eroded cord).
    """
    domain = eroded_in_plane(cord_mask, zooms, config.detection_erosion_mm)
    if domain.sum() < 0.3 * cord_mask.sum():  # very thin masks (coarse voxels): keep the whole cord
        domain = cord_mask.copy()
    smoothed = ndimage.gaussian_filter(volume.astype(np.float32), sigma=(0.5 / zooms[0], 0.5 / zooms[1], 0))
    zmap = np.zeros(volume.shape, dtype=np.float32)
    if not domain.any():
        return zmap, domain
    grey = np.zeros_like(domain) if grey_mask is None else (grey_mask & domain)
    classes = [domain & ~grey, grey] if grey.sum() >= 20 else [domain]
    n_slices = volume.shape[2]
    residuals = np.zeros(volume.shape, dtype=np.float32)
    for tissue in classes:
        slices = np.nonzero(tissue.any(axis=(0, 1)))[0]
        medians = np.array([np.median(smoothed[:, :, k][tissue[:, :, k]]) for k in slices])
        trend = _robust_trend(slices, medians, n_slices)
        residuals[tissue] = smoothed[tissue] - trend[np.nonzero(tissue)[2]]
    reference = residuals[classes[0]]
    centre = np.median(reference)
    spread = 1.4826 * np.median(np.abs(reference - centre)) + 1e-6
    zmap[domain] = (residuals[domain] - centre) / spread
    return zmap, domain


def detect_cord_lesions(zmap: np.ndarray, domain: np.ndarray, zooms: np.ndarray, config: CordConfig) -> np.ndarray:
    """Lesion mask: z >= threshold, hysteresis growth within the domain, small clusters removed."""
    seeds = (zmap >= config.lesion_z_threshold) & domain
    candidates = (zmap >= config.lesion_hysteresis * config.lesion_z_threshold) & domain
    structure = np.ones((3, 3, 3), dtype=bool)
    clusters, n_clusters = ndimage.label(candidates, structure=structure)
    if n_clusters == 0:
        return np.zeros(zmap.shape, dtype=bool)
    seeded = np.unique(clusters[seeds])
    lesions = np.isin(clusters, seeded[seeded > 0])
    clusters, n_clusters = ndimage.label(lesions, structure=structure)
    if n_clusters == 0:
        return lesions
    voxel_mm3 = float(np.prod(zooms))
    sizes = ndimage.sum(lesions, clusters, index=np.arange(1, n_clusters + 1)) * voxel_mm3
    keep = np.nonzero(sizes >= max(config.min_lesion_mm3, 1e-9))[0] + 1
    return np.isin(clusters, keep)
