"""The cord atlas definition: atlases/cord.yaml parsed and checked, vertebral levels, the (u, v, level) grid and its labels."""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Literal

import nibabel as nib
import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from regiontag.atlas.cord_geometry import FIXED_BOUNDS, GEOMETRY_BOUNDS, LEAF_KINDS, leaf_kinds
from regiontag.atlas.tree import PATH_SEPARATOR, Atlas, Region
from regiontag.config_checks import ConfigError, yaml_problem
from regiontag.resources import atlases_dir

_LEVEL_PATTERN = re.compile(r"^(C[1-7]|T(1[0-2]|[1-9])|L[1-5]|S[1-5])$")
_LEVEL_OFFSET = {"C": 0, "T": 7, "L": 19, "S": 24}


def level_number(name: str) -> int:
    """PAM50 level number of a level name: C1 -> 1, C7 -> 7, T1 -> 8, T12 -> 19, L1 -> 20, S1 -> 25."""
    if not _LEVEL_PATTERN.match(str(name)):
        raise ValueError(f"not a vertebral level name: {name!r} (expected C1-C7, T1-T12, L1-L5, S1-S5)")
    return _LEVEL_OFFSET[name[0]] + int(name[1:])


def level_name(number: int) -> str:
    """Inverse of :func:`level_number`."""
    for prefix, offset, count in (("C", 0, 7), ("T", 7, 12), ("L", 19, 5), ("S", 24, 5)):
        if offset < number <= offset + count:
            return f"{prefix}{number - offset}"
    raise ValueError(f"level number {number} out of range 1-29")


def level_numbers(levels) -> np.ndarray:
    """Float array of level numbers from numbers or names; NaN (also for 0, None, '') = unknown."""
    out = []
    for value in np.asarray(levels, dtype=object).ravel():
        if value is None or (isinstance(value, str) and not value.strip()):
            out.append(np.nan)
        elif isinstance(value, str):
            out.append(float(level_number(value.strip())))
        else:
            number = float(value)
            out.append(np.nan if not np.isfinite(number) or number <= 0 else number)
    return np.asarray(out, dtype=float)


# --- the YAML schema ----------------------------------------------------------------------------


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RegionSpec(_Model):
    """A region of the tree (leaves and parents)."""

    path: str = Field(min_length=1)
    paired: bool
    description: str = ""


class LeafSpec(_Model):
    """One label value of the atlas image: a leaf region on one side."""

    label: int = Field(ge=1, le=32767)
    region: str
    side: Literal["left", "right", "midline"]


class CalibrationSpec(_Model):
    """Provenance and fit quality of the geometry (written by the calibration)."""

    date: str
    source: str
    source_commit: str = ""
    method: str = ""
    dice: dict[str, dict[str, float]] = Field(default_factory=dict)


def _geometry_fields() -> dict[str, tuple[float, float]]:
    return {**GEOMETRY_BOUNDS, **FIXED_BOUNDS}


