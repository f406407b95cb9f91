"""PAM50 (Spinal Cord Toolbox) template and atlas: reading, combined labels, sampling in cord coordinates.

PAM50 is a straight-cord template at 0.5 mm with 36 tract probability maps
(``atlas/PAM50_atlas_NN.nii.gz``, ``info_label.txt``), a cord mask and vertebral
levels (``template/PAM50_levels.nii.gz``: 1 = C1 ... 7 = C7, 8 = T1 ...).
This module reads the folder once (cropped to the cord, canonical RAS+),
derives SCT's combined labels (dorsal columns 0-3, lateral funiculi 4-13,
ventral funiculi 14-29, grey matter 30-35) and tract labels, and samples
labels on the normalised cord cross-section grid ``(u, v)`` per level.  It is
used to calibrate our parametric atlas (``pam50_calibrate.py``, CLI below) and
to use PAM50 as the cord atlas (``load_cord_atlas(path)``, ``pam50_atlas.py``).

    python -m regiontag.atlas.pam50.calibrate PAM50_DIR [--levels C2 C4] [--write atlases/cord.yaml]
"""

from __future__ import annotations

import functools
import hashlib
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from regiontag.atlas.cord_frames import CordFrames, cord_frames
from regiontag.resources import cache_dir

#: SCT combined labels used for calibration and evaluation: class name -> tract ids.
COMBINED_CLASSES: dict[str, tuple[int, ...]] = {
    "dorsal columns": tuple(range(0, 4)),
    "lateral funiculi": tuple(range(4, 14)),
    "ventral funiculi": tuple(range(14, 30)),
    "grey matter": tuple(range(30, 36)),
}
N_TRACTS = 36
_MARGIN = 3


@dataclass(frozen=True)
class Pam50:
    """PAM50 data cropped around the cord, canonical RAS+.

    Attributes
    ----------
    folder : Path
        The PAM50 folder read.
    affine : numpy.ndarray
        Voxel -> world affine of the cropped canonical arrays.
    cord : numpy.ndarray
        Boolean cord mask.
    levels : numpy.ndarray
        Vertebral level per voxel (0 outside, 1 = C1 ...).
    tracts : numpy.ndarray
        ``(36, X, Y, Z)`` uint8 tract probabilities x 255.
    tract_names : dict of int to str
        Tract id -> name from ``atlas/info_label.txt``.
    source_commit : str
        Content of ``SOURCE_COMMIT`` (empty if absent).
    """

    folder: Path
    affine: np.ndarray
    cord: np.ndarray
    levels: np.ndarray
    tracts: np.ndarray
    tract_names: dict[int, str]
    source_commit: str

    def level_slices(self, level: int) -> np.ndarray:
        """Canonical z indices whose cord voxels are mostly at vertebral level ``level``."""
        in_level = (self.levels == level).sum(axis=(0, 1))
        in_cord = np.maximum(self.cord.sum(axis=(0, 1)), 1)
        return np.flatnonzero(in_level > 0.5 * in_cord)

    def present_levels(self) -> list[int]:
        """Vertebral levels with at least one slice."""
        return [int(level) for level in np.unique(self.levels) if level > 0 and self.level_slices(int(level)).size]


def read_tract_names(folder: str | Path) -> dict[int, str]:
    """Tract id -> name from ``atlas/info_label.txt`` (the ``IndivLabels`` section)."""
    path = Path(folder) / "atlas" / "info_label.txt"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: not a PAM50 folder (expected atlas/info_label.txt)")
    names: dict[int, str] = {}
    section = ""
    for line in path.read_text().splitlines():
        if "Keyword=" in line:
            section = line.split("Keyword=")[1].split()[0]
            continue
        match = re.match(r"^\s*(\d+)\s*,\s*([^,]+?)\s*,\s*(\S+\.nii(\.gz)?)\s*$", line)
        if section == "IndivLabels" and match:
            names[int(match.group(1))] = match.group(2)
    missing = [tract for tract in range(N_TRACTS) if tract not in names]
    if missing:
        raise ValueError(f"{path}: tracts {missing} missing from the IndivLabels section")
    return names


