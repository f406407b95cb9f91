"""Source images on the template grid and the geometric mask rules of ``brain.yaml``.

Everything here works on a cropped block of the template grid (the brain plus
a margin) in canonical RAS+ with 1 mm voxels; coordinates are MNI mm.  Each
mask rule (``brain_schema.Term``) is a pure function of the source images and
of masks evaluated before it, so the atlas build is deterministic.
"""

from __future__ import annotations

import fnmatch
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from scipy import ndimage as ndi

from regiontag.atlas.brain_schema import BrainAtlasSpec, MaskSpec, SourceSpec, Term

AXES = {"x": 0, "y": 1, "z": 2}


def package_file(package: str, relative: str) -> Path:
    """Absolute path of a data file shipped inside an installed package.

    Raises
    ------
    FileNotFoundError
        Naming the package and file when either is missing.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"package {package!r} is not installed (needed for {relative})")
    path = Path(list(spec.submodule_search_locations)[0]) / relative
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found in package {package!r}")
    return path


def source_files(spec: BrainAtlasSpec) -> list[Path]:
    """Every package file the atlas is built from (images and label tables), in YAML order."""
    files = []
    for source in spec.sources.values():
        files.append(package_file(source.package, source.image))
        if source.labels:
            files.append(package_file(source.package, source.labels))
    return files


def resample_onto(data: np.ndarray, affine: np.ndarray, grid_affine: np.ndarray,
                  grid_shape: tuple[int, ...], order: int) -> np.ndarray:
    """Resample a 3D array onto a grid (``order`` 0 nearest, 1 trilinear; 0 outside the data).

    Axis-aligned transforms (all the packaged atlases) are resampled separably,
    one axis at a time, which is much faster than a general affine transform.
    """
    voxel_to_voxel = np.linalg.inv(affine) @ grid_affine
    linear = voxel_to_voxel[:3, :3]
    if not np.allclose(linear, np.diag(np.diag(linear)), atol=1e-6):
        return ndi.affine_transform(
            data, linear, offset=voxel_to_voxel[:3, 3], output_shape=tuple(grid_shape),
            order=order, mode="constant", cval=0, prefilter=False,
        )
    result = data
    for axis in range(3):
        positions = np.diag(linear)[axis] * np.arange(grid_shape[axis]) + voxel_to_voxel[axis, 3]
        result = _resample_axis(result, axis, positions, order)
    return result


def _resample_axis(data: np.ndarray, axis: int, positions: np.ndarray, order: int) -> np.ndarray:
    size = data.shape[axis]
    if order == 0:
        inside = (positions > -0.5) & (positions < size - 0.5)
    else:
        inside = (positions >= -1e-6) & (positions <= size - 1 + 1e-6)
    shape = [1, 1, 1]
    shape[axis] = positions.size
    keep = inside.reshape(shape)
    if order == 0:
        index = np.clip(np.rint(positions).astype(np.int64), 0, size - 1)
        return np.where(keep, np.take(data, index, axis=axis), 0).astype(data.dtype)
    low = np.clip(np.floor(positions).astype(np.int64), 0, size - 1)
    high = np.clip(low + 1, 0, size - 1)
    weight = np.clip(positions - low, 0.0, 1.0).astype(np.float32).reshape(shape)
    values = (1 - weight) * np.take(data, low, axis=axis) + weight * np.take(data, high, axis=axis)
    return np.where(keep, values, 0).astype(np.float32)


def _label_table(source: SourceSpec) -> dict[str, int]:
    table = pd.read_csv(package_file(source.package, source.labels))
    return {str(name): int(index) for index, name in zip(table["index"], table["name"])}


@dataclass
class RuleContext:
    """Source images and evaluated masks on the cropped template block."""

    spec: BrainAtlasSpec
    coords: tuple[np.ndarray, np.ndarray, np.ndarray]
    label_images: dict[str, np.ndarray] = field(default_factory=dict)
    probability_images: dict[str, np.ndarray] = field(default_factory=dict)
    label_tables: dict[str, dict[str, int]] = field(default_factory=dict)
    masks: dict[str, np.ndarray] = field(default_factory=dict)
    _distances: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def shape(self) -> tuple[int, int, int]:
        """Shape of the cropped block."""
        return self.coords[0].shape

    def tissue(self, name: str) -> np.ndarray:
        """GM, WM or CSF probability (CSF = 1 - GM - WM, clipped)."""
        gm = self.probability_images[self.spec.tissue.gm]
        wm = self.probability_images[self.spec.tissue.wm]
        if name == "gm":
            return gm
        if name == "wm":
            return wm
        return np.clip(1.0 - gm - wm, 0.0, 1.0)

    def distance_to(self, mask_name: str, max_mm: float | None = None) -> np.ndarray:
        """Euclidean distance (mm) of every voxel to a mask (cached).

        With ``max_mm`` only distances up to ``max_mm`` are exact (others may be
        ``inf``); the transform then runs on the mask's neighbourhood only.
        """
        key = (mask_name, max_mm)
        exact = self._distances.get((mask_name, None))
        if exact is not None:
            return exact
        if key not in self._distances:
            mask = self.masks[mask_name]
            distance = np.full(self.shape, np.inf, dtype=np.float32)
            if mask.any():
                window = bounding_window(mask, int(np.ceil(max_mm)) + 1 if max_mm is not None else None)
                distance[window] = ndi.distance_transform_edt(~mask[window])
            self._distances[key] = distance
        return self._distances[key]


def bounding_window(mask: np.ndarray, margin: int | None) -> tuple[slice, ...]:
    """Slices of the mask's bounding box grown by ``margin`` voxels (None: whole array)."""
    if margin is None:
        return tuple(slice(0, n) for n in mask.shape)
    corners = np.argwhere(mask)
    low = np.maximum(corners.min(0) - margin, 0)
    high = np.minimum(corners.max(0) + margin + 1, mask.shape)
    return tuple(slice(int(a), int(b)) for a, b in zip(low, high))


