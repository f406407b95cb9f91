"""Irregular lesions with graded intensity, placed inside named atlas regions (phantom anatomy grid).

Lesions live on the 1 mm anatomy grid (see :mod:`regiontag.phantoms.anatomy`).
Each lesion is an irregular blob: distance from a seed voxel perturbed by
smooth noise, thresholded to an exact voxel count and clipped to the
region's white matter (or to the region's tissue when it has little white
matter, e.g. the basal ganglia).  Confluent lesions are smooth noise
thresholded over the whole region.  Every lesion gets a contrast factor and a
brighter core (graded intensity).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from regiontag.atlas.tree import Atlas

#: Lesion size modes and what they mean (per targeted region and side).
LESION_SIZES = {
    "small": "3-8 separate foci of 8-29 mm3 each",
    "medium": "discrete irregular lesions totalling 3-6% of the region (at least 0.3 ml), one per ~1.5 ml "
              "plus 0-2, each 20 mm3 to 2.5 ml (below the 3 ml a session calls confluent)",
    "confluent": "confluent irregular patches covering 10-25% of the region's white matter",
    "disseminated": "multiple-sclerosis-like: one discrete ovoid lesion per target, log-normal volume "
                    "(median 60 mm3, 20-1500 mm3); targets from phantoms.targets.disseminated_targets",
}
#: ``disseminated`` lesions: log-normal volume (mm3) median and log-sd, and bounds. Real MS lesion volumes
#: are roughly log-normal with most lesions under 0.1 ml (the 15 development masks: median ~0.02 ml in
#: MNI space); the median is raised to 60 mm3 so that lesions stay detectable on 3 mm slices.
DISSEMINATED_MEDIAN_MM3 = 60.0
DISSEMINATED_LOG_SD = 0.9
DISSEMINATED_BOUNDS_MM3 = (20, 1500)

#: ``medium`` lesions: volume per lesion (mm3, 1 mm anatomy grid) and the largest single lesion. Real MS
#: or small-vessel lesions are discrete foci of a few mm to ~1.5 cm; a 2.5 ml cap keeps every lesion of a
#: phantom whose truth says "not confluent" below the largest cluster a session calls confluent
#: (``involvement.confluent_min_ml``, 3 ml).
MEDIUM_LESION_MM3 = 1500
MEDIUM_LESION_MAX_MM3 = 2500
#: 26-neighbourhood: the gap kept around a lesion holds diagonally too, so lesions stay separate components.
_CUBE = np.ones((3, 3, 3), dtype=bool)


@dataclass(frozen=True)
class LesionTarget:
    """A region and side that receives lesions (side ``both`` for unpaired regions)."""

    region: str
    side: str
    #: Size mode of this target when it differs from the phantom's (e.g. the confluent plaques of heavy MS).
    mode: str = ""


def smooth_noise(shape: tuple[int, ...], sigma_voxels: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian white noise smoothed with ``sigma_voxels`` and rescaled to zero mean, unit variance."""
    field = ndimage.gaussian_filter(rng.standard_normal(shape).astype(np.float32), sigma_voxels)
    field -= field.mean()
    return field / max(float(field.std()), 1e-6)


def lesion_candidates(tissue: np.ndarray, labels: np.ndarray, atlas: Atlas, target: LesionTarget) -> np.ndarray:
    """Voxels of the target region where a lesion may go.

    The region's white matter (WM fraction > 0.5) when that is at least a
    quarter of the region, otherwise the region's tissue (GM + WM > 0.5).
    """
    region = np.isin(labels, atlas.region(target.region).label_values(target.side))
    white = region & (tissue[2] > 0.5)
    if white.sum() >= 0.25 * region.sum() and white.sum() >= 30:
        return white
    return region & (tissue[1] + tissue[2] > 0.5)


def _bounding_box(mask: np.ndarray, margin: int = 0) -> tuple[slice, ...]:
    box = []
    for axis in range(mask.ndim):
        present = np.flatnonzero(np.any(mask, axis=tuple(a for a in range(mask.ndim) if a != axis)))
        low, high = (present[0], present[-1] + 1) if present.size else (0, 0)
        box.append(slice(int(max(low - margin, 0)), int(min(high + margin, mask.shape[axis]))))
    return tuple(box)


