"""Batch tables rebuilt from session folders: ``workflows.group`` (BIDS-Apps group level, after ``score``)."""

from __future__ import annotations

import pytest

from regiontag.config import load_config
from regiontag.outputs.session_folder import SessionFolder
from regiontag.types import SessionResult
from regiontag.workflows.group import rebuild_group, refresh_batch_tables, write_batch_report_safely
from regiontag.workflows.output_guard import BatchError


def _finished_session(out, name, top_pattern=""):
    SessionFolder(out / name).write_status(SessionResult(name, "ok", "", 2.0, ("brain",), 0.5, top_pattern))


def test_rebuild_group_without_session_folders_says_run_the_participant_level_first(tmp_path):
    with pytest.raises(BatchError, match="not found"):
        rebuild_group(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BatchError, match="no session folders"):
        rebuild_group(tmp_path / "empty")


def test_rebuild_group_writes_sessions_csv_from_the_session_folders(tmp_path):
    _finished_session(tmp_path, "a", "ms-brain")
    _finished_session(tmp_path, "b")
    assert rebuild_group(tmp_path, report=False) == tmp_path
    rows = (tmp_path / "sessions.csv").read_text().splitlines()
    assert rows[0].startswith("session,status")
    assert [row.split(",")[0] for row in rows[1:]] == ["a", "b"]
    assert not (tmp_path / ".regiontag.lock").exists()


def test_refresh_batch_tables_skips_symlinked_session_folders(tmp_path):
    _finished_session(tmp_path / "elsewhere", "outside")
    _finished_session(tmp_path / "out", "inside")
    (tmp_path / "out" / "linked").symlink_to(tmp_path / "elsewhere" / "outside")
    assert refresh_batch_tables(tmp_path / "out", load_config(), report=False) == ""
    sessions = (tmp_path / "out" / "sessions.csv").read_text()
    assert "inside" in sessions and "linked" not in sessions


def test_batch_report_problem_is_returned_not_raised(tmp_path):
    (tmp_path / "index.html").mkdir()  # the report cannot be written over a folder
    _finished_session(tmp_path, "a")
    assert write_batch_report_safely(tmp_path) != ""
