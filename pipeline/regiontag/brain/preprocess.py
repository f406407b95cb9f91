"""Preprocessing: nibabel <-> ANTs conversion, N4 bias correction, initial brain mask."""

from __future__ import annotations

import ants
import nibabel as nib
import numpy as np
from scipy import ndimage

from regiontag.config import PreprocessingConfig


def to_ants(image: nib.Nifti1Image) -> "ants.ANTsImage":
    """nibabel image -> ANTs image (float32, physical space preserved)."""
    data = np.asarray(image.dataobj, dtype=np.float32)
    converted = nib.Nifti1Image(data, image.affine)
    converted.header.set_xyzt_units("mm", "sec")
    return ants.from_nibabel_nifti(converted)


def from_ants(image: "ants.ANTsImage", dtype: type = np.float32) -> nib.Nifti1Image:
    """ANTs image -> nibabel image with the given data type."""
    converted = ants.to_nibabel_nifti(image)
    return nib.Nifti1Image(np.asarray(converted.dataobj).astype(dtype), converted.affine)


#: Largest plausible brain volume (ml): a larger non-zero region is a head, not a stripped brain.
MAX_STRIPPED_VOLUME_ML = 2000.0


def is_skull_stripped(image: nib.Nifti1Image) -> bool:
    """Heuristic: a skull-stripped export is a brain-sized region inside an exactly constant background.

    Scanner exports often zero the air around the head too, so a constant
    background alone is not enough: the foreground must also be brain-sized.
    """
    data = np.asarray(image.dataobj, dtype=np.float32)
    foreground = data != data.min()
    voxel_ml = float(abs(np.linalg.det(image.affine[:3, :3]))) / 1000.0
    return bool(foreground.mean() < 0.75 and foreground.sum() * voxel_ml < MAX_STRIPPED_VOLUME_ML)


def _largest_component(mask: np.ndarray) -> np.ndarray:
    labelled, count = ndimage.label(mask)
    if count == 0:
        return mask
    sizes = np.bincount(labelled.ravel())
    sizes[0] = 0
    return labelled == int(np.argmax(sizes))


def initial_brain_mask(image: nib.Nifti1Image, skull_stripped: bool) -> nib.Nifti1Image:
    """A first brain mask from intensities (refined later by the registered template mask).

    Skull-stripped input: the non-zero voxels. Otherwise: ANTs' Otsu-based
    head mask, eroded to cut the scalp, largest component, dilated back.
    """
    data = np.asarray(image.dataobj, dtype=np.float32)
    if skull_stripped:
        mask = data > data.min()
    else:
        mask = ants.get_mask(to_ants(image), cleanup=2).numpy() > 0
        zooms = np.asarray(image.header.get_zooms()[:3], dtype=float)
        radius = np.maximum(1, np.round(4.0 / zooms)).astype(int)
        structure = np.ones(tuple(2 * r + 1 for r in radius), dtype=bool)
        mask = ndimage.binary_erosion(mask, structure)
        mask = _largest_component(mask)
        mask = ndimage.binary_dilation(mask, structure)
    mask = _largest_component(mask)
    mask = np.stack([ndimage.binary_fill_holes(mask[:, :, k]) for k in range(mask.shape[2])], axis=2)
    return nib.Nifti1Image(mask.astype(np.uint8), image.affine)


def bias_correct(
    image: nib.Nifti1Image, mask: nib.Nifti1Image | None, config: PreprocessingConfig
) -> nib.Nifti1Image:
    """N4 bias-field correction (ANTs), restricted to ``mask`` when given.

    The smooth bias field is estimated on a copy resampled to
    ``n4_resolution_mm`` (it has no detail finer than the spline distance),
    then resampled to the full grid and divided out.
    """
    if not config.n4:
        return image
    full = to_ants(image)
    resolution = config.n4_resolution_mm
    target = tuple(float(max(s, resolution)) for s in full.spacing)
    coarse = ants.resample_image(full, target, use_voxels=False, interp_type=0)
    coarse_mask = None
    if mask is not None:
        coarse_mask = ants.resample_image_to_target(to_ants(mask), coarse, interp_type="nearestNeighbor")
        if coarse_mask.numpy().sum() < 100:
            coarse_mask = None
    bias = ants.n4_bias_field_correction(
        coarse,
        mask=coarse_mask,
        shrink_factor=config.n4_shrink_factor,
        convergence={"iters": list(config.n4_convergence_iterations), "tol": 1e-7},
        spline_param=config.n4_spline_distance_mm,
        return_bias_field=True,
    )
    bias_full = ants.resample_image_to_target(bias, full, interp_type="linear").numpy()
    data = np.asarray(image.dataobj, dtype=np.float32)
    corrected = data / np.where(bias_full > 1e-3, bias_full, 1.0).astype(np.float32)
    return nib.Nifti1Image(corrected.astype(np.float32), image.affine)
