"""BIDS input (read with pybids) and BIDS-derivatives output metadata.

A folder holding ``dataset_description.json`` is a BIDS dataset.  Sessions are
the (subject, session) pairs; the file suffix decides the sequence
(``FLAIR``, ``T2w`` -- also ``T2starw``, read as T2-weighted --, ``T1w`` -- ``T1w_ce`` when a ``ce-`` entity is present --,
``dwi`` / ``trace`` -> ``DWI``).  The body part comes from BIDS metadata: the
sidecar's ``BodyPart`` field (dcm2niix copies DICOM's BodyPartExamined
there, e.g. ``CSPINE``, ``HEAD``; ``BodyPartExamined`` is read too), else words of the ``acq-``
label (``acq-cspine``); else it is undecided and detected from the image.
``bp-`` is not a BIDS entity (a file named with it does not validate): it is
still read, with a warning.  Output folders are named ``sub-<label>[_ses-<label>]``.
"""

from __future__ import annotations

import fnmatch
import logging
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import nibabel as nib

from regiontag.config import Config
from regiontag.types import ScanInput, Session

logger = logging.getLogger(__name__)

DATASET_DESCRIPTION = "dataset_description.json"
BIDS_VERSION = "1.9.0"

#: BIDS suffix -> regiontag sequence (``T1w`` becomes ``T1w_ce`` with a ``ce-`` entity).
SUFFIX_SEQUENCES = {"FLAIR": "FLAIR", "T2w": "T2w", "T1w": "T1w", "dwi": "DWI", "trace": "DWI",
                    "T2starw": "T2w", "T2star": "T2w"}
#: Suffixes read as another contrast (said in the source string).
SUFFIX_NOTES = {"T2starw": "T2*w, read as T2-weighted: CSF and lesions bright",
                "T2star": "T2*w (deprecated BIDS suffix), read as T2-weighted: CSF and lesions bright"}
#: Among several candidates for one (sequence, body part), a higher rank wins first.
_SUFFIX_RANK = {"trace": 1, "T2w": 1}  # a true T2w before a T2*w read as one
#: Words in ``acq-`` labels and ``BodyPart`` fields that mean a spinal-cord acquisition.
CORD_WORDS = ("spine", "cord", "cspine", "tspine", "lspine")
BRAIN_BODY_PART_LABELS = ("brain", "head")
#: Sidecar fields naming the body part (BIDS microscopy's ``BodyPart``; DICOM's, as dcm2niix writes it).
BODY_PART_FIELDS = ("BodyPart", "BodyPartExamined")

_ENTITY_PATTERN = re.compile(r"(?:^|_)(?P<key>bp|acq|ce)-(?P<value>[a-zA-Z0-9]+)")


class BIDSError(ValueError):
    """A BIDS dataset cannot be used as asked (e.g. an unknown participant label)."""


def is_bids_dataset(input_dir: str | Path) -> bool:
    """True when ``input_dir`` holds a ``dataset_description.json``."""
    return (Path(input_dir) / DATASET_DESCRIPTION).is_file()


def normalise_labels(labels: Iterable[str] | None, prefix: str) -> list[str] | None:
    """Labels without their prefix (``["ses-01", "02"]``, ``"ses-"`` -> ``["01", "02"]``)."""
    if labels is None:
        return None
    cleaned = [label[len(prefix):] if label.startswith(prefix) else label for label in labels]
    return sorted(set(label for label in cleaned if label))


def normalise_participant_labels(labels: Iterable[str] | None) -> list[str] | None:
    """Participant labels without a ``sub-`` prefix (``["sub-01", "02"]`` -> ``["01", "02"]``)."""
    return normalise_labels(labels, "sub-")


def filename_entities(filename: str) -> dict[str, str]:
    """``bp``, ``acq`` and ``ce`` entities parsed from a BIDS file name.

    pybids does not know the ``bp-`` entity, so these few are read from the
    name itself (consistently for all three).
    """
    stem = Path(filename).name.split(".")[0]
    return {match["key"]: match["value"] for match in _ENTITY_PATTERN.finditer(stem)}


