"""Validated run configuration (``configs/default.yaml`` merged with a user file).

Every section is a pydantic model that forbids unknown keys, so a typo in a
user config fails on load with the file and the dotted field named.  Each
pipeline stage reads only its own section.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from pipeline.resources import configs_dir

SEQUENCES = ("FLAIR", "T2w", "DWI", "T1w", "T1w_ce")


class ConfigError(ValueError):
    """A configuration or data file failed validation; the message names file and field."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DiscoveryConfig(_Section):
    """How sessions and sequences are found in an input folder."""

    extensions: tuple[str, ...] = (".nii", ".nii.gz")
    #: Regular expressions (case-insensitive, searched in the file name) per sequence, tried in order.
    sequence_patterns: dict[str, list[str]] = Field(default_factory=dict)
    #: Sequence forced for file names matching a glob, e.g. {"*_tirm_*": "FLAIR"}.
    sequence_overrides: dict[str, str] = Field(default_factory=dict)
    #: Body part forced for file names matching a glob, e.g. {"*": "cord"}.
    body_part_overrides: dict[str, Literal["brain", "cord"]] = Field(default_factory=dict)
    #: Preferred reference sequence for registration, first present wins.
    reference_order: tuple[str, ...] = ("FLAIR", "T2w", "T1w", "DWI", "T1w_ce")


class LimitsConfig(_Section):
    """Input sanity limits, checked from the header before loading data."""

    max_voxels: int = Field(150_000_000, gt=0)
    min_slices: int = Field(3, ge=1)
    max_voxel_size_mm: float = Field(12.0, gt=0)


class PreprocessingConfig(_Section):
    """Bias correction and brain masking."""

    n4: bool = True
    n4_shrink_factor: int = Field(4, ge=1, le=8)
    n4_convergence_iterations: tuple[int, ...] = (50, 50, 30)
    n4_spline_distance_mm: float = Field(180.0, gt=0)
    skull_stripped: Literal["auto", "yes", "no"] = "auto"
    #: Working resolution (mm) used for registration and detection when the input is finer.
    working_resolution_mm: float = Field(1.0, gt=0, le=4)


class RegistrationConfig(_Section):
    """Subject -> template registration with ANTs."""

    template: str = "MNI152NLin2009aSym"
    resolution_mm: float = Field(2.0, gt=0, le=4)
    type_of_transform: Literal["Rigid", "Affine", "SyN", "SyNOnly", "SyNRA"] = "SyN"
    syn_iterations: tuple[int, ...] = (40, 20, 0)
    affine_iterations: tuple[int, ...] = (1000, 500, 250, 0)
    syn_metric: Literal["mattes", "CC", "meansquares"] = "mattes"
    random_seed: int = 42
    threads: int = Field(1, ge=1)
    min_quality: float = Field(0.6, ge=-1, le=1)


class DetectionConfig(_Section):
    """Hyperintensity detection (robust z-scores against normal-appearing white matter)."""

    z_threshold: dict[str, float] = Field(
        default_factory=lambda: {"FLAIR": 3.0, "T2w": 3.5, "DWI": 3.5, "T1w": 99.0, "T1w_ce": 4.0}
    )
    min_cluster_mm3: float = Field(10.0, ge=0)
    smoothing_fwhm_mm: float = Field(0.0, ge=0)
    nawm_erosion_mm: float = Field(2.0, ge=0)
    csf_exclusion_probability: float = Field(0.5, ge=0, le=1)
    #: How z-maps of several sequences combine: "mean" of available sequences, or "max".
    combine: Literal["mean", "max"] = "mean"
    max_burden_fraction: float = Field(0.25, gt=0, le=1)


class InvolvementConfig(_Section):
    """When a region counts as involved."""

    min_fraction: float = Field(0.02, ge=0, le=1)
    min_volume_ml: float = Field(0.05, ge=0)
    symmetric_max_laterality: float = Field(0.5, ge=0, le=1)


class CordConfig(_Section):
    """Spinal cord segmentation and cord-coordinate atlas."""

    atlas_path: str | None = None
    min_csa_mm2: float = Field(20.0, gt=0)
    max_csa_mm2: float = Field(140.0, gt=0)
    swelling_ratio: float = Field(1.15, gt=1)
    lesion_z_threshold: float = Field(3.0, gt=0)
    min_lesion_mm3: float = Field(3.0, ge=0)
    segment_length_mm: float = Field(18.0, gt=0)


class ScoringConfig(_Section):
    """Pattern scoring."""

    patterns_dir: str | None = None
    match_threshold: float = 2.0


class ReportConfig(_Section):
    """HTML report."""

    enabled: bool = True


class Config(_Section):
    """The whole run configuration."""

    discovery: DiscoveryConfig = DiscoveryConfig()
    limits: LimitsConfig = LimitsConfig()
    preprocessing: PreprocessingConfig = PreprocessingConfig()
    registration: RegistrationConfig = RegistrationConfig()
    detection: DetectionConfig = DetectionConfig()
    involvement: InvolvementConfig = InvolvementConfig()
    cord: CordConfig = CordConfig()
    scoring: ScoringConfig = ScoringConfig()
    report: ReportConfig = ReportConfig()


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def read_yaml(path: Path) -> dict[str, Any]:
    """Read a YAML mapping safely; a ``ConfigError`` names the file on any problem."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(f"{path}: cannot read ({error.strerror or error})") from error
    try:
        content = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise ConfigError(f"{path}: invalid YAML ({error})") from error
    if content is None:
        return {}
    if not isinstance(content, dict):
        raise ConfigError(f"{path}: top level must be a mapping, got {type(content).__name__}")
    return content


def format_validation_error(path: Path | str, error: ValidationError) -> str:
    """One message per failing field: ``file: field.sub: problem``."""
    lines = []
    for item in error.errors():
        field = ".".join(str(part) for part in item["loc"]) or "(top level)"
        lines.append(f"{path}: {field}: {item['msg']}")
    return "; ".join(lines)


def load_config(path: str | Path | None = None) -> Config:
    """Load ``configs/default.yaml`` and merge an optional user config over it.

    Parameters
    ----------
    path : str or Path, optional
        User YAML file; only the keys it sets change.

    Returns
    -------
    Config

    Raises
    ------
    ConfigError
        With the file and dotted field name of each problem.
    """
    default_path = configs_dir() / "default.yaml"
    merged = read_yaml(default_path)
    source = default_path
    if path is not None:
        merged = _deep_merge(merged, read_yaml(Path(path)))
        source = Path(path)
    try:
        return Config.model_validate(merged)
    except ValidationError as error:
        raise ConfigError(format_validation_error(source, error)) from None


def config_to_dict(config: Config) -> dict[str, Any]:
    """Plain JSON-able dict of a config (for provenance)."""
    return config.model_dump(mode="json")