def _canonical_data(path: Path) -> tuple[np.ndarray, np.ndarray]:
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found (PAM50 folder incomplete)")
    img = nib.as_closest_canonical(nib.load(str(path)))
    return np.asarray(img.dataobj), img.affine


def read_pam50(folder: str | Path) -> Pam50:
    """Read a PAM50 folder (template/ and atlas/) cropped around the cord.

    The cropped arrays (about 25 MB) are cached in the regiontag cache (keyed by the
    files' names, sizes and times) and the last folder read is kept in memory; the
    arrays are read-only.

    Parameters
    ----------
    folder : str or Path
        Folder holding ``template/PAM50_cord.nii.gz``, ``template/PAM50_levels.nii.gz``
        and ``atlas/PAM50_atlas_00..35.nii.gz`` with ``atlas/info_label.txt``.

    Returns
    -------
    Pam50
    """
    folder = Path(folder).resolve()
    return _read_pam50_cached(folder, pam50_stamp(folder))


def pam50_stamp(folder: str | Path) -> tuple:
    """Names, sizes and modification times of a PAM50 folder's images (cache key of what was read)."""
    return tuple(
        (file.name, file.stat().st_size, file.stat().st_mtime_ns)
        for file in sorted(Path(folder).resolve().glob("*/PAM50_*.nii*"))
        if file.is_file()
    )


@functools.lru_cache(maxsize=1)
def _read_pam50_cached(folder: Path, stamp: tuple) -> Pam50:
    """Read (or load from the regiontag disk cache) the cropped arrays; texts are always re-read."""
    tract_names = read_tract_names(folder)
    commit_file = folder / "SOURCE_COMMIT"
    commit = commit_file.read_text().strip() if commit_file.is_file() else ""
    key = hashlib.sha256(f"{folder}|{stamp}|{_MARGIN}|v1".encode()).hexdigest()[:16]
    cached = cache_dir() / f"pam50_cropped_{key}.npz"
    if cached.is_file():
        with np.load(cached) as stored:
            affine, cord, levels, tracts = (stored[name] for name in ("affine", "cord", "levels", "tracts"))
    else:
        affine, cord, levels, tracts = _read_cropped(folder)
        temporary = cached.with_name(cached.stem + ".tmp.npz")
        np.savez(temporary, affine=affine, cord=cord, levels=levels, tracts=tracts)
        temporary.replace(cached)
    for array in (cord, levels, tracts):
        array.flags.writeable = False
    return Pam50(folder, affine, cord, levels, tracts, tract_names, commit)


