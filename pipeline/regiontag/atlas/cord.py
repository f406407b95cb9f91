"""The spinal cord atlas in normalised cord coordinates: loading it, and its labels in a subject's cord.

The atlas label image is a grid over ``(u, v, level)``: ``u`` and ``v`` in
[-1, 1] (see :mod:`regiontag.atlas.cord_frames`), one slab per vertebral level
(PAM50 numbering: 1 = C1 ... 7 = C7, 8 = T1 ... 19 = T12, 20 = L1 ...).  Its
affine maps index -> ``(u, v, level number)``.  Labels are drawn from the
parametric cross-section of ``regiontag.atlas.cord_geometry`` with the per-level
geometry recorded in the YAML (calibrated against PAM50 by
``python -m regiontag.atlas.pam50.calibrate PAM50_DIR``).  A PAM50 folder can
replace the generated atlas (``load_cord_atlas(path)``, ``--cord-atlas PATH``).
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from regiontag.atlas.cord_frames import (
    CordFrames,
    canonical_with_inverse,
    coordinates_per_voxel,
    cord_frames,
    levels_per_slice,
    load_mask,
    to_input_space,
)
from regiontag.atlas.cord_spec import atlas_from_labels, generate_labels, level_number, load_cord_spec
from regiontag.atlas.pam50.atlas import pam50_atlas_labels
from regiontag.atlas.tree import Atlas


def load_cord_atlas(path: str | Path | None = None, spec_path: str | Path | None = None) -> Atlas:
    """The cord atlas: ours (generated from ``atlases/cord.yaml``) or built from a PAM50 folder.

    Parameters
    ----------
    path : str or Path, optional
        None: generate from the YAML.  A PAM50 folder (``template/``, ``atlas/``):
        resample PAM50's tract maps onto the same ``(u, v, level)`` grid and map its
        tracts to our region paths (cached in the regiontag cache).  A ``.yaml`` file:
        generate from that definition instead of the shipped one.
    spec_path : str or Path, optional
        Alternative atlas YAML (defaults to the shipped ``atlases/cord.yaml``).

    Returns
    -------
    Atlas
        name ``"cord"``, space ``"cord"``; ``labels_img`` indexed ``[u, v, level]``.
    """
    if path is not None and Path(path).suffix in (".yaml", ".yml"):
        spec_path, path = path, None
    spec = load_cord_spec(spec_path)
    if path is None:
        return atlas_from_labels(spec, generate_labels(spec), "regiontag cord atlas (parametric, PAM50-calibrated)")
    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"cord atlas {folder}: not a folder (expected a PAM50 folder with template/ and atlas/)"
        )
    return atlas_from_labels(spec, pam50_atlas_labels(folder, spec), f"PAM50 atlas from {folder}")


def _default_level(atlas: Atlas) -> int:
    """Default level number recorded in the atlas header (``aux_file``), else the shipped YAML's."""
    aux = atlas.labels_img.header["aux_file"].item()
    aux = aux.decode(errors="ignore") if isinstance(aux, bytes) else str(aux)
    if aux.startswith("default_level="):
        return level_number(aux.split("=", 1)[1].strip())
    return level_number(load_cord_spec().default_level)