class CordAtlasSpec(_Model):
    """The content of ``atlases/cord.yaml``."""

    name: str = "cord"
    space: str = "cord"
    description: str = ""
    grid_size: int = Field(100, ge=20, le=400)
    levels: list[str] = Field(min_length=1)
    default_level: str
    cuneatus_lowest_level: str
    fixed: dict[str, float]
    regions: list[RegionSpec] = Field(min_length=1)
    leaves: list[LeafSpec] = Field(min_length=1)
    geometry: dict[str, dict[str, float]] = Field(min_length=1)
    calibration: CalibrationSpec | None = None

    @field_validator("levels")
    @classmethod
    def _levels_known(cls, levels: list[str]) -> list[str]:
        numbers = [level_number(name) for name in levels]
        if numbers != list(range(numbers[0], numbers[0] + len(numbers))):
            raise ValueError("levels must be consecutive, superior to inferior (e.g. C1, C2, ... T12)")
        return levels

    @field_validator("default_level", "cuneatus_lowest_level")
    @classmethod
    def _level_name(cls, name: str) -> str:
        level_number(name)
        return name

    @field_validator("fixed")
    @classmethod
    def _fixed_complete(cls, fixed: dict[str, float]) -> dict[str, float]:
        _check_parameters(fixed, FIXED_BOUNDS, complete=True)
        return fixed

    @field_validator("geometry")
    @classmethod
    def _geometry_valid(cls, geometry: dict[str, dict[str, float]]) -> dict[str, dict[str, float]]:
        for level, parameters in geometry.items():
            try:
                level_number(level)
                _check_parameters(parameters, GEOMETRY_BOUNDS, complete=True)
            except ValueError as error:
                raise ValueError(f"level {level}: {error}") from None
        return geometry

    @model_validator(mode="after")
    def _consistent(self) -> "CordAtlasSpec":
        for name in (self.default_level, self.cuneatus_lowest_level, *self.geometry):
            if name not in self.levels:
                raise ValueError(f"level {name} is not in levels {self.levels}")
        paths = [region.path for region in self.regions]
        if len(set(paths)) != len(paths):
            raise ValueError("duplicate region paths")
        for path in paths:
            parent = PATH_SEPARATOR.join(path.split(PATH_SEPARATOR)[:-1])
            if parent and parent not in paths:
                raise ValueError(f"region {path!r}: parent {parent!r} is not listed")
        labels = [leaf.label for leaf in self.leaves]
        if len(set(labels)) != len(labels):
            raise ValueError("duplicate leaf label values")
        for leaf in self.leaves:
            if leaf.region not in paths:
                raise ValueError(f"leaf {leaf.label}: region {leaf.region!r} is not listed in regions")
            if leaf.region.split(PATH_SEPARATOR)[-1] not in LEAF_KINDS:
                raise ValueError(f"leaf {leaf.label}: the generator cannot draw {leaf.region!r}; known: {LEAF_KINDS}")
        for path in paths:
            if not any(leaf.region == path or leaf.region.startswith(path + PATH_SEPARATOR) for leaf in self.leaves):
                raise ValueError(f"region {path!r} has no leaf label")
        return self


def _check_parameters(parameters: dict[str, float], bounds: dict[str, tuple[float, float]], complete: bool) -> None:
    unknown = sorted(set(parameters) - set(bounds))
    if unknown:
        raise ValueError(f"unknown parameters {unknown}; allowed: {sorted(bounds)}")
    missing = sorted(set(bounds) - set(parameters))
    if complete and missing:
        raise ValueError(f"missing parameters {missing}")
    for name, value in parameters.items():
        low, high = bounds[name]
        if not low <= float(value) <= high:
            raise ValueError(f"{name} = {value} outside [{low}, {high}]")


def default_cord_yaml() -> Path:
    """Path of the shipped ``atlases/cord.yaml``."""
    return atlases_dir() / "cord.yaml"


def load_cord_spec(path: str | Path | None = None) -> CordAtlasSpec:
    """Read and validate a cord atlas YAML; ``ConfigError`` names the file and the field."""
    path = Path(path) if path is not None else default_cord_yaml()
    return _load_cord_spec_cached(str(path.resolve()), path.stat().st_mtime_ns if path.is_file() else 0)