def _read_cropped(folder: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Affine, cord mask, levels and uint8 tract maps, canonical and cropped around the cord."""
    cord_data, affine = _canonical_data(folder / "template" / "PAM50_cord.nii.gz")
    cord = cord_data > 0
    if not cord.any():
        raise ValueError(f"{folder}/template/PAM50_cord.nii.gz is empty")
    extent = [np.flatnonzero(cord.any(axis=tuple(a for a in range(3) if a != axis))) for axis in range(3)]
    lo = [max(int(indices.min()) - _MARGIN, 0) for indices in extent]
    hi = [min(int(indices.max()) + _MARGIN + 1, size) for indices, size in zip(extent, cord.shape)]
    crop = tuple(slice(a, b) for a, b in zip(lo, hi))
    crop_affine = affine.copy()
    crop_affine[:3, 3] = affine[:3, :3] @ np.array(lo, dtype=float) + affine[:3, 3]
    levels_data, _ = _canonical_data(folder / "template" / "PAM50_levels.nii.gz")
    tracts = np.zeros((N_TRACTS,) + cord[crop].shape, dtype=np.uint8)

    def read_tract(tract: int) -> None:
        data, _ = _canonical_data(folder / "atlas" / f"PAM50_atlas_{tract:02d}.nii.gz")
        tracts[tract] = np.clip(np.rint(np.asarray(data[crop], dtype=np.float32) * 255), 0, 255)

    # gzip decompression releases the GIL: two readers use both cores
    with ThreadPoolExecutor(max_workers=2) as pool:
        list(pool.map(read_tract, range(N_TRACTS)))
    return crop_affine, cord[crop].copy(), levels_data[crop].astype(np.int16), tracts


def class_probabilities(pam: Pam50) -> np.ndarray:
    """``(4, X, Y, Z)`` float32 summed tract probabilities per combined class (order of ``COMBINED_CLASSES``)."""
    return np.stack(
        [pam.tracts[list(ids)].sum(axis=0, dtype=np.float32) / 255.0 for ids in COMBINED_CLASSES.values()]
    )


def _fill_unlabelled(labels: np.ndarray, labelled: np.ndarray, cord: np.ndarray) -> np.ndarray:
    """Give cord voxels without any probability the label of the nearest labelled voxel (in-plane)."""
    out = labels.copy()
    for k in np.flatnonzero((cord & ~labelled).any(axis=(0, 1))):
        if not labelled[:, :, k].any():
            continue
        _, (ii, jj) = ndimage.distance_transform_edt(~labelled[:, :, k], return_indices=True)
        holes = cord[:, :, k] & ~labelled[:, :, k]
        out[:, :, k][holes] = labels[:, :, k][ii[holes], jj[holes]]
    return out


def combined_labels(pam: Pam50) -> np.ndarray:
    """Combined class per cord voxel (1..4 in ``COMBINED_CLASSES`` order, 0 outside the cord).

    Argmax of the summed class probabilities; cord voxels with no probability at all
    take the class of the nearest labelled voxel of their slice.
    """
    probabilities = class_probabilities(pam)
    labels = (np.argmax(probabilities, axis=0) + 1).astype(np.int16)
    labelled = pam.cord & (probabilities.sum(axis=0) > 0.05)
    labels = _fill_unlabelled(labels, labelled, pam.cord)
    labels[~pam.cord] = 0
    return labels


def tract_labels(pam: Pam50) -> np.ndarray:
    """PAM50 tract id + 1 per cord voxel (argmax over tracts 0-35; 0 outside the cord)."""
    labels = (np.argmax(pam.tracts, axis=0) + 1).astype(np.int16)
    labelled = pam.cord & (pam.tracts.max(axis=0) > 12)
    labels = _fill_unlabelled(labels, labelled, pam.cord)
    labels[~pam.cord] = 0
    return labels


def pam50_frames(pam: Pam50) -> CordFrames:
    """Cord frames of the PAM50 cord mask (same normalisation as subject cords)."""
    return cord_frames(pam.cord, pam.affine, smooth_mm=1.0)


def vote_on_grid(pam: Pam50, frames: CordFrames, labels: np.ndarray, level: int, size: int) -> np.ndarray:
    """Most frequent label of ``labels`` (integer volume) over the slices of ``level`` on the ``(u, v)`` grid.

    Each slice is sampled (nearest voxel) at the world position of every grid point;
    grid points outside the unit disk are sampled at the disk edge (radial clip).

    Returns
    -------
    numpy.ndarray
        ``(size, size)`` labels indexed ``[i_u, j_v]``.
    """
    axis = np.linspace(-1.0, 1.0, size)
    grid_u, grid_v = np.meshgrid(axis, axis, indexing="ij")
    rho = np.hypot(grid_u, grid_v)
    scale = np.where(rho > 1.0, 1.0 / np.maximum(rho, 1e-12), 1.0) * (1.0 - 1e-6)
    grid_u, grid_v = grid_u * scale, grid_v * scale
    slices = [int(k) for k in pam.level_slices(level) if k in set(frames.slices.tolist())]
    if not slices:
        raise ValueError(f"PAM50 has no cord slices at level {level}")
    n_labels = int(labels.max()) + 1
    votes = np.zeros((n_labels, size * size), dtype=np.int32)
    inverse = np.linalg.inv(pam.affine[:2, :2])
    points = np.arange(size * size)
    for k in slices:
        x_mm, y_mm = frames.to_world(frames.row_of(k), grid_u, grid_v)
        world = np.stack([x_mm.ravel(), y_mm.ravel()]) - (pam.affine[:2, 2] * k + pam.affine[:2, 3])[:, None]
        ij = np.rint(inverse @ world).astype(int)
        ii = np.clip(ij[0], 0, labels.shape[0] - 1)
        jj = np.clip(ij[1], 0, labels.shape[1] - 1)
        np.add.at(votes, (labels[ii, jj, k], points), 1)
    votes[0] = 0  # background only wins where nothing else was sampled
    return np.argmax(votes, axis=0).reshape(size, size)
