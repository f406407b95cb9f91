"""Small image utilities: accept paths or images, canonical orientation, resampling.

Stages work on canonical (RAS+) images and hand results back on the input's
own grid with :func:`to_input_space`.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
from nibabel.processing import resample_from_to
from regiontag.inputs.scan import check_niimg as validated


def check_niimg(image: nib.Nifti1Image | str | Path) -> nib.Nifti1Image:
    """Return a nibabel image for a path or an image (like nilearn's ``check_niimg``).

    Paths are read with the header, file and affine checks of
    :func:`regiontag.inputs.scan.check_niimg`.
    """

    return validated(image)


def voxel_volume_ml(image: nib.spatialimages.SpatialImage) -> float:
    """Volume of one voxel in millilitres, from the affine."""
    return float(abs(np.linalg.det(image.affine[:3, :3]))) / 1000.0


def to_canonical(image: nib.Nifti1Image | str | Path) -> nib.Nifti1Image:
    """Reorient to the closest RAS+ orientation (voxel data permuted/flipped, no resampling)."""
    return nib.as_closest_canonical(check_niimg(image))


def to_input_space(image: nib.Nifti1Image, reference: nib.Nifti1Image, order: int = 0) -> nib.Nifti1Image:
    """Bring an image on a canonical grid back onto ``reference``'s own grid and affine.

    When ``image`` is a pure reorientation of ``reference``'s grid the data are
    permuted exactly (no interpolation); otherwise it is resampled with the
    given spline ``order`` (0 for labels and masks).
    """
    source_ornt = nib.io_orientation(image.affine)
    target_ornt = nib.io_orientation(reference.affine)
    transform = nib.orientations.ornt_transform(source_ornt, target_ornt)
    data = np.asarray(image.dataobj)
    reoriented = nib.orientations.apply_orientation(data, transform)
    affine = image.affine @ nib.orientations.inv_ornt_aff(transform, data.shape)
    if reoriented.shape[:3] == reference.shape[:3] and np.allclose(affine, reference.affine, atol=1e-3):
        return nib.Nifti1Image(reoriented, reference.affine, _header_like(reference, reoriented.dtype))
    resampled = resample_from_to(image, (reference.shape[:3], reference.affine), order=order)
    data = np.asarray(resampled.dataobj).astype(image.get_data_dtype(), copy=False)
    return nib.Nifti1Image(data, reference.affine, _header_like(reference, data.dtype))


def _header_like(reference: nib.Nifti1Image, dtype: np.dtype) -> nib.Nifti1Header:
    header = nib.Nifti1Header()
    header.set_data_dtype(dtype)
    header.set_xyzt_units("mm", "sec")
    qform, qcode = reference.get_qform(coded=True)
    sform, scode = reference.get_sform(coded=True)
    header.set_qform(qform if qform is not None else reference.affine, int(qcode or 1))
    header.set_sform(sform if sform is not None else reference.affine, int(scode or 1))
    return header


def new_image_like(data: np.ndarray, reference: nib.spatialimages.SpatialImage) -> nib.Nifti1Image:
    """A NIfTI image with ``data`` on ``reference``'s grid and affine."""
    header = nib.Nifti1Header()
    header.set_data_dtype(data.dtype)
    header.set_xyzt_units("mm", "sec")
    return nib.Nifti1Image(data, reference.affine, header)


def resample_to(image: nib.Nifti1Image, reference: nib.spatialimages.SpatialImage, order: int = 1) -> nib.Nifti1Image:
    """Resample ``image`` onto ``reference``'s grid (world coordinates, no registration)."""
    return resample_from_to(image, (reference.shape[:3], reference.affine), order=order)
