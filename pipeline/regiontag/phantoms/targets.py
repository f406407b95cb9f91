"""Where a brain phantom's lesions go: explicit region lists or a lesion pattern's core regions."""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np

from regiontag.phantoms.anatomy import Anatomy
from regiontag.phantoms.lesion_shapes import LesionTarget
from regiontag.patterns.library import load_library


def parse_region_list(text: str | Iterable[str]) -> list[tuple[str, str]]:
    """``"Putamen:left, Caudate nucleus"`` -> ``[("Putamen", "left"), ("Caudate nucleus", "bilateral")]``.

    Sides: ``left``, ``right``, ``both`` (whole region as one target) or
    ``bilateral`` (left and right separately; the default).
    """
    items = [part.strip() for part in text.split(",")] if isinstance(text, str) else list(text)
    parsed = []
    for item in items:
        if not item:
            continue
        path, _, side = item.rpartition(":") if ":" in item else (item, "", "bilateral")
        side = side.strip().lower() or "bilateral"
        if side not in ("left", "right", "both", "bilateral"):
            raise ValueError(f"region {item!r}: side must be left, right, both or bilateral, not {side!r}")
        parsed.append((path.strip(), side))
    return parsed


def expand_sides(
    anatomy: Anatomy, requests: list[tuple[str, str]], rng: np.random.Generator, strict: bool = False
) -> tuple[list[LesionTarget], list[str]]:
    """Lesion targets from (region, side) requests.

    Regions missing from the atlas raise ``ValueError`` (naming the closest
    regions) when ``strict``, else they are returned apart as skipped.
    """
    targets, skipped = [], []
    for path, side in requests:
        try:
            region = anatomy.atlas.region(path)
        except KeyError as error:
            if strict:
                raise ValueError(error.args[0]) from None
            skipped.append(path)
            continue
        if not region.paired:
            targets.append(LesionTarget(path, "both"))
        elif side == "bilateral":
            targets += [LesionTarget(path, "left"), LesionTarget(path, "right")]
        elif side == "unilateral":
            targets.append(LesionTarget(path, str(rng.choice(["left", "right"]))))
        else:
            targets.append(LesionTarget(path, side))
    return targets, skipped


def pattern_requests(pattern_id: str, library: Any = None) -> tuple[Any, list[tuple[str, str]]]:
    """The pattern object and its core regions as (region, side) requests.

    ``bilateral`` and ``any`` laterality give lesions on both sides, ``unilateral`` on one random
    side.  A core region with a core sub-region is left to the sub-region (e.g. periventricular
    and juxtacortical lesions, not lesions anywhere in the cerebral white matter).
    """
    if library is None:

        library = load_library()
    pattern = library.get(pattern_id)
    if pattern.body_part != "brain":
        raise ValueError(
            f"pattern {pattern_id!r} is a {pattern.body_part} pattern; use the cord phantom (--body-part cord)"
        )
    core = [item for item in pattern.regions if item.role == "core"]
    paths = [item.region for item in core]
    requests = []
    for item in core:
        # a core region whose sub-region is also core gets its lesions through that sub-region
        if any(other.startswith(item.region + " > ") for other in paths):
            continue
        requests.append((item.region, "unilateral" if item.laterality == "unilateral" else "bilateral"))
    return pattern, requests


def probable(evidence: dict[str, Any], name: str) -> bool:
    """True when a pattern's feature/extent evidence ``name`` has ``p_present >= 0.5``."""
    item = evidence.get(name)
    return bool(item is not None and getattr(item, "p_present", 0.0) >= 0.5)
