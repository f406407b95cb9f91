"""Find sessions and their sequences in an input folder.

A session is one NIfTI file directly in INPUT_DIR, or a sub-folder holding
the sequences of one subject. A BIDS dataset (``dataset_description.json``)
is read with pybids instead (``regiontag.inputs.bids``); a BIDS subject folder
(``sub-01/`` holding ``anat/`` or ``ses-*/``) gives that subject's sessions.
A session folder of DICOM files (``.dcm``, ``.ima``) is converted with
dcm2niix (``regiontag.inputs.dicom``). The sequence comes from the file name
(BIDS suffixes and common clinical names) or the DICOM series description,
overridable in the config; the body part from the name too, else later from
the image.
"""

from __future__ import annotations

import fnmatch
import re
import unicodedata
from pathlib import Path

from regiontag.config import Config, DiscoveryConfig
from regiontag.inputs.bids import BIDSError, discover_bids_sessions, is_bids_dataset
from regiontag.inputs.dicom import MISSING_DCM2NIIX, ConvertedSeries, convert_dicom_folder, dicom_files
from regiontag.inputs.scan import InputError, safe_input_files
from regiontag.types import ScanInput, Session

#: Rules of ``T2w`` that name T2*-weighted gradient echo or STIR scans: read as T2-weighted (CSF and lesions bright,
#: the cord dark in bright CSF), which the source string says.
T2_LIKE_PATTERNS = (r"t2[-_]?star", r"t2[*]", r"(^|[^a-z0-9])t2s($|[^a-z0-9])", r"(^|[^a-z0-9])me[-_]?gre",
                    r"(^|[^a-z0-9])medic($|[^a-z0-9])", r"stir")
T2_LIKE_NOTE = "T2*w / STIR, read as T2-weighted: CSF and lesions bright"

#: Built-in sequence rules, tried in order (first match wins). Case-insensitive, searched in the name.
DEFAULT_SEQUENCE_PATTERNS: dict[str, list[str]] = {
    "FLAIR": [r"flair", r"tirm", r"dark[-_ ]?fluid", r"dir[-_]?flair"],
    "T1w_ce": [r"(^|[_-])ce-", r"t1w?.*(gd|gad|post|contrast|ce\b|[+]c)", r"(gd|gad|post)[-_]?t1", r"mprage.*post"],
    "DWI": [r"_dwi\b", r"(^|[_-])dwi", r"_trace", r"trace[-_]?w", r"diffusion", r"b[-_]?1000", r"isotropic"],
    "T2w": [r"_t2w", r"(^|[^a-z0-9])t2($|[^a-z0-9*])", r"t2[-_]?(tse|fse|space|ax|sag|cor|w)", r"(^|[_-])tse", r"t2$",
            *T2_LIKE_PATTERNS],
    "T1w": [r"_t1w", r"(^|[^a-z0-9])t1($|[^a-z0-9])", r"mprage", r"spgr", r"bravo", r"t1[-_]?(se|ax|sag|cor|w)"],
}

_NIFTI_SUFFIXES = (".nii.gz", ".nii")


def is_nifti_name(path: Path, extensions: tuple[str, ...] = _NIFTI_SUFFIXES) -> bool:
    """True for ``.nii`` / ``.nii.gz`` file names (case-insensitive)."""
    return path.name.lower().endswith(tuple(ext.lower() for ext in extensions))


def strip_nifti_suffix(name: str) -> str:
    """File name without ``.nii`` / ``.nii.gz``."""
    lowered = name.lower()
    for suffix in _NIFTI_SUFFIXES:
        if lowered.endswith(suffix):
            return name[: -len(suffix)]
    return name


def classify_sequence(file_name: str, config: DiscoveryConfig | None = None) -> tuple[str, str]:
    """Sequence of a scan from its file name.

    Parameters
    ----------
    file_name : str
        Base name of the file, e.g. ``"sub-01_FLAIR.nii.gz"`` or ``"T2_TSE_ax.nii"``.
    config : DiscoveryConfig, optional
        ``sequence_overrides`` (glob -> sequence) win, then ``sequence_patterns``
        (user regexes, tried before the built-in ones).

    Returns
    -------
    (sequence, source)
        ``sequence`` is ``"unknown"`` when no rule matches.
    """
    config = config or DiscoveryConfig()
    for glob, sequence in config.sequence_overrides.items():
        if fnmatch.fnmatch(file_name, glob) or fnmatch.fnmatch(file_name.lower(), glob.lower()):
            return sequence, f"config override {glob!r}"
    stem = strip_nifti_suffix(file_name).lower()
    for rules in (config.sequence_patterns, DEFAULT_SEQUENCE_PATTERNS):
        for sequence, patterns in rules.items():
            for pattern in patterns:
                if re.search(pattern, stem, flags=re.IGNORECASE):
                    note = f" ({T2_LIKE_NOTE})" if rules is DEFAULT_SEQUENCE_PATTERNS and pattern in T2_LIKE_PATTERNS else ""
                    return sequence, f"file name matches {pattern!r}{note}"
    return "unknown", "no sequence rule matched the file name"


