"""What scoring reads from a session: region involvement by side and the findings.

:func:`observe` turns a region table (``outputs.REGION_COLUMNS``) and the findings dict
(``findings.json``) into :class:`Observations`, tolerating tables read back from CSV
(``"True"`` strings, empty cells) and findings written by older versions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from regiontag.outputs.contract import parse_flag as as_flag
from regiontag.patterns.regions import known_region_paths, short_region_names


def as_number(value: Any) -> float | None:
    """A finite float, or None."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


@dataclass
class RegionObservation:
    """Involvement of one region (``both`` row) and of its sides when it is paired.

    Attributes
    ----------
    path, name : str
        Region path and display name (the table's ``name`` column).
    involved : bool or None
        The ``both`` row's flag, or True when a side row is involved (a one-sided lesion
        can be over threshold on its side and under it for the whole region); None when
        the table does not say.
    left, right : bool or None
        Side flags of paired regions (None for unpaired regions).
    laterality_index : float or None
        (fracL - fracR) / (fracL + fracR); from the table or computed from the side rows.
    """

    path: str
    name: str
    involved: bool | None
    left: bool | None = None
    right: bool | None = None
    laterality_index: float | None = None
    lesion_volume_ml: float | None = None
    longitudinally_extensive: bool | None = None
    #: ``focal`` / ``diffuse`` -> (region, left, right) flags; absent kinds fall back to ``involved``.
    kinds: dict[str, tuple[bool | None, bool | None, bool | None]] = field(default_factory=dict)

    def flags(self, kind: str = "any") -> tuple[bool | None, bool | None, bool | None]:
        """(region, left, right) involvement of one kind: ``any``, ``focal`` or ``diffuse``."""
        if kind in self.kinds:
            return self.kinds[kind]
        return self.involved, self.left, self.right

    @property
    def paired(self) -> bool:
        """True when both side rows are present."""
        return self.left is not None and self.right is not None

    def sides_text(self) -> str:
        """``both sides``, ``left only``, ``right only`` or an empty string."""
        if not self.paired:
            return ""
        if self.left and self.right:
            return "both sides"
        if self.left:
            return "left only"
        if self.right:
            return "right only"
        return ""


@dataclass
class Observations:
    """A session as scoring sees it."""

    regions: dict[str, RegionObservation] = field(default_factory=dict)
    body_parts_imaged: set[str] = field(default_factory=set)
    sequences: dict[str, list[str]] = field(default_factory=dict)
    features: dict[str, Any] = field(default_factory=dict)
    region_body_parts: dict[str, str] = field(default_factory=dict)
    #: ``findings.json`` ``lesions``: body part -> lesion summary (``atlas.lesion_table.summarise_lesions``).
    lesions: dict[str, dict[str, Any]] = field(default_factory=dict)

    def lesion_measure(self, name: str, body_part: str) -> float | None:
        """A lesion-level measure of a body part (None when no lesion table was made).

        ``dis_areas`` counts the McDonald areas of the brain and the cord together (a cord lesion
        adds the spinal cord area to a brain pattern); ``n_<class>`` counts lesions of a location
        class (``n_juxtacortical`` = cortical + juxtacortical).
        """
        summary = self.lesions.get(body_part)
        if not isinstance(summary, dict):
            return None
        if name == "dis_areas":
            areas = set(summary.get("dis_areas") or [])
            for other in self.lesions.values():
                if isinstance(other, dict):
                    areas |= set(other.get("dis_areas") or [])
            return float(len(areas))
        if name.startswith("n_") and name not in summary:
            by_location = summary.get("by_location") or {}
            classes = {"n_juxtacortical": ("juxtacortical", "cortical"),
                       "n_deep_white_matter": ("deep white matter",),
                       "n_deep_grey_matter": ("deep grey matter",)}.get(name, (name[2:],))
            if name == "n_cord":
                cord = self.lesions.get("cord")
                return float(cord.get("n_lesions", 0)) if isinstance(cord, dict) else None
            return float(sum(int(by_location.get(c, 0)) for c in classes))
        return as_number(summary.get(name))

    def lesion_sentence(self, body_part: str) -> str:
        """``"23 lesions; periventricular 9, juxtacortical 6, infratentorial 2: dissemination in space"``."""
        summary = self.lesions.get(body_part)
        if not isinstance(summary, dict):
            return ""
        count = int(summary.get("n_lesions") or 0)
        if count == 0:
            return "no lesions"
        by_location = dict(summary.get("by_location") or {})
        juxta = int(by_location.pop("juxtacortical", 0)) + int(by_location.pop("cortical", 0))
        if juxta:
            by_location["juxtacortical"] = juxta
        order = ["periventricular", "juxtacortical", "infratentorial", "deep white matter", "deep grey matter", "cord"]
        parts = [f"{name} {by_location[name]}" for name in order if by_location.get(name)]
        text = f"{count} lesion{'s' if count != 1 else ''}; " + ", ".join(parts)
        areas = self.lesion_measure("dis_areas", body_part) or 0
        text += ": dissemination in space" if areas >= 2 else ": no dissemination in space"
        return text

    def body_part_has_rows(self, body_part: str) -> bool:
        """True when the region table has at least one region of this body part."""
        return any(part == body_part for part in self.region_body_parts.values())

    def feature(self, name: str, body_part: str) -> bool | None:
        """A finding feature (``True``/``False``; None = not assessable).

        ``features`` may be flat (``{"enhancement": true}``) or per body part
        (``{"cord": {"cord_swelling": true}}``); the body part's own entry wins.
        ``longitudinally_extensive`` of the cord falls back to the cord rows of the table.
        """
        value = None
        nested = self.features.get(body_part)
        if isinstance(nested, dict) and name in nested:
            value = as_flag(nested[name])
        elif name in self.features and not isinstance(self.features[name], dict):
            raw = self.features[name]
            value = as_flag(raw) if isinstance(raw, (bool, str)) or raw is None else None
        if value is None and name == "longitudinally_extensive" and body_part == "cord":
            value = self._cord_longitudinally_extensive()
        return value

    def _cord_longitudinally_extensive(self) -> bool | None:
        flags = [
            obs.longitudinally_extensive
            for path, obs in self.regions.items()
            if self.region_body_parts.get(path) == "cord" and obs.involved
        ]
        known = [flag for flag in flags if flag is not None]
        if known:
            return any(known)
        if "cord" in self.body_parts_imaged and self.body_part_has_rows("cord") and not flags:
            return False  # cord imaged, nothing involved: no extensive lesion
        return None


