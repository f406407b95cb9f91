"""PAM50 as the cord atlas: its tract maps resampled onto our ``(u, v, level)`` grid, mapped to our regions.

PAM50 tracts map to our leaves: fasciculus gracilis (0, 1), fasciculus cuneatus
(2, 3), lateral funiculi (4-13) -> lateral column, ventral funiculi (14-29) ->
anterior column, ventral horn (30, 31), dorsal horn (34, 35); the intermediate
zone (32, 33) -> central canal region within ``canal_r`` of the grey-matter
centre, else dorsal or ventral horn by the level's ``horn_split_v``.  The side
comes from the sign of ``u`` (PAM50 is left/right symmetric).  Built once per
PAM50 folder and cached in the regiontag cache.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from regiontag.atlas.cord_spec import CordAtlasSpec, disk_grid, geometry_by_level, kinds_to_labels, level_number
from regiontag.atlas.cord_geometry import (
    ANTERIOR,
    CENTRAL_CANAL,
    CUNEATUS,
    DORSAL_HORN,
    GRACILIS,
    LATERAL,
    VENTRAL_HORN,
)
from regiontag.atlas.pam50.files import pam50_frames, read_pam50, tract_labels, vote_on_grid
from regiontag.resources import cache_dir

#: Leaf kind of each PAM50 tract id (-1: intermediate zone, decided by position).
TRACT_KIND = np.array(
    [GRACILIS] * 2 + [CUNEATUS] * 2 + [LATERAL] * 10 + [ANTERIOR] * 16
    + [VENTRAL_HORN] * 2 + [-1] * 2 + [DORSAL_HORN] * 2
)


def _cache_key(folder: Path, spec: CordAtlasSpec) -> str:
    digest = hashlib.sha256()
    files = sorted((folder / "template").glob("PAM50_*.nii*")) + sorted((folder / "atlas").glob("*"))
    for file in files:
        stat = file.stat()
        digest.update(f"{file.name}:{stat.st_size}:{stat.st_mtime_ns}".encode())
    digest.update(str(folder.resolve()).encode())
    digest.update(f"{spec.grid_size}:{spec.levels}:{spec.fixed}".encode())
    for name, params in sorted(geometry_by_level(spec).items()):
        digest.update(f"{name}:{params['body_v']:.6f}:{params['horn_split_v']:.6f}".encode())
    digest.update(b"pam50-atlas-v2")
    return digest.hexdigest()[:16]


def tract_kinds_on_grid(
    tract_ids: np.ndarray, grid_u: np.ndarray, grid_v: np.ndarray, geometry: dict[str, float]
) -> np.ndarray:
    """Leaf kind per grid point from PAM50 tract ids (0-35) on the grid."""
    kinds = TRACT_KIND[tract_ids].astype(np.int8)
    intermediate = kinds == -1
    canal = np.hypot(grid_u, grid_v - geometry["body_v"]) < geometry["canal_r"]
    dorsal = grid_v < geometry["horn_split_v"]
    kinds[intermediate & canal] = CENTRAL_CANAL
    kinds[intermediate & ~canal & dorsal] = DORSAL_HORN
    kinds[intermediate & ~canal & ~dorsal] = VENTRAL_HORN
    return kinds


def build_pam50_labels(folder: str | Path, spec: CordAtlasSpec) -> np.ndarray:
    """Label volume ``(grid, grid, n_levels)`` from a PAM50 folder (no cache).

    Per level and grid point: the most frequent PAM50 tract (argmax of the tract
    probabilities per voxel) over the level's slices.  Levels of the spec that
    PAM50 lacks take the nearest level PAM50 has.
    """
    pam = read_pam50(folder)
    frames = pam50_frames(pam)
    voxel_tracts = tract_labels(pam)  # tract id + 1, 0 outside the cord
    present = np.array(pam.present_levels())
    grid_u, grid_v, inside = disk_grid(spec.grid_size)
    geometry = geometry_by_level(spec)
    volume = np.zeros((spec.grid_size, spec.grid_size, len(spec.levels)), dtype=np.int16)
    done: dict[int, np.ndarray] = {}
    for k, name in enumerate(spec.levels):
        source = int(present[np.argmin(np.abs(present - level_number(name)))])
        if source not in done:
            done[source] = vote_on_grid(pam, frames, voxel_tracts, source, spec.grid_size)
        tract_ids = np.maximum(done[source] - 1, 0)
        kinds = tract_kinds_on_grid(tract_ids, grid_u, grid_v, geometry[name])
        volume[:, :, k] = np.where(inside, kinds_to_labels(kinds, grid_u, spec), 0)
    return volume


def pam50_atlas_labels(folder: str | Path, spec: CordAtlasSpec) -> np.ndarray:
    """Cached :func:`build_pam50_labels` (key: PAM50 file sizes/times and the spec's grid and levels)."""
    folder = Path(folder)
    cached = cache_dir() / f"cord_pam50_{_cache_key(folder, spec)}.npy"
    if cached.is_file():
        return np.load(cached)
    labels = build_pam50_labels(folder, spec)
    temporary = cached.with_suffix(".tmp.npy")
    np.save(temporary, labels)
    temporary.replace(cached)
    return labels
