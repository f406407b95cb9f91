"""Batch tables rebuilt from the per-session folders.

Each finished attempt leaves ``<session>/status.json`` (written by
``run_session``, or by the batch when a session never got that far), read and
written through :class:`regiontag.outputs.session_folder.SessionFolder`.  The
batch CSVs are always *rebuilt* from these folders -- never appended to -- so
a run killed at any moment and restarted lists every session exactly once.
Rows are sorted by session id.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from regiontag import outputs
from regiontag.outputs.session_folder import SessionFolder, status_record
from regiontag.types import SessionResult

#: Statuses whose per-session regions.csv / scores.csv enter the batch tables.
FINISHED_STATUSES = ("ok", "warning")


def _float_or_nan(value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return math.nan
    return number


def session_row(session_id: str, record: dict[str, Any]) -> dict[str, Any]:
    """One ``sessions.csv`` row (``outputs.SESSION_COLUMNS``) from a status record."""
    error = " ".join(str(record.get("error") or "").split())
    body_parts = record.get("body_parts") or []
    return {
        "session": session_id,
        "status": record.get("status", ""),
        "error": error,
        "seconds": _float_or_nan(record.get("seconds")),
        "body_parts": ";".join(body_parts) if isinstance(body_parts, (list, tuple)) else str(body_parts),
        "lesion_volume_ml": _float_or_nan(record.get("lesion_volume_ml")),
        "top_pattern": record.get("top_pattern") or "",
        "attempts": int(record.get("attempts") or 1),
    }


@dataclass
class BatchTables:
    """The batch's view of OUTPUT_DIR: status of every session folder, and the CSV writers.

    Parameters
    ----------
    output_dir : Path
        The batch output folder.
    """

    output_dir: Path

    def __post_init__(self) -> None:
        self.output_dir = Path(self.output_dir)
        self.records: dict[str, dict[str, Any]] = {}
        self._last_rebuild = 0.0
        self._rebuild_seconds = 0.0

    def load(self) -> None:
        """Read ``status.json`` of every session folder already in OUTPUT_DIR."""
        self.records = {}
        if not self.output_dir.is_dir():
            return
        for session_dir in sorted(self.output_dir.iterdir()):
            if session_dir.is_dir() and not session_dir.name.startswith("."):
                record = SessionFolder(session_dir).read_status(from_provenance=False)
                if record is not None:
                    self.records[session_dir.name] = record

    def record(self, result: SessionResult) -> dict[str, Any]:
        """Take a finished session into the tables; returns the record now listed for it.

        A ``skipped`` (already complete) session keeps the record of the run
        that produced its outputs; other results are written to ``status.json``
        unless ``run_session`` already wrote the same status.
        """
        folder = SessionFolder(self.output_dir / result.session_id)
        on_disk = folder.read_status(from_provenance=False)
        if result.status == "skipped":
            record = on_disk or folder.read_status()
            if record is None:
                record = status_record(SessionResult(result.session_id, "ok", seconds=result.seconds))
            if on_disk is None:
                folder.write_status(record)
        elif on_disk is not None and on_disk.get("status") == result.status and (
            on_disk.get("error", "") == result.error
        ) and abs(float(on_disk.get("seconds") or 0) - result.seconds) < 1.0:
            record = on_disk
        else:
            record = folder.write_status(result)
        self.records[result.session_id] = record
        return record

    def sessions_table(self) -> pd.DataFrame:
        """``sessions.csv`` content: one row per session folder with a status, sorted."""
        rows = [session_row(session_id, self.records[session_id]) for session_id in sorted(self.records)]
        return pd.DataFrame(rows, columns=outputs.SESSION_COLUMNS)

    def write_sessions_csv(self) -> Path:
        """Write ``sessions.csv`` atomically."""
        return outputs.write_csv(
            self.sessions_table(), self.output_dir / outputs.SESSIONS_CSV, outputs.SESSION_COLUMNS
        )

    def _concatenate(self, file_name: str, columns: list[str]) -> pd.DataFrame:
        frames = []
        for session_id in sorted(self.records):
            if self.records[session_id].get("status") not in FINISHED_STATUSES:
                continue
            table = SessionFolder(self.output_dir / session_id).read_table(file_name)
            if table is None:  # missing or unreadable
                continue
            table["session"] = session_id
            frames.append(table.reindex(columns=columns))
        if not frames:
            return pd.DataFrame(columns=columns)
        return pd.concat(frames, ignore_index=True)

    def write_result_tables(self) -> None:
        """Rebuild ``regions.csv``, ``scores.csv`` and ``lesions.csv`` from the finished sessions (atomic)."""
        start = time.perf_counter()
        outputs.write_csv(
            self._concatenate(outputs.REGIONS_CSV, outputs.REGION_COLUMNS),
            self.output_dir / outputs.REGIONS_CSV,
            outputs.REGION_COLUMNS,
        )
        outputs.write_csv(
            self._concatenate(outputs.SCORES_CSV, outputs.SCORE_COLUMNS),
            self.output_dir / outputs.SCORES_CSV,
            outputs.SCORE_COLUMNS,
        )
        outputs.write_csv(  # long format: one row per lesion of every session
            self._concatenate(outputs.LESIONS_CSV, outputs.LESION_COLUMNS),
            self.output_dir / outputs.LESIONS_CSV,
            outputs.LESION_COLUMNS,
        )
        self._rebuild_seconds = time.perf_counter() - start
        self._last_rebuild = time.monotonic()

    def maybe_write_result_tables(self, overhead_fraction: float = 0.05) -> bool:
        """Rebuild the result tables unless that would cost over ``overhead_fraction`` of the run.

        Large batches make each rebuild slower; rebuilding at most every
        ``rebuild time / overhead_fraction`` seconds bounds the cost while a
        kill still loses nothing (the next run rebuilds from the folders).
        """
        waited = time.monotonic() - self._last_rebuild
        if self._last_rebuild and waited * overhead_fraction < self._rebuild_seconds:
            return False
        self.write_result_tables()
        return True

    def write_all(self) -> None:
        """Rebuild ``sessions.csv``, ``regions.csv``, ``scores.csv`` and ``lesions.csv``."""
        self.write_sessions_csv()
        self.write_result_tables()
