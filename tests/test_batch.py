"""Batch processing on Dask: CSVs, failures, memory limits, resume after SIGKILL, CLI exit status.

Sessions are run by ``fake_run_session``, a small stand-in that keeps the
``run_session`` contract (skip when complete, outputs then provenance.json
last, status.json) at millisecond cost, so the tests exercise the batch
machinery -- the Dask clusters are real.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dask
import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from distributed import LocalCluster

from pipeline import outputs
from pipeline.batch import BatchError, output_lock, run_batch
from pipeline.batch_tables import BatchTables
from pipeline.config import Config
from pipeline.types import SessionResult

TESTS_DIR = Path(__file__).resolve().parent
REPO_ROOT = TESTS_DIR.parent
RUNNER = "test_batch:fake_run_session"
SLEEP_VARIABLE = "REGIONTAG_TEST_SESSION_SECONDS"
MARKER_VARIABLE = "REGIONTAG_TEST_MARKER_DIR"
MEMORY_LIMIT = "600MB"


# --- a fast session runner with run_session's contract ----------------------------------------
def fake_run_session(session, output_dir, config, *, force=False, cord_atlas_path=None, patterns_dir=None):
    """Write regions/scores/provenance/status for a session from its voxel data (deterministic).

    Subjects named ``fail`` raise, ``oom`` allocate memory until the worker is killed.
    ``REGIONTAG_TEST_SESSION_SECONDS`` slows every session down; each computation appends a
    line to ``<REGIONTAG_TEST_MARKER_DIR>/<session>.runs``.
    """
    started = time.perf_counter()
    session_dir = Path(output_dir) / session.session_id
    if not force and (session_dir / outputs.PROVENANCE_JSON).is_file():
        return SessionResult(session.session_id, "skipped")
    marker_dir = os.environ.get(MARKER_VARIABLE)
    if marker_dir:
        with open(Path(marker_dir) / f"{session.session_id}.runs", "a") as handle:
            handle.write(f"{os.getpid()} {time.time()}\n")
    time.sleep(float(os.environ.get(SLEEP_VARIABLE, "0")))
    subject = session.bids.get("subject", "")
    if subject.startswith("fail"):
        raise RuntimeError("synthetic failure in stage X\nsecond line of the message")
    if subject.startswith("oom"):
        hoard = []
        for _ in range(200):  # up to 4 GB, 20 MB at a time: the nanny kills the worker first
            hoard.append(np.ones(20 * 2**20 // 8))
            time.sleep(0.02)
    rows, scores = [], []
    for scan in session.scans:
        data = np.asarray(nib.load(str(scan.path)).dataobj, dtype=float)
        lesion = data > 0.8
        rows.append({
            "session": session.session_id, "atlas": "fake", "region": f"Fake > {scan.sequence}",
            "name": scan.sequence, "parent": "Fake", "depth": 1, "side": "both",
            "region_volume_ml": data.size / 1000.0, "lesion_voxels": int(lesion.sum()),
            "lesion_volume_ml": lesion.sum() / 1000.0, "fraction_involved": float(lesion.mean()),
            "involved": bool(lesion.any()), "mean_z": float(data.mean()), "max_z": float(data.max()),
        })
        scores.append({"session": session.session_id, "pattern": f"pattern-{scan.sequence}",
                       "score": float(data.mean()), "rank": len(scores) + 1, "match": True})
    session_dir.mkdir(parents=True, exist_ok=True)
    outputs.write_csv(pd.DataFrame(rows), session_dir / outputs.REGIONS_CSV, outputs.REGION_COLUMNS)
    outputs.write_csv(pd.DataFrame(scores), session_dir / outputs.SCORES_CSV, outputs.SCORE_COLUMNS)
    lesion_ml = float(sum(row["lesion_volume_ml"] for row in rows))
    outputs.write_json({"status": "ok", "finished": time.time()}, session_dir / outputs.PROVENANCE_JSON)
    seconds = time.perf_counter() - started
    outputs.write_json({"status": "ok", "error": "", "seconds": seconds, "body_parts": ["brain"],
                        "lesion_volume_ml": lesion_ml, "top_pattern": "pattern-FLAIR"},
                       session_dir / outputs.STATUS_JSON)
    return SessionResult(session.session_id, "ok", "", seconds, ("brain",), lesion_ml, "pattern-FLAIR")


# --- fixtures -----------------------------------------------------------------------------------
def _save_volume(path: Path, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.random.default_rng(seed).random((8, 8, 4)).astype(np.float32)
    nib.save(nib.Nifti1Image(data, np.diag([2.0, 2.0, 3.0, 1.0])), str(path))


def _save_header_only(path: Path, shape: tuple[int, ...]) -> None:
    """A NIfTI whose header claims an absurd size (no voxel data follows)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    header = nib.Nifti1Header()
    header.set_data_dtype(np.float32)
    header.set_data_shape(shape)
    header.set_qform(np.eye(4), code=1)
    header["vox_offset"] = 352
    with open(path, "wb") as handle:
        handle.write(header.binaryblock + b"\x00" * 4)