_CORD_WORDS = re.compile(r"(?:^|[^a-z])(c|t|l|ct|cervical|thoracic|lumbar|whole)?[-_ ]?(spine|cord|spinal)(?:[^a-z]|$)|"
                         r"(?:^|[^a-z])(cspine|tspine|lspine|ctspine|cervical|thoracic|lumbar|conus|myelon)(?:[^a-z]|$)")
_BRAIN_WORDS = re.compile(r"(?:^|[^a-z])(brain|head|cerebr\w*|neuro|cranial|intracranial)(?:[^a-z]|$)")
_BIDS_LABEL = re.compile(r"(?:^|_)(bp|acq)-([a-zA-Z0-9]+)")
#: BIDS ``space-<label>`` of a template: brain templates (MNI152 variants, ICBM, Colin27) and PAM50 (cord).
_BIDS_SPACE = re.compile(r"(?:^|_)space-(mni|icbm|colin|pam50)[a-z0-9]*", flags=re.IGNORECASE)


def body_part_from_name(name: str) -> str | None:
    """Body part from a file name, or None when the name does not say.

    BIDS ``bp-<label>`` is decisive; then ``acq-<label>``; then a template ``space-<label>``
    (``MNI152*``, ``ICBM*``, ``Colin27``: brain; ``PAM50``: cord); then words such as
    ``spine``, ``cord``, ``cspine``, ``tspine``, ``cervical``, ``lumbar`` (cord) or ``brain``,
    ``head`` (brain).

    Examples
    --------
    >>> body_part_from_name("sub-01_acq-cspine_T2w.nii.gz")
    'cord'
    >>> body_part_from_name("sub-01_bp-brain_FLAIR.nii.gz")
    'brain'
    >>> body_part_from_name("patient16_lesions_space-MNI152.nii.gz")
    'brain'
    >>> body_part_from_name("patient12_T2W.nii.gz") is None
    True
    """
    stem = Path(name).name.lower()
    for key in ("bp", "acq"):
        for found_key, label in _BIDS_LABEL.findall(stem):
            if found_key != key:
                continue
            decided = _classify_words(label)
            if decided is not None:
                return decided
    space = _BIDS_SPACE.search(stem)
    if space is not None:
        return "cord" if space.group(1).lower() == "pam50" else "brain"
    return _classify_words(stem)


def _classify_words(text: str) -> str | None:
    text = text.lower()
    if _CORD_WORDS.search(text):
        return "cord"
    if _BRAIN_WORDS.search(text):
        return "brain"
    return None


def body_part_of(file_name: str, config: DiscoveryConfig) -> tuple[str | None, str]:
    """Body part from config overrides or the file name; ``(None, "")`` when undecided."""
    for glob, body_part in config.body_part_overrides.items():
        if fnmatch.fnmatch(file_name, glob):
            return body_part, f"config override {glob!r}"
    body_part = body_part_from_name(file_name)
    return (body_part, "file name") if body_part else (None, "")