def body_part_from_metadata(metadata: dict[str, Any]) -> tuple[str | None, str]:
    """Body part from a sidecar's ``BodyPart`` / ``BodyPartExamined`` field (``CSPINE`` -> cord, ``HEAD`` -> brain).

    Examples
    --------
    >>> body_part_from_metadata({"BodyPartExamined": "CSPINE"})
    ('cord', 'BIDS sidecar: BodyPartExamined=CSPINE')
    >>> body_part_from_metadata({"BodyPartExamined": "KNEE"})
    (None, '')
    """
    for key in BODY_PART_FIELDS:
        value = str(metadata.get(key) or "")
        lowered = value.lower()
        if any(word in lowered for word in CORD_WORDS):
            return "cord", f"BIDS sidecar: {key}={value}"
        if lowered in BRAIN_BODY_PART_LABELS:
            return "brain", f"BIDS sidecar: {key}={value}"
    return None, ""


def body_part_from_entities(entities: dict[str, str]) -> tuple[str | None, str]:
    """Body part (``cord``, ``brain`` or None) and how it was decided, from ``acq`` (and the non-BIDS ``bp``)."""
    for key in ("acq", "bp"):
        value = entities.get(key, "").lower()
        if not value:
            continue
        if any(word in value for word in CORD_WORDS):
            return "cord", f"BIDS entity: {key}-{entities[key]}"
        if key == "bp" and value in BRAIN_BODY_PART_LABELS:
            return "brain", f"BIDS entity: bp-{entities[key]}"
    return None, ""


def session_label(subject: str, session: str | None) -> str:
    """Output folder / file prefix of a BIDS session: ``sub-01`` or ``sub-01_ses-02``."""
    return f"sub-{subject}" + (f"_ses-{session}" if session else "")


@dataclass(frozen=True)
class _Candidate:
    scan: ScanInput
    rank: tuple[Any, ...]


def _apply_overrides(scan: ScanInput, config: Config) -> ScanInput:
    """Config ``sequence_overrides`` / ``body_part_overrides`` (file-name globs) win over BIDS."""
    name = scan.path.name
    sequence, sequence_source = scan.sequence, scan.sequence_source
    body_part, body_part_source = scan.body_part, scan.body_part_source
    for pattern, forced in config.discovery.sequence_overrides.items():
        if fnmatch.fnmatch(name, pattern):
            sequence, sequence_source = forced, f"config override: {pattern}"
            break
    for pattern, forced in config.discovery.body_part_overrides.items():
        if fnmatch.fnmatch(name, pattern):
            body_part, body_part_source = forced, f"config override: {pattern}"
            break
    return ScanInput(scan.path, sequence, sequence_source, body_part, body_part_source)


def _voxel_count(path: Path) -> int:
    """Number of voxels from the header only (0 when the header cannot be read)."""
    try:
        shape = nib.load(str(path)).shape
    except Exception:  # noqa: BLE001 - a bad file is reported later by validation
        return 0
    count = 1
    for size in shape[:3]:
        count *= int(size)
    return count


def _candidate(bids_file: Any, config: Config) -> _Candidate | None:
    entities = bids_file.get_entities()
    suffix = entities.get("suffix")
    if suffix not in SUFFIX_SEQUENCES:
        return None
    path = Path(bids_file.path)
    name_entities = filename_entities(path.name)
    sequence = SUFFIX_SEQUENCES[suffix]
    source = f"BIDS suffix: {suffix}" + (f" ({SUFFIX_NOTES[suffix]})" if suffix in SUFFIX_NOTES else "")
    if sequence == "T1w" and ("ce" in name_entities or entities.get("ceagent")):
        sequence, source = "T1w_ce", f"BIDS suffix: {suffix} with ce-{name_entities.get('ce', '')}"
    try:
        metadata = bids_file.get_metadata()
    except Exception:  # noqa: BLE001 - an unreadable sidecar only loses the hint
        metadata = {}
    body_part, body_part_source = body_part_from_metadata(metadata)
    if body_part is None:
        body_part, body_part_source = body_part_from_entities(name_entities)
    if "bp" in name_entities:
        logger.warning("%s: 'bp-' is not a BIDS entity (the dataset does not validate); put the body part in the "
                       "sidecar's BodyPart field or an acq- label", path.name)
    scan = _apply_overrides(ScanInput(path, sequence, source, body_part, body_part_source), config)
    run = int(entities.get("run", 0) or 0)
    rank = (_SUFFIX_RANK.get(suffix, 0), run, _voxel_count(path), path.name)
    return _Candidate(scan, rank)


