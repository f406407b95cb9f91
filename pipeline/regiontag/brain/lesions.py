"""Hyperintensity detection: robust z-scores against tissue-expected intensity, thresholds, clusters.

For each sequence the expected intensity of a voxel is the tissue mixture of
its (registered) CSF/GM/WM probabilities times robust tissue intensities
measured in this scan; the z-score is the deviation from it in units of the
normal-appearing white matter (NAWM) spread (1.4826 x MAD). Evidence from
several sequences is averaged after scaling each by its own threshold.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
from scipy import ndimage
from skimage import measure
from skimage.morphology import remove_small_objects

from regiontag.config import DetectionConfig

#: Sequences on which lesions of interest are hyperintense.
HYPERINTENSE_SEQUENCES = ("FLAIR", "T2w", "DWI")


def _robust_center_spread(values: np.ndarray) -> tuple[float, float]:
    median = float(np.median(values))
    mad = float(np.median(np.abs(values - median))) * 1.4826
    return median, mad


def tissue_intensities(
    image: np.ndarray, tissue: dict[str, np.ndarray], mask: np.ndarray, purity: float = 0.9
) -> dict[str, float]:
    """Robust (median) intensity of each tissue where its probability exceeds ``purity``."""
    levels = {}
    for name, probability in tissue.items():
        for threshold in (purity, 0.7, 0.5):
            selected = mask & (probability > threshold)
            if selected.sum() >= 50:
                levels[name] = float(np.median(image[selected]))
                break
        else:
            levels[name] = float("nan")
    return levels


def grey_matter_neighbourhood(gm_probability: np.ndarray, zooms: tuple[float, ...], radius_mm: float,
                              threshold: float = 0.15) -> np.ndarray:
    """Voxels within ``radius_mm`` of probable grey matter (absorbs registration error at GM borders)."""
    near = gm_probability > threshold
    if radius_mm <= 0:
        return near
    size = tuple(int(2 * max(1, round(radius_mm / z)) + 1) for z in zooms[:3])
    return ndimage.maximum_filter(near, size=size)


def robust_zmap(
    image: nib.Nifti1Image,
    tissue: dict[str, np.ndarray],
    brain_mask: np.ndarray,
    nawm_erosion_voxels: int = 1,
    grey_matter_margin_mm: float = 2.0,
) -> tuple[nib.Nifti1Image, dict[str, float]]:
    """Robust hyperintensity z-map of one sequence.

    The expected intensity is the tissue mixture of the registered priors;
    near grey matter (within ``grey_matter_margin_mm`` of GM probability >
    0.15) it is at least the grey-matter level when grey matter is the
    brighter tissue (FLAIR, T2w), so that cortex and deep grey nuclei shifted
    by a small registration error are not taken for lesions. Lesions there
    must be brighter than grey matter.

    Parameters
    ----------
    image : Nifti1Image
        Bias-corrected image on the reference grid.
    tissue : dict
        ``{"csf", "gm", "wm"}`` probability arrays on the same grid.
    brain_mask : ndarray of bool
    nawm_erosion_voxels : int
        Erosion of the NAWM selection (avoids partial volume at its border).
    grey_matter_margin_mm : float
        Margin around probable grey matter where the grey-matter floor applies.

    Returns
    -------
    (zmap, stats)
        z-map image (0 outside the brain) and the tissue levels and NAWM spread used.
    """
    data = np.asarray(image.dataobj, dtype=np.float32)
    levels = tissue_intensities(data, tissue, brain_mask)
    nawm = brain_mask & (tissue["wm"] > 0.9)
    if nawm_erosion_voxels > 0:
        nawm = ndimage.binary_erosion(nawm, iterations=nawm_erosion_voxels) if nawm.sum() > 5000 else nawm
    if nawm.sum() < 50:
        raise ValueError("too little normal-appearing white matter to normalise intensities")
    wm_center, wm_spread = _robust_center_spread(data[nawm])
    levels["wm"] = wm_center
    for name in ("csf", "gm"):
        if not np.isfinite(levels[name]):
            levels[name] = wm_center
    weights = sum(tissue[name] for name in ("csf", "gm", "wm"))
    expected = sum(tissue[name] * levels[name] for name in ("csf", "gm", "wm"))
    expected = np.where(weights > 0.05, expected / np.maximum(weights, 1e-6), wm_center)
    if levels["gm"] > wm_center:
        zooms = tuple(float(z) for z in image.header.get_zooms()[:3])
        near_gm = grey_matter_neighbourhood(tissue["gm"], zooms, grey_matter_margin_mm)
        expected = np.where(near_gm, np.maximum(expected, levels["gm"]), expected)
    spread = max(wm_spread, 1e-3 * max(abs(wm_center), 1.0))
    zmap = np.where(brain_mask, (data - expected) / spread, 0.0).astype(np.float32)
    stats = {**{f"{name}_level": value for name, value in levels.items()}, "nawm_spread": spread}
    return nib.Nifti1Image(zmap, image.affine), stats


def remove_small_clusters(mask: np.ndarray, min_voxels: int) -> tuple[np.ndarray, int]:
    """Drop 26-connected clusters smaller than ``min_voxels``; return mask and cluster count.

    ``skimage.morphology.remove_small_objects`` with full connectivity
    (26-neighbourhood in 3-D); its ``max_size`` removes clusters of that many
    voxels *or fewer*, hence ``min_voxels - 1``.
    """
    mask = np.asarray(mask)
    if not mask.any():
        return mask, 0
    full = mask.ndim  # connectivity == ndim: faces, edges and corners (26 in 3-D)
    kept = remove_small_objects(mask.astype(bool, copy=False), max_size=max(min_voxels, 1) - 1, connectivity=full)
    _, count = measure.label(kept, connectivity=full, return_num=True)
    return kept, int(count)


def keep_seeded_clusters(candidate: np.ndarray, evidence: np.ndarray, seed_level: float) -> np.ndarray:
    """Hysteresis thresholding: keep the 26-connected clusters of ``candidate`` whose peak evidence is >= ``seed_level``.

    The low threshold outlines lesions, the high one decides which outlines
    are lesions at all, which removes faint isolated clusters (tissue-prior
    mismatch, noise) without shrinking the lesions that are kept.

    This is ``skimage.filters.apply_hysteresis_threshold`` except that (as of
    scikit-image 0.26) that function labels with the default 6-connectivity,
    uses a strict ``> high`` and takes the outline as ``image > low``, whereas
    here clusters are 26-connected, the seed level is inclusive and the
    candidate mask is arbitrary (the low threshold within a search mask). So
    the clusters are labelled with ``skimage.measure.label`` at full
    connectivity and kept when they contain a seed voxel.
    """
    candidate = np.asarray(candidate)
    if not candidate.any():
        return candidate
    labelled = measure.label(candidate.astype(bool, copy=False), connectivity=candidate.ndim)
    seeded = np.zeros(int(labelled.max()) + 1, dtype=bool)
    seeded[labelled[(labelled > 0) & (evidence >= seed_level)]] = True
    seeded[0] = False
    return seeded[labelled]


def detect_lesions(
    zmaps: dict[str, nib.Nifti1Image], search_mask: np.ndarray, config: DetectionConfig
) -> tuple[nib.Nifti1Image, nib.Nifti1Image, int]:
    """Combine sequence z-maps, threshold, and keep clusters above the minimum size.

    Parameters
    ----------
    zmaps : dict
        Sequence -> z-map on the reference grid (only hyperintense sequences are used).
    search_mask : ndarray of bool
        Where lesions may be (brain, not CSF, not cortex).
    config : DetectionConfig

    Returns
    -------
    (lesion_mask, combined_z, n_clusters)
        ``combined_z`` is the mean z over sequences; the threshold is applied
        to the mean of each z divided by its sequence's threshold (> 1), and
        a cluster survives only if that evidence peaks at
        ``config.seed_threshold_factor`` or more somewhere in it.
    """
    used = [seq for seq in HYPERINTENSE_SEQUENCES if seq in zmaps]
    if not used:
        raise ValueError("no FLAIR, T2w or DWI image to detect hyperintensities on")
    reference = zmaps[used[0]]
    stack = np.stack([np.asarray(zmaps[seq].dataobj, dtype=np.float32) for seq in used])
    scaled = np.stack([stack[i] / config.z_threshold[seq] for i, seq in enumerate(used)])
    evidence = scaled.max(axis=0) if config.combine == "max" else scaled.mean(axis=0)
    combined = stack.max(axis=0) if config.combine == "max" else stack.mean(axis=0)
    if config.smoothing_fwhm_mm > 0:
        zooms = np.asarray(reference.header.get_zooms()[:3], dtype=float)
        evidence = ndimage.gaussian_filter(evidence, config.smoothing_fwhm_mm / 2.3548 / zooms)
    candidate = keep_seeded_clusters((evidence > 1.0) & search_mask, evidence, config.seed_threshold_factor)
    voxel_mm3 = float(abs(np.linalg.det(reference.affine[:3, :3])))
    lesion, count = remove_small_clusters(candidate, int(np.ceil(config.min_cluster_mm3 / voxel_mm3)))
    lesion_img = nib.Nifti1Image(lesion.astype(np.uint8), reference.affine)
    return lesion_img, nib.Nifti1Image(combined.astype(np.float32), reference.affine), count