def load_context(spec: BrainAtlasSpec, grid: nib.Nifti1Image, margin: int = 6) -> tuple[RuleContext, tuple[slice, ...]]:
    """Resample every source onto the brain block of ``grid``.

    Parameters
    ----------
    spec : BrainAtlasSpec
    grid : nibabel.Nifti1Image
        Canonical RAS+ template defining the atlas grid (the tissue maps share it).
    margin : int
        Voxels kept around the bounding box of the template's brain tissue.

    Returns
    -------
    context : RuleContext
    crop : tuple of slice
        Where the block sits in the full grid.
    """
    grid_shape = tuple(grid.shape[:3])
    tissue_maps = {}
    for name in (spec.tissue.gm, spec.tissue.wm):
        source = spec.sources[name]
        image = nib.load(package_file(source.package, source.image))
        tissue_maps[name] = resample_onto(np.asarray(image.dataobj, dtype=np.float32) / source.scale,
                                          image.affine, grid.affine, grid_shape, 1)
    corners = np.argwhere(sum(tissue_maps.values()) > 0.05)
    low = np.maximum(corners.min(0) - margin, 0)
    high = np.minimum(corners.max(0) + margin + 1, grid_shape)
    crop = tuple(slice(int(a), int(b)) for a, b in zip(low, high))
    block_shape = tuple(int(b - a) for a, b in zip(low, high))
    block_affine = grid.affine.copy()
    block_affine[:3, 3] = grid.affine[:3, :3] @ low + grid.affine[:3, 3]

    labels: dict[str, np.ndarray] = {}
    probabilities: dict[str, np.ndarray] = {}
    tables: dict[str, dict[str, int]] = {}
    for name, source in spec.sources.items():
        if name in tissue_maps:
            probabilities[name] = np.ascontiguousarray(tissue_maps[name][crop])
            continue
        image = nib.load(package_file(source.package, source.image))
        if source.kind == "labels":
            data = np.asarray(image.dataobj).astype(np.int32)
            labels[name] = resample_onto(data, image.affine, block_affine, block_shape, 0)
            tables[name] = _label_table(source)
        elif source.kind == "probabilistic":
            table = _label_table(source)
            tables[name] = table
            for volume in source.volumes:
                if volume not in table:
                    raise KeyError(f"sources.{name}.volumes: no label {volume!r} in {source.labels}")
                data = np.asarray(image.dataobj[..., table[volume]], dtype=np.float32)
                probabilities[f"{name}:{volume}"] = resample_onto(data, image.affine, block_affine, block_shape, 1)
        else:
            data = np.asarray(image.dataobj, dtype=np.float32) / source.scale
            probabilities[name] = resample_onto(data, image.affine, block_affine, block_shape, 1)
    indices = np.indices(block_shape, dtype=np.float32)
    world = np.tensordot(block_affine[:3, :3].astype(np.float32), indices, axes=1)
    coords = tuple(world[i] + np.float32(block_affine[i, 3]) for i in range(3))
    context = RuleContext(spec=spec, coords=coords, label_images=labels,
                          probability_images=probabilities, label_tables=tables)
    return context, crop


