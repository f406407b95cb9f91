"""The region paths pattern files may name, and suggestions for typos.

One source of truth for the rest of :mod:`regiontag.patterns`: :func:`known_region_paths`.
It asks the atlas modules (``regiontag.atlas.brain.brain_region_paths`` and
``regiontag.atlas.cord.cord_region_paths``); while those do not exist it reads
``region:`` / ``path:`` entries from ``atlases/brain.yaml`` and ``atlases/cord.yaml``;
failing both it uses the built-in list below (the region names of the brain and cord
atlas specifications).
"""

from __future__ import annotations

import difflib
import importlib
import logging
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable

import yaml

from regiontag.atlas.tree import PATH_SEPARATOR
from regiontag.config_checks import SAFE_LOADER
from regiontag.resources import atlases_dir

logger = logging.getLogger(__name__)

_BRAIN_WM = "Cerebrum > Cerebral white matter"
_FALLBACK_BRAIN = (
    "Cerebrum",
    _BRAIN_WM,
    *(
        f"{_BRAIN_WM} > {part} white matter"
        for part in (
            "Periventricular",
            "Deep",
            "Juxtacortical",
            "Frontal",
            "Parietal",
            "Occipital",
            "Temporal",
        )
    ),
    "Cerebrum > Cerebral cortex",
    "Corpus callosum",
    "Corpus callosum > Genu",
    "Corpus callosum > Body",
    "Corpus callosum > Splenium",
    "Internal capsule",
    "Internal capsule > Anterior limb",
    "Internal capsule > Genu",
    "Internal capsule > Posterior limb",
    "Caudate nucleus",
    "Putamen",
    "Globus pallidus",
    "Thalamus",
    "Thalamus > Medial thalamus",
    "Brainstem",
    "Brainstem > Midbrain",
    "Brainstem > Midbrain > Periaqueductal region",
    "Brainstem > Pons",
    "Brainstem > Pons > Central pons",
    "Brainstem > Medulla",
    "Cerebellum",
    "Cerebellum > Cerebellar white matter",
    "Cerebellum > Cerebellar cortex",
    "Cerebellum > Dentate region",
    "Middle cerebellar peduncle",
    "Ventricles",
    "Ventricles > Lateral ventricle",
    "Ventricles > Third ventricle",
    "Ventricles > Fourth ventricle",
)
_CORD_WM = "Spinal cord > Spinal white matter"
_CORD_GM = "Spinal cord > Spinal grey matter"
_FALLBACK_CORD = (
    "Spinal cord",
    _CORD_WM,
    f"{_CORD_WM} > Posterior column",
    f"{_CORD_WM} > Posterior column > Fasciculus gracilis",
    f"{_CORD_WM} > Posterior column > Fasciculus cuneatus",
    f"{_CORD_WM} > Lateral column",
    f"{_CORD_WM} > Anterior column",
    _CORD_GM,
    f"{_CORD_GM} > Dorsal horn",
    f"{_CORD_GM} > Ventral horn",
    f"{_CORD_GM} > Central canal region",
)

_SOURCES = {
    "brain": ("regiontag.atlas.brain", "brain_region_paths", "brain.yaml", _FALLBACK_BRAIN),
    "cord": ("regiontag.atlas.cord", "cord_region_paths", "cord.yaml", _FALLBACK_CORD),
}


def _paths_in_yaml(content: Any) -> list[str]:
    """Every string under a ``region:`` or ``path:`` key, depth first, in file order."""
    found: list[str] = []
    if isinstance(content, dict):
        for key, value in content.items():
            if key in ("region", "path") and isinstance(value, str):
                found.append(value)
            else:
                found.extend(_paths_in_yaml(value))
    elif isinstance(content, list):
        for item in content:
            found.extend(_paths_in_yaml(item))
    return found


def _paths_from_atlas_yaml(file_name: str) -> list[str]:
    try:
        path = Path(atlases_dir()) / file_name
        content = yaml.load(path.read_text(encoding="utf-8"), Loader=SAFE_LOADER)
    except (OSError, yaml.YAMLError):
        return []
    return [p for p in _paths_in_yaml(content) if p.strip()]


def _paths_for(body_part: str) -> tuple[str, ...]:
    module_name, function_name, yaml_name, fallback = _SOURCES[body_part]
    try:
        module = importlib.import_module(module_name)
        function = getattr(module, function_name)
    except (ImportError, AttributeError):
        function = None
    if function is not None:
        try:
            return tuple(str(path) for path in function())
        except (OSError, ValueError) as error:  # atlas YAML missing or invalid: say so, fall back
            logger.warning("%s.%s failed (%s); using the built-in region list", module_name,
                           function_name, error)
    from_yaml = _paths_from_atlas_yaml(yaml_name)
    return tuple(dict.fromkeys(from_yaml)) if from_yaml else fallback


@lru_cache(maxsize=1)
def known_region_paths() -> dict[str, str]:
    """All region paths of the brain and cord atlases, mapped to their body part.

    Returns
    -------
    dict of str to str
        Region path (e.g. ``"Spinal cord > Spinal white matter > Posterior column"``)
        -> ``"brain"`` or ``"cord"``, in atlas order (brain first).
    """
    paths: dict[str, str] = {}
    for body_part in ("brain", "cord"):
        for path in _paths_for(body_part):
            paths.setdefault(path, body_part)
    return paths


def closest_region(name: str, candidates: Iterable[str]) -> str | None:
    """The candidate path most similar to ``name`` (full path or its last components).

    A user who writes ``"Posterior colum"`` or ``"Spinal cord > Posterior column"`` gets
    ``"Spinal cord > Spinal white matter > Posterior column"``.
    """
    wanted = name.strip().lower()
    best, best_ratio = None, -1.0
    for path in candidates:
        parts = path.lower().split(PATH_SEPARATOR)
        forms = [path.lower(), parts[-1]] + [
            PATH_SEPARATOR.join(parts[i:]) for i in range(1, len(parts) - 1)
        ]
        forms.append(f"{parts[0]}{PATH_SEPARATOR}{parts[-1]}")
        ratio = max(difflib.SequenceMatcher(None, wanted, form).ratio() for form in forms)
        # prefer the shallower path on equal similarity (the leaf named by the user)
        if ratio > best_ratio + 1e-12:
            best, best_ratio = path, ratio
    return best


def short_region_names(paths: Iterable[str], universe: Iterable[str] | None = None) -> dict[str, str]:
    """Shortest unambiguous trailing part of each path (``"Genu"`` becomes ``"Corpus callosum > Genu"``).

    Parameters
    ----------
    paths : iterable of str
        Paths to name.
    universe : iterable of str, optional
        All paths that could be confused with them (default: :func:`known_region_paths` plus ``paths``).
    """
    paths = list(paths)
    all_paths = set(universe if universe is not None else known_region_paths()) | set(paths)
    split = {path: path.split(PATH_SEPARATOR) for path in all_paths}
    names: dict[str, str] = {}
    for path in paths:
        parts = split[path]
        for length in range(1, len(parts) + 1):
            suffix = parts[-length:]
            clashes = [
                other for other, other_parts in split.items()
                if other != path and other_parts[-length:] == suffix
            ]
            if not clashes:
                names[path] = PATH_SEPARATOR.join(suffix)
                break
        else:
            names[path] = path
    return names
