"""Read one session folder of the output contract for the report, tolerating missing pieces.

The report reads only files of the output contract (``regiontag.outputs.contract``):
tables, ``findings.json``, ``provenance.json`` and the NIfTIs in the reference
scan's space.  Any file may be missing (a cord-only session has no brain
files, a failed session has only ``log.txt``); every loader returns ``None``
or an empty table then, and the report says what is missing.
"""

from __future__ import annotations

import csv
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd

from regiontag import outputs
from regiontag.outputs.session_folder import SessionFolder, retry_note

LOGGER = logging.getLogger(__name__)

#: Optional BIDS-style label lookup tables (``index``, ``name``) beside the label images.
LABEL_TABLES = {
    outputs.ATLAS_LABELS_NII: "atlas_labels.tsv",
    outputs.CORD_LABELS_NII: "cord_labels.tsv",
}


@dataclass
class SessionData:
    """Everything the session report shows, as read from disk.

    Attributes
    ----------
    session_dir : Path
        The session's output folder.
    session : str
        Session id (folder name, or ``provenance["session"]``).
    status : str
        ``ok``, ``warning``, ``failed`` or ``incomplete``, from
        :attr:`regiontag.outputs.session_folder.SessionFolder.status` (``sessions.csv``
        only for a folder with neither ``status.json`` nor ``provenance.json``).
    error : str
        One-line reason of a failed attempt.
    provenance : dict
        ``provenance.json`` content (empty when absent).
    findings : dict
        ``findings.json`` content (empty when absent).
    regions : pandas.DataFrame
        ``regions.csv`` (``outputs.REGION_COLUMNS``; empty when absent).
    scores : pandas.DataFrame
        ``scores.csv`` (``outputs.SCORE_COLUMNS``; empty when absent).
    centerline : pandas.DataFrame
        ``centerline.csv`` (empty when absent).
    log_tail : str
        Last lines of ``log.txt`` (empty when absent).
    problems : list of str
        Files that could not be read, with the reason.
    retry : str
        Why the session ran more than once (a lost worker), "" for a single attempt.
    """

    session_dir: Path
    session: str
    status: str = "incomplete"
    error: str = ""
    provenance: dict[str, Any] = field(default_factory=dict)
    findings: dict[str, Any] = field(default_factory=dict)
    regions: pd.DataFrame = field(default_factory=pd.DataFrame)
    scores: pd.DataFrame = field(default_factory=pd.DataFrame)
    centerline: pd.DataFrame = field(default_factory=pd.DataFrame)
    log_tail: str = ""
    problems: list[str] = field(default_factory=list)
    retry: str = ""

    def file(self, name: str) -> Path:
        """Path of an output file of this session (it may not exist)."""
        return self.session_dir / name

    def body_parts(self) -> list[str]:
        """Body parts processed in this session (provenance, else inferred from the files)."""
        parts: list[str] = []
        for scan in self.provenance.get("inputs") or []:
            part = scan.get("body_part") if isinstance(scan, dict) else None
            if part and part not in parts:
                parts.append(part)
        for part in self.provenance.get("reference") or {}:
            if part not in parts:
                parts.append(part)
        if not parts:
            if self.file(outputs.BRAIN_MASK_NII).exists() or self.file(outputs.ATLAS_LABELS_NII).exists():
                parts.append("brain")
            if self.file(outputs.CORD_MASK_NII).exists():
                parts.append("cord")
        order = {"brain": 0, "cord": 1}
        return sorted(parts, key=lambda part: order.get(part, 2))

    def involvement_thresholds(self) -> dict[str, Any]:
        """The ``involvement`` parameters the region flags were computed with (empty when unknown)."""
        parameters = self.provenance.get("parameters")
        section = parameters.get("involvement") if isinstance(parameters, dict) else None
        return section if isinstance(section, dict) else {}

    def match_threshold(self) -> float | None:
        """``scoring.match_threshold`` of the run (None when provenance does not say)."""
        parameters = self.provenance.get("parameters")
        scoring = parameters.get("scoring") if isinstance(parameters, dict) else None
        value = scoring.get("match_threshold") if isinstance(scoring, dict) else None
        return float(value) if isinstance(value, (int, float)) else None

    def inputs_of(self, body_part: str) -> list[dict[str, Any]]:
        """Provenance ``inputs`` entries of one body part."""
        return [
            scan
            for scan in self.provenance.get("inputs") or []
            if isinstance(scan, dict) and scan.get("body_part") == body_part
        ]

    def reference_path(self, body_part: str) -> Path | None:
        """The reference scan of a body part, resolved to an existing file, else None."""
        reference = (self.provenance.get("reference") or {}).get(body_part)
        return resolve_input_path(reference, self.session_dir) if reference else None


def resolve_input_path(path: str | Path | None, session_dir: Path) -> Path | None:
    """Find an input scan named in provenance: as written, else relative to the session folder.

    Returns None when the file cannot be found (moved data); the report then
    falls back to the hyperintensity map as background.
    """
    if not path:
        return None
    candidate = Path(path).expanduser()
    tried = (
        [candidate]
        if candidate.is_absolute()
        else [
            candidate,
            session_dir / candidate,
            session_dir.parent / candidate,
        ]
    )
    for option in tried:
        if option.is_file():
            return option
    return None