def check_source_names(spec: BrainAtlasSpec) -> None:
    """Check every label name / probability volume a rule uses against the source tables.

    Cheap (reads the CSV tables only), so a typo fails before any image is loaded.

    Raises
    ------
    KeyError
        ``masks.<name>: ...`` naming the mask and the unmatched names.
    """
    tables = {name: _label_table(source) for name, source in spec.sources.items() if source.labels}
    for mask_name, mask in spec.masks.items():
        for term in mask.terms():
            value = term.value
            if term.kind == "labels":
                missing = [p for p in value.names if not fnmatch.filter(list(tables.get(value.source, {})), p)]
                if missing:
                    raise KeyError(f"masks.{mask_name}: labels {missing} match no label of source {value.source!r}")
            elif term.kind == "probability":
                source = spec.sources[value.source]
                if source.kind == "probabilistic" and value.name not in source.volumes:
                    raise KeyError(f"masks.{mask_name}: {value.name!r} is not in sources.{value.source}.volumes")
                if source.kind == "probability" and value.name is not None:
                    raise KeyError(f"masks.{mask_name}: source {value.source!r} has no named volumes")


def side_masks(context: RuleContext) -> dict[str, np.ndarray]:
    """``left`` (x < -tol), ``right`` (x > tol) and ``midline`` voxels."""
    x = context.coords[0]
    tolerance = context.spec.midline_tolerance_mm
    return {"left": x < -tolerance, "right": x > tolerance, "midline": np.abs(x) <= tolerance}


def _in_range(values: np.ndarray, bounds: tuple[float, float]) -> np.ndarray:
    return (values >= bounds[0]) & (values <= bounds[1])


def evaluate_term(context: RuleContext, term: Term, where: str) -> np.ndarray:
    """Boolean mask of one rule term (``where`` names the mask for error messages)."""
    kind, value = term.kind, term.value
    x, y, z = context.coords
    if kind == "mask":
        return context.masks[value]
    if kind == "labels":
        table = context.label_tables[value.source]
        matched = {pattern: fnmatch.filter(list(table), pattern) for pattern in value.names}
        missing = [pattern for pattern, names in matched.items() if not names]
        if missing:
            raise KeyError(f"masks.{where}: labels {missing} match no label of source {value.source!r}")
        indices = sorted({table[name] for names in matched.values() for name in names})
        return np.isin(context.label_images[value.source], indices)
    if kind == "probability":
        key = f"{value.source}:{value.name}" if value.name else value.source
        if key not in context.probability_images:
            raise KeyError(f"masks.{where}: probability map {key!r} not loaded (list it in sources.volumes)")
        return context.probability_images[key] >= value.min
    if kind == "dominant":
        tissues = {name: context.tissue(name) for name in ("gm", "wm", "csf")}
        mine = tissues.pop(value)
        others = list(tissues.values())
        return (mine >= others[0]) & (mine >= others[1]) & (mine > 0)
    if kind == "box":
        result = np.ones(context.shape, dtype=bool)
        for axis_name, axis_values in (("x", x), ("y", y), ("z", z), ("abs_x", np.abs(x))):
            bounds = getattr(value, axis_name)
            if bounds is not None:
                result &= _in_range(axis_values, bounds)
        return result
    if kind == "within_mm":
        distance = context.distance_to(value.mask, value.max)
        return (distance >= value.min) & (distance <= value.max)
    if kind == "depth_mm":
        mask = context.masks[value.mask]
        depth = np.zeros(context.shape, dtype=np.float32)
        if mask.any():
            window = bounding_window(mask, 1)
            depth[window] = ndi.distance_transform_edt(mask[window])
        return mask & (depth >= value.min)
    if kind == "between":
        return _between(context, value)
    if kind == "segment":
        return _segment_distance(context.coords, value.start, value.end) <= value.radius_mm
    if kind == "halfspace":
        signed = sum((axis - p) * n for axis, p, n in zip(context.coords, value.point, value.normal))
        return signed >= 0
    if kind == "ellipsoid":
        centres = [value.centre]
        if value.mirror_x:
            centres.append((-value.centre[0], value.centre[1], value.centre[2]))
        result = np.zeros(context.shape, dtype=bool)
        for centre in centres:
            radius2 = sum(((axis - c) / r) ** 2 for axis, c, r in zip(context.coords, centre, value.radii_mm))
            result |= radius2 <= 1.0
        return result
    if kind == "axis_fraction":
        mask = context.masks[value.mask]
        axis_values = context.coords[AXES[value.axis]]
        if not mask.any():
            raise ValueError(f"masks.{where}: axis_fraction of empty mask {value.mask!r}")
        low, high = float(axis_values[mask].min()), float(axis_values[mask].max())
        fraction = (axis_values - low) / max(high - low, 1e-6)
        return _in_range(fraction, (value.min, value.max))
    if kind == "axis_offset":
        return _axis_offset(context, value, where)
    if kind == "nearest":
        target = context.distance_to(value.target)
        nearest_other = np.min([context.distance_to(name) for name in value.competitors], axis=0)
        return np.isfinite(target) & (target <= nearest_other)
    raise ValueError(f"masks.{where}: unknown rule {kind!r}")


