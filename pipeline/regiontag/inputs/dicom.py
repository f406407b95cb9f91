"""DICOM input: a session folder of ``.dcm`` files converted to NIfTI with dcm2niix, cached.

The conversion runs once per set of files: its output goes to
``<cache>/dicom/<key>/`` where the key is the SHA-256 of the DICOM files'
names and contents, so an unchanged folder is never converted again and a
changed one never reuses a stale result.  dcm2niix writes one NIfTI and one
BIDS sidecar JSON per series; the sidecar is kept beside the NIfTI, its
``SeriesDescription`` decides the sequence and ``BodyPart`` (DICOM's
BodyPartExamined) the body part, and ``conversion.json`` in the same folder records what was converted
with which dcm2niix (``provenance.json`` copies it for every converted input).

dcm2niix comes from the PyPI package ``dcm2niix`` (``pip install
'regiontag[dicom]'``), or any ``dcm2niix`` on the PATH.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from regiontag.inputs.files import safe_input_files
from regiontag.inputs.scan import InputError
from regiontag.resources import cache_dir

DICOM_SUFFIXES = (".dcm", ".ima")
CONVERSION_JSON = "conversion.json"
MISSING_DCM2NIIX = "DICOM input needs dcm2niix: pip install 'regiontag[dicom]' (or put dcm2niix on the PATH)"


@dataclass(frozen=True)
class ConvertedSeries:
    """One series converted by dcm2niix: the NIfTI, its sidecar and the fields discovery uses."""

    nifti: Path
    sidecar: dict[str, Any]

    @property
    def series_description(self) -> str:
        """``SeriesDescription`` (else ``ProtocolName``, else the file name)."""
        return str(self.sidecar.get("SeriesDescription") or self.sidecar.get("ProtocolName") or self.nifti.name)

    @property
    def body_part_examined(self) -> str:
        """DICOM BodyPartExamined, which dcm2niix writes as the BIDS field ``BodyPart`` ('' when absent)."""
        return str(self.sidecar.get("BodyPart") or self.sidecar.get("BodyPartExamined") or "")


def dicom_files(folder: str | Path) -> list[Path]:
    """DICOM files (``.dcm``, ``.ima``) under ``folder``, sorted; hidden folders and loops are skipped."""
    found, _ = safe_input_files(folder, DICOM_SUFFIXES)
    return found


def dcm2niix_executable() -> str:
    """Path of dcm2niix: the one shipped by the ``dcm2niix`` package, else the PATH; InputError otherwise."""
    try:
        import dcm2niix  # the PyPI package ships the binary

        if Path(dcm2niix.bin).is_file():
            return str(dcm2niix.bin)
    except ImportError:
        pass
    found = shutil.which("dcm2niix")
    if found is None:
        raise InputError(MISSING_DCM2NIIX)
    return found


def conversion_key(files: list[Path], root: Path) -> str:
    """SHA-256 over the files' paths relative to ``root`` and their contents."""
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        digest.update(b"\0")
    return digest.hexdigest()


def _version(executable: str) -> str:
    completed = subprocess.run([executable, "--version"], capture_output=True, text=True, timeout=60)
    for line in (completed.stdout + completed.stderr).splitlines():
        if "version" in line.lower():
            return line.strip()
    return (completed.stdout or completed.stderr).strip().splitlines()[-1] if completed.stdout else "unknown"


def _load_series(folder: Path) -> list[ConvertedSeries]:
    series = []
    for nifti in sorted(folder.glob("*.nii.gz")):
        sidecar_path = folder / (nifti.name[: -len(".nii.gz")] + ".json")
        try:
            sidecar = json.loads(sidecar_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            sidecar = {}
        series.append(ConvertedSeries(nifti, sidecar if isinstance(sidecar, dict) else {}))
    return series


def convert_dicom_folder(folder: str | Path, *, cache: str | Path | None = None) -> list[ConvertedSeries]:
    """NIfTI series of a folder of DICOM files, converted with dcm2niix (cached by file hashes).

    Parameters
    ----------
    folder : str or Path
        A session folder holding ``.dcm`` / ``.ima`` files (any sub-folder depth).
    cache : str or Path, optional
        Cache root (default ``regiontag.resources.cache_dir()``).

    Returns
    -------
    list of ConvertedSeries
        One per series dcm2niix wrote, sorted by file name.

    Raises
    ------
    InputError
        No DICOM files, dcm2niix missing, or the conversion failed (one line, with dcm2niix's reason).

    Examples
    --------
    >>> series = convert_dicom_folder("scans/patient7")              # doctest: +SKIP
    >>> series[0].series_description, series[0].nifti.name            # doctest: +SKIP
    ('T2_TSE_SAG', 'T2_TSE_SAG_3.nii.gz')
    """
    folder = Path(folder)
    files = dicom_files(folder)
    if not files:
        raise InputError(f"{folder}: no DICOM files (.dcm, .ima)")
    executable = dcm2niix_executable()
    target = Path(cache or cache_dir()) / "dicom" / conversion_key(files, folder)
    if (target / CONVERSION_JSON).is_file():
        return _load_series(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".convert-", dir=target.parent))
    try:
        command = [executable, "-z", "y", "-b", "y", "-ba", "y", "-f", "%d_%s", "-o", str(work), str(folder)]
        completed = subprocess.run(command, capture_output=True, text=True, timeout=1800)
        if completed.returncode != 0 or not list(work.glob("*.nii.gz")):
            reason = " ".join((completed.stderr or completed.stdout).split())[-300:] or f"exit {completed.returncode}"
            raise InputError(f"{folder}: dcm2niix could not convert the DICOM files: {reason}")
        record = {"source": str(folder.resolve()), "n_files": len(files), "key": target.name,
                  "dcm2niix": _version(executable), "series": sorted(p.name for p in work.glob("*.nii.gz"))}
        (work / CONVERSION_JSON).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        try:
            os.replace(work, target)  # atomic: a folder with conversion.json is complete
        except OSError:  # another worker converted the same files first
            if not (target / CONVERSION_JSON).is_file():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return _load_series(target)


def conversion_record(nifti: str | Path) -> dict[str, Any] | None:
    """The ``conversion.json`` of a NIfTI converted from DICOM (None for any other file)."""
    path = Path(nifti).parent / CONVERSION_JSON
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None