def cord_labels_at(
    atlas: Atlas, u: np.ndarray, v: np.ndarray, level: np.ndarray | float | None = None
) -> np.ndarray:
    """Atlas leaf labels at cord coordinates (nearest grid point).

    Parameters
    ----------
    atlas : Atlas
        A cord atlas from :func:`load_cord_atlas`.
    u, v : numpy.ndarray
        Cord coordinates; points outside the unit disk are pulled onto its edge.
    level : array-like or float, optional
        Level numbers (1 = C1 ...); NaN or None = the atlas's default (cervical) level
        (``default_level`` of its YAML, recorded in the label image header).
        Levels beyond the atlas range use the nearest level slab.

    Returns
    -------
    numpy.ndarray
        int16 labels, shape of ``u``.
    """
    u = np.asarray(u, dtype=float)
    v = np.asarray(v, dtype=float)
    rho = np.hypot(u, v)
    scale = np.where(rho > 1.0, 1.0 / np.maximum(rho, 1e-12), 1.0)
    u, v = np.nan_to_num(u * scale), np.nan_to_num(v * scale)
    data = np.asarray(atlas.labels_img.dataobj)
    affine = atlas.labels_img.affine
    default = _default_level(atlas)
    level = np.full(u.shape, np.nan) if level is None else np.broadcast_to(np.asarray(level, dtype=float), u.shape)
    level = np.where(np.isfinite(level), level, default)
    i = np.clip(np.rint((u - affine[0, 3]) / affine[0, 0]), 0, data.shape[0] - 1).astype(int)
    j = np.clip(np.rint((v - affine[1, 3]) / affine[1, 1]), 0, data.shape[1] - 1).astype(int)
    k = np.clip(np.rint((level - affine[2, 3]) / affine[2, 2]), 0, data.shape[2] - 1).astype(int)
    return data[i, j, k].astype(np.int16)


def cord_labels_in_subject(
    cord_mask_img: str | Path | nib.Nifti1Image,
    atlas=None,
    levels: np.ndarray | None = None,
    centerline: pd.DataFrame | None = None,
    smooth_mm: float = 1.0,
    frames: CordFrames | None = None,
) -> nib.Nifti1Image:
    """Cord atlas leaf labels for every voxel of a cord mask, in the mask's own space.

    Parameters
    ----------
    cord_mask_img : str, Path or nibabel.Nifti1Image
        Binary cord mask, any orientation, anisotropic voxels allowed.
    atlas : regiontag.atlas.tree.Atlas, optional
        A cord atlas from :func:`regiontag.atlas.cord.load_cord_atlas`; default: ours.
    levels : array-like, optional
        Level per canonical z slice (length = number of canonical slices): PAM50 numbers
        (1 = C1 ... 7 = C7, 8 = T1 ...), level names (``"C5"``) or NaN/0 for unknown.
        Unknown slices use the atlas's default (cervical) level.
    centerline : pandas.DataFrame, optional
        Cord centre per canonical slice, see :func:`cord_coordinates`.
    smooth_mm : float
        Gaussian smoothing (mm) of the centroids along z.
    frames : CordFrames, optional
        Frames already computed for this mask (``cord_coordinates(mask)["frames"]``);
        ``centerline`` and ``smooth_mm`` are then ignored.

    Returns
    -------
    nibabel.Nifti1Image
        int16 label image on the input grid and affine; 0 outside the cord.
    """
    img = load_mask(cord_mask_img)
    atlas = load_cord_atlas() if atlas is None else atlas
    canonical, back = canonical_with_inverse(img)
    mask = np.asarray(canonical.dataobj) > 0
    labels = np.zeros(mask.shape, dtype=np.int16)
    if mask.any():
        if frames is None:
            frames = cord_frames(mask, canonical.affine, centerline=centerline, smooth_mm=smooth_mm)
        elif not np.array_equal(frames.slices, np.flatnonzero(mask.any(axis=(0, 1)))):
            raise ValueError("frames were computed for a different cord mask")
        coords = coordinates_per_voxel(mask, frames)
        ii, jj, kk = np.nonzero(mask)
        voxel_levels = np.full(kk.shape, np.nan)
        if levels is not None:
            voxel_levels = levels_per_slice(levels, mask.shape[2])[kk]
        labels[ii, jj, kk] = cord_labels_at(atlas, coords["u"][ii, jj, kk], coords["v"][ii, jj, kk], voxel_levels)
    out = to_input_space(labels, back)
    result = nib.Nifti1Image(out, img.affine)
    result.set_data_dtype(np.int16)
    return result
