"""Region tables drawn from a pattern's own probabilities, to check a library discriminates.

These are *tables*, not images: each region of a pattern is involved with its
``p_involved`` (sides from its laterality), every other region with a small noise rate,
parents aggregate their children, features and lesion-level conditions (``lesions:``) are
drawn from their ``p_present`` (:func:`sample_lesion_summary`).
:func:`self_consistency` scores such tables and reports how often each pattern ranks
its own tables first (ties with declared mimics count as first).  It checks the library
(two patterns that are too alike show up), not the imaging pipeline.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from regiontag.atlas.tree import PATH_SEPARATOR
from regiontag.config import ScoringConfig
from regiontag.outputs.contract import REGION_COLUMNS
from regiontag.patterns.regions import known_region_paths
from regiontag.patterns.schema import LesionEvidence, Pattern
from regiontag.patterns.scoring import score_results

#: Regions on the midline (no left/right rows) in the synthetic tables.
MIDLINE_REGIONS = (
    "Corpus callosum",
    "Brainstem > Pons > Central pons",
    "Brainstem > Midbrain > Periaqueductal region",
    "Ventricles > Third ventricle",
    "Ventricles > Fourth ventricle",
    "Spinal cord > Spinal grey matter > Central canal region",
)


def _is_midline(path: str) -> bool:
    return any(path == m or path.startswith(m + PATH_SEPARATOR) for m in MIDLINE_REGIONS)


def _ancestors(path: str) -> list[str]:
    parts = path.split(PATH_SEPARATOR)
    return [PATH_SEPARATOR.join(parts[:i]) for i in range(1, len(parts))]


def synthetic_region_table(lesioned: dict[str, str], body_parts: tuple[str, ...] = ("brain", "cord"),
                           fraction: float = 0.2) -> pd.DataFrame:
    """A region table with the given regions involved and their parents aggregating them.

    Parameters
    ----------
    lesioned : dict of str to str
        Region path -> ``"both"`` (both sides; the whole region if midline), ``"left"`` or ``"right"``.
    body_parts : tuple of str
        Body parts whose regions get rows (the others are absent, as when not imaged).
    fraction : float
        ``fraction_involved`` of an involved side.

    Returns
    -------
    pandas.DataFrame
        Columns ``outputs.REGION_COLUMNS`` without ``session``.
    """

    known = known_region_paths()
    sides_involved: dict[str, set[str]] = {}
    for path, side in lesioned.items():
        if path not in known:
            raise KeyError(f"unknown region {path!r}")
        wanted = {"left", "right"} if side == "both" else {side}
        for target in [path, *_ancestors(path)]:
            sides_involved.setdefault(target, set()).update(wanted)
    rows = []
    for path, body_part in known.items():
        if body_part not in body_parts:
            continue
        involved_sides = sides_involved.get(path, set())
        fractions = {side: (fraction if side in involved_sides else 0.0) for side in ("left", "right")}
        paired = not _is_midline(path)
        both_fraction = (fractions["left"] + fractions["right"]) / 2
        laterality = np.nan
        if paired and both_fraction > 0:
            laterality = (fractions["left"] - fractions["right"]) / (fractions["left"] + fractions["right"])
        base = {
            "atlas": body_part,
            "region": path,
            "name": path.split(PATH_SEPARATOR)[-1],
            "parent": PATH_SEPARATOR.join(path.split(PATH_SEPARATOR)[:-1]),
            "depth": path.count(PATH_SEPARATOR),
        }
        sides = (("left", fractions["left"]), ("right", fractions["right"])) if paired else ()
        for side, side_fraction in (*sides, ("both", both_fraction)):
            rows.append({
                **base,
                "side": side,
                "fraction_involved": side_fraction,
                "involved": bool(side_fraction > 0),
                "laterality_index": laterality if side == "both" else np.nan,
            })
    return pd.DataFrame(rows).reindex(columns=[c for c in REGION_COLUMNS if c != "session"])


#: The McDonald 2017 dissemination-in-space areas, for a drawn ``dis_areas`` count.
DIS_AREAS = ("periventricular", "cortical/juxtacortical", "infratentorial", "spinal cord")


def _condition_value(item: LesionEvidence, present: bool) -> float:
    """A value of ``item.measure`` that meets (``present``) or misses its condition."""
    counted = item.measure.startswith("n_") or item.measure == "dis_areas"
    step = 1.0 if counted else 0.1
    if item.at_least is not None:
        return item.at_least if present else max(item.at_least - step, 0.0)
    return item.at_most if present else item.at_most + step


def sample_lesion_summary(pattern: Pattern, rng: np.random.Generator) -> dict[str, Any]:
    """A lesion summary (``findings.json`` ``lesions``) drawn from a pattern's lesion conditions.

    Each condition of ``pattern.lesions`` holds with its ``p_present``; the measure is then
    set to the threshold (or one step short of it: 1 for counts, 0.1 for fractions and
    volumes). A measure with two conditions keeps the first draw. Measures the pattern does
    not name are left out, so other patterns' conditions on them are not assessed.

    Examples
    --------
    >>> from regiontag.patterns.schema import Pattern
    >>> pattern = Pattern.model_validate({"id": "p", "name": "P", "body_part": "brain", "sequences": ["FLAIR"],
    ...     "regions": [{"region": "Corpus callosum", "role": "core", "p_involved": 0.9}],
    ...     "lesions": [{"measure": "dis_areas", "at_least": 2, "p_present": 0.99, "p_background": 0.3}]})
    >>> sample_lesion_summary(pattern, np.random.default_rng(0))["dis_areas"]
    ['periventricular', 'cortical/juxtacortical']
    """
    summary: dict[str, Any] = {}
    for item in pattern.lesions:
        if item.measure in summary:
            continue
        value = _condition_value(item, bool(rng.random() < item.p_present))
        summary[item.measure] = list(DIS_AREAS[:int(value)]) if item.measure == "dis_areas" else value
    return summary


def sample_pattern_session(pattern: Pattern, rng: np.random.Generator, noise: float = 0.02,
                           body_parts: tuple[str, ...] | None = None) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Draw one (region table, findings) pair from a pattern's probabilities.

    Parameters
    ----------
    pattern : Pattern
    rng : numpy.random.Generator
        Seeded generator (results are reproducible).
    noise : float
        Probability that any other leaf region of the body part is (falsely) involved.
    body_parts : tuple of str, optional
        Body parts imaged; default the pattern's own.
    """
    body_parts = body_parts or (pattern.body_part,)
    lesioned: dict[str, str] = {}
    listed = {item.region for item in pattern.regions}
    for item in pattern.regions:
        if rng.random() >= item.p_involved:
            continue
        if item.laterality == "bilateral":
            side = "both"
        elif item.laterality == "unilateral":
            side = str(rng.choice(["left", "right"]))
        else:
            side = str(rng.choice(["left", "right", "both"]))
        lesioned[item.region] = side
    known = known_region_paths()
    for path, part in known.items():
        if part in body_parts and path not in listed and rng.random() < noise:
            lesioned.setdefault(path, str(rng.choice(["left", "right"])))
    features: dict[str, bool] = {}
    for name, item in {**pattern.extent, **pattern.features}.items():
        features[name] = bool(rng.random() < item.p_present)
    findings = {
        "body_parts_imaged": list(body_parts),
        "sequences": {part: list(pattern.sequences) for part in body_parts},
        "features": features,
    }
    if pattern.lesions:
        findings["lesions"] = {pattern.body_part: sample_lesion_summary(pattern, rng)}
    return synthetic_region_table(lesioned, body_parts), findings