def _read_json(path: Path, problems: list[str]) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        problems.append(f"{path.name}: unreadable ({error})")
        return {}
    if not isinstance(content, dict):
        problems.append(f"{path.name}: top level is not an object")
        return {}
    return content


def read_table(path: Path, columns: list[str] | None = None, problems: list[str] | None = None) -> pd.DataFrame:
    """Read a CSV of the contract; missing file -> empty table with ``columns``.

    Parameters
    ----------
    path : Path
        CSV file.
    columns : list of str, optional
        Expected columns; missing ones are added empty.
    problems : list of str, optional
        Receives a one-line reason when the file exists but cannot be parsed.
    """
    if not path.exists():
        return pd.DataFrame(columns=columns or [])
    try:
        table = pd.read_csv(path, keep_default_na=True)
    except (OSError, ValueError, pd.errors.ParserError) as error:
        if problems is not None:
            problems.append(f"{path.name}: unreadable ({error})")
        return pd.DataFrame(columns=columns or [])
    if columns:
        for column in columns:
            if column not in table.columns:
                table[column] = np.nan
    return table


def _tail(path: Path, max_lines: int = 80) -> str:
    if not path.exists():
        return ""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(lines[-max_lines:])


def _batch_row(session_dir: Path, session: str) -> dict[str, Any]:
    table = read_table(session_dir.parent / outputs.SESSIONS_CSV)
    if table.empty or "session" not in table.columns:
        return {}
    rows = table[table["session"].astype(str) == session]
    return rows.iloc[-1].to_dict() if len(rows) else {}


def load_session(session_dir: str | Path) -> SessionData:
    """Read everything the report needs from one session folder (never raises on missing files).

    Parameters
    ----------
    session_dir : str or Path
        ``OUTPUT_DIR/<session>``.

    Returns
    -------
    SessionData
    """
    session_dir = Path(session_dir)
    problems: list[str] = []
    provenance = _read_json(session_dir / outputs.PROVENANCE_JSON, problems)
    session = str(provenance.get("session") or session_dir.name)
    data = SessionData(session_dir=session_dir, session=session, problems=problems)
    data.provenance = provenance
    data.findings = _read_json(session_dir / outputs.FINDINGS_JSON, problems)
    data.regions = read_table(session_dir / outputs.REGIONS_CSV, outputs.REGION_COLUMNS, problems)
    data.scores = read_table(session_dir / outputs.SCORES_CSV, outputs.SCORE_COLUMNS, problems)
    data.centerline = read_table(session_dir / outputs.CENTERLINE_CSV, None, problems)
    data.log_tail = _tail(session_dir / outputs.LOG_FILE)
    folder = SessionFolder(session_dir)
    data.status, data.error = folder.status, folder.error
    attempt = provenance.get("attempt")
    record = folder.read_status(from_provenance=False) or {}
    data.retry = str(record.get("retry") or (retry_note(attempt) if isinstance(attempt, dict) else ""))
    if data.status == "incomplete":  # no status.json nor provenance.json: folders of older versions
        batch_row = _batch_row(session_dir, session_dir.name)  # may still be listed in sessions.csv
        status, error = batch_row.get("status"), batch_row.get("error")
        data.status = status if isinstance(status, str) and status else "incomplete"
        data.error = error if isinstance(error, str) else ""
    return data


def load_image(path: Path) -> nib.Nifti1Image | None:
    """Load a NIfTI as a canonical (RAS+) image, None when absent or unreadable."""
    if path is None or not Path(path).exists():
        return None
    try:
        image = nib.load(str(path))
        return nib.as_closest_canonical(nib.Nifti1Image(np.asanyarray(image.dataobj), image.affine, image.header))
    except Exception as error:  # noqa: BLE001 - any unreadable file just drops its panel
        LOGGER.warning("report: cannot read %s: %s", path, error)
        return None


def same_grid(first: nib.Nifti1Image, second: nib.Nifti1Image, tolerance_mm: float = 1e-3) -> bool:
    """True when two images share shape and affine (within ``tolerance_mm``)."""
    return first.shape[:3] == second.shape[:3] and bool(np.allclose(first.affine, second.affine, atol=tolerance_mm))


def read_label_names(session_dir: Path, label_image_name: str) -> dict[int, str]:
    """Label value -> name from an optional BIDS-style ``*.tsv`` (``index``, ``name``) beside a label image."""
    table_name = LABEL_TABLES.get(label_image_name)
    if not table_name:
        return {}
    path = session_dir / table_name
    if not path.exists():
        return {}
    try:  # a small two-column file: the csv module reads it in a fraction of pandas' time
        with path.open(encoding="utf-8", newline="") as handle:
            rows = [row for row in csv.reader(handle, delimiter="\t") if row]
        header = rows[0]
        index_column = header.index("index") if "index" in header else 0
        name_column = header.index("name") if "name" in header else 1
        return {int(float(row[index_column])): str(row[name_column]) for row in rows[1:]}
    except (OSError, ValueError, IndexError, KeyError):
        return {}
