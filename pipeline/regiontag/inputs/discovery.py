"""Find sessions and their sequences in an input folder.

A session is one NIfTI file directly in INPUT_DIR, or a sub-folder holding
the sequences of one subject. A BIDS dataset (``dataset_description.json``)
is read with pybids instead (``regiontag.inputs.bids``). The sequence comes from the
file name (BIDS suffixes and common clinical names), overridable in the
config; the body part from the name too, else later from the image.
"""

from __future__ import annotations

import fnmatch
import re
import unicodedata
from pathlib import Path

from regiontag.config import Config, DiscoveryConfig
from regiontag.inputs.bids import discover_bids_sessions
from regiontag.inputs.scan import safe_input_files
from regiontag.types import ScanInput, Session

#: Built-in sequence rules, tried in order (first match wins). Case-insensitive, searched in the name.
DEFAULT_SEQUENCE_PATTERNS: dict[str, list[str]] = {
    "FLAIR": [r"flair", r"tirm", r"dark[-_ ]?fluid", r"dir[-_]?flair"],
    "T1w_ce": [r"(^|[_-])ce-", r"t1w?.*(gd|gad|post|contrast|ce\b|[+]c)", r"(gd|gad|post)[-_]?t1", r"mprage.*post"],
    "DWI": [r"_dwi\b", r"(^|[_-])dwi", r"_trace", r"trace[-_]?w", r"diffusion", r"b[-_]?1000", r"isotropic"],
    "T2w": [r"_t2w", r"(^|[^a-z0-9])t2($|[^a-z0-9*])", r"t2[-_]?(tse|fse|space|ax|sag|cor|w)", r"(^|[_-])tse", r"t2$"],
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
                    return sequence, f"file name matches {pattern!r}"
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


def discover_sessions(
    input_dir: str | Path, config: Config | None = None, participant_labels: list[str] | None = None
) -> list[Session]:
    """All sessions in ``input_dir``, sorted by session id.

    Parameters
    ----------
    input_dir : str or Path
        A folder of NIfTI files and/or per-session sub-folders, or a BIDS dataset.
    config : Config, optional
    participant_labels : list of str, optional
        BIDS only: keep these subjects.

    Returns
    -------
    list of Session
        Scans with an unknown sequence are kept (``sequence="unknown"``) so the
        session fails later with a clear reason instead of vanishing.
    """
    config = config or Config()
    input_dir = Path(input_dir)
    if not input_dir.is_dir():
        raise FileNotFoundError(f"input folder not found: {input_dir}")
    if (input_dir / "dataset_description.json").is_file():
        return discover_bids_sessions(input_dir, config, participant_labels)
    candidates, skipped = safe_input_files(input_dir, tuple(config.discovery.extensions))
    # Unreadable NIfTI-named entries stay in their session, which then fails with the reason;
    # resource-fork files and looping folders are not scans at all.
    unreadable = [path for path, reason in skipped if is_nifti_name(path) and "resource-fork" not in reason]
    by_entry: dict[str, list[Path]] = {}
    for path in sorted(candidates + unreadable):
        top = path.relative_to(input_dir).parts[0]
        by_entry.setdefault(top, []).append(path)
    sessions: list[Session] = []
    used: set[str] = set()
    for top, files in sorted(by_entry.items()):
        single_file = len(files) == 1 and files[0].parent == input_dir
        session_id = safe_session_id(strip_nifti_suffix(top) if single_file else top)
        while session_id in used:
            session_id += "_"
        used.add(session_id)
        sessions.append(Session(session_id, tuple(_scan(path, config.discovery) for path in files)))
    return sessions
