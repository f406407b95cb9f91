"""Hyperintensity detection: robust z-scores against tissue-expected intensity, thresholds, clusters.

For each sequence the expected intensity of a voxel is the tissue mixture of
its (registered) CSF/GM/WM probabilities times robust tissue intensities
measured in this scan; the z-score is the deviation from it in units of the
normal white-matter spread. Normal white matter is the *peak* of the probable
white matter's histogram and its dark-side half width (:func:`peak_center_spread`),
not the median / MAD of a selection that may itself be diseased: on a real MS
scan with 50 ml of lesions the median / MAD reference put lesions at z 1-3 and
nothing was found. On FLAIR a white-matter peak as bright as grey matter means
diffuse disease (leukoencephalopathy): the normal level then comes from grey
matter. Evidence from several sequences is averaged after scaling each by its
own threshold.
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


#: sqrt(2 ln 2): half width at half maximum of a normal distribution, in standard deviations.
HWHM_PER_SD = 1.1774


def _robust_center_spread(values: np.ndarray) -> tuple[float, float]:
    median = float(np.median(values))
    mad = float(np.median(np.abs(values - median))) * 1.4826
    return median, mad


def peak_center_spread(values: np.ndarray, bins: int = 256) -> tuple[float, float]:
    """Centre and spread of the main intensity peak, blind to both tails.

    The centre is the mode of the smoothed histogram (between the 0.5th and
    99.5th percentiles); the spread is the half width at half maximum on the
    *dark* side of the peak divided by sqrt(2 ln 2).  Lesions (the bright
    tail), however many, and partial volume with darker tissue (CSF) that
    does not reach the peak change neither, unlike the median and MAD of a
    white-matter selection that is itself partly diseased.  Falls back to the
    median and MAD when the histogram is degenerate.

    Parameters
    ----------
    values : ndarray
        Intensities of (possibly diseased) white matter.
    bins : int

    Returns
    -------
    (centre, spread) : tuple of float

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> normal = rng.normal(100, 5, 20000)
    >>> lesions = rng.normal(140, 10, 8000)  # 29% of the selection is lesion
    >>> centre, spread = peak_center_spread(np.concatenate([normal, lesions]))
    >>> bool(abs(centre - 100) < 2 and abs(spread - 5) < 1)
    True
    """
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    median, mad = _robust_center_spread(values)
    low, high = np.percentile(values, [0.5, 99.5])
    if values.size < 200 or not high > low:
        return median, mad
    counts, edges = np.histogram(values, bins=bins, range=(low, high))
    counts = ndimage.gaussian_filter1d(counts.astype(np.float64), 2.0)
    centres = 0.5 * (edges[1:] + edges[:-1])
    peak = int(np.argmax(counts))
    half = counts[peak] / 2.0
    below = np.flatnonzero(counts[:peak] <= half)
    if below.size == 0:
        return float(centres[peak]), mad
    k = int(below[-1])  # last bin below half maximum, left of the peak: interpolate the crossing
    crossing = centres[k] + (half - counts[k]) / max(counts[k + 1] - counts[k], 1e-12) * (centres[k + 1] - centres[k])
    spread = float((centres[peak] - crossing) / HWHM_PER_SD)
    if not spread > 0:
        return float(centres[peak]), mad
    return float(centres[peak]), spread


def tissue_intensities(
    image: np.ndarray, tissue: dict[str, np.ndarray], mask: np.ndarray, purity: float = 0.9
) -> dict[str, float]:
    """Robust intensity of each tissue where its probability exceeds ``purity`` (histogram peak; CSF: median)."""
    levels = {}
    for name, probability in tissue.items():
        for threshold in (purity, 0.7, 0.5):
            selected = mask & (probability > threshold)
            if selected.sum() >= 50:
                values = image[selected]
                levels[name] = float(np.median(values)) if name == "csf" else peak_center_spread(values)[0]
                break
        else:
            levels[name] = float("nan")
    return levels


def tissue_neighbourhood(probability: np.ndarray, zooms: tuple[float, ...], radius_mm: float,
                         threshold: float = 0.15) -> np.ndarray:
    """Voxels within ``radius_mm`` (at least one voxel per axis) of ``probability > threshold``.

    Absorbs registration error at tissue borders: the grey-matter floor of
    :func:`robust_zmap`, the juxtacortical band of the search mask.
    """
    near = probability > threshold
    if radius_mm <= 0:
        return near
    size = tuple(int(2 * max(1, round(radius_mm / z)) + 1) for z in zooms[:3])
    return ndimage.maximum_filter(near, size=size)


#: Fewest voxels of the white-matter reference (after erosion); below it the erosion is skipped.
MIN_REFERENCE_VOXELS = 200


def erode_mm(mask: np.ndarray, zooms: tuple[float, ...], radius_mm: float) -> np.ndarray:
    """Binary erosion by ``radius_mm`` along each axis separately (none along axes coarser than the radius).

    On thick-slice scans (0.5 x 0.5 x 8 mm) a voxel-count erosion would
    remove whole slices; here the through-plane axis is left alone.
    """
    radius = [int(round(radius_mm / z)) for z in zooms[:3]]
    if radius_mm <= 0 or not any(radius):
        return mask
    structure = np.zeros(tuple(2 * r + 1 for r in radius), dtype=bool)
    for axis, r in enumerate(radius):
        index = [slice(r_, r_ + 1) for r_ in radius]
        index[axis] = slice(None)
        structure[tuple(index)] = True
    return ndimage.binary_erosion(mask, structure)


def white_matter_reference(
    data: np.ndarray, wm_probability: np.ndarray, brain_mask: np.ndarray, zooms: tuple[float, ...],
    *, erosion_mm: float = 2.0,
) -> np.ndarray:
    """The white-matter selection whose intensity peak is taken as normal white matter.

    The most probable white matter (template probability > 0.9, else 0.8,
    0.7, 0.5: thick slices blur the registered probabilities), eroded by
    ``erosion_mm`` in-plane when enough remains.

    Raises
    ------
    ValueError
        When even the 0.5 selection has fewer than ``MIN_REFERENCE_VOXELS``.
    """
    for threshold in (0.9, 0.8, 0.7, 0.5):
        selected = brain_mask & (wm_probability > threshold) & np.isfinite(data)
        if selected.sum() >= MIN_REFERENCE_VOXELS:
            eroded = erode_mm(selected, zooms, erosion_mm)
            return eroded if eroded.sum() >= MIN_REFERENCE_VOXELS else selected
    raise ValueError("too little normal-appearing white matter to normalise intensities "
                     f"(fewer than {MIN_REFERENCE_VOXELS} voxels of probable white matter in the brain mask)")


def robust_zmap(
    image: nib.Nifti1Image,
    tissue: dict[str, np.ndarray],
    brain_mask: np.ndarray,
    *,
    nawm_erosion_mm: float = 2.0,
    grey_matter_margin_mm: float = 2.0,
    max_wm_gm_ratio: float = 1.03,
    normal_wm_gm_ratio: float = 0.9,
    white_darker_than_grey: bool = True,
) -> tuple[nib.Nifti1Image, dict[str, float]]:
    """Robust hyperintensity z-map of one sequence.

    The normal white-matter level and spread are the centre and dark-side
    width of the intensity peak of probable white matter
    (:func:`peak_center_spread`), so a heavy or diffuse lesion load does not
    raise the reference.  On sequences where normal white matter is darker
    than grey matter (``white_darker_than_grey``: FLAIR, T2w, DWI), when the
    white-matter peak reaches ``max_wm_gm_ratio`` of the grey-matter level,
    the white matter is taken as diffusely abnormal and its normal level is
    set to ``normal_wm_gm_ratio`` x the grey-matter level instead
    (``stats["wm_reference_from_gm"]`` = 1, a reason for a warning).

    The expected intensity is the tissue mixture of the registered priors;
    near grey matter (within ``grey_matter_margin_mm`` of GM probability >
    0.15) it is at least the grey-matter level when grey matter is the
    brighter tissue, so that cortex and deep grey nuclei shifted by a small
    registration error are not taken for lesions.

    Parameters
    ----------
    image : Nifti1Image
        Bias-corrected image on the reference grid.
    tissue : dict
        ``{"csf", "gm", "wm"}`` probability arrays on the same grid.
    brain_mask : ndarray of bool
    nawm_erosion_mm : float
        In-plane erosion of the white-matter reference (avoids partial volume at its border).
    grey_matter_margin_mm : float
        Margin around probable grey matter where the grey-matter floor applies.
    max_wm_gm_ratio, normal_wm_gm_ratio : float
        The diffuse-disease rule above.
    white_darker_than_grey : bool
        Whether the rule applies (False for T1-weighted images).

    Returns
    -------
    (zmap, stats)
        z-map image (0 outside the brain) and the tissue levels, white-matter
        spread and the WM/GM ratio that was measured.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> wm = np.zeros((30, 30, 30), np.float32); wm[5:25, 5:25, 5:25] = 1
    >>> gm = 1 - wm; tissue = {"csf": np.zeros_like(wm), "gm": gm, "wm": wm}
    >>> data = (100 * wm + 125 * gm + rng.normal(0, 4, wm.shape)).astype(np.float32)
    >>> zmap, stats = robust_zmap(nib.Nifti1Image(data, np.eye(4)), tissue, np.ones(wm.shape, bool))
    >>> round(stats["wm_level"] / 10), round(stats["nawm_spread"])
    (10, 4)
    """
    data = np.asarray(image.dataobj, dtype=np.float32)
    zooms = tuple(float(z) for z in image.header.get_zooms()[:3])
    levels = tissue_intensities(data, tissue, brain_mask)
    reference = white_matter_reference(data, tissue["wm"], brain_mask, zooms, erosion_mm=nawm_erosion_mm)
    wm_center, wm_spread = peak_center_spread(data[reference])
    for name in ("csf", "gm"):
        if not np.isfinite(levels[name]):
            levels[name] = wm_center
    ratio = wm_center / levels["gm"] if levels["gm"] > 0 else float("nan")
    from_gm = bool(white_darker_than_grey and np.isfinite(ratio) and ratio >= max_wm_gm_ratio)
    if from_gm:
        wm_center = normal_wm_gm_ratio * levels["gm"]
    levels["wm"] = wm_center
    weights = sum(tissue[name] for name in ("csf", "gm", "wm"))
    expected = sum(tissue[name] * levels[name] for name in ("csf", "gm", "wm"))
    expected = np.where(weights > 0.05, expected / np.maximum(weights, 1e-6), wm_center)
    if levels["gm"] > wm_center:
        near_gm = tissue_neighbourhood(tissue["gm"], zooms, grey_matter_margin_mm)
        expected = np.where(near_gm, np.maximum(expected, levels["gm"]), expected)
    spread = max(wm_spread, 1e-3 * max(abs(wm_center), 1.0))
    zmap = np.where(brain_mask, (data - expected) / spread, 0.0).astype(np.float32)
    stats = {**{f"{name}_level": value for name, value in levels.items()}, "nawm_spread": spread,
             "wm_gm_ratio": float(ratio), "wm_reference_from_gm": float(from_gm),
             "wm_reference_voxels": float(reference.sum())}
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


def drop_thin_clusters(
    mask: np.ndarray, zooms: tuple[float, ...], *, min_mm3: float, core_depth_mm: float
) -> np.ndarray:
    """Drop the 26-connected clusters of more than ``min_mm3`` that have no voxel ``core_depth_mm`` deep.

    Thin bright rims (the ependymal lining of the ventricles, partial volume
    along sulcal CSF, the septum) are common on FLAIR and are not lesions; a
    lesion of that size is a blob with a core that survives an erosion of
    ``core_depth_mm`` (:func:`erode_mm`: in-plane only on thick slices).
    Clusters of ``min_mm3`` or less are kept whatever their shape (small
    lesions have no core at this resolution).

    Examples
    --------
    >>> mask = np.zeros((20, 20, 20), bool)
    >>> mask[2:6, 2:6, 2:6] = True           # a 64 mm3 blob
    >>> mask[10, 2:18, 2:18] = True          # a one-voxel-thick sheet of 256 mm3
    >>> kept = drop_thin_clusters(mask, (1.0, 1.0, 1.0), min_mm3=25, core_depth_mm=1.0)
    >>> int(kept.sum()), bool(kept[10].any())
    (64, False)
    """
    mask = np.asarray(mask, dtype=bool)
    if core_depth_mm <= 0 or not mask.any():
        return mask
    labelled = measure.label(mask, connectivity=mask.ndim)
    keep = np.zeros(int(labelled.max()) + 1, dtype=bool)
    keep[np.unique(labelled[erode_mm(mask, zooms, core_depth_mm)])] = True
    voxel_mm3 = float(np.prod(zooms[:3]))
    keep |= np.bincount(labelled.ravel(), minlength=keep.size) * voxel_mm3 <= min_mm3
    keep[0] = False
    return keep[labelled]


def detect_lesions(
    zmaps: dict[str, nib.Nifti1Image], search_mask: np.ndarray, config: DetectionConfig,
    *, diffuse: frozenset[str] | set[str] = frozenset(),
) -> tuple[nib.Nifti1Image, nib.Nifti1Image, int]:
    """Combine sequence z-maps, threshold, and keep clusters above the minimum size.

    Parameters
    ----------
    zmaps : dict
        Sequence -> z-map on the reference grid (only hyperintense sequences are used).
    search_mask : ndarray of bool
        Where lesions may be (brain, not CSF; cortex only where it borders white matter).
    config : DetectionConfig
    diffuse : set of str
        Sequences whose normal white matter had to be taken from grey matter
        (``stats["wm_reference_from_gm"]`` of :func:`robust_zmap`: diffuse
        white-matter disease). When a sequence used is among them, the
        threshold and the seed level are multiplied by
        ``config.diffuse_threshold_factor``: most of the white matter is
        abnormal, and a faint diffuse hyperintensity is only a few spreads
        above normal.

    Returns
    -------
    (lesion_mask, combined_z, n_clusters)
        ``combined_z`` is the mean (``combine="max"``: maximum) z over the
        sequences used: every hyperintense sequence, or FLAIR alone when
        present with ``combine="flair"``. The threshold is
        applied to the mean of each z divided by its sequence's threshold
        (> 1); a cluster survives only if that evidence peaks at
        ``config.seed_threshold_factor`` or more somewhere in it, if it is
        not a thin rim (:func:`drop_thin_clusters`) and if it has at least
        ``config.min_cluster_mm3``.
    """
    used = [seq for seq in HYPERINTENSE_SEQUENCES if seq in zmaps]
    if not used:
        raise ValueError("no FLAIR, T2w or DWI image to detect hyperintensities on")
    if config.combine == "flair" and "FLAIR" in used:
        used = ["FLAIR"]
    reference = zmaps[used[0]]
    stack = np.stack([np.asarray(zmaps[seq].dataobj, dtype=np.float32) for seq in used])
    scaled = np.stack([stack[i] / config.z_threshold[seq] for i, seq in enumerate(used)])
    evidence = scaled.max(axis=0) if config.combine == "max" else scaled.mean(axis=0)
    combined = stack.max(axis=0) if config.combine == "max" else stack.mean(axis=0)
    zooms = tuple(float(z) for z in reference.header.get_zooms()[:3])
    if config.smoothing_fwhm_mm > 0:
        evidence = ndimage.gaussian_filter(evidence, config.smoothing_fwhm_mm / 2.3548 / np.asarray(zooms))
    level = config.diffuse_threshold_factor if set(diffuse) & set(used) else 1.0
    candidate = keep_seeded_clusters((evidence > level) & search_mask, evidence, level * config.seed_threshold_factor)
    voxel_mm3 = float(abs(np.linalg.det(reference.affine[:3, :3])))
    if config.thin_cluster_min_mm3 > 0 and config.core_depth_mm > 0:
        candidate = drop_thin_clusters(candidate, zooms, min_mm3=config.thin_cluster_min_mm3,
                                       core_depth_mm=config.core_depth_mm)
    lesion, count = remove_small_clusters(candidate, int(np.ceil(config.min_cluster_mm3 / voxel_mm3)))
    lesion_img = nib.Nifti1Image(lesion.astype(np.uint8), reference.affine)
    return lesion_img, nib.Nifti1Image(combined.astype(np.float32), reference.affine), count