def irregular_blob(
    candidates: np.ndarray, centre: np.ndarray, n_voxels: int, rng: np.random.Generator, irregularity: float = 0.6
) -> np.ndarray:
    """An irregular blob of about ``n_voxels`` candidate voxels around ``centre``.

    Parameters
    ----------
    candidates : numpy.ndarray
        Boolean mask of allowed voxels.
    centre : numpy.ndarray
        Seed voxel index (inside ``candidates``).
    n_voxels : int
        Wanted size; fewer when the candidates run out nearby.
    rng : numpy.random.Generator
    irregularity : float
        Weight of the smooth noise relative to the normalised distance.

    Returns
    -------
    numpy.ndarray
        Boolean mask (one 26-connected component), same shape as ``candidates``.
    """
    radius = (3 * n_voxels / (4 * np.pi)) ** (1 / 3)
    half = int(np.ceil(2.5 * radius)) + 3
    low = np.maximum(np.asarray(centre) - half, 0)
    high = np.minimum(np.asarray(centre) + half + 1, candidates.shape)
    box = tuple(slice(int(lo), int(hi)) for lo, hi in zip(low, high))
    local = candidates[box]
    grid = np.indices(local.shape, dtype=np.float32)
    offsets = (np.asarray(centre) - low).reshape(3, 1, 1, 1)
    stretch = np.exp(rng.normal(0, 0.25, size=3)).reshape(3, 1, 1, 1).astype(np.float32)
    distance = np.sqrt((((grid - offsets) / stretch) ** 2).sum(axis=0)) / max(radius, 0.5)
    noise = smooth_noise(local.shape, max(radius / 2, 0.8), rng)
    score = np.where(local, distance + irregularity * noise, np.inf)
    order = np.argsort(score, axis=None)[: min(n_voxels, int(local.sum()))]
    blob_local = np.zeros(local.shape, dtype=bool)
    blob_local.flat[order] = True
    components, count = ndimage.label(blob_local, structure=np.ones((3, 3, 3), dtype=bool))
    if count > 1:  # one lesion = one connected component: keep the largest piece
        blob_local = components == np.argmax(np.bincount(components.ravel())[1:]) + 1
    blob = np.zeros(candidates.shape, dtype=bool)
    blob[box] = blob_local
    return blob


def confluent_patches(
    candidates: np.ndarray, fraction: float, rng: np.random.Generator, min_voxels: int = 50
) -> np.ndarray:
    """Smooth noise (sigma 6 mm) thresholded so that about ``fraction`` of the candidates is lesion.

    Patches smaller than ``min_voxels`` are dropped, so the result is a few
    large confluent areas rather than scattered specks.
    """
    box = _bounding_box(candidates, margin=6)
    local = candidates[box]
    noise = smooth_noise(local.shape, 6.0, rng)
    threshold = np.quantile(noise[local], 1 - fraction)
    patches_local = local & (noise >= threshold)
    components, count = ndimage.label(patches_local, structure=np.ones((3, 3, 3), dtype=bool))
    sizes = np.bincount(components.ravel(), minlength=count + 1)
    keep = sizes >= min_voxels
    keep[0] = False
    patches = np.zeros(candidates.shape, dtype=bool)
    patches[box] = keep[components]
    return patches


def graded_intensity(blob: np.ndarray, contrast: float) -> np.ndarray:
    """Lesion grade in [0.6 * contrast, contrast]: brighter in the core, fainter at the rim."""
    box = _bounding_box(blob, margin=3)
    core = ndimage.gaussian_filter(blob[box].astype(np.float32), 1.2)
    core /= max(float(core.max()), 1e-6)
    grade = np.zeros(blob.shape, dtype=np.float32)
    grade[box] = np.where(blob[box], contrast * (0.6 + 0.4 * core), 0)
    return grade


