"""The lesion-pattern file format (one YAML file per disease), validated with pydantic.

A disease file holds one or more lesion patterns.  Each pattern lists atlas regions
with their role, expected laterality and the probability that the region is involved
when a patient has the pattern, ``P(involved | pattern)``; optionally the probability in
patients without it (``p_background``, else the scoring config's base rate).  Features
(``enhancement``, ``cord_swelling``, ...) and extent descriptors
(``longitudinally_extensive``, ``confluent``) carry the same kind of probabilities.
Scoring (:mod:`regiontag.patterns.scoring`) turns them into likelihood ratios.

Example::

    id: vitamin-b12-deficiency
    disease: Vitamin B12 deficiency
    description: ...
    references:
    - {authors: "Briani C, et al.", year: 2013, title: "...", journal: Nutrients, doi: 10.3390/nu5114521}
    patterns:
    - id: b12-subacute-combined-degeneration
      name: Subacute combined degeneration of spinal cord
      body_part: cord
      sequences: [T2w]
      regions:
      - {region: "Spinal cord > Spinal white matter > Posterior column", role: core,
         laterality: bilateral, p_involved: 0.95}
      symmetry: symmetric
      extent: {longitudinally_extensive: 0.8}
      features: {cord_swelling: 0.25, enhancement: 0.15}
      mimics: [copper-deficiency-myelopathy]
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from regiontag.patterns.regions import closest_region, known_region_paths

SEQUENCE_NAMES = ("FLAIR", "T2w", "DWI", "T1w", "T1w_ce")

#: Extent descriptors (keys of a pattern's ``extent``), as reported in ``findings.json`` ``features``.
EXTENT_FEATURES = {
    "longitudinally_extensive": "cord lesion spanning 3 or more vertebral segments",
    "confluent": "lesions merge into large confluent areas rather than discrete foci",
}
#: Other features (keys of a pattern's ``features``), as reported in ``findings.json`` ``features``.
OTHER_FEATURES = {
    "restricted_diffusion": "hyperintense on DWI (restricted diffusion)",
    "enhancement": "contrast enhancement on post-contrast T1",
    "cord_swelling": "cord cross-sectional area increased along the lesion",
    "cord_central": "cord lesion centred on the grey matter / central cord",
    "cord_dorsal": "cord lesion predominantly in the dorsal (posterior) columns",
    "cord_lateral": "cord lesion predominantly in the lateral columns",
    "cord_anterior": "cord lesion predominantly in the anterior columns",
}
KNOWN_FEATURES = {**EXTENT_FEATURES, **OTHER_FEATURES}

#: How explanations word a feature when present / absent.
FEATURE_LABELS = {
    "longitudinally_extensive": ("longitudinally extensive", "not longitudinally extensive"),
    "confluent": ("confluent lesions", "no confluent lesions"),
    "restricted_diffusion": ("restricted diffusion", "no restricted diffusion"),
    "enhancement": ("contrast enhancement", "no contrast enhancement"),
    "cord_swelling": ("cord swelling", "no cord swelling"),
    "cord_central": ("central cord lesion", "no central cord lesion"),
    "cord_dorsal": ("dorsal-column predominant lesion", "lesion not dorsal-column predominant"),
    "cord_lateral": ("lateral-column predominant lesion", "lesion not lateral-column predominant"),
    "cord_anterior": ("anterior-column predominant lesion", "lesion not anterior-column predominant"),
}


#: Lesion-level measures (keys a pattern's ``lesions`` entries may name), read from ``findings.json``
#: ``lesions`` (:func:`regiontag.atlas.lesion_table.summarise_lesions` of ``lesions.csv``).
LESION_MEASURES = {
    "n_lesions": "number of lesions (connected components)",
    "n_periventricular": "lesions touching / within 3 mm of the lateral ventricles (callosal included)",
    "n_juxtacortical": "cortical or juxtacortical lesions (McDonald 2017: one area)",
    "n_infratentorial": "brainstem, cerebellar or middle cerebellar peduncle lesions",
    "n_deep_white_matter": "lesions of the deep (subcortical) white matter",
    "n_deep_grey_matter": "lesions mostly in the caudate, putamen, pallidum or thalamus",
    "n_callosal": "lesions mostly in the corpus callosum",
    "n_cord": "spinal cord lesions",
    "dis_areas": "McDonald 2017 dissemination-in-space areas (periventricular, cortical/juxtacortical, "
                 "infratentorial, spinal cord) holding at least one lesion",
    "median_lesion_ml": "median lesion volume (ml)",
    "largest_lesion_ml": "volume of the largest lesion (ml)",
    "largest_lesion_share": "largest lesion / total lesion volume (1 = one confluent lesion)",
    "fraction_small": "share of lesions under 0.1 ml",
    "n_perpendicular": "elongated periventricular / deep lesions perpendicular to the ventricle wall",
    "fraction_perpendicular": "share of elongated periventricular / deep lesions perpendicular to the wall",
    "volume_asymmetry": "|left - right| / (left + right) of lesion volume",
    "count_asymmetry": "|left - right| / (left + right) of lesion counts",
}


def feature_label(name: str, present: bool) -> str:
    """Words for a feature observation (``"cord swelling"`` / ``"no cord swelling"``)."""
    readable = name.replace("_", " ")
    words = FEATURE_LABELS.get(name, (readable, f"no {readable}"))
    return words[0] if present else words[1]

_SLUG = r"^[a-z0-9][a-z0-9-]{0,79}$"
Probability = Field(gt=0.0, lt=1.0)


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Reference(_Model):
    """A literature reference (structured; a plain citation string is accepted too)."""

    authors: str = Field(min_length=1)
    year: int = Field(ge=1800, le=2100)
    title: str = Field(min_length=1)
    journal: str = Field(min_length=1)
    volume: str | None = None
    pages: str | None = None
    doi: str | None = Field(None, pattern=r"^10\.\d{4,9}/\S+$")
    pmid: int | None = Field(None, gt=0)

    def citation(self) -> str:
        """One-line citation text."""
        text = f"{self.authors} ({self.year}). {self.title}. {self.journal}"
        if self.volume:
            text += f" {self.volume}"
        if self.pages:
            text += f":{self.pages}"
        if self.doi:
            text += f". doi:{self.doi}"
        return text


class RegionEvidence(_Model):
    """One atlas region of a pattern.

    Attributes
    ----------
    region : str
        Atlas path, e.g. ``"Spinal cord > Spinal white matter > Posterior column"``.
    role : {"core", "supportive", "atypical"}
        Core: expected in most cases; supportive: often present; atypical: involvement
        speaks against the pattern (``p_involved`` below the background rate).
    laterality : {"bilateral", "unilateral", "any"}
        Expected sides when the region is involved.
    p_involved : float
        ``P(region involved | pattern)``.
    p_background : float, optional
        ``P(region involved | not this pattern)``; default from the scoring config.
    involvement : {"any", "focal", "diffuse"}
        Which involvement flag of the region table the probabilities are about: ``diffuse``
        (a large fraction of the region), ``focal`` (at least one discrete lesion mostly in it)
        or ``any`` (either; the ``involved`` column).
    note : str
        Free text (e.g. "with involuntary movements").
    """

    region: str = Field(min_length=1)
    role: Literal["core", "supportive", "atypical"]
    laterality: Literal["bilateral", "unilateral", "any"] = "any"
    p_involved: float = Probability
    p_background: float | None = Field(None, gt=0.0, lt=1.0)
    involvement: Literal["any", "focal", "diffuse"] = "any"
    note: str = ""


class LesionEvidence(_Model):
    """A condition on a lesion-level measure and its probability with and without the pattern.

    Attributes
    ----------
    measure : str
        One of :data:`LESION_MEASURES` (e.g. ``dis_areas``, ``n_juxtacortical``).
    at_least, at_most : float, optional
        The condition (exactly one): ``measure >= at_least`` or ``measure <= at_most``.
    p_present : float
        ``P(condition | pattern)``.
    p_background : float
        ``P(condition | not this pattern)`` (scans with other white-matter disease or none).
    label : str
        How explanations word the condition (default from the measure and threshold).
    note : str
        Where the numbers come from (citation).
    """

    measure: str
    at_least: float | None = None
    at_most: float | None = None
    p_present: float = Probability
    p_background: float = Probability
    label: str = ""
    note: str = ""

    @field_validator("measure")
    @classmethod
    def _known_measure(cls, value: str) -> str:
        _check_feature_names({value: None}, LESION_MEASURES)
        return value

    @model_validator(mode="after")
    def _one_condition(self) -> "LesionEvidence":
        if (self.at_least is None) == (self.at_most is None):
            raise ValueError(f"lesions[{self.measure}]: give exactly one of at_least / at_most")
        return self

    def holds(self, value: float) -> bool:
        """True when ``value`` meets the condition."""
        return value >= self.at_least if self.at_least is not None else value <= self.at_most

    def describe(self, present: bool) -> str:
        """Words for the observation, e.g. ``"n_juxtacortical >= 1"`` / ``"not n_juxtacortical >= 1"``."""
        text = self.label or (f"{self.measure.replace('_', ' ')} >= {self.at_least:g}" if self.at_least is not None
                              else f"{self.measure.replace('_', ' ')} <= {self.at_most:g}")
        return text if present else f"not {text}"


class FeatureEvidence(_Model):
    """Probability that a feature is present with the pattern (and without it, optionally)."""

    p_present: float = Probability
    p_background: float | None = Field(None, gt=0.0, lt=1.0)
    note: str = ""

    @model_validator(mode="before")
    @classmethod
    def _from_number(cls, value: Any) -> Any:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return {"p_present": value}
        return value


class Symmetry(_Model):
    """Expected left/right symmetry of involvement (judged from laterality indices)."""

    expected: Literal["symmetric", "asymmetric", "any"] = "any"
    p_symmetric: float | None = Field(None, gt=0.0, lt=1.0)

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"expected": value}
        return value


def _check_feature_names(value: dict[str, Any], allowed: dict[str, str]) -> dict[str, Any]:
    import difflib

    for name in value:
        if name not in allowed:
            close = difflib.get_close_matches(name, list(allowed), n=1, cutoff=0.0)
            hint = f"; closest: {close[0]!r}" if close else ""
            raise ValueError(f"unknown name {name!r}{hint} (known: {', '.join(allowed)})")
    return value


class Pattern(_Model):
    """One lesion pattern: regions, sequences, symmetry, extent and features.

    Other modules read ``id``, ``name``, ``body_part`` and ``regions[i].region / .role /
    .laterality``; :attr:`disease_id` and :attr:`disease_name` are set by the loader.
    """

    id: str = Field(pattern=_SLUG)
    name: str = Field(min_length=1)
    body_part: Literal["brain", "cord"]
    description: str = ""
    sequences: list[Literal["FLAIR", "T2w", "DWI", "T1w", "T1w_ce"]] = Field(min_length=1)
    regions: list[RegionEvidence] = Field(min_length=1)
    symmetry: Symmetry = Symmetry()
    extent: dict[str, FeatureEvidence] = Field(default_factory=dict)
    features: dict[str, FeatureEvidence] = Field(default_factory=dict)
    lesions: list[LesionEvidence] = Field(default_factory=list)
    mimics: list[str] = Field(default_factory=list)
    prior: float | None = Field(None, gt=0.0, lt=1.0)
    references: list[Reference | str] = Field(default_factory=list)

    _disease_id: str = PrivateAttr(default="")
    _disease_name: str = PrivateAttr(default="")

    @property
    def disease_id(self) -> str:
        """Id of the disease file the pattern came from."""
        return self._disease_id

    @property
    def disease_name(self) -> str:
        """Name of the disease the pattern belongs to."""
        return self._disease_name

    @field_validator("extent")
    @classmethod
    def _known_extent(cls, value: dict[str, Any]) -> dict[str, Any]:
        return _check_feature_names(value, EXTENT_FEATURES)

    @field_validator("features")
    @classmethod
    def _known_features(cls, value: dict[str, Any]) -> dict[str, Any]:
        return _check_feature_names(value, OTHER_FEATURES)

    @field_validator("regions")
    @classmethod
    def _check_regions(cls, value: list[RegionEvidence], info: ValidationInfo) -> list[RegionEvidence]:
        known = known_region_paths()
        pattern_body_part = info.data.get("body_part")
        seen: set[str] = set()
        for index, item in enumerate(value):
            where = f"regions[{index}].region"
            if item.region in seen:
                raise ValueError(f"{where}: region {item.region!r} listed twice")
            seen.add(item.region)
            body_part = known.get(item.region)
            if body_part is None:
                candidates = [p for p, part in known.items() if pattern_body_part in (None, part)]
                closest = closest_region(item.region, candidates)
                what = f"{pattern_body_part} region" if pattern_body_part else "region"
                raise ValueError(
                    f"{where}: unknown {what} {item.region!r}; closest valid region: {closest!r}"
                )
            if pattern_body_part is not None and body_part != pattern_body_part:
                raise ValueError(
                    f"{where}: {item.region!r} is a {body_part} region but the pattern's "
                    f"body_part is {pattern_body_part!r}"
                )
        if not any(item.role == "core" for item in value):
            raise ValueError("a pattern needs at least one region with role 'core'")
        return value

    @model_validator(mode="after")
    def _check_mimics(self) -> "Pattern":
        if self.id in self.mimics:
            raise ValueError("mimics: a pattern cannot list itself")
        return self

    def regions_with_role(self, role: str) -> list[RegionEvidence]:
        """The pattern's regions that have this role."""
        return [item for item in self.regions if item.role == role]


class Disease(_Model):
    """One pattern file: a disease and its lesion patterns."""

    id: str = Field(pattern=_SLUG)
    disease: str = Field(min_length=1)
    description: str = ""
    references: list[Reference | str] = Field(min_length=1)
    patterns: list[Pattern] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_pattern_ids(self) -> "Disease":
        ids = [pattern.id for pattern in self.patterns]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"patterns: duplicate pattern id(s) {duplicates}")
        for pattern in self.patterns:
            pattern._disease_id = self.id
            pattern._disease_name = self.disease
        return self
