"""SessionFolder: the one owner of a session folder's status, log and completeness."""

from __future__ import annotations

import json
import logging
import math

import pandas as pd
from regiontag import outputs
from regiontag.outputs.session_folder import REQUIRED_FILES, SessionFolder

#: The keys of status.json (the format earlier versions wrote, which resumed runs read).
STATUS_KEYS = ("status", "error", "seconds", "body_parts", "lesion_volume_ml", "top_pattern", "finished")
from regiontag.types import SessionResult


def _complete(folder: SessionFolder, fingerprint: str = "f1") -> None:
    for name in REQUIRED_FILES[:-1]:
        outputs.write_text("session\ns1\n", folder.file(name))
    outputs.write_json({"status": "ok", "fingerprint": fingerprint}, folder.provenance_path)


def test_paths_follow_the_contract(tmp_path):
    folder = SessionFolder(tmp_path / "sub-01")
    assert folder.session_id == "sub-01"
    assert folder.status_path == tmp_path / "sub-01" / outputs.STATUS_JSON
    assert folder.log_path == tmp_path / "sub-01" / outputs.LOG_FILE
    assert folder.provenance_path == tmp_path / "sub-01" / outputs.PROVENANCE_JSON


def test_write_and_read_status(tmp_path):
    folder = SessionFolder(tmp_path / "s1")
    assert folder.read_status() is None and folder.status == "incomplete" and folder.error == ""
    record = folder.write_status(SessionResult("s1", "warning", "edge of field of view", 3.14159, ("cord",), 0.5,
                                               "nmosd-cord"))
    on_disk = json.loads(folder.status_path.read_text())
    assert tuple(on_disk) == tuple(sorted(STATUS_KEYS))  # write_json sorts the keys
    assert on_disk == record and on_disk["seconds"] == 3.142 and on_disk["body_parts"] == ["cord"]
    assert folder.read_status() == record
    assert (folder.status, folder.error) == ("warning", "")  # the error of a finished session is no failure
    folder.write_status({**record, "status": "failed", "error": "InputError: bad"})
    assert (folder.status, folder.error) == ("failed", "InputError: bad")
    nan = SessionFolder(tmp_path / "s2").write_status(SessionResult("s2", "failed", "x"))
    assert math.isnan(nan["lesion_volume_ml"])
    assert json.loads((tmp_path / "s2" / outputs.STATUS_JSON).read_text())["lesion_volume_ml"] is None


def test_status_rebuilt_from_provenance(tmp_path):
    folder = SessionFolder(tmp_path / "e")
    outputs.write_json({"status": "warning", "warnings": ["a", "b", "c", "d"], "finished": "then",
                        "timings": {"load": 1.0, "brain": 2.0, "note": "x"}, "reference": {"cord": "y", "brain": "x"}},
                       folder.provenance_path)
    record = folder.read_status()
    assert record["status"] == "warning" and record["error"] == "a; b; c" and record["seconds"] == 3.0
    assert record["body_parts"] == ["brain", "cord"] and record["finished"] == "then"
    assert folder.read_status(from_provenance=False) is None
    folder.status_path.write_text("{not json")  # unreadable status.json: provenance still answers
    assert folder.read_status()["status"] == "warning" and folder.read_status(from_provenance=False) is None


def test_failure_is_known_from_status_not_from_the_log(tmp_path):
    folder = SessionFolder(tmp_path / "s1")
    folder.append_log("ERROR Traceback (most recent call last): ValueError: Error")
    assert folder.status == "incomplete"  # a log mentioning errors is not a finished attempt
    folder.write_status(SessionResult("s1", "failed", "ValueError: bad"))
    assert folder.status == "failed"