def place_lesions(
    tissue: np.ndarray,
    labels: np.ndarray,
    atlas: Atlas,
    targets: list[LesionTarget],
    size: str,
    rng: np.random.Generator,
    contrast_range: tuple[float, float] = (0.7, 1.0),
) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """Lesions in every target region.

    Parameters
    ----------
    tissue, labels : numpy.ndarray
        Tissue fractions ``(3, X, Y, Z)`` and leaf labels on the anatomy grid.
    atlas : Atlas
    targets : list of LesionTarget
    size : {"small", "medium", "confluent"}
        See :data:`LESION_SIZES`.
    rng : numpy.random.Generator
    contrast_range : tuple of float
        Range of the per-lesion contrast factor (1 = full lesion intensity).

    Returns
    -------
    mask : numpy.ndarray
        Boolean lesion mask.
    grade : numpy.ndarray
        float32 lesion grade in [0, 1] (fraction of the voxel's signal that is lesion signal).
    placed : list of dict
        Per target: region, side, n_lesions, volume_mm3 (on the anatomy grid).
    """
    if size not in LESION_SIZES:
        raise ValueError(f"lesion size {size!r} unknown; choose one of {sorted(LESION_SIZES)}")
    mask = np.zeros(labels.shape, dtype=bool)
    grade = np.zeros(labels.shape, dtype=np.float32)
    placed = []
    # voxels no later lesion may take: discrete lesions grown by their 2-voxel gap (within and across
    # targets); confluent patches only themselves, so they may merge
    keep_out = np.zeros(labels.shape, dtype=bool)
    for target in targets:
        candidates = lesion_candidates(tissue, labels, atlas, target) & ~keep_out
        available = int(candidates.sum())
        if available < 8:
            placed.append({"region": target.region, "side": target.side, "n_lesions": 0, "volume_mm3": 0.0})
            continue
        region_voxels = int(np.isin(labels, atlas.region(target.region).label_values(target.side)).sum())
        blobs: list[np.ndarray] = []
        mode = target.mode or size
        if mode == "confluent":
            blobs.append(confluent_patches(candidates, rng.uniform(0.10, 0.25), rng))
        else:
            if mode == "small":
                sizes = rng.integers(8, 30, size=int(rng.integers(3, 9)))
            elif mode == "disseminated":
                volume = rng.lognormal(np.log(DISSEMINATED_MEDIAN_MM3), DISSEMINATED_LOG_SD)
                sizes = np.asarray([int(np.clip(volume, *DISSEMINATED_BOUNDS_MM3))])
            else:
                total = max(rng.uniform(0.03, 0.06) * region_voxels, 300)
                total = min(total, 0.6 * available)
                count = int(np.clip(np.ceil(total / MEDIUM_LESION_MM3), 1, 40)) + int(rng.integers(0, 3))
                sizes = np.clip(rng.dirichlet(np.full(count, 3.0)) * total, 20, MEDIUM_LESION_MAX_MM3).astype(int)
            free = candidates.copy()
            for n_voxels in sizes:
                # keep a 2-voxel gap so separate lesions stay separate components
                seeds = np.flatnonzero(free)
                if seeds.size == 0:
                    break
                centre = np.array(np.unravel_index(rng.choice(seeds), labels.shape))
                blob = irregular_blob(free, centre, int(n_voxels), rng)
                blobs.append(blob)
                if blob.any():
                    box = _bounding_box(blob, margin=2)
                    grown = ndimage.binary_dilation(blob[box], structure=_CUBE, iterations=2)
                    free[box] &= ~grown
                    keep_out[box] |= grown
        volume, n_lesions = 0, 0
        for blob in blobs:
            contrast = rng.uniform(*contrast_range)
            if not blob.any():
                continue
            n_lesions += 1
            box = _bounding_box(blob, margin=3)
            np.maximum(grade[box], graded_intensity(blob[box], contrast), out=grade[box])
            mask |= blob
            volume += int(blob.sum())
        if mode == "confluent":
            keep_out |= mask
        placed.append(
            {"region": target.region, "side": target.side, "n_lesions": n_lesions, "volume_mm3": float(volume)}
        )
    return mask, grade, placed
