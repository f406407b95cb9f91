"""Our cord regions drawn voxel by voxel on the PAM50 template grid, for masks already in PAM50 space.

PAM50 (Spinal Cord Toolbox; straight cord, 0.5 mm) cannot be shipped with regiontag,
but SCT users have it (``$SCT_DIR/data/PAM50``).  :func:`find_pam50_dir` locates it
(``--pam50``, else ``cord.atlas_path``, else ``SCT_DIR``); :func:`pam50_space` labels
every PAM50 cord voxel with a leaf of ``atlases/cord.yaml`` from PAM50's own tract
maps (argmax tract, :func:`regiontag.atlas.pam50.files.tract_labels`; tract -> leaf as in
:mod:`regiontag.atlas.pam50.atlas`) and gives each slice its PAM50 vertebral level
(``template/PAM50_levels.nii.gz``).  Everything lives on the cropped canonical grid
of :func:`regiontag.atlas.pam50.files.read_pam50` (cached in the regiontag cache).
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import nibabel as nib
import numpy as np
import pandas as pd

from regiontag.atlas.cord_spec import (
    default_cord_yaml,
    geometry_by_level,
    kinds_to_labels,
    level_name,
    level_number,
    load_cord_spec,
    regions_from_spec,
)
from regiontag.atlas.pam50.files import Pam50, pam50_stamp, read_pam50, tract_labels
from regiontag.atlas.pam50.atlas import tract_kinds_on_grid
from regiontag.atlas.tree import Atlas
from regiontag.config import ConfigError
from regiontag.atlas.cord_frames import cord_coordinates

#: Files a PAM50 folder must hold for tagging (relative to the folder).
REQUIRED_FILES = ("template/PAM50_cord.nii.gz", "template/PAM50_levels.nii.gz", "atlas/info_label.txt")
#: The image whose grid defines "on the PAM50 grid".
REFERENCE_FILE = "template/PAM50_cord.nii.gz"
#: ``SCT_DIR`` + this = the PAM50 folder of a Spinal Cord Toolbox installation.
SCT_PAM50_SUBDIR = ("data", "PAM50")
#: A span is longitudinally extensive when it covers at least this many PAM50 vertebral segments.
LETM_MIN_SEGMENTS = 3.0
#: Tolerance on the segment count: level boundaries are drawn at slice resolution (0.5 mm).
SEGMENT_TOLERANCE = 0.05

HOW_TO_PROVIDE = (
    "pass --pam50 DIR (the PAM50 folder of the Spinal Cord Toolbox, $SCT_DIR/data/PAM50), "
    "set cord.atlas_path in a --config YAML, or set SCT_DIR"
)


class Pam50NotFoundError(ConfigError):
    """No usable PAM50 folder: the message says where regiontag looked and how to provide one."""


def missing_pam50_file(folder: str | Path) -> str:
    """The first required PAM50 file missing from ``folder`` ('' when it is a usable PAM50 folder)."""
    folder = Path(folder)
    if not folder.is_dir():
        return "the folder itself"
    for name in REQUIRED_FILES:
        if not (folder / name).is_file():
            return name
    return ""


def find_pam50_dir(
    explicit: str | Path | None = None,
    config_atlas_path: str | Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Path:
    """The PAM50 folder to tag with.

    Parameters
    ----------
    explicit : str or Path, optional
        ``--pam50 DIR``; used first, and an error when it is not a PAM50 folder.
    config_atlas_path : str or Path, optional
        ``cord.atlas_path`` of the config; used when it is a folder (a ``.yaml`` atlas
        definition is not PAM50 and is skipped).
    environ : mapping, optional
        Environment (default ``os.environ``); ``SCT_DIR/data/PAM50`` is used if it exists.

    Returns
    -------
    Path

    Raises
    ------
    Pam50NotFoundError
        One line naming what was tried and how to provide the folder.
    """
    environ = os.environ if environ is None else environ
    if explicit is not None:
        missing = missing_pam50_file(explicit)
        if missing:
            raise Pam50NotFoundError(f"--pam50 {explicit}: not a PAM50 folder ({missing} not found)")
        return Path(explicit)
    if config_atlas_path is not None and Path(config_atlas_path).is_dir():
        missing = missing_pam50_file(config_atlas_path)
        if missing:
            raise Pam50NotFoundError(
                f"cord.atlas_path {config_atlas_path}: not a PAM50 folder ({missing} not found); {HOW_TO_PROVIDE}"
            )
        return Path(config_atlas_path)
    sct_dir = environ.get("SCT_DIR")
    if sct_dir:
        candidate = Path(sct_dir).joinpath(*SCT_PAM50_SUBDIR)
        if not missing_pam50_file(candidate):
            return candidate
        raise Pam50NotFoundError(f"PAM50 template not found in SCT_DIR ({candidate}); {HOW_TO_PROVIDE}")
    raise Pam50NotFoundError(f"PAM50 template folder not given: {HOW_TO_PROVIDE}")


@dataclass(frozen=True)
class Pam50Space:
    """The PAM50 template grid with our cord regions on it (cropped canonical RAS+ grid).

    Attributes
    ----------
    pam : Pam50
        The PAM50 arrays (:func:`regiontag.atlas.pam50.files.read_pam50`).
    atlas : Atlas
        Our cord region tree; ``labels_img`` holds the leaf label of every PAM50 cord voxel.
    radius : numpy.ndarray
        Normalised cord radius ``sqrt(u^2 + v^2)`` per voxel (NaN outside the cord).
    slice_levels : numpy.ndarray
        PAM50 vertebral level number per slice (0 = none, e.g. above C1).
    centerline : pandas.DataFrame
        ``slice``, ``distance_mm`` (arc length from the top), ``csa_mm2`` per cord slice.
    reference_shape : tuple of int
        Shape of the full PAM50 template grid (``template/PAM50_cord.nii.gz``).
    reference_affine : numpy.ndarray
        Its affine.
    """

    pam: Pam50
    atlas: Atlas
    radius: np.ndarray
    slice_levels: np.ndarray
    centerline: pd.DataFrame
    reference_shape: tuple[int, ...]
    reference_affine: np.ndarray

    @property
    def labels(self) -> np.ndarray:
        """Leaf labels on the cropped grid (int16, 0 outside the cord)."""
        return np.asarray(self.atlas.labels_img.dataobj)

    def slice_distances(self) -> np.ndarray:
        """Distance from the top of the cord (mm) for every slice (NaN without cord)."""
        distance = np.full(self.pam.cord.shape[2], np.nan)
        distance[self.centerline["slice"].to_numpy(int)] = self.centerline["distance_mm"].to_numpy(float)
        return distance

    def span_segments(self, top_mm: float, bottom_mm: float) -> tuple[str, float]:
        """Vertebral levels (``"C4-C6"``) and the number of PAM50 segments a span covers.

        The segment count is the sum over levels of the share of the level's slices
        inside ``[top_mm, bottom_mm]`` (PAM50's own level heights).
        """
        if not (np.isfinite(top_mm) and np.isfinite(bottom_mm)):
            return "", 0.0
        distances = self.slice_distances()
        inside = (distances >= top_mm - 1e-6) & (distances <= bottom_mm + 1e-6)
        present = np.unique(self.slice_levels[inside])
        present = present[present > 0]
        if present.size == 0:
            return "", 0.0
        first, last = level_name(int(present.min())), level_name(int(present.max()))
        segments = sum(
            float(np.sum(inside & (self.slice_levels == level)) / np.sum(self.slice_levels == level))
            for level in present
        )
        return (first if first == last else f"{first}-{last}"), segments

    def span_levels(self, top_mm: float, bottom_mm: float, length_mm: float = 0.0) -> tuple[str, bool]:
        """``(vertebral_levels, longitudinally_extensive)`` of a span, for the cord region table.

        Longitudinally extensive: at least ``LETM_MIN_SEGMENTS`` PAM50 vertebral segments covered.
        """
        text, segments = self.span_segments(top_mm, bottom_mm)
        return text, bool(segments >= LETM_MIN_SEGMENTS - SEGMENT_TOLERANCE)


def _slice_levels(pam: Pam50) -> np.ndarray:
    """Most frequent PAM50 level among each slice's cord voxels (0 where none)."""
    levels = np.zeros(pam.cord.shape[2], dtype=np.int16)
    for k in np.flatnonzero(pam.cord.any(axis=(0, 1))):
        values = pam.levels[:, :, k][pam.cord[:, :, k]]
        values = values[values > 0]
        if values.size:
            levels[k] = np.bincount(values).argmax()
    return levels


def _nearest_level_filled(slice_levels: np.ndarray) -> np.ndarray:
    """Slice levels with 0 replaced by the level of the nearest slice that has one (for the geometry)."""
    named = np.flatnonzero(slice_levels > 0)
    if named.size == 0:
        return slice_levels
    position = np.clip(np.searchsorted(named, np.arange(slice_levels.size)), 1, max(named.size - 1, 1))
    below, above = named[position - 1], named[np.minimum(position, named.size - 1)]
    nearest = np.where(np.abs(np.arange(slice_levels.size) - below) <= np.abs(above - np.arange(slice_levels.size)),
                       below, above)
    return slice_levels[nearest]


def _side_sign(pam: Pam50, voxels: tuple[np.ndarray, ...]) -> np.ndarray:
    """+1 (right) / -1 (left) per cord voxel from PAM50's paired tracts (even id = left, odd = right).

    Voxels where both sides are equally likely (the midline) alternate in a checkerboard,
    so a symmetric lesion stays symmetric.
    """
    tracts = pam.tracts[:, voxels[0], voxels[1], voxels[2]].astype(np.int32)
    right_minus_left = tracts[1::2].sum(axis=0) - tracts[0::2].sum(axis=0)
    checkerboard = np.where((voxels[0] + voxels[1] + voxels[2]) % 2 == 0, 1.0, -1.0)
    return np.where(right_minus_left != 0, np.sign(right_minus_left), checkerboard)


def pam50_space(folder: str | Path, spec_path: str | Path | None = None) -> Pam50Space:
    """Our cord regions on the PAM50 grid of ``folder`` (cached in memory per folder and atlas YAML).

    Parameters
    ----------
    folder : str or Path
        A PAM50 folder (``template/``, ``atlas/``).
    spec_path : str or Path, optional
        Cord atlas YAML (default: the shipped ``atlases/cord.yaml``): region tree,
        leaf labels and the per-level grey-matter geometry that splits PAM50's
        intermediate zone into central canal region / dorsal horn / ventral horn.

    Returns
    -------
    Pam50Space
    """
    folder = Path(folder).resolve()
    spec = Path(spec_path) if spec_path is not None else default_cord_yaml()
    return _pam50_space_cached(folder, pam50_stamp(folder), str(spec.resolve()), spec.stat().st_mtime_ns)


@functools.lru_cache(maxsize=2)
def _pam50_space_cached(folder: Path, _stamp: tuple, spec_path: str, _spec_mtime: int) -> Pam50Space:
    spec = load_cord_spec(spec_path)
    pam = read_pam50(folder)
    reference = nib.load(str(folder / REFERENCE_FILE))
    coordinates = cord_coordinates(nib.Nifti1Image(pam.cord.astype(np.uint8), pam.affine))
    u, v = coordinates["u"], coordinates["v"]
    slice_levels = _slice_levels(pam)
    # levels the atlas YAML lacks (or slices above C1) use the nearest level it has
    known = np.array([level_number(name) for name in spec.levels])
    geometry = geometry_by_level(spec)
    voxels = np.nonzero(pam.cord)
    tract_ids = np.maximum(tract_labels(pam)[voxels] - 1, 0)
    voxel_levels = _nearest_level_filled(slice_levels)[voxels[2]]
    kinds = np.zeros(tract_ids.shape, dtype=np.int8)
    for level in np.unique(voxel_levels):
        nearest = int(known[np.argmin(np.abs(known - level))])
        selected = voxel_levels == level
        kinds[selected] = tract_kinds_on_grid(
            tract_ids[selected], u[voxels][selected], v[voxels][selected], geometry[level_name(nearest)]
        )
    labels = np.zeros(pam.cord.shape, dtype=np.int16)
    labels[voxels] = kinds_to_labels(kinds, _side_sign(pam, voxels), spec)
    regions, leaf_names = regions_from_spec(spec)
    labels_img = nib.Nifti1Image(labels, pam.affine)
    labels_img.set_data_dtype(np.int16)
    atlas = Atlas(name=spec.name, space="PAM50", labels_img=labels_img, regions=regions, leaf_names=leaf_names)
    table = coordinates["table"]
    centerline = pd.DataFrame(
        {"slice": table["slice"], "distance_mm": table["s_mm"], "csa_mm2": table["area_mm2"]}
    )
    radius = np.hypot(u, v).astype(np.float32)
    for array in (radius, labels, slice_levels):
        array.flags.writeable = False
    return Pam50Space(pam, atlas, radius, slice_levels, centerline, tuple(reference.shape[:3]), reference.affine)