def make_bids_dataset(root: Path, subjects: list[str], sessions=("01", "02"), extra=()) -> Path:
    """BIDS dataset with FLAIR + T2w for each subject/session; ``extra`` subjects have one session."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "dataset_description.json").write_text(json.dumps({"Name": "batch test", "BIDSVersion": "1.9.0"}))
    seed = 0
    for subject in subjects:
        for ses in sessions:
            for suffix in ("FLAIR", "T2w"):
                seed += 1
                _save_volume(root / f"sub-{subject}/ses-{ses}/anat/sub-{subject}_ses-{ses}_{suffix}.nii.gz", seed)
    for subject in extra:
        if subject.startswith("huge"):
            _save_header_only(root / f"sub-{subject}/anat/sub-{subject}_FLAIR.nii", (4000, 4000, 2000))
        else:
            seed += 1
            _save_volume(root / f"sub-{subject}/anat/sub-{subject}_FLAIR.nii.gz", seed)
    return root


@pytest.fixture(scope="module")
def loopback_cluster():
    """A real distributed cluster on loopback: scheduler + 2 worker processes (settings as ``regiontag run``)."""
    settings = {"distributed.scheduler.allowed-failures": 1, "distributed.scheduler.worker-saturation": 1.0}
    with dask.config.set(settings):
        cluster = LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
            dashboard_address=":0", memory_limit=MEMORY_LIMIT,
        )
    yield cluster
    cluster.close()


def _csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, keep_default_na=False)


# --- tests --------------------------------------------------------------------------------------
def test_scheduler_run_matches_local_run_and_isolates_failures(tmp_path, loopback_cluster):
    input_dir = make_bids_dataset(tmp_path / "bids", ["01", "02"], extra=["fail", "huge", "oom"])
    config = Config()
    local = run_batch(input_dir, tmp_path / "local", config, workers=2, memory_limit=MEMORY_LIMIT,
                      quiet=True, session_runner=RUNNER, report=False)
    remote = run_batch(input_dir, tmp_path / "remote", config, scheduler=loopback_cluster.scheduler_address,
                       memory_limit=MEMORY_LIMIT, quiet=True, session_runner=RUNNER, report=False)
    expected_ids = ["sub-01_ses-01", "sub-01_ses-02", "sub-02_ses-01", "sub-02_ses-02",
                    "sub-fail", "sub-huge", "sub-oom"]
    for summary in (local, remote):
        assert summary.counts == {"ok": 4, "warning": 0, "failed": 3}
        assert summary.exit_code == 1
        assert summary.line.startswith("7 sessions: 4 ok, 0 warning, 3 failed in ")
    tables = {}
    for name in ("local", "remote"):
        sessions = _csv(tmp_path / name / outputs.SESSIONS_CSV)
        assert list(sessions.columns) == outputs.SESSION_COLUMNS
        assert list(sessions["session"]) == expected_ids  # each once, sorted
        errors = dict(zip(sessions["session"], sessions["error"]))
        assert errors["sub-fail"] == "RuntimeError: synthetic failure in stage X second line of the message"
        assert "Traceback" in (tmp_path / name / "sub-fail" / outputs.LOG_FILE).read_text()
        assert errors["sub-huge"].startswith("needs about ") and "more than the worker limit" in errors["sub-huge"]
        assert "memory" in errors["sub-oom"] and "572.20 MiB" in errors["sub-oom"]
        assert "worker" in (tmp_path / name / "sub-oom" / outputs.LOG_FILE).read_text()
        tables[name] = {
            "sessions": sessions.drop(columns=["seconds"]).drop(index=sessions.index[sessions.session == "sub-oom"]),
            "regions": _csv(tmp_path / name / outputs.REGIONS_CSV),
            "scores": _csv(tmp_path / name / outputs.SCORES_CSV),
        }
    for table in ("sessions", "regions", "scores"):
        pd.testing.assert_frame_equal(tables["local"][table], tables["remote"][table])
    regions = tables["local"]["regions"]
    assert list(regions.columns) == outputs.REGION_COLUMNS
    assert sorted(set(regions["session"])) == expected_ids[:4]
    assert len(regions) == 8  # FLAIR + T2w of each finished session, failed sessions excluded
    description = json.loads((tmp_path / "local" / "dataset_description.json").read_text())
    assert description["DatasetType"] == "derivative" and description["GeneratedBy"][0]["Name"] == "regiontag"


def test_resume_skips_finished_sessions_and_force_redoes_them(tmp_path, loopback_cluster):
    input_dir = make_bids_dataset(tmp_path / "bids", ["01", "02"])
    address = loopback_cluster.scheduler_address
    out = tmp_path / "out"
    common = dict(scheduler=address, quiet=True, session_runner=RUNNER, report=False)
    first = run_batch(input_dir, out, Config(), **common)
    assert first.counts["ok"] == 4 and first.resumed == 0
    before = _csv(out / outputs.SESSIONS_CSV)
    second = run_batch(input_dir, out, Config(), **common)
    assert second.counts["ok"] == 4 and second.resumed == 4
    assert "(4 already complete)" in second.line
    after = _csv(out / outputs.SESSIONS_CSV)
    pd.testing.assert_frame_equal(before, after)  # same rows, same seconds: nothing recomputed
    forced = run_batch(input_dir, out, Config(), force=True, **common)
    assert forced.resumed == 0 and forced.counts["ok"] == 4
    assert len(_csv(out / outputs.SESSIONS_CSV)) == 4


def test_output_folder_is_locked_against_a_second_run(tmp_path):
    with output_lock(tmp_path):
        with pytest.raises(BatchError, match="another regiontag run"):
            run_batch(tmp_path, tmp_path, Config(), sessions=[], quiet=True)


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
    tables.record(SessionResult("e", "skipped"))
    tables.write_all()
    sessions = _csv(tmp_path / outputs.SESSIONS_CSV)
    assert list(sessions["session"]) == ["a", "b", "c", "e"]
    assert list(sessions["status"]) == ["failed", "ok", "warning", "ok"]
    assert sessions.loc[0, "error"] == "why a more"
    assert sessions.loc[3, "seconds"] == 3.0 and sessions.loc[3, "body_parts"] == "brain"
    assert sessions.loc[1, "body_parts"] == "brain;cord"
    assert (tmp_path / "e" / outputs.STATUS_JSON).is_file()
