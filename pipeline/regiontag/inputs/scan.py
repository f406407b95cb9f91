"""Input validation: load a scan safely or fail with a one-line reason.

``load_scan`` is the only way the pipeline reads a user's scan.  It rejects
broken and hostile files with :class:`InputError` (a ``ValueError`` whose
message starts with the file name and fits on one line) and returns the image
with its data as float32 in memory, in the file's own orientation, plus a list
of one-line warnings for provenance (e.g. which of qform/sform was used).

Checks, in order: the file itself (missing, directory, FIFO, symlink loop,
permissions, empty), the gzip stream (truncated, corrupt), the header (magic,
dims, datatype, voxel limit, voxel sizes, data size) - all before the data is
read - then the affine (missing, singular, non-finite, qform/sform
disagreement), scaling overflow and the intensities (NaN, inf, constant).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import nibabel as nib
import numpy as np

from regiontag.config import LimitsConfig
from regiontag.inputs.affine import check_voxel_sizes, choose_affine, units_warning
from regiontag.inputs.files import confine_to, safe_input_files, sha256_file
from regiontag.inputs.nifti_io import InputError, RawNifti, display_name, input_error, read_raw_nifti

__all__ = ["InputError", "load_scan", "check_niimg", "safe_input_files", "sha256_file", "confine_to"]

#: Largest absolute intensity accepted: its square summed over 1.5e8 voxels still fits in float32.
MAX_ABS_INTENSITY = 1e15
#: Voxels checked per step (bounds the scratch memory of the intensity checks).
_CHUNK_VOXELS = 1 << 20


def _to_float32(raw: RawNifti) -> np.ndarray:
    """The volume: the streamed float32 data (scaling applied while reading) in the stored shape."""
    return raw.data.reshape(raw.shape, order="F")


def _check_intensities(path: Path, data: np.ndarray, limits: LimitsConfig, warnings: list[str]) -> np.ndarray:
    """Reject NaN-filled, infinite, extreme and constant data; zero out a few NaNs with a warning.

    Works chunk by chunk on the data in place, so the check adds a few MB, not a copy of the volume.
    """
    flat = data.reshape(-1, order="A")  # a view: the data are contiguous
    n_voxels = flat.size
    n_nan = n_inf = 0
    for start in range(0, n_voxels, _CHUNK_VOXELS):
        chunk = flat[start : start + _CHUNK_VOXELS]
        n_nan += int(np.count_nonzero(np.isnan(chunk)))
        n_inf += int(np.count_nonzero(np.isinf(chunk)))
    if n_nan == n_voxels:
        raise input_error(path, "all voxels are NaN")
    if n_inf:
        raise input_error(path, f"extreme intensities: {n_inf} infinite (inf) voxel values")
    if n_nan / n_voxels > limits.max_nonfinite_fraction:
        raise input_error(
            path,
            f"mostly NaN: {100 * n_nan / n_voxels:.1f}% of voxels are NaN "
            f"(limit {100 * limits.max_nonfinite_fraction:g}%, limits.max_nonfinite_fraction)",
        )
    largest, low, high = 0.0, math.inf, -math.inf
    for start in range(0, n_voxels, _CHUNK_VOXELS):
        chunk = flat[start : start + _CHUNK_VOXELS]
        if n_nan:
            np.nan_to_num(chunk, copy=False, nan=0.0)
        low, high = min(low, float(chunk.min())), max(high, float(chunk.max()))
        largest = max(largest, abs(low), abs(high))
    if n_nan:
        warnings.append(f"{n_nan} NaN voxels ({100 * n_nan / n_voxels:.2f}%) set to 0")
    if largest > MAX_ABS_INTENSITY:
        raise input_error(path, f"extreme intensities: |value| up to {largest:.3g} (limit {MAX_ABS_INTENSITY:g})")
    if largest == 0:
        raise input_error(path, "all voxels are zero (empty image)")
    if low == high:
        raise input_error(path, f"constant image: all voxels have the same value {low:g}")
    return data


def _read_checked(path: Path, limits: LimitsConfig) -> tuple[np.ndarray, np.ndarray, nib.Nifti1Header, list[str]]:
    """File, header and affine checks, then the data as float32 in the stored (3D) shape."""
    raw = read_raw_nifti(path, limits.max_voxels, limits.min_slices)
    header, warnings = raw.header, list(raw.warnings)
    check_voxel_sizes(path, header, limits.min_voxel_size_mm, limits.max_voxel_size_mm)
    affine = choose_affine(path, header, raw.shape, warnings)
    affine_zooms = np.linalg.norm(affine[:3, :3], axis=0)
    if float(np.max(affine_zooms)) > limits.max_voxel_size_mm:
        raise input_error(
            path,
            f"voxel size {'x'.join(f'{size:.3g}' for size in affine_zooms)} mm (from the affine) exceeds "
            f"{limits.max_voxel_size_mm:g} mm (limits.max_voxel_size_mm)",
        )
    if float(np.min(affine_zooms)) < limits.min_voxel_size_mm:
        raise input_error(
            path,
            f"voxel size {'x'.join(f'{size:.3g}' for size in affine_zooms)} mm (from the affine) below "
            f"{limits.min_voxel_size_mm:g} mm (limits.min_voxel_size_mm)",
        )
    units = units_warning(header)
    if units:
        warnings.append(units)
    data = _to_float32(raw)
    if data.ndim > 3:
        data = data.reshape(data.shape[:3], order="F")
        warnings.append(f"{len(raw.shape)}D file with a single volume squeezed to 3D")
    return data, affine, header, warnings


def _as_image(data: np.ndarray, affine: np.ndarray, header: nib.Nifti1Header) -> nib.Nifti1Image:
    """Build the in-memory image: float32 data, no scaling, original geometry and header fields."""
    header = header.copy()
    header.set_data_shape(data.shape)
    header.set_data_dtype(data.dtype)
    header["scl_slope"] = np.nan
    header["scl_inter"] = np.nan
    header["vox_offset"] = 0
    if isinstance(header, nib.Nifti2Header) and max(data.shape) <= np.iinfo(np.int16).max:
        header = nib.Nifti1Header.from_header(header, check=False)
        header["sizeof_hdr"] = 348
        header["magic"] = header.single_magic
    image_class = nib.Nifti2Image if isinstance(header, nib.Nifti2Header) else nib.Nifti1Image
    return image_class(data, affine, header)


def _as_path(path: str | os.PathLike[str]) -> Path:
    if not isinstance(path, (str, bytes, os.PathLike)):
        raise TypeError(f"expected a file path, got {type(path).__name__}")
    return Path(os.fsdecode(path))


def load_scan(
    path: str | os.PathLike[str], limits: LimitsConfig | None = None
) -> tuple[nib.Nifti1Image, list[str]]:
    """Load and validate one scan.

    Parameters
    ----------
    path : str or path-like
        A single-file NIfTI-1 or NIfTI-2 volume (``.nii`` or ``.nii.gz``).
    limits : LimitsConfig, optional
        Size and voxel limits (defaults: ``LimitsConfig()``).

    Returns
    -------
    image : nibabel.Nifti1Image
        3D image, data float32 in memory (scaling applied), the file's own affine
        and orientation, header fields kept (``scl_*`` reset, dtype float32).  A
        4D file with one volume is squeezed.  NIfTI-2 files come back as
        ``Nifti1Image`` unless a dimension needs NIfTI-2.
    warnings : list of str
        One-line notes for provenance, each ``"<file name>: <note>"``: the
        qform/sform choice, NaNs set to 0, a single-volume 4D file squeezed...

    Raises
    ------
    InputError
        ``"<file name>: <reason>"`` on one line for every rejected input.
    """
    path = _as_path(path)
    limits = limits or LimitsConfig()
    data, affine, header, warnings = _read_checked(path, limits)
    data = _check_intensities(path, data, limits, warnings)
    name = display_name(path)
    return _as_image(data, affine, header), [f"{name}: {warning}" for warning in warnings]


def check_niimg(
    img_or_path: str | os.PathLike[str] | nib.spatialimages.SpatialImage, limits: LimitsConfig | None = None
) -> nib.Nifti1Image:
    """Return a validated 3D ``Nifti1Image`` from a path or an image (like nilearn's ``check_niimg``).

    A path goes through the same file, header and affine checks as
    :func:`load_scan`, without the intensity checks (masks may be all zero);
    its data are float32.  An image is checked for a 3D shape (a single-volume
    4D image is squeezed) and a finite, non-singular affine; its data are kept.

    Parameters
    ----------
    img_or_path : str, path-like or nibabel image
        The image or its file.
    limits : LimitsConfig, optional
        Limits for files (default ``LimitsConfig()``).

    Returns
    -------
    nibabel.Nifti1Image

    Raises
    ------
    InputError
        Invalid file or image (one line).
    TypeError
        Neither a path nor a nibabel spatial image.
    """
    if isinstance(img_or_path, nib.spatialimages.SpatialImage):
        return _check_image(img_or_path)
    path = _as_path(img_or_path)
    data, affine, header, _ = _read_checked(path, limits or LimitsConfig())
    return _as_image(data, affine, header)


def _check_image(image: nib.spatialimages.SpatialImage) -> nib.Nifti1Image:
    label = f"<in-memory {type(image).__name__}>"
    shape = tuple(image.shape)
    if len(shape) == 4 and shape[3] == 1:
        image = image.slicer[..., 0]
        shape = shape[:3]
    if len(shape) != 3:
        raise InputError(f"{label}: {len(shape)}D image of shape {shape}; a 3D volume is expected")
    affine = image.affine
    if affine is None or not np.all(np.isfinite(affine)):
        raise InputError(f"{label}: missing or non-finite affine")
    if abs(np.linalg.det(affine[:3, :3])) == 0:
        raise InputError(f"{label}: singular affine")
    if isinstance(image, nib.Nifti1Image):
        return image
    return nib.Nifti1Image(np.asanyarray(image.dataobj), affine)
