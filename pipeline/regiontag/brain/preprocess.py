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


def _itk_ball(radius: int) -> np.ndarray:
    """ITK's ``BinaryBallStructuringElement`` of a radius in voxels: offsets with |d|^2 <= (radius + 1/2)^2."""
    offsets = np.indices((2 * radius + 1,) * 3) - radius
    return (offsets**2).sum(axis=0) <= (radius + 0.5) ** 2


def head_mask(data: np.ndarray, *, cleanup: int = 2) -> np.ndarray:
    """ANTs' ``get_mask(image, cleanup=cleanup)`` in scipy: the same voxels, without ITK's slow hole filling.

    Voxels at or above the image mean, eroded by ITK's ball of ``cleanup``
    voxels (the outside counts as foreground, as in ITK's erosion), largest
    6-connected component, dilated by the same ball, then every background
    component but the largest (6-connected) filled, as ``iMath FillHoles``
    does (it also fills holes open to the image's edge, which
    ``binary_fill_holes`` does not).  ANTs' fallback is kept: a mask that
    comes out empty or full is redone with a smaller ``cleanup``.

    Examples
    --------
    >>> data = np.zeros((20, 20, 20), np.float32); data[4:16, 4:16, 4:16] = 1
    >>> int(head_mask(data).sum())  # the 12^3 cube opened by the ball: its 8 corners lose 16 voxels each
    1600
    """
    threshold = float(np.mean(data, dtype=np.float64))
    above = data >= threshold
    if cleanup <= 0:
        return above
    structure = _itk_ball(cleanup)
    mask = ndimage.binary_erosion(above, structure, border_value=1)
    mask = _largest_component(mask)
    mask = ndimage.binary_dilation(mask, structure)
    mask = ~_largest_component(~mask)
    if mask.all() or not mask.any():
        return head_mask(data, cleanup=cleanup - 1)
    return mask


def _box(size: tuple[int, ...]):
    """Erosion and dilation by a box of ``size`` voxels (separable: minimum / maximum filters, outside = 0)."""
    erode = lambda mask: ndimage.minimum_filter(mask.view(np.uint8), size=size, mode="constant", cval=0) > 0  # noqa: E731
    dilate = lambda mask: ndimage.maximum_filter(mask.view(np.uint8), size=size, mode="constant", cval=0) > 0  # noqa: E731
    return erode, dilate


def initial_brain_mask(image: nib.Nifti1Image, skull_stripped: bool) -> nib.Nifti1Image:
    """A first brain mask from intensities (refined later by the registered template mask).

    Skull-stripped input: the non-zero voxels. Otherwise: a head mask (voxels
    above the image mean, cleaned up: :func:`head_mask`, the voxels of
    ``ants.get_mask``), eroded by a box of about 4 mm to cut the scalp, largest component, dilated back
    (box morphology as separable minimum / maximum filters, the same voxels
    as ``binary_erosion`` / ``binary_dilation`` with the box).

    Examples
    --------
    >>> mask = initial_brain_mask(flair, skull_stripped=False)  # doctest: +SKIP
    """
    data = np.asarray(image.dataobj, dtype=np.float32)
    if skull_stripped:
        mask = data > data.min()
    else:
        mask = head_mask(data)
        zooms = np.asarray(image.header.get_zooms()[:3], dtype=float)
        radius = np.maximum(1, np.round(4.0 / zooms)).astype(int)
        erode, dilate = _box(tuple(int(2 * r + 1) for r in radius))
        mask = dilate(_largest_component(erode(mask)))
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