def _choose_scans(candidates: list[_Candidate], session_id: str) -> tuple[ScanInput, ...]:
    """One scan per (sequence, body part): prefer trace over 4D dwi and T2w over T2starw, then the last run, then the largest."""
    groups: dict[tuple[str, str | None], list[_Candidate]] = defaultdict(list)
    for candidate in candidates:
        groups[(candidate.scan.sequence, candidate.scan.body_part)].append(candidate)
    chosen = []
    for key in sorted(groups, key=lambda item: (item[0], item[1] or "")):
        ordered = sorted(groups[key], key=lambda candidate: candidate.rank)
        best = ordered[-1]
        for dropped in ordered[:-1]:
            logger.warning(
                "%s: %s ignored, %s kept for %s/%s",
                session_id,
                dropped.scan.path.name,
                best.scan.path.name,
                key[0],
                key[1] or "undecided body part",
            )
        chosen.append(best.scan)
    return tuple(sorted(chosen, key=lambda scan: scan.path.name))


def discover_bids_sessions(
    input_dir: str | Path,
    config: Config,
    participant_labels: Iterable[str] | None = None,
    session_labels: Iterable[str] | None = None,
) -> list[Session]:
    """Sessions of a BIDS dataset, read with pybids.

    Parameters
    ----------
    input_dir : str or Path
        Root of the BIDS dataset (holds ``dataset_description.json``).
    config : Config
        ``discovery.extensions`` and the file-name overrides apply.
    participant_labels : iterable of str, optional
        Keep only these subjects (with or without the ``sub-`` prefix).
    session_labels : iterable of str, optional
        Keep only these sessions (with or without the ``ses-`` prefix).

    Returns
    -------
    list of Session
        Sorted by ``session_id`` (``sub-01``, ``sub-01_ses-02``...); sessions
        without a usable scan are left out (logged).

    Raises
    ------
    BIDSError
        When the folder is not a BIDS dataset or a participant or session label is unknown.
    """
    from bids import BIDSLayout  # slow import, only for BIDS inputs

    input_dir = Path(input_dir)
    if not is_bids_dataset(input_dir):
        raise BIDSError(f"{input_dir}: not a BIDS dataset (no {DATASET_DESCRIPTION})")
    layout = BIDSLayout(str(input_dir), validate=False, derivatives=False)
    subjects = sorted(layout.get_subjects())
    wanted = normalise_participant_labels(participant_labels)
    if wanted is not None:
        unknown = [label for label in wanted if label not in subjects]
        if unknown:
            raise BIDSError(
                f"{input_dir}: participant label(s) not found: {', '.join(unknown)} "
                f"(subjects present: {', '.join(subjects) or 'none'})"
            )
        subjects = wanted
    extensions = [ext if ext.startswith(".") else f".{ext}" for ext in config.discovery.extensions]
    files = layout.get(subject=subjects, extension=extensions) if subjects else []
    by_session: dict[tuple[str, str | None], list[_Candidate]] = defaultdict(list)
    for bids_file in files:
        candidate = _candidate(bids_file, config)
        if candidate is None:
            continue
        entities = bids_file.get_entities()
        by_session[(str(entities["subject"]), entities.get("session"))].append(candidate)
    wanted_sessions = normalise_labels(session_labels, "ses-")
    if wanted_sessions is not None:
        present = sorted({str(session) for _, session in by_session if session})
        unknown = [label for label in wanted_sessions if label not in present]
        if unknown:
            raise BIDSError(f"{input_dir}: session label(s) not found: {', '.join(unknown)} "
                            f"(sessions present: {', '.join(present) or 'none'})")
        by_session = {key: value for key, value in by_session.items() if key[1] in wanted_sessions}
    sessions = []
    for (subject, session), candidates in by_session.items():
        session_id = session_label(subject, session)
        bids_entities = {"subject": subject}
        if session:
            bids_entities["session"] = str(session)
        sessions.append(Session(session_id, _choose_scans(candidates, session_id), bids_entities))
    for subject in subjects:
        if not any(session.bids["subject"] == subject for session in sessions):
            logger.warning("sub-%s: no FLAIR/T2w/T1w/DWI image found, subject skipped", subject)
    return sorted(sessions, key=lambda session: session.session_id)