@functools.lru_cache(maxsize=8)
def _load_cord_spec_cached(path: str, _mtime: int) -> CordAtlasSpec:
    try:
        raw = yaml.safe_load(Path(path).read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: cord atlas definition not found") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: not valid YAML: {yaml_problem(error)}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    try:
        return CordAtlasSpec.model_validate(raw)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(str(part) for part in first["loc"]) or "(top level)"
        message = first["msg"].removeprefix("Value error, ")
        raise ConfigError(f"{path}: field {field}: {message}") from None


def cord_region_paths(path: str | Path | None = None) -> list[str]:
    """Region paths of the cord atlas, pre-order, read from the YAML only (no image built)."""
    return [region.path for region in load_cord_spec(path).regions]


# --- building the atlas -------------------------------------------------------------------------


def regions_from_spec(spec: CordAtlasSpec) -> tuple[tuple[Region, ...], dict[int, str]]:
    """Region tree (parents hold the union of their descendants' labels) and leaf names."""
    regions = []
    for region in spec.regions:
        labels: dict[str, list[int]] = {}
        for leaf in spec.leaves:
            if leaf.region == region.path or leaf.region.startswith(region.path + PATH_SEPARATOR):
                labels.setdefault(leaf.side, []).append(leaf.label)
        regions.append(
            Region(
                path=region.path,
                labels={side: tuple(sorted(values)) for side, values in sorted(labels.items())},
                paired=region.paired,
                description=region.description,
            )
        )
    leaf_names = {leaf.label: f"{leaf.region} [{leaf.side}]" for leaf in spec.leaves}
    return tuple(regions), leaf_names


def grid_affine(spec: CordAtlasSpec) -> np.ndarray:
    """Index -> (u, v, level number) affine of the atlas grid."""
    step = 2.0 / (spec.grid_size - 1)
    affine = np.diag([step, step, 1.0, 1.0])
    affine[:3, 3] = (-1.0, -1.0, float(level_number(spec.levels[0])))
    return affine


def geometry_by_level(spec: CordAtlasSpec) -> dict[str, dict[str, float]]:
    """Geometry for every level: given levels as recorded, others interpolated linearly (clamped)."""
    given = sorted((level_number(name), params) for name, params in spec.geometry.items())
    numbers = np.array([number for number, _ in given], dtype=float)
    out = {}
    for name in spec.levels:
        number = level_number(name)
        params = {}
        for key in GEOMETRY_BOUNDS:
            params[key] = float(np.interp(number, numbers, [p[key] for _, p in given]))
        params.update(spec.fixed)
        out[name] = params
    return out


def leaf_label_table(spec: CordAtlasSpec) -> dict[tuple[str, str], int]:
    """(leaf kind, side) -> label value."""
    return {(leaf.region.split(PATH_SEPARATOR)[-1], leaf.side): leaf.label for leaf in spec.leaves}


def kinds_to_labels(kinds: np.ndarray, u: np.ndarray, spec: CordAtlasSpec) -> np.ndarray:
    """Label values for leaf kinds at positions ``u`` (side from the sign of u; midline leaves ignore it)."""
    table = leaf_label_table(spec)
    labels = np.zeros(kinds.shape, dtype=np.int16)
    for index, kind in enumerate(LEAF_KINDS):
        selected = kinds == index
        if (kind, "midline") in table:
            labels[selected] = table[(kind, "midline")]
            continue
        for side, on_side in (("right", u > 0), ("left", u <= 0)):
            if (kind, side) in table:
                labels[selected & on_side] = table[(kind, side)]
    return labels


def disk_grid(size: int, margin_steps: float = 1.5) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(u, v, inside)`` on the ``size x size`` grid; ``inside`` is the unit disk plus a margin."""
    axis = np.linspace(-1.0, 1.0, size)
    grid_u, grid_v = np.meshgrid(axis, axis, indexing="ij")
    inside = np.hypot(grid_u, grid_v) <= 1.0 + margin_steps * (axis[1] - axis[0])
    return grid_u, grid_v, inside


def generate_labels(spec: CordAtlasSpec) -> np.ndarray:
    """The ``(grid, grid, n_levels)`` int16 label volume drawn from the parametric cross-section."""
    grid_u, grid_v, inside = disk_grid(spec.grid_size)
    geometry = geometry_by_level(spec)
    lowest_cuneatus = level_number(spec.cuneatus_lowest_level)
    volume = np.zeros((spec.grid_size, spec.grid_size, len(spec.levels)), dtype=np.int16)
    for k, name in enumerate(spec.levels):
        kinds = leaf_kinds(grid_u, grid_v, geometry[name], with_cuneatus=level_number(name) <= lowest_cuneatus)
        volume[:, :, k] = np.where(inside, kinds_to_labels(kinds, grid_u, spec), 0)
    return volume


def atlas_from_labels(spec: CordAtlasSpec, labels: np.ndarray, description: str = "") -> Atlas:
    """Wrap a label volume on the spec's grid into an :class:`Atlas` (name and space from the spec)."""
    regions, leaf_names = regions_from_spec(spec)
    img = nib.Nifti1Image(labels.astype(np.int16), grid_affine(spec))
    img.set_data_dtype(np.int16)
    if description:
        img.header["descrip"] = description[:79].encode()
    img.header["aux_file"] = f"default_level={spec.default_level}".encode()
    return Atlas(name=spec.name, space=spec.space, labels_img=img, regions=regions, leaf_names=leaf_names)
