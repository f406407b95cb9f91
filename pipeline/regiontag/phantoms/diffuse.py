"""Diffuse white-matter disease phantoms: leukoencephalopathy, not patchy lesions.

In vitamin B12 deficiency and toxic leukoencephalopathy the cerebral white
matter is *diffusely* hyperintense on FLAIR and T2w: 30-80% of it, bilateral and
symmetric, confluent from the ventricles outwards, sparing the subcortical
U-fibres (the juxtacortical white matter). The "normal-appearing white
matter" of such a brain is not normal, which is what these phantoms test.

:func:`diffuse_white_matter_lesions` draws the abnormal white matter on the
phantom anatomy grid (same signature as
:func:`regiontag.phantoms.lesion_shapes.place_lesions`);
:func:`make_diffuse_phantom` builds a whole session with it through
:func:`regiontag.phantoms.brain.make_brain_phantom`.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
from scipy import ndimage

from regiontag.atlas.tree import Atlas
from regiontag.phantoms.brain import BrainPhantom, make_brain_phantom
from regiontag.phantoms.lesion_shapes import LesionTarget, smooth_noise

#: The region that is diffusely involved, and the part of it that is spared (U-fibres).
CEREBRAL_WHITE_MATTER = "Cerebrum > Cerebral white matter"
SPARED_REGION = "Cerebrum > Cerebral white matter > Juxtacortical white matter"
#: Default lesion grade: FLAIR white matter brought to about 1.17 x grey matter
#: (0.55 x (1 - g) + 1.10 x g = 1.17 x 0.68 with the contrasts of ``phantoms.contrast``).
DIFFUSE_GRADE = 0.45
#: Pattern whose diagnosis the default diffuse phantom carries.
DIFFUSE_PATTERN = "b12-leukoencephalopathy"
#: White-matter tracts that "frequently" accompany the cerebral white matter, bilaterally and symmetrically,
#: in B12 leukoencephalopathy (../shared/seeds/vitamin-b12-deficiency.txt); the default phantom involves them
#: as a whole (their white matter), at the same grade.
ACCOMPANYING_TRACTS = ("Corpus callosum", "Internal capsule", "Middle cerebellar peduncle",
                       "Cerebellum > Cerebellar white matter")


def mirror_about_midline(volume: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Left/right mirror of a volume about world x = 0 (voxel axis 0 must be the x axis, as on the anatomy grid)."""
    centre = float(np.linalg.solve(affine, np.array([0.0, 0.0, 0.0, 1.0]))[0])
    source = np.clip(np.rint(2 * centre - np.arange(volume.shape[0])).astype(int), 0, volume.shape[0] - 1)
    return volume[source]