def safe_session_id(name: str) -> str:
    """A filesystem-safe, ASCII output folder name (no separators, no leading dots)."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", ascii_name).strip("._-")
    return cleaned or "session"


def _scan(path: Path, config: DiscoveryConfig) -> ScanInput:
    sequence, sequence_source = classify_sequence(path.name, config)
    body_part, body_part_source = body_part_of(path.name, config)
    return ScanInput(path, sequence, sequence_source, body_part, body_part_source)


_BIDS_SUBJECT = re.compile(r"^sub-([a-zA-Z0-9]+)$")
_BIDS_DATATYPES = ("anat", "dwi", "func", "fmap", "perf")


def bids_subject_label(folder: Path) -> str | None:
    """The label of a BIDS subject folder (``sub-01`` holding ``anat/``, ``dwi/`` or ``ses-*/``), else None.

    Examples
    --------
    >>> bids_subject_label(Path("/data/plain")) is None
    True
    """
    match = _BIDS_SUBJECT.match(folder.name)
    if not match or not folder.is_dir():
        return None
    children = [child for child in folder.iterdir() if child.is_dir()]
    if any(child.name in _BIDS_DATATYPES or child.name.startswith("ses-") for child in children):
        return match.group(1)
    return None


def _subject_sessions(folder: Path, label: str, config: Config, session_labels) -> list[Session]:
    """Sessions of a BIDS subject folder given as INPUT_DIR (its dataset root when there is one)."""
    if is_bids_dataset(folder.parent):
        return discover_bids_sessions(folder.parent, config, [label], session_labels)
    wanted = {name[4:] if name.startswith("ses-") else name for name in session_labels or ()}
    by_session: dict[str | None, list[Path]] = {}
    candidates, _ = safe_input_files(folder, tuple(config.discovery.extensions))
    for path in candidates:
        first = path.relative_to(folder).parts[0]
        session = first[4:] if first.startswith("ses-") else None
        if not wanted or session in wanted:
            by_session.setdefault(session, []).append(path)
    return [
        Session(f"sub-{label}" + (f"_ses-{session}" if session else ""),
                tuple(_scan(path, config.discovery) for path in files),
                {"subject": label, **({"session": session} if session else {})})
        for session, files in sorted(by_session.items(), key=lambda item: item[0] or "")
    ]


def _dicom_scan(series: ConvertedSeries, config: DiscoveryConfig) -> ScanInput:
    """A converted series: sequence from its SeriesDescription, body part from BodyPartExamined or the name."""
    name = series.nifti.name
    for glob, forced in config.sequence_overrides.items():  # overrides see the series description too
        if fnmatch.fnmatch(series.series_description, glob):
            sequence, sequence_source = forced, f"config override {glob!r}"
            break
    else:
        sequence, rule = classify_sequence(series.series_description + ".nii.gz", config)
        if sequence == "unknown":
            sequence, rule = classify_sequence(name, config)
        sequence_source = f"DICOM SeriesDescription {series.series_description!r}: {rule}"
    body_part, body_part_source = body_part_of(name, config)
    if body_part is None:
        body_part = _classify_words(series.body_part_examined) if series.body_part_examined else None
        body_part_source = f"DICOM BodyPartExamined {series.body_part_examined!r}" if body_part else ""
    return ScanInput(series.nifti, sequence, sequence_source, body_part, body_part_source)


def _dicom_session(session_id: str, folder: Path, config: Config) -> Session:
    """A session converted from DICOM; a conversion failure keeps the session (it fails with the reason).

    A missing dcm2niix is not the session's fault: that InputError propagates (the run stops with it).
    """
    try:
        series = convert_dicom_folder(folder)
    except InputError as error:
        if str(error) == MISSING_DCM2NIIX:
            raise
        return Session(session_id, (ScanInput(folder, "unknown", str(error)),))
    return Session(session_id, tuple(_dicom_scan(item, config.discovery) for item in series))


def discover_sessions(
    input_dir: str | Path,
    config: Config | None = None,
    participant_labels: list[str] | None = None,
    session_labels: list[str] | None = None,
) -> list[Session]:
    """All sessions in ``input_dir``, sorted by session id.

    Parameters
    ----------
    input_dir : str or Path
        A folder of NIfTI files and/or per-session sub-folders (NIfTI or DICOM), a BIDS
        dataset, or one BIDS subject folder.
    config : Config, optional
    participant_labels, session_labels : list of str, optional
        BIDS only: keep these subjects / sessions.

    Returns
    -------
    list of Session
        Scans with an unknown sequence are kept (``sequence="unknown"``) so the
        session fails later with a clear reason instead of vanishing.

    Raises
    ------
    FileNotFoundError, NotADirectoryError
        ``input_dir`` does not exist, or is a file (the message says what to give instead).
    """
    config = config or Config()
    input_dir = Path(input_dir)
    if input_dir.is_file():
        raise NotADirectoryError(
            f"INPUT_DIR must be a folder, not a file: {input_dir} (give the folder that holds it; "
            "`regiontag tag MASK --image IMAGE` tags a single mask)")
    if not input_dir.is_dir():
        raise FileNotFoundError(f"input folder not found: {input_dir}")
    if (input_dir / "dataset_description.json").is_file():
        return discover_bids_sessions(input_dir, config, participant_labels, session_labels)
    subject = bids_subject_label(input_dir)
    if subject is not None:
        if participant_labels and subject not in {label.removeprefix("sub-") for label in participant_labels}:
            raise BIDSError(f"{input_dir}: is the folder of subject {subject}, not of {', '.join(participant_labels)}")
        return _subject_sessions(input_dir, subject, config, session_labels)
    candidates, skipped = safe_input_files(input_dir, tuple(config.discovery.extensions))
    # Unreadable NIfTI-named entries stay in their session, which then fails with the reason;
    # resource-fork files and looping folders are not scans at all.
    unreadable = [path for path, reason in skipped if is_nifti_name(path) and "resource-fork" not in reason]
    by_entry: dict[str, list[Path]] = {}
    for path in sorted(candidates + unreadable):
        top = path.relative_to(input_dir).parts[0]
        by_entry.setdefault(top, []).append(path)
    dicoms = dicom_files(input_dir)  # session folders of DICOM files (those without NIfTI files)
    dicom_tops = {path.relative_to(input_dir).parts[0] for path in dicoms} - set(by_entry)
    if dicom_tops and not by_entry and any(path.parent == input_dir for path in dicoms):
        return [_dicom_session(safe_session_id(input_dir.resolve().name), input_dir, config)]
    sessions: list[Session] = []
    used: set[str] = set()
    for top in sorted(set(by_entry) | {top for top in dicom_tops if (input_dir / top).is_dir()}):
        files = by_entry.get(top, [])
        single_file = len(files) == 1 and files[0].parent == input_dir
        session_id = safe_session_id(strip_nifti_suffix(top) if single_file else top)
        while session_id in used:
            session_id += "_"
        used.add(session_id)
        if not files:
            sessions.append(_dicom_session(session_id, input_dir / top, config))
            continue
        sessions.append(Session(session_id, tuple(_scan(path, config.discovery) for path in files)))
    return sessions
