"""Validated run configuration (``configs/default.yaml`` merged with a user file).

Every section is a pydantic model that forbids unknown keys, so a typo in a
user config fails on load with the file and the dotted field named.  Each
pipeline stage reads only its own section.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from regiontag.resources import configs_dir, pattern_files
from regiontag.config_checks import ConfigError, check_safe_regex, format_validation_error, read_yaml

SEQUENCES = ("FLAIR", "T2w", "DWI", "T1w", "T1w_ce")


def _path_parts(value: str) -> tuple[str, ...]:
    if not value or not value.strip():
        raise ValueError("path must not be empty")
    if any(ord(char) < 32 for char in value):
        raise ValueError("path contains control characters")
    parts = PurePosixPath(value).parts + PureWindowsPath(value).parts
    if ".." in parts:
        raise ValueError(f"path traversal ('..') is not allowed: {value!r}")
    return parts


def _check_input_path(value: str, info: ValidationInfo) -> str:
    """An existing file/folder; relative paths resolve against the config file's folder."""
    _path_parts(value)
    path = Path(os.path.expanduser(value))
    if not path.is_absolute():
        base = (info.context or {}).get("base_dir") if info.context else None
        path = Path(base) / path if base else Path.cwd() / path
    if not path.exists():
        raise ValueError(f"path does not exist: {str(path)!r}")
    return str(path)


def _check_relative_path(value: str) -> str:
    """A path that must stay inside the folder it is relative to (e.g. OUTPUT_DIR)."""
    _path_parts(value)
    if PurePosixPath(value).is_absolute() or PureWindowsPath(value).is_absolute() or value.startswith("~"):
        raise ValueError(f"absolute path not allowed, a relative one is expected: {value!r}")
    return value


def _check_pattern_library(value: str, info: ValidationInfo) -> str:
    """An existing folder holding at least one disease file (``*.yaml`` / ``*.yml`` with ``patterns:``).

    Checked at load, so ``patterns_dir: /`` fails before any session is computed;
    the files themselves are validated in full when a batch starts (``regiontag.patterns.library``).
    """
    path = Path(_check_input_path(value, info))
    if not path.is_dir():
        raise ValueError(f"not a folder: {str(path)!r} (a pattern library is a folder of disease YAML files)")
    try:
        files = pattern_files(path)
    except OSError as error:
        raise ValueError(f"cannot list {str(path)!r} ({error.strerror or error})") from None
    if not files:
        raise ValueError(f"no pattern files (*.yaml, *.yml) in {str(path)!r}: not a pattern library")
    for file in files:
        try:
            content = read_yaml(file)
        except ConfigError as error:
            raise ValueError(f"pattern file {error}") from None
        if "patterns" not in content or "id" not in content:
            raise ValueError(
                f"{str(file)!r} has no 'id' and 'patterns' keys: not a pattern library "
                "(each file describes one disease and its lesion patterns)"
            )
    return str(path)


#: Path to an existing file or folder; relative values are resolved against the config file's folder.
InputPath = Annotated[str, AfterValidator(_check_input_path)]
#: Folder of disease YAML files (checked for existence and content at load).
PatternLibraryPath = Annotated[str, AfterValidator(_check_pattern_library)]