def diffuse_white_matter_lesions(
    tissue: np.ndarray,
    labels: np.ndarray,
    atlas: Atlas,
    targets: list[LesionTarget],
    size: str,
    rng: np.random.Generator,
    *,
    fraction: float = 0.5,
    grade: float = DIFFUSE_GRADE,
    affine: np.ndarray | None = None,
    tracts: tuple[str, ...] = (),
) -> tuple[np.ndarray, np.ndarray, list[dict]]:
    """Diffuse, bilateral, symmetric hyperintensity of ``fraction`` of the cerebral white matter.

    The abnormal voxels are the cerebral white matter (WM fraction > 0.5,
    juxtacortical zone spared) deepest from the cortex, with a smooth random
    modulation that is made left/right symmetric (mirrored about x = 0):
    ``fraction`` of those candidates (the non-U-fibre cerebral white matter).
    The fraction of the whole atlas region that ends up involved (the number
    the pipeline reports) is smaller and is recorded as
    ``placed[0]["fraction_of_region"]``; the truth region table has it too. The grade varies smoothly by +-0.1 around ``grade``.

    Parameters
    ----------
    tissue, labels : numpy.ndarray
        Tissue fractions ``(3, X, Y, Z)`` and leaf labels on the anatomy grid.
    atlas : Atlas
    targets : list of LesionTarget
        Ignored (the region is the cerebral white matter); kept for the
        ``place_lesions`` signature.
    size : str
        Ignored (diffuse).
    rng : numpy.random.Generator
    fraction : float
        Fraction of the non-U-fibre cerebral white matter that is abnormal, in (0, 1].
    grade : float
        Mean lesion grade (fraction of the signal replaced by lesion signal).
    affine : ndarray, optional
        Anatomy grid affine (for the midline); default: the grid centre is the midline.
    tracts : tuple of str
        Atlas regions whose white matter (WM fraction > 0.5) is involved as a whole, both sides, at the
        same grade (e.g. :data:`ACCOMPANYING_TRACTS`); one ``placed`` entry each.

    Returns
    -------
    (mask, grade, placed)
        As :func:`~regiontag.phantoms.lesion_shapes.place_lesions`.

    Examples
    --------
    See ``tests/phantoms/test_diffuse.py``.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    region = np.isin(labels, atlas.region(CEREBRAL_WHITE_MATTER).label_values("both"))
    spared = np.isin(labels, atlas.region(SPARED_REGION).label_values("both"))
    candidates = region & ~spared & (tissue[2] > 0.5)
    depth = ndimage.distance_transform_edt(~((tissue[1] > 0.5) | spared)).astype(np.float32)
    noise = smooth_noise(labels.shape, 6.0, rng).astype(np.float32)
    if affine is None:
        affine = np.eye(4)
        affine[0, 3] = -(labels.shape[0] - 1) / 2.0
    noise = 0.5 * (noise + mirror_about_midline(noise, affine))
    score = depth / max(float(depth[candidates].std()), 1e-6) + 0.8 * noise / max(float(noise.std()), 1e-6)
    wanted = int(round(fraction * candidates.sum()))
    mask = np.zeros(labels.shape, dtype=bool)
    if wanted > 0:
        values = score[candidates]
        cutoff = np.partition(values, values.size - wanted)[values.size - wanted]
        mask = candidates & (score >= cutoff)
    placed = [{"region": CEREBRAL_WHITE_MATTER, "side": "both", "n_lesions": 1,
               "volume_mm3": float(mask.sum()), "fraction_of_region": float(mask.sum() / max(region.sum(), 1)),
               "spared": SPARED_REGION, "grade": float(grade)}]
    for tract in tracts:
        tract_region = np.isin(labels, atlas.region(tract).label_values("both"))
        tract_mask = tract_region & (tissue[2] > 0.5) & ~mask
        mask |= tract_mask
        placed.append({"region": tract, "side": "both", "n_lesions": 1, "volume_mm3": float(tract_mask.sum()),
                       "fraction_of_region": float((tract_region & mask).sum() / max(tract_region.sum(), 1)),
                       "grade": float(grade)})
    variation = smooth_noise(labels.shape, 4.0, rng).astype(np.float32)
    variation = 0.1 * variation / max(float(np.abs(variation).max()), 1e-6)
    grade_map = np.where(mask, np.clip(grade + variation, 0.05, 1.0), 0.0).astype(np.float32)
    return mask, grade_map, placed


def make_diffuse_phantom(
    seed: int,
    *,
    fraction: float = 0.5,
    grade: float = DIFFUSE_GRADE,
    pattern: str = DIFFUSE_PATTERN,
    tracts: tuple[str, ...] = ACCOMPANYING_TRACTS,
    **settings: Any,
) -> BrainPhantom:
    """A brain session with diffuse leukoencephalopathy of ``fraction`` of the cerebral white matter.

    Parameters
    ----------
    seed : int
    fraction : float
        Abnormal fraction of the non-U-fibre cerebral white matter (0.3-0.8 in B12 / toxic
        leukoencephalopathy); see :func:`diffuse_white_matter_lesions`.
    grade : float
        Lesion grade (:data:`DIFFUSE_GRADE`: FLAIR white matter at about 1.17 x grey matter).
    pattern : str
        The pattern id recorded as the truth (``b12-leukoencephalopathy``).
    tracts : tuple of str
        Tracts involved as a whole besides the cerebral white matter (default :data:`ACCOMPANYING_TRACTS`,
        the seed's picture of B12 leukoencephalopathy; ``()`` for the cerebral white matter alone).
    **settings
        Acquisition keywords of :func:`~regiontag.phantoms.brain.make_brain_phantom`
        (``sequences``, ``voxel_size``, ``snr``, ...).

    Returns
    -------
    BrainPhantom
        ``params["diffuse"]`` holds the fraction and grade asked for and placed.

    Examples
    --------
    >>> phantom = make_diffuse_phantom(1, fraction=0.5, voxel_size=(2.0, 2.0, 4.0))  # doctest: +SKIP
    """
    from regiontag.phantoms.anatomy import load_anatomy

    affine = load_anatomy().affine
    placer = partial(diffuse_white_matter_lesions, fraction=fraction, grade=grade, affine=affine, tracts=tracts)
    phantom = make_brain_phantom(pattern, seed, lesion_placer=placer, **settings)
    phantom.params["diffuse"] = {"fraction": float(fraction), "grade": float(grade),
                                 "placed": phantom.params.get("placed")}
    return phantom