def _between(context: RuleContext, value) -> np.ndarray:
    result = np.zeros(context.shape, dtype=bool)
    mask_a, mask_b = context.masks[value.a], context.masks[value.b]
    if not mask_a.any() or not mask_b.any():
        return result
    window = bounding_window(mask_a | mask_b, int(np.ceil(value.max_gap_mm)) + 1)
    mask_a, mask_b = mask_a[window], mask_b[window]
    # axial: a huge z spacing keeps every nearest voxel in the voxel's own slice
    sampling = (1.0, 1.0, 1e4) if value.plane == "axial" else None
    distance_a, nearest_a = ndi.distance_transform_edt(~mask_a, sampling=sampling, return_indices=True)
    distance_b, nearest_b = ndi.distance_transform_edt(~mask_b, sampling=sampling, return_indices=True)
    candidates = (distance_a > 0) & (distance_b > 0) & (distance_a + distance_b <= value.max_gap_mm)
    points = np.argwhere(candidates)
    to_a = (nearest_a[:, candidates].T - points).astype(np.float64)
    to_b = (nearest_b[:, candidates].T - points).astype(np.float64)
    cosine = (to_a * to_b).sum(1) / (np.linalg.norm(to_a, axis=1) * np.linalg.norm(to_b, axis=1))
    keep = points[cosine <= value.max_cos]
    inside = np.zeros(candidates.shape, dtype=bool)
    inside[tuple(keep.T)] = True
    result[window] = inside
    return result


def _segment_distance(coords, start, end) -> np.ndarray:
    start_point = np.asarray(start, dtype=np.float32)
    direction = np.asarray(end, dtype=np.float32) - start_point
    length2 = float(direction @ direction) or 1e-6
    offsets = [axis - s for axis, s in zip(coords, start_point)]
    along = np.clip(sum(o * d for o, d in zip(offsets, direction)) / length2, 0.0, 1.0)
    return np.sqrt(sum((o - along * d) ** 2 for o, d in zip(offsets, direction)))


def _axis_offset(context: RuleContext, value, where: str) -> np.ndarray:
    mask = context.masks[value.mask]
    axis_values = context.coords[AXES[value.axis]]
    regions = list(side_masks(context).values())[:2] if value.per_side else [np.ones(context.shape, bool)]
    result = np.zeros(context.shape, dtype=bool)
    for region in regions:
        selected = mask & region
        if not selected.any():
            raise ValueError(f"masks.{where}: axis_offset landmark mask {value.mask!r} is empty")
        landmark = float(getattr(np, value.stat)(axis_values[selected]))
        result |= region & _in_range(axis_values - landmark, (value.min, value.max))
    return result


def evaluate_mask(context: RuleContext, name: str, mask: MaskSpec) -> np.ndarray:
    """Combine a mask's terms: (any of ``any``) & (all of ``all``) & ~(any of ``not``)."""
    if mask.any:
        result = np.zeros(context.shape, dtype=bool)
        for term in mask.any:
            result |= evaluate_term(context, term, name)
    else:
        result = np.ones(context.shape, dtype=bool)
    for term in mask.all:
        result &= evaluate_term(context, term, name)
    for term in mask.not_:
        result &= ~evaluate_term(context, term, name)
    return result


def evaluate_masks(context: RuleContext) -> dict[str, np.ndarray]:
    """Evaluate every mask of the spec in YAML order (later masks may read earlier ones)."""
    for name, mask in context.spec.masks.items():
        context.masks[name] = evaluate_mask(context, name, mask)
    return context.masks
