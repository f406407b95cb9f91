"""Locate the project's data folders (atlases/, configs/) and the build cache.

In a source checkout or an editable install the folders sit at the top of the
checkout (``pipeline/regiontag`` is the package, so two levels up); a wheel
carries them inside the package as ``regiontag/data/atlases`` and
``regiontag/data/configs``.  ``REGIONTAG_HOME`` overrides both,
``REGIONTAG_CACHE`` moves the cache.
"""

from __future__ import annotations

import os
from pathlib import Path

#: File endings of the disease files of a pattern library.
PATTERN_SUFFIXES = (".yaml", ".yml")

_PACKAGE_DIR = Path(__file__).resolve().parent


def data_root() -> Path:
    """Return the folder that holds ``atlases/`` and ``configs/``."""
    override = os.environ.get("REGIONTAG_HOME")
    candidates = [Path(override)] if override else []
    candidates += [_PACKAGE_DIR.parents[1], _PACKAGE_DIR / "data"]
    for candidate in candidates:
        if (candidate / "atlases").is_dir() and (candidate / "configs").is_dir():
            return candidate
    raise FileNotFoundError(
        "regiontag data folders (atlases/, configs/) not found; looked in "
        + ", ".join(str(c) for c in candidates)
        + ". Set REGIONTAG_HOME to the folder that holds them."
    )


def atlases_dir() -> Path:
    """Folder with the atlas definitions (``atlases/*.yaml``)."""
    return data_root() / "atlases"


def configs_dir() -> Path:
    """Folder with ``default.yaml`` and the pattern library."""
    return data_root() / "configs"


def patterns_dir() -> Path:
    """Default lesion-pattern library (``configs/patterns``); ``REGIONTAG_PATTERNS`` overrides."""
    override = os.environ.get("REGIONTAG_PATTERNS")
    return Path(override) if override else configs_dir() / "patterns"


def pattern_files(directory: str | Path) -> list[Path]:
    """The disease files of a library folder: ``*.yaml`` and ``*.yml``, sorted, hidden files skipped.

    Exactly the files :func:`regiontag.patterns.library.load_library` loads, and the files hashed into a
    session's resume fingerprint (:func:`regiontag.outputs.provenance.definitions_hash`).
    """
    directory = Path(directory)
    return sorted(
        path for path in directory.iterdir()
        if path.is_file() and path.suffix in PATTERN_SUFFIXES and not path.name.startswith(".")
    )


def cache_dir() -> Path:
    """Writable cache for built atlases and templates (created on demand)."""
    override = os.environ.get("REGIONTAG_CACHE")
    if override:
        root = Path(override)
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        root = (Path(xdg) if xdg else Path.home() / ".cache") / "regiontag"
    root.mkdir(parents=True, exist_ok=True)
    return root
