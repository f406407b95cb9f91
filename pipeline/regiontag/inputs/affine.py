"""Voxel sizes and the voxel-to-world affine of a NIfTI header: checks and the qform/sform choice.

nibabel uses the sform whenever ``sform_code > 0``; ITK (hence ANTs >= 2.3.5)
prefers the sform too, unless it has shear (ITK cannot represent shear) and
falls back to the qform.  When the two disagree we follow that shared rule,
say so in a warning, and write the chosen affine into *both* header fields so
every tool downstream sees the same geometry.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import nibabel as nib
import numpy as np

from regiontag.inputs.nifti_io import input_error

#: qform and sform count as different when they place a field-of-view corner further apart than this.
QSFORM_TOLERANCE_MM = 0.1
#: Relative tolerance for "the sform columns are orthogonal" (no shear).
SHEAR_TOLERANCE = 1e-3
#: Largest condition number of the 3x3 part accepted as non-singular.
MAX_CONDITION = 1e6
_UNIT_NAMES = {1: "meters", 3: "microns"}


def check_voxel_sizes(path: Path, header: nib.Nifti1Header, min_mm: float, max_mm: float) -> tuple[float, ...]:
    """Validate ``pixdim[1:4]``: finite, positive and within ``[min_mm, max_mm]``."""
    sizes = tuple(float(value) for value in header["pixdim"][1:4])
    shown = "x".join(f"{size:g}" for size in sizes)
    if not all(math.isfinite(size) for size in sizes):
        raise input_error(path, f"non-finite (NaN/inf) voxel size {shown} in pixdim")
    if any(size <= 0 for size in sizes):
        raise input_error(path, f"zero or negative voxel size {shown} mm in pixdim")
    if max(sizes) > max_mm:
        raise input_error(path, f"voxel size {shown} mm exceeds {max_mm:g} mm (limits.max_voxel_size_mm)")
    if min(sizes) < min_mm:
        raise input_error(path, f"voxel size {shown} mm below {min_mm:g} mm (limits.min_voxel_size_mm)")
    return sizes


def _problem(affine: np.ndarray | None) -> str | None:
    """Why ``affine`` is unusable, or None when it is fine."""
    if affine is None:
        return "missing"
    if not np.all(np.isfinite(affine)):
        return "non-finite affine (NaN/inf)"
    linear = affine[:3, :3]
    if np.any(np.linalg.norm(linear, axis=0) == 0) or abs(np.linalg.det(linear)) == 0:
        return "singular affine (a voxel axis has zero length)"
    if np.linalg.cond(linear) > MAX_CONDITION:
        return "singular affine (nearly degenerate voxel axes)"
    return None


def _qform(header: nib.Nifti1Header) -> tuple[np.ndarray | None, str | None]:
    if int(header["qform_code"]) == 0:
        return None, None
    quaternion = np.array([header["quatern_b"], header["quatern_c"], header["quatern_d"]], dtype=float)
    if not np.all(np.isfinite(quaternion)):
        return None, "non-finite affine (NaN/inf quaternion in qform)"
    if float(np.sum(quaternion**2)) > 1 + 1e-5:
        return None, "invalid qform quaternion (b^2 + c^2 + d^2 > 1)"
    try:
        with np.errstate(all="ignore"):
            affine = header.get_qform()
    except Exception as error:  # noqa: BLE001 - nibabel raises several types for bad quaternions
        return None, f"invalid qform ({error})"
    return affine, _problem(affine)


def _sform(header: nib.Nifti1Header) -> tuple[np.ndarray | None, str | None]:
    if int(header["sform_code"]) == 0:
        return None, None
    affine = header.get_sform()
    return affine, _problem(affine)


def has_shear(affine: np.ndarray) -> bool:
    """True when the voxel axes of ``affine`` are not mutually orthogonal."""
    linear = affine[:3, :3]
    unit = linear / np.linalg.norm(linear, axis=0)
    gram = unit.T @ unit
    return bool(np.max(np.abs(gram - np.eye(3))) > SHEAR_TOLERANCE)


def max_corner_distance(first: np.ndarray, second: np.ndarray, shape: tuple[int, ...]) -> float:
    """Largest distance (mm) between where two affines put the corners of the field of view."""
    corners = np.array(list(itertools.product(*[(0, max(size - 1, 0)) for size in shape[:3]])), dtype=float)
    corners = np.c_[corners, np.ones(len(corners))]
    return float(np.max(np.linalg.norm((corners @ first.T - corners @ second.T)[:, :3], axis=1)))


def choose_affine(path: Path, header: nib.Nifti1Header, shape: tuple[int, ...], warnings: list[str]) -> np.ndarray:
    """Pick the voxel-to-world affine as nibabel and ITK do, updating ``header`` when they disagree.

    Parameters
    ----------
    path : Path
        For messages.
    header : Nifti1Header
        Modified in place when qform and sform must be reconciled.
    shape : tuple of int
        Data shape (to express disagreements in mm over the field of view).
    warnings : list of str
        One-line warnings are appended here.

    Returns
    -------
    numpy.ndarray
        The 4x4 affine, finite and non-singular.

    Raises
    ------
    InputError
        No valid affine: both codes 0 (missing), or the usable one is singular or non-finite.
    """
    _fix_qfac(header, warnings)
    _fix_codes(header, warnings)
    qform, qform_problem = _qform(header)
    sform, sform_problem = _sform(header)
    codes = int(header["qform_code"]), int(header["sform_code"])
    if qform is None and sform is None and qform_problem is None:
        raise input_error(path, "missing affine: qform_code and sform_code are both 0 (no orientation)")
    if sform is not None and sform_problem is None:
        if qform is not None and qform_problem is None:
            distance = max_corner_distance(qform, sform, shape)
            if distance > QSFORM_TOLERANCE_MM:
                if has_shear(sform):
                    warnings.append(
                        f"qform and sform disagree by up to {distance:.2f} mm and the sform has shear; "
                        "using the qform (as ITK/ANTs do; nibabel would use the sform)"
                    )
                    return _reconcile(header, qform, codes[0])
                warnings.append(
                    f"qform and sform disagree by up to {distance:.2f} mm; using the sform "
                    "(as nibabel and ITK/ANTs do)"
                )
                return _reconcile(header, sform, codes[1])
        elif qform_problem is not None:
            warnings.append(f"qform ignored ({qform_problem}); using the sform")
            return _reconcile(header, _check_zooms_match(header, sform, warnings), codes[1])
        if has_shear(sform):
            warnings.append("sform has shear, which ITK/ANTs cannot represent (they drop it)")
        return _check_zooms_match(header, sform, warnings)
    if qform is not None and qform_problem is None:
        if sform_problem is not None:
            warnings.append(f"sform ignored ({sform_problem}); using the qform (as ITK/ANTs do)")
            return _reconcile(header, qform, codes[0])
        return qform
    problem = sform_problem or qform_problem or "no usable affine"
    raise input_error(path, problem)


def _fix_codes(header: nib.Nifti1Header, warnings: list[str]) -> None:
    """qform/sform codes outside the NIfTI set are treated as 0, as nibabel does."""
    valid = header._field_recoders["qform_code"].value_set()
    for field in ("qform_code", "sform_code"):
        code = int(header[field])
        if code not in valid:
            warnings.append(f"{field} {code} is not a valid NIfTI code; treated as 0 (as nibabel does)")
            header[field] = 0


def _fix_qfac(header: nib.Nifti1Header, warnings: list[str]) -> None:
    """qfac (``pixdim[0]``) must be 1 or -1; 0 means 1 (NIfTI standard), others keep their sign."""
    qfac = float(header["pixdim"][0])
    if qfac in (-1.0, 1.0):
        return
    fixed = -1.0 if math.isfinite(qfac) and qfac < 0 else 1.0
    if int(header["qform_code"]) != 0 and qfac != 0:
        warnings.append(f"qfac (pixdim[0]) is {qfac:g}; treated as {fixed:g}")
    header["pixdim"][0] = fixed


def _reconcile(header: nib.Nifti1Header, affine: np.ndarray, code: int) -> np.ndarray:
    """Write ``affine`` into both sform and qform so every reader agrees."""
    header.set_sform(affine, code=int(code) if code else 1)
    if not has_shear(affine):
        header.set_qform(affine, code=int(code) if code else 1)
    else:
        header.set_qform(None, code=0)
    return header.get_best_affine()


def _check_zooms_match(header: nib.Nifti1Header, affine: np.ndarray, warnings: list[str]) -> np.ndarray:
    affine_zooms = np.linalg.norm(affine[:3, :3], axis=0)
    pixdim = np.asarray(header["pixdim"][1:4], dtype=float)
    if np.max(np.abs(affine_zooms - pixdim) / affine_zooms) > 1e-3:
        warnings.append(
            "pixdim voxel sizes ({}) differ from the sform's ({}) mm; using the sform's".format(
                "x".join(f"{size:g}" for size in pixdim), "x".join(f"{size:.4g}" for size in affine_zooms)
            )
        )
        zooms = list(header.get_zooms())
        zooms[:3] = affine_zooms
        header.set_zooms(zooms)
    return affine


def units_warning(header: nib.Nifti1Header) -> str | None:
    """A warning when spatial units are not millimetres (nibabel ignores them; ITK rescales)."""
    code = int(header["xyzt_units"]) & 0x07
    if code in _UNIT_NAMES:
        return f"spatial units are {_UNIT_NAMES[code]}; treated as mm (as nibabel does)"
    return None