def self_consistency(library: Any, n_per_pattern: int = 20, seed: int = 0, noise: float = 0.02,
                     config: ScoringConfig = ScoringConfig()) -> pd.DataFrame:
    """How often each pattern ranks first on tables drawn from itself.

    Returns
    -------
    pandas.DataFrame
        Columns ``pattern``, ``n``, ``top1`` (fraction ranked first, mimic ties included),
        ``match`` (fraction matched), ``most_confused_with``.
    """

    rng = np.random.default_rng(seed)
    rows = []
    for pattern in library.patterns:
        firsts, matches, confusions = 0, 0, {}
        for _ in range(n_per_pattern):
            table, findings = sample_pattern_session(pattern, rng, noise)
            results = score_results(table, findings, library, config)
            own = next(r for r in results if r.pattern.id == pattern.id)
            firsts += own.rank == 1
            matches += own.match
            if own.rank != 1:
                winner = next(r for r in results if r.rank == 1)
                confusions[winner.pattern.id] = confusions.get(winner.pattern.id, 0) + 1
        rows.append({
            "pattern": pattern.id,
            "n": n_per_pattern,
            "top1": firsts / n_per_pattern,
            "match": matches / n_per_pattern,
            "most_confused_with": max(confusions, key=confusions.get) if confusions else "",
        })
    return pd.DataFrame(rows)
