"""Batch tables rebuilt from the session folders' status records (no Dask needed)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from regiontag import outputs
from regiontag.outputs.batch_tables import BatchTables, session_row
from regiontag.outputs.session_folder import SessionFolder
from regiontag.types import SessionResult


def _csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, keep_default_na=False)


def test_tables_rebuild_lists_each_session_once_from_status_files(tmp_path):
    for session_id, status in (("b", "ok"), ("a", "failed"), ("c", "warning")):
        (tmp_path / session_id).mkdir()
        outputs.write_json({"status": status, "error": f"why {session_id}\nmore", "seconds": 2.5,
                            "body_parts": ["brain", "cord"]}, tmp_path / session_id / outputs.STATUS_JSON)
    (tmp_path / "d").mkdir()  # started, never finished: not listed
    (tmp_path / "e").mkdir()  # complete outputs but killed before status.json
    outputs.write_json({"status": "ok", "timings": {"load": 1.0, "brain": 2.0}, "reference": {"brain": "x"}},
                       tmp_path / "e" / outputs.PROVENANCE_JSON)
    tables = BatchTables(tmp_path)
    tables.load()
    assert sorted(tables.records) == ["a", "b", "c"]  # load reads status.json only
    tables.record(SessionResult("e", "skipped"))
    tables.write_all()
    sessions = _csv(tmp_path / outputs.SESSIONS_CSV)
    assert list(sessions["session"]) == ["a", "b", "c", "e"]
    assert list(sessions["status"]) == ["failed", "ok", "warning", "ok"]
    assert sessions.loc[0, "error"] == "why a more"
    assert sessions.loc[3, "seconds"] == 3.0 and sessions.loc[3, "body_parts"] == "brain"
    assert sessions.loc[1, "body_parts"] == "brain;cord"
    assert (tmp_path / "e" / outputs.STATUS_JSON).is_file()


def test_record_writes_status_unless_run_session_already_did(tmp_path):
    tables = BatchTables(tmp_path)
    refused = SessionResult("big", "failed", "needs about 9 GiB of memory", 0.01)
    record = tables.record(refused)  # never reached run_session: the batch writes status.json
    assert json.loads((tmp_path / "big" / outputs.STATUS_JSON).read_text())["error"] == refused.error
    assert record["status"] == "failed"
    done = SessionResult("s1", "ok", "", 12.0, ("brain",), 1.5, "ms-brain")
    first = SessionFolder(tmp_path / "s1").write_status(done)  # as run_session writes it
    assert tables.record(SessionResult("s1", "ok", "", 12.4, ("brain",), 1.5, "ms-brain")) == first
    skipped = tables.record(SessionResult("s1", "skipped"))  # resumed: keeps the producing run's record
    assert skipped == first
    assert session_row("s1", skipped)["top_pattern"] == "ms-brain"
    assert tables.record(SessionResult("none", "skipped", seconds=0.5))["status"] == "ok"


def test_lesions_csv_is_rebuilt_long_format_from_the_finished_sessions(tmp_path):
    for session_id, status, n_lesions in (("a", "ok", 2), ("b", "failed", 1), ("c", "warning", 1)):
        (tmp_path / session_id).mkdir()
        outputs.write_json({"status": status, "seconds": 1.0}, tmp_path / session_id / outputs.STATUS_JSON)
        rows = pd.DataFrame({"session": session_id, "body_part": "brain", "lesion_id": range(1, n_lesions + 1),
                             "volume_ml": 0.1, "location": "periventricular"})
        outputs.write_csv(rows, tmp_path / session_id / outputs.LESIONS_CSV, outputs.LESION_COLUMNS)
    tables = BatchTables(tmp_path)
    tables.load()
    tables.write_all()
    lesions = pd.read_csv(tmp_path / outputs.LESIONS_CSV)
    assert list(lesions.columns) == outputs.LESION_COLUMNS
    assert lesions["session"].tolist() == ["a", "a", "c"]  # failed sessions are left out
    assert lesions["lesion_id"].tolist() == [1, 2, 1]
