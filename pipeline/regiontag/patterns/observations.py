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
