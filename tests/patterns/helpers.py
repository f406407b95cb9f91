"""Helpers shared by the pattern tests: region paths, a minimal disease file, typical sessions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from regiontag.patterns.library import Library, build_library, parse_disease
from regiontag.patterns.simulate import synthetic_region_table

POSTERIOR = "Spinal cord > Spinal white matter > Posterior column"
LATERAL = "Spinal cord > Spinal white matter > Lateral column"
BOTH_PARTS = ("brain", "cord")


def minimal_disease(**pattern_changes) -> dict:
    """A valid one-pattern disease (``test-disease`` / ``test-pattern``); keyword arguments change the pattern."""
    pattern = {
        "id": "test-pattern",
        "name": "Test pattern",
        "body_part": "cord",
        "sequences": ["T2w"],
        "regions": [{"region": POSTERIOR, "role": "core", "laterality": "bilateral", "p_involved": 0.9}],
    }
    pattern.update(pattern_changes)
    return {"id": "test-disease", "disease": "Test disease", "references": ["Doe J (2020). A study."],
            "patterns": [pattern]}


def write(tmp_path: Path, content: dict, name: str = "test-disease.yaml") -> Path:
    """``content`` as a YAML file ``tmp_path/name``."""
    path = tmp_path / name
    path.write_text(yaml.safe_dump(content, sort_keys=False), encoding="utf-8")
    return path


def library_of(*contents: dict[str, Any]) -> Library:
    """A library built in memory from disease dicts (one file ``<id>.yaml`` each)."""
    return build_library({Path(f"{c['id']}.yaml"): parse_disease(c, f"{c['id']}.yaml") for c in contents})


def typical_session(pattern, body_parts=None):
    """Core regions plus the usual supportive ones (p >= 0.5), sides as the pattern expects;
    features at their more likely value."""
    lesioned = {
        item.region: ("left" if item.laterality == "unilateral" else "both")
        for item in pattern.regions
        if item.role == "core" or (item.role == "supportive" and item.p_involved >= 0.5)
    }
    body_parts = body_parts or (pattern.body_part,)
    features = {name: item.p_present >= 0.5 for name, item in {**pattern.extent, **pattern.features}.items()}
    findings = {"body_parts_imaged": list(body_parts), "features": features,
                "sequences": {part: ["FLAIR", "T2w"] for part in body_parts}}
    if pattern.lesions:
        findings["lesions"] = {pattern.body_part: typical_lesion_summary(pattern)}
    return synthetic_region_table(lesioned, body_parts), findings


LOCATION_OF_COUNT = {"n_juxtacortical": "juxtacortical", "n_deep_white_matter": "deep white matter",
                     "n_deep_grey_matter": "deep grey matter"}
MCDONALD_AREAS = ["periventricular", "cortical/juxtacortical", "infratentorial", "spinal cord"]


def typical_lesion_summary(pattern) -> dict:
    """A lesion summary meeting each of the pattern's lesion conditions that is more likely than not
    (p_present >= 0.5) and missing the others (counts one under the threshold, fractions 0.1 off)."""
    summary: dict = {"by_location": {}, "dis_areas": []}
    for item in pattern.lesions:
        likely = item.p_present >= 0.5
        integer = item.measure.startswith("n_") or item.measure == "dis_areas"
        step = 1 if integer else 0.1
        if item.at_least is not None:
            value = item.at_least if likely else max(item.at_least - step, 0)
        else:
            value = item.at_most if likely else item.at_most + step
        if item.measure == "dis_areas":
            summary["dis_areas"] = MCDONALD_AREAS[: int(value)]
        elif item.measure.startswith("n_") and item.measure not in ("n_lesions", "n_callosal", "n_perpendicular"):
            location = LOCATION_OF_COUNT.get(item.measure, item.measure[2:])
            summary["by_location"][location] = int(value)
        else:
            summary[item.measure] = value
    summary.setdefault("n_lesions", sum(summary["by_location"].values()))
    return summary


def row(scores: pd.DataFrame, pattern_id: str) -> pd.Series:
    """The score row of one pattern."""
    return scores.set_index("pattern").loc[pattern_id]
