"""Where a brain phantom's lesions go: explicit region lists or a lesion pattern's core regions."""

from __future__ import annotations

from typing import Any, Iterable

import numpy as np
from scipy import ndimage

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


#: Where multiple-sclerosis lesions lie (share of lesions per region), for ``disseminated`` phantoms: most
#: periventricular, then deep and juxtacortical white matter, a few infratentorial and callosal ones
#: (lesion probability maps of MS cohorts: Filippi 2016, Lancet Neurol 15:292; Barkhof 1997, Brain 120:2059).
MS_LESION_SHARES = {
    "Cerebrum > Cerebral white matter > Periventricular white matter": 0.40,
    "Cerebrum > Cerebral white matter > Deep white matter": 0.23,
    "Cerebrum > Cerebral white matter > Juxtacortical white matter": 0.22,
    "Corpus callosum": 0.05,
    "Brainstem > Pons": 0.04,
    "Middle cerebellar peduncle": 0.03,
    "Cerebellum > Cerebellar white matter": 0.03,
}
#: Share of ``disseminated`` phantoms that are heavy, confluent MS (confluent periventricular plaques besides
#: the discrete lesions).
HEAVY_MS_SHARE = 0.25


def disseminated_targets(anatomy: Anatomy, rng: np.random.Generator) -> tuple[list[LesionTarget], bool]:
    """One target per MS-like lesion: log-normal count (median 20, 8-60), regions by :data:`MS_LESION_SHARES`,
    sides drawn with a per-phantom bias (asymmetric); a quarter heavy with confluent periventricular plaques.

    Returns
    -------
    (targets, heavy) : tuple
    """
    count = int(np.clip(round(rng.lognormal(np.log(20), 0.5)), 8, 60))
    paths = list(MS_LESION_SHARES)
    shares = np.asarray(list(MS_LESION_SHARES.values()))
    left_bias = rng.uniform(0.2, 0.8)
    targets = []
    for path in rng.choice(paths, size=count, p=shares / shares.sum()):
        region = anatomy.atlas.region(str(path))
        side = ("left" if rng.random() < left_bias else "right") if region.paired else "both"
        targets.append(LesionTarget(str(path), side, "disseminated"))
    heavy = bool(rng.random() < HEAVY_MS_SHARE)
    if heavy:
        periventricular = "Cerebrum > Cerebral white matter > Periventricular white matter"
        targets = [LesionTarget(periventricular, side, "confluent") for side in ("left", "right")] + targets
    return targets, heavy


def wants_dissemination(pattern: Any) -> bool:
    """True when a pattern expects lesions disseminated in space (``lesions: dis_areas`` with p >= 0.5)."""
    return any(item.measure == "dis_areas" and (item.at_least or 0) >= 2 and item.p_present >= 0.5
               for item in getattr(pattern, "lesions", []) or [])


def probable(evidence: dict[str, Any], name: str) -> bool:
    """True when a pattern's feature/extent evidence ``name`` has ``p_present >= 0.5``."""
    item = evidence.get(name)
    return bool(item is not None and getattr(item, "p_present", 0.0) >= 0.5)


#: Width (mm) of the band under the cortex (the U-fibres, widened by a registration error) that discrete-lesion
#: phantoms of U-fibre-sparing patterns leave free.
U_FIBRE_MM = 4.0


def spares_u_fibres(pattern: Any) -> bool:
    """True when a pattern counts juxtacortical lesions against itself (``n_juxtacortical`` with
    ``p_present < p_background``: small vessel disease, the leukoencephalopathies, X-ALD), so its phantoms
    keep lesions off the subcortical U-fibres."""
    return any(item.measure == "n_juxtacortical" and item.p_present < item.p_background
               for item in getattr(pattern, "lesions", []) or [])


def u_fibre_band(anatomy: Anatomy, labels: np.ndarray, *, width_mm: float = U_FIBRE_MM) -> np.ndarray:
    """Cortex and the tissue within ``width_mm`` of it, on the anatomy grid."""
    cortex = np.isin(labels, anatomy.atlas.region("Cerebrum > Cerebral cortex").label_values("both"))
    zooms = np.linalg.norm(anatomy.affine[:3, :3], axis=0)
    return ndimage.distance_transform_edt(~cortex, sampling=zooms) <= width_mm