def _body_part_of(row: pd.Series, known: dict[str, str]) -> str | None:
    path = str(row.get("region", ""))
    if path in known:
        return known[path]
    atlas = str(row.get("atlas", "")).strip().lower()
    if atlas in ("brain", "cord"):
        return atlas
    if path.startswith("Spinal cord"):
        return "cord"
    return None


def _laterality(left_fraction: float | None, right_fraction: float | None) -> float | None:
    if left_fraction is None or right_fraction is None or left_fraction + right_fraction <= 0:
        return None
    return (left_fraction - right_fraction) / (left_fraction + right_fraction)


def _kind_flags(both: pd.Series | None, left: pd.Series | None, right: pd.Series | None) -> dict:
    """``focal`` / ``diffuse`` flags of a region from the ``involved_focal`` / ``involved_diffuse`` columns."""
    kinds = {}
    for kind in ("focal", "diffuse"):
        column = f"involved_{kind}"
        side_flags = [as_flag(r.get(column)) if r is not None else None for r in (left, right)]
        region = as_flag(both.get(column)) if both is not None else None
        if region is None and not any(flag is not None for flag in side_flags):
            continue  # a table without the column (older versions): the kind falls back to "involved"
        if any(side_flags):
            region = True
        kinds[kind] = (region, *side_flags)
    return kinds


def observe(region_table: pd.DataFrame, findings: dict[str, Any] | None) -> Observations:
    """Collect what scoring needs from a region table and the findings.

    Parameters
    ----------
    region_table : pandas.DataFrame
        Rows per region and side (``outputs.REGION_COLUMNS``, with or without ``session``).
    findings : dict or None
        Content of ``findings.json``; missing keys are inferred (body parts from the table).

    Returns
    -------
    Observations
    """
    findings = dict(findings or {})
    known = known_region_paths()
    observations = Observations(
        sequences={str(k): list(v or []) for k, v in (findings.get("sequences") or {}).items()},
        features=dict(findings.get("features") or {}),
        lesions={str(k): v for k, v in (findings.get("lesions") or {}).items() if isinstance(v, dict)},
    )
    table = region_table if region_table is not None else pd.DataFrame(columns=["region", "side"])
    rows_by_region: dict[str, dict[str, pd.Series]] = {}
    for _, row in table.iterrows():
        path = str(row.get("region", "")).strip()
        side = str(row.get("side", "both")).strip().lower() or "both"
        if not path:
            continue
        rows_by_region.setdefault(path, {})[side] = row
        body_part = _body_part_of(row, known)
        if body_part:
            observations.region_body_parts[path] = body_part
    for path, sides in rows_by_region.items():
        both = sides.get("both")
        left, right = sides.get("left"), sides.get("right")
        if both is None:
            side_flags = [as_flag(r.get("involved")) for r in (left, right) if r is not None]
            involved = any(f for f in side_flags if f) if side_flags else None
            reference = left if left is not None else right
        else:
            involved = as_flag(both.get("involved"))
            reference = both
            side_flags = [as_flag(r.get("involved")) for r in (left, right) if r is not None]
            if any(side_flags):
                involved = True  # one side over threshold is involvement of the region
        name = str(reference.get("name", "") or "").strip() if reference is not None else ""
        laterality = as_number(both.get("laterality_index")) if both is not None else None
        if laterality is None and left is not None and right is not None:
            laterality = _laterality(
                as_number(left.get("fraction_involved")), as_number(right.get("fraction_involved"))
            )
        observations.regions[path] = RegionObservation(
            path=path,
            name=name if name and name.lower() != "nan" else path.split(" > ")[-1],
            involved=involved,
            left=as_flag(left.get("involved")) if left is not None else None,
            right=as_flag(right.get("involved")) if right is not None else None,
            laterality_index=laterality,
            lesion_volume_ml=as_number(reference.get("lesion_volume_ml")) if reference is not None else None,
            longitudinally_extensive=(
                as_flag(reference.get("longitudinally_extensive")) if reference is not None else None
            ),
            kinds=_kind_flags(both, left, right),
        )
    display = short_region_names(observations.regions, universe=set(observations.regions) | set(known))
    for path, region in observations.regions.items():
        if display.get(path, path) != path.split(" > ")[-1]:
            region.name = display[path]  # e.g. "Corpus callosum > Genu", not a bare "Genu"
    imaged = findings.get("body_parts_imaged")
    if imaged:
        observations.body_parts_imaged = {str(part) for part in imaged}
    else:
        observations.body_parts_imaged = set(observations.region_body_parts.values())
    return observations