def test_start_attempt_clears_markers_and_owns_the_log(tmp_path):
    folder = SessionFolder(tmp_path / "new" / "s1")
    folder.append_log("INFO from an earlier attempt")
    _complete(folder)
    folder.write_status(SessionResult("s1", "ok"))
    with folder.start_attempt():
        assert not folder.status_path.exists() and not folder.provenance_path.exists()
        logging.getLogger("regiontag.brain.stage").info("registered")
    logging.getLogger("regiontag").info("after the attempt")
    text = folder.log_path.read_text()
    assert "INFO regiontag.brain.stage: registered" in text
    assert "earlier attempt" not in text and "after the attempt" not in text
    folder.append_log("WARNING appended\n")
    assert folder.log_path.read_text().endswith(" WARNING appended\n")


def test_a_lost_attempt_is_counted_and_kept_in_the_log(tmp_path):
    """Issue 19.3: an attempt that never finished (its worker was lost) makes the next one a visible retry."""
    folder = SessionFolder(tmp_path / "s1")
    with folder.start_attempt() as first:
        assert first.attempt["attempt"] == 1 and first.note == ""
        logging.getLogger("regiontag.brain.stage").info("registration started")
    # the worker dies here: no status.json; Dask runs the session again
    assert folder.unfinished_attempt()["attempt"] == 1
    folder.note_lost_cause("its worker process was restarted by the Dask nanny for exceeding its memory limit")
    with folder.start_attempt() as second:
        assert second.attempt["attempt"] == 2
        assert second.attempt["previous"]["started"] == first.attempt["started"]
        logging.getLogger("regiontag.brain.stage").info("registration started again")
    record = folder.write_status(SessionResult("s1", "ok", seconds=3.0))
    assert record["attempts"] == 2 and record["retry"] == second.note
    assert second.note.startswith("attempt 2: attempt 1 (started ")
    assert "restarted by the Dask nanny for exceeding its memory limit" in second.note
    log = folder.log_path.read_text()
    assert log.index("registration started") < log.index(f"WARNING regiontag: session s1: {second.note}") < (
        log.index("registration started again"))  # both attempts, the reason between them
    assert folder.unfinished_attempt() is None  # finished: the next run is attempt 1 again
    with folder.start_attempt() as third:
        assert third.attempt["attempt"] == 1 and "previous" not in third.attempt
    assert "registration started" not in folder.log_path.read_text()


def test_start_attempt_keeps_a_debug_level_set_for_verbose(tmp_path):
    logger = logging.getLogger("regiontag")
    previous = logger.level
    logger.setLevel(logging.DEBUG)
    try:
        with SessionFolder(tmp_path / "s1").start_attempt():
            assert logger.level == logging.DEBUG
            logging.getLogger("regiontag.cord.stage").debug("centreline smoothed")
    finally:
        logger.setLevel(previous)
    assert "DEBUG regiontag.cord.stage: centreline smoothed" in (tmp_path / "s1" / "log.txt").read_text()


def test_is_complete(tmp_path):
    folder = SessionFolder(tmp_path / "s1")
    calls = []

    def fingerprint() -> str:
        calls.append(1)
        return "f1"

    assert not folder.is_complete(fingerprint) and not calls  # no outputs: the inputs are not hashed
    _complete(folder)
    assert folder.is_complete("f1") and folder.is_complete(fingerprint) and calls
    assert not folder.is_complete("f2")
    folder.file(outputs.SCORES_CSV).unlink()
    assert not folder.is_complete("f1")
    _complete(folder)

    def missing_input() -> str:
        raise FileNotFoundError("input moved")

    assert not folder.is_complete(missing_input)
    folder.provenance_path.write_text("[1, 2]")
    assert not folder.is_complete("f1")


def test_read_table(tmp_path):
    folder = SessionFolder(tmp_path / "s1")
    assert folder.read_table(outputs.SCORES_CSV) is None
    outputs.write_csv(pd.DataFrame({"session": ["s1"], "pattern": ["ms"], "score": [2.5]}),
                      folder.file(outputs.SCORES_CSV))
    table = folder.read_table(outputs.SCORES_CSV, outputs.SCORE_COLUMNS)
    assert list(table.columns) == outputs.SCORE_COLUMNS and table.loc[0, "score"] == 2.5