#: A user regular expression, compiled and checked for catastrophic backtracking at load.
SafeRegex = Annotated[str, AfterValidator(check_safe_regex)]
#: Relative path confined to its base folder (no absolute paths, no '..').
RelativePath = Annotated[str, AfterValidator(_check_relative_path)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class DiscoveryConfig(_Section):
    """How sessions and sequences are found in an input folder."""

    extensions: tuple[str, ...] = (".nii", ".nii.gz")
    #: Regular expressions (case-insensitive, searched in the file name) per sequence, tried in order.
    sequence_patterns: dict[str, list[SafeRegex]] = Field(default_factory=dict)
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
    min_voxel_size_mm: float = Field(0.01, gt=0)
    #: Largest fraction of NaN voxels tolerated (they are set to 0 with a warning).
    max_nonfinite_fraction: float = Field(0.5, ge=0, le=1)

    @model_validator(mode="after")
    def _voxel_size_range(self) -> "LimitsConfig":
        if self.min_voxel_size_mm >= self.max_voxel_size_mm:
            raise ValueError("min_voxel_size_mm must be smaller than max_voxel_size_mm")
        return self


class PreprocessingConfig(_Section):
    """Bias correction and brain masking."""

    n4: bool = True
    n4_shrink_factor: int = Field(1, ge=1, le=8)
    #: Grid spacing (mm) on which the bias field is estimated before it is applied at full resolution
    #: (further shrunk by ``n4_shrink_factor`` inside N4).
    n4_resolution_mm: float = Field(6.0, gt=0, le=12)
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
    #: Linear stage, coarsest level first (shrink 8-4-2-1 on the working grid, at most 4 levels).
    affine_iterations: tuple[int, ...] = Field((1000, 500, 250, 0), min_length=1, max_length=4)
    #: Rigid co-registration of the other sequences of a session onto the reference (as affine_iterations).
    coregistration_iterations: tuple[int, ...] = Field((1000, 500, 250, 0), min_length=1, max_length=4)
    syn_metric: Literal["mattes", "CC", "meansquares"] = "mattes"
    random_seed: int = 42
    #: ITK threads per registration / N4 call. Results depend on it (multithreaded sums), so it is
    #: applied as given (not taken from the environment): same value, byte-identical results.
    threads: int = Field(1, ge=1, le=256)
    #: Sanity check: correlation of the registered scan with the template below this flags the session.
    min_quality: float = Field(0.6, ge=-1, le=1)
    #: Sanity check: plausible brain mask volume (ml); outside it the session is flagged.
    brain_volume_range_ml: tuple[float, float] = (700.0, 2300.0)
    #: Sanity check: look for left/right flips (mirrored co-registration, asymmetric template).
    flip_check: bool = True
    #: Flag two sequences of a session when the mirrored rigid fit is this much better (relative MI gain).
    flip_margin_sequences: float = Field(0.25, ge=0, le=10)
    #: Flag a scan when it matches the mirrored asymmetric template this much better (relative MI gain).
    flip_margin_template: float = Field(0.1, ge=0, le=10)

    @field_validator("brain_volume_range_ml")
    @classmethod
    def _volume_range(cls, value: tuple[float, float]) -> tuple[float, float]:
        low, high = value
        if not 0 < low < high <= 10_000:
            raise ValueError(f"expected 0 < low < high <= 10000 ml, got {list(value)}")
        return value


class DetectionConfig(_Section):
    """Hyperintensity detection (robust z-scores against normal-appearing white matter)."""

    z_threshold: dict[str, float] = Field(
        default_factory=lambda: {"FLAIR": 3.0, "T2w": 4.5, "DWI": 3.5, "T1w": 99.0, "T1w_ce": 4.0}
    )
    min_cluster_mm3: float = Field(10.0, ge=0)
    #: Hysteresis: a cluster is kept only if its peak evidence reaches this multiple of the threshold.
    seed_threshold_factor: float = Field(1.8, ge=1)
    smoothing_fwhm_mm: float = Field(0.0, ge=0)
    nawm_erosion_mm: float = Field(2.0, ge=0)
    #: Near grey matter (within this margin) a lesion must be brighter than grey matter.
    grey_matter_margin_mm: float = Field(2.0, ge=0, le=10)
    #: White matter whose intensity peak reaches this fraction of grey matter (FLAIR, T2w) is not normal:
    #: its normal level is then ``normal_wm_gm_ratio`` x grey matter (diffuse leukoencephalopathy).
    max_wm_gm_ratio: float = Field(1.03, gt=0, le=2)
    normal_wm_gm_ratio: float = Field(0.9, gt=0, le=2)
    #: With that rule in force, the detection threshold and seed level are multiplied by this factor.
    diffuse_threshold_factor: float = Field(0.67, gt=0, le=1)
    #: Silent-failure check: a bright white-matter tail (z above the detection threshold, in the search
    #: mask) of at least this volume with (almost) no lesion found gives a warning.
    bright_tail_min_ml: float = Field(2.0, ge=0)
    csf_exclusion_probability: float = Field(0.5, ge=0, le=1)
    #: Cerebral cortex labels within this distance of probable white matter are searched (juxtacortical
    #: lesions; the grey-matter floor applies there). 0 (default): the cortex is never searched.
    juxtacortical_search_mm: float = Field(0.0, ge=0, le=5)
    #: How z-maps of several sequences combine: "mean" of the available sequences, "max", or "flair"
    #: (FLAIR alone when present, else the mean of the others).
    combine: Literal["flair", "mean", "max"] = "mean"
    #: Thin rims: a cluster of more than ``thin_cluster_min_mm3`` with no voxel ``core_depth_mm`` inside it
    #: (ventricle lining, sulcal CSF borders) is not a lesion. 0 turns the rule off.
    thin_cluster_min_mm3: float = Field(25.0, ge=0)
    core_depth_mm: float = Field(1.0, ge=0, le=5)
    max_burden_fraction: float = Field(0.25, gt=0, le=1)


class InvolvementConfig(_Section):
    """When a region counts as involved."""

    min_fraction: float = Field(0.02, ge=0, le=1)
    min_volume_ml: float = Field(0.05, ge=0)
    symmetric_max_laterality: float = Field(0.5, ge=0, le=1)
    #: A brain session's lesions count as confluent when its largest lesion cluster is at least this big.
    confluent_min_ml: float = Field(3.0, gt=0)
    #: Focal involvement: a lesion of at least this volume (ml) with at least focal_min_share of it in the region.
    focal_min_lesion_ml: float = Field(0.01, ge=0)
    focal_min_share: float = Field(0.5, gt=0, le=1)
    #: lesions.csv location classes: largest gap (mm) to the lateral ventricles / to the cortex.
    periventricular_max_mm: float = Field(3.0, ge=0, le=20)
    juxtacortical_max_mm: float = Field(1.0, ge=0, le=10)


class CordConfig(_Section):
    """Spinal cord segmentation and cord-coordinate atlas."""

    atlas_path: InputPath | None = None
    min_csa_mm2: float = Field(20.0, gt=0)
    max_csa_mm2: float = Field(140.0, gt=0)
    swelling_ratio: float = Field(1.15, gt=1)
    lesion_z_threshold: float = Field(4.5, gt=0)
    min_lesion_mm3: float = Field(8.0, ge=0)
    segment_length_mm: float = Field(18.0, gt=0)
    #: Measure the segment height from the vertebral body/disc periodicity when the image shows it clearly.
    estimate_segment_length: bool = True
    #: CSF-column search: slice spacing (mm) of the ring detector + dynamic programme.
    search_step_mm: float = Field(2.0, gt=0, le=10)
    #: Rays per axial slice for the star-shaped cord boundary.
    n_rays: int = Field(64, ge=16, le=256)
    #: Longest ray (mm) from the cord centre; bounds the cord radius.
    max_radius_mm: float = Field(12.0, gt=3, le=30)
    #: Optimal-path centreline: penalty per mm^2 of in-plane step per mm along z (higher = straighter).
    centerline_stiffness: float = Field(0.1, gt=0, le=10)
    #: Cord boundary on each ray at cord level + this fraction of that ray's cord-to-CSF step (0.5 = midpoint).
    boundary_fraction: float = Field(0.42, gt=0, lt=1)
    #: Gaussian smoothing (sigma, mm) of the centreline along the cord.
    centerline_smoothing_mm: float = Field(3.0, ge=0, le=30)
    #: Minimum cord/CSF contrast ((CSF - cord) / CSF, CSF = 75th percentile of the ray peaks) for a cord slice.
    min_contrast: float = Field(0.3, ge=0, le=1)
    #: Minimum ring-detector score (CSF annulus - cord disc, bright level = 1).
    min_ring_score: float = Field(0.05, ge=0, le=1)
    #: Vertebral level at the top of the field of view when known (e.g. "C2"); None = estimate.
    top_vertebral_level: str | None = Field(None, pattern=r"^(C[1-7]|T(1[0-2]|[1-9])|L[1-5])$")
    #: Hysteresis: lesion voxels grow into neighbours with z above this fraction of the threshold.
    lesion_hysteresis: float = Field(0.55, gt=0, le=1)
    #: In-plane erosion (mm) of the cord mask for lesion detection (CSF partial volume at the edge).
    detection_erosion_mm: float = Field(1.5, ge=0, le=3)
    #: A lesion is "dorsal" / "central" when this share of its cross-section lies there.
    axial_share_threshold: float = Field(0.4, gt=0, le=1)
    #: Cord rows above and below the lesion (mm) used as the reference for the CSA ratio.
    csa_reference_mm: float = Field(15.0, gt=0, le=100)

    #: Self-check: physiological cross-sectional area (mm2); slices outside it are reported.
    qc_csa_range_mm2: tuple[float, float] = (25.0, 110.0)
    #: Self-check: cord likelihood (CSF ring) along the centreline below this = no CSF ring around the cord.
    qc_min_ring: float = Field(0.15, ge=0, le=1)
    #: Self-check: cord/CSF contrast ((CSF - cord) / CSF) below this is reported.
    qc_min_contrast: float = Field(0.35, ge=0, le=1)

    @model_validator(mode="after")
    def _csa_bounds_ordered(self) -> "CordConfig":
        if self.min_csa_mm2 >= self.max_csa_mm2:
            raise ValueError(f"min_csa_mm2 ({self.min_csa_mm2}) must be below max_csa_mm2 ({self.max_csa_mm2})")
        return self


def _default_region_background() -> dict[str, float]:
    return {
        "Cerebrum": 0.35,
        "Cerebrum > Cerebral white matter": 0.3,
        "Cerebrum > Cerebral white matter > Periventricular white matter": 0.25,
        "Cerebrum > Cerebral white matter > Deep white matter": 0.25,
        "Cerebrum > Cerebral white matter > Juxtacortical white matter": 0.1,
        "Cerebrum > Cerebral white matter > Frontal white matter": 0.25,
        "Cerebrum > Cerebral white matter > Parietal white matter": 0.25,
        "Cerebrum > Cerebral white matter > Occipital white matter": 0.2,
        "Cerebrum > Cerebral white matter > Temporal white matter": 0.2,
        "Corpus callosum": 0.12,
        "Internal capsule": 0.12,
        "Thalamus": 0.1,
        "Thalamus > Medial thalamus": 0.04,
        "Brainstem": 0.15,
        "Brainstem > Midbrain > Periaqueductal region": 0.04,
        "Brainstem > Pons": 0.1,
        "Brainstem > Pons > Central pons": 0.04,
        "Cerebellum": 0.12,
        "Spinal cord": 0.2,
        "Spinal cord > Spinal white matter": 0.15,
        "Spinal cord > Spinal grey matter": 0.1,
    }


def _default_feature_background() -> dict[str, float]:
    return {
        "longitudinally_extensive": 0.1,
        "confluent": 0.15,
        "restricted_diffusion": 0.1,
        "enhancement": 0.1,
        "cord_swelling": 0.1,
        "cord_central": 0.15,
        "cord_dorsal": 0.15,
        "cord_lateral": 0.15,
        "cord_anterior": 0.1,
    }



class ScoringConfig(_Section):
    """Pattern scoring: naive-Bayes likelihood ratios of each pattern against the background.

    ``score`` = log10 prior odds + sum of log10 likelihood ratios (regions, laterality,
    symmetry, extent, features), i.e. the log10 posterior odds of the pattern.
    Background probabilities describe scans *without* the pattern (healthy or another
    disease); a pattern file may override them per region or feature.
    """

    patterns_dir: PatternLibraryPath | None = None
    #: A pattern matches when its score (log10 posterior odds) reaches this (2 = 100:1).
    match_threshold: float = Field(2.0, ge=0.0, le=20.0)
    #: A match also needs at least one of the pattern's core regions involved.
    require_core_for_match: bool = True
    #: Prior probability of a pattern that does not set ``prior`` (0.5 = even odds, no effect).
    default_prior: float = Field(0.5, gt=0.0, lt=1.0)
    #: P(region involved | not the pattern) for regions not listed in ``region_background``.
    background_p_involved: float = Field(0.08, gt=0.0, lt=1.0)
    #: P(region involved | not the pattern) per region path (overrides the default above).
    region_background: dict[str, float] = Field(default_factory=_default_region_background)
    #: P(feature present | not the pattern) per feature (others: ``background_p_feature``).
    feature_background: dict[str, float] = Field(default_factory=_default_feature_background)
    background_p_feature: float = Field(0.1, gt=0.0, lt=1.0)
    #: P(both sides involved | region involved) by expected laterality, and without the pattern.
    p_bilateral_if_bilateral: float = Field(0.9, gt=0.0, lt=1.0)
    p_bilateral_if_unilateral: float = Field(0.2, gt=0.0, lt=1.0)
    p_bilateral_background: float = Field(0.5, gt=0.0, lt=1.0)
    #: P(involvement symmetric) by expected symmetry, and without the pattern.
    p_symmetric_if_symmetric: float = Field(0.85, gt=0.0, lt=1.0)
    p_symmetric_if_asymmetric: float = Field(0.3, gt=0.0, lt=1.0)
    p_symmetric_background: float = Field(0.5, gt=0.0, lt=1.0)
    #: Involvement counts as symmetric when the median |laterality index| is at most this.
    symmetric_max_laterality: float = Field(0.5, ge=0.0, le=1.0)
    #: Declared mimics whose scores differ by at most this (log10 units) share a rank.
    mimic_tie_margin: float = Field(1.0, ge=0.0, le=10.0)
    #: The first-ranked pattern's explanation (and the runner-up's) says "close call" when it leads the next
    #: pattern by less than this (log10 units; 1 = less than 10:1 between the two).
    close_call_margin: float = Field(1.0, ge=0.0, le=10.0)
    #: Items listed per direction ("raised by", "lowered by") in an explanation.
    explain_max_items: int = Field(4, ge=1, le=50)

    @field_validator("region_background", "feature_background")
    @classmethod
    def _probabilities(cls, value: dict[str, float]) -> dict[str, float]:
        for key, probability in value.items():
            if not 0.0 < float(probability) < 1.0:
                raise ValueError(f"{key!r}: probability must lie strictly between 0 and 1, got {probability}")
        return value


class ReportConfig(_Section):
    """HTML report."""

    enabled: bool = True


class AccuracyConfig(_Section):
    """Accuracy thresholds of ``regiontag validate`` (read by the validation only, never by a run).

    Section ``accuracy:`` of the configuration (formerly ``validation:``; a file that still
    uses the old name is rejected by :func:`load_config` with a message saying so).

    The lesion Dice threshold applies to the brain sessions with true lesions acquired at
    ``dice_snr`` and ``dice_slice_thickness_mm``; the other thresholds to the whole suite.
    """

    #: Mean lesion Dice required at the reference acquisition below.
    min_lesion_dice: float = Field(0.75, ge=0, le=1)
    dice_snr: float = Field(20.0, gt=0, le=1000)
    dice_slice_thickness_mm: float = Field(3.0, gt=0, le=20)
    #: Share of (region, side) involvement flags agreeing with the truth.
    min_region_flag_accuracy: float = Field(0.95, ge=0, le=1)
    #: Share of lesion sessions whose true pattern ranks first.
    min_pattern_top1: float = Field(0.90, ge=0, le=1)
    #: Share each pattern must reach on its own phantoms of one condition; checked where a pattern has
    #: at least ``pattern_top1_min_phantoms`` finished lesion phantoms (the ``patterns`` profile has 20).
    min_pattern_top1_each: float = Field(0.90, ge=0, le=1)
    pattern_top1_min_phantoms: int = Field(10, ge=1)
    #: Largest share of healthy sessions where any pattern scores as a match.
    max_healthy_false_match_rate: float = Field(0.05, ge=0, le=1)
    #: Largest share of suite sessions allowed to fail or be missing.
    max_failed_fraction: float = Field(0.0, ge=0, le=1)


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
    accuracy: AccuracyConfig = AccuracyConfig()


#: Sections that were renamed: old name -> (new name, what the section holds), for a one-line error.
RENAMED_SECTIONS = {"validation": ("accuracy", "accuracy thresholds of regiontag validate")}


def _check_renamed_sections(path: Path | str, content: dict[str, Any]) -> None:
    """Raise a ``ConfigError`` naming the file and the section when a user file uses an old section name."""
    for old, (new, meaning) in RENAMED_SECTIONS.items():
        if old in content:
            raise ConfigError(f"{path}: {old}: this section is now called {new!r} ({meaning})")


def _deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


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
        With the file and dotted field name of each problem (also for a section under
        its old name, e.g. ``validation:``, now ``accuracy:``).

    Examples
    --------
    >>> config = load_config()
    >>> config.accuracy.min_lesion_dice
    0.75
    """
    default_path = configs_dir() / "default.yaml"
    merged = read_yaml(default_path)
    source = default_path
    if path is not None:
        user = read_yaml(Path(path))
        _check_renamed_sections(path, user)
        merged = _deep_merge(merged, user)
        source = Path(path)
    try:
        return Config.model_validate(merged, context={"base_dir": source.parent})
    except ValidationError as error:
        raise ConfigError(format_validation_error(source, error)) from None


def config_to_dict(config: Config) -> dict[str, Any]:
    """Plain JSON-able dict of a config (for provenance)."""
    return config.model_dump(mode="json")
