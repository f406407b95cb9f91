"""Batch processing on Dask: CSVs, failures, memory limits, resume after SIGKILL, CLI exit status.

Sessions are run by ``fake_run_session``, a small stand-in that keeps the
``run_session`` contract (skip when complete, outputs then provenance.json
last, status.json) at millisecond cost, so the tests exercise the batch
machinery -- the Dask clusters are real.
"""

from __future__ import annotations

import json
import os
import shutil
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

from regiontag import outputs
from regiontag.workflows.batch import BatchError, output_lock, run_batch
from regiontag.config import Config, load_config
from regiontag.phantoms.cord import make_cord_phantom, write_cord_phantom
from regiontag.resources import patterns_dir
from regiontag.types import SessionResult

REPO_ROOT = Path(__file__).resolve().parents[2]
RUNNER = "tests.workflows.test_batch:fake_run_session"
SLEEP_VARIABLE = "REGIONTAG_TEST_SESSION_SECONDS"
MARKER_VARIABLE = "REGIONTAG_TEST_MARKER_DIR"
MEMORY_LIMIT = "1.2GB"  # above the pre-flight baseline (1 GiB), below the oom session


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
    os.write(2, b"native library message on fd 2\n")  # like ITK/ANTs C++ output
    subject = session.bids.get("subject", "")
    if subject.startswith("fail"):
        raise RuntimeError("synthetic failure in stage X\nsecond line of the message")
    if subject.startswith("oom"):
        hoard = []
        for _ in range(60):  # up to 2.4 GB, 40 MB at a time: the nanny kills the worker first
            hoard.append(np.ones(40 * 2**20 // 8))
            time.sleep(0.01)
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
    provenance = {"status": "ok", "finished": time.time(),
                  "itk_threads": os.environ.get("ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS")}
    outputs.write_json(provenance, session_dir / outputs.PROVENANCE_JSON)
    seconds = time.perf_counter() - started
    outputs.write_json({"status": "ok", "error": "", "seconds": seconds, "body_parts": ["brain"],
                        "lesion_volume_ml": lesion_ml, "top_pattern": "pattern-FLAIR"},
                       session_dir / outputs.STATUS_JSON)
    return SessionResult(session.session_id, "ok", "", seconds, ("brain",), lesion_ml, "pattern-FLAIR",
                         region_table=pd.DataFrame(rows).reindex(columns=outputs.REGION_COLUMNS),
                         scores=pd.DataFrame(scores).reindex(columns=outputs.SCORE_COLUMNS))


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
    expected_ids = ["sub-01_ses-01", "sub-01_ses-02", "sub-02_ses-01", "sub-02_ses-02",
                    "sub-fail", "sub-huge", "sub-oom"]
    assert local.counts == {"ok": 4, "warning": 0, "failed": 3}
    carried = local.results["sub-01_ses-01"]  # the in-memory tables survive the trip from the worker
    assert list(carried.region_table.columns) == outputs.REGION_COLUMNS and len(carried.region_table) == 2
    assert local.results["sub-fail"].region_table is None
    assert local.exit_code == 1
    assert local.line.startswith("7 sessions: 4 ok, 0 warning, 3 failed in ")
    # the same batch on the loopback cluster through its scheduler address (killing workers
    # for memory is shown once, on the local cluster, to keep the test fast)
    from regiontag.inputs.discovery import discover_sessions

    sessions = [s for s in discover_sessions(input_dir, config) if s.session_id != "sub-oom"]
    remote = run_batch(input_dir, tmp_path / "remote", config, scheduler=loopback_cluster.scheduler_address,
                       memory_limit=MEMORY_LIMIT, quiet=True, session_runner=RUNNER, report=False,
                       sessions=sessions)
    assert remote.counts == {"ok": 4, "warning": 0, "failed": 2}
    assert remote.cluster == f"Dask cluster at {loopback_cluster.scheduler_address}"
    tables = {}
    for name in ("local", "remote"):
        sessions_csv = _csv(tmp_path / name / "regiontag" / outputs.SESSIONS_CSV)
        assert list(sessions_csv.columns) == outputs.SESSION_COLUMNS
        assert list(sessions_csv["session"]) == [s for s in expected_ids if name == "local" or s != "sub-oom"]
        errors = dict(zip(sessions_csv["session"], sessions_csv["error"]))
        assert errors["sub-fail"] == "RuntimeError: synthetic failure in stage X second line of the message"
        assert "Traceback" in (tmp_path / name / "regiontag" / "sub-fail" / outputs.LOG_FILE).read_text()
        assert errors["sub-huge"].startswith("needs about ")
        assert "of memory, more than the worker limit of 1.12 GiB (largest input sub-huge_FLAIR.nii" in errors["sub-huge"]
        tables[name] = {
            "sessions": sessions_csv[sessions_csv.session != "sub-oom"].drop(columns=["seconds"]),
            "regions": _csv(tmp_path / name / "regiontag" / outputs.REGIONS_CSV),
            "scores": _csv(tmp_path / name / "regiontag" / outputs.SCORES_CSV),
        }
    oom_error = _csv(tmp_path / "local" / "regiontag" / outputs.SESSIONS_CSV).set_index("session").loc["sub-oom", "error"]
    assert "out of memory" in oom_error and "1.12 GiB" in oom_error
    assert "worker" in (tmp_path / "local" / "regiontag" / "sub-oom" / outputs.LOG_FILE).read_text()
    for table in ("sessions", "regions", "scores"):
        pd.testing.assert_frame_equal(tables["local"][table], tables["remote"][table])
    regions = tables["local"]["regions"]
    assert list(regions.columns) == outputs.REGION_COLUMNS
    assert sorted(set(regions["session"])) == expected_ids[:4]
    assert len(regions) == 8  # FLAIR + T2w of each finished session, failed sessions excluded
    assert list(tables["local"]["scores"].columns) == outputs.SCORE_COLUMNS
    threads = str(Config().registration.threads)  # the configured count (fits in cores / 2 workers)
    for name in ("local", "remote"):  # native output lands in the session's log, not the console
        session_dir = tmp_path / name / "regiontag" / "sub-01_ses-01"
        assert "native library message on fd 2" in (session_dir / outputs.LOG_FILE).read_text()
        assert json.loads((session_dir / outputs.PROVENANCE_JSON).read_text())["itk_threads"] == threads
    # BIDS input: OUTPUT_DIR is a derivatives dataset, regiontag's own layout is in OUTPUT_DIR/regiontag
    derivative = tmp_path / "local" / "sub-01" / "ses-02" / "anat" / "sub-01_ses-02_regions.tsv"
    session_table = _csv(tmp_path / "local" / "regiontag" / "sub-01_ses-02" / outputs.REGIONS_CSV)
    assert list(pd.read_csv(derivative, sep="\t")["region"]) == list(session_table["region"])
    assert not (tmp_path / "local" / "sub-fail").exists()  # failed sessions get no derivatives
    assert (tmp_path / "local" / "group_sessions.tsv").is_file()
    assert "(BIDS derivatives; regiontag tables and index.html in " in local.line
    description = json.loads((tmp_path / "local" / "dataset_description.json").read_text())
    assert description["DatasetType"] == "derivative" and description["GeneratedBy"][0]["Name"] == "regiontag"


def test_resume_skips_finished_sessions_and_force_redoes_them(tmp_path, loopback_cluster):
    input_dir = make_bids_dataset(tmp_path / "bids", ["01", "02"])
    address = loopback_cluster.scheduler_address
    out = tmp_path / "out"
    common = dict(scheduler=address, quiet=True, session_runner=RUNNER, report=False)
    first = run_batch(input_dir, out, Config(), **common)
    assert first.counts["ok"] == 4 and first.resumed == 0
    before = _csv(out / "regiontag" / outputs.SESSIONS_CSV)
    second = run_batch(input_dir, out, Config(), **common)
    assert second.counts["ok"] == 4 and second.resumed == 4
    assert "(4 already complete)" in second.line
    after = _csv(out / "regiontag" / outputs.SESSIONS_CSV)
    pd.testing.assert_frame_equal(before, after)  # same rows, same seconds: nothing recomputed
    forced = run_batch(input_dir, out, Config(), force=True, **common)
    assert forced.resumed == 0 and forced.counts["ok"] == 4
    assert len(_csv(out / "regiontag" / outputs.SESSIONS_CSV)) == 4
    # a plain (non-BIDS) input folder holding its own output folder: outputs are not inputs
    plain = tmp_path / "plain"
    for index in (1, 2):
        _save_volume(plain / f"p{index}" / f"p{index}_FLAIR.nii.gz", index)
    run_batch(plain, plain / "results", Config(), **common)
    _save_volume(plain / "results" / "p1" / outputs.LESIONS_NII, 7)  # as a real session writes
    again = run_batch(plain, plain / "results", Config(), **common)
    assert again.n_sessions == 2 and again.resumed == 2
    assert list(_csv(plain / "results" / outputs.SESSIONS_CSV)["session"]) == ["p1", "p2"]


def test_output_folder_is_locked_against_a_second_run(tmp_path):
    with output_lock(tmp_path):
        with pytest.raises(BatchError, match="another regiontag run"):
            run_batch(tmp_path, tmp_path, Config(), sessions=[], quiet=True)


def _marker_counts(marker_dir: Path) -> dict[str, int]:
    return {path.name[: -len(".runs")]: len(path.read_text().splitlines()) for path in marker_dir.glob("*.runs")}


def _wait_for_group_exit(process_group: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(process_group, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)


@pytest.mark.slow
def test_sigkill_and_restart_lists_every_session_once_and_keeps_finished_ones(tmp_path):
    input_dir = make_bids_dataset(tmp_path / "bids", ["01", "02", "03", "04"])
    all_ids = sorted(f"sub-0{subject}_ses-0{ses}" for subject in range(1, 5) for ses in (1, 2))
    out, markers = tmp_path / "out", tmp_path / "markers"
    markers.mkdir()
    python_path = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "PYTHONPATH": python_path, "REGIONTAG_SESSION_RUNNER": RUNNER,
           MARKER_VARIABLE: str(markers), SLEEP_VARIABLE: "1.0"}
    command = [sys.executable, "-m", "regiontag.cli.main", "run", str(input_dir), str(out),
               "--workers", "2", "--quiet", "--no-report"]
    process = subprocess.Popen(command, env=env, cwd=REPO_ROOT, start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 90
    while len(list((out / "regiontag").glob(f"*/{outputs.STATUS_JSON}"))) < 3:
        assert process.poll() is None, process.stderr.read().decode()[-2000:]
        assert time.monotonic() < deadline, "batch did not progress"
        time.sleep(0.02)
    os.killpg(process.pid, signal.SIGKILL)  # the run and its Dask workers, at once
    process.wait()
    process.stderr.close()
    _wait_for_group_exit(process.pid)
    finished = {path.parent.name: json.loads(path.read_text()) for path in (out / "regiontag").glob(f"*/{outputs.STATUS_JSON}")}
    # complete = provenance.json written (last output); status.json may not have followed yet
    complete = {path.parent.name for path in (out / "regiontag").glob(f"*/{outputs.PROVENANCE_JSON}")}
    runs_before = _marker_counts(markers)
    assert 3 <= len(finished) <= len(complete) < len(all_ids)
    interrupted = set(runs_before) - complete

    env[SLEEP_VARIABLE] = "0"
    restart = subprocess.run(command, env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert restart.returncode == 0, restart.stderr[-2000:]
    assert restart.stdout.strip().startswith(
        f"8 sessions: 8 ok, 0 warning, 0 failed ({len(complete)} already complete) in ")
    sessions = _csv(out / "regiontag" / outputs.SESSIONS_CSV)
    assert list(sessions["session"]) == all_ids  # every session exactly once, sorted
    assert set(sessions["status"]) == {"ok"}
    runs_after = _marker_counts(markers)
    for session_id in complete:
        assert runs_after[session_id] == 1, f"{session_id} was recomputed"
    for session_id, status in finished.items():  # their rows are the ones written before the kill
        row = sessions.set_index("session").loc[session_id]
        assert row["seconds"] == pytest.approx(status["seconds"], rel=1e-4)
    for session_id in interrupted:
        assert runs_after[session_id] == 2  # killed mid-way, done again
    for session_id in set(all_ids) - set(runs_before):
        assert runs_after[session_id] == 1
    regions = _csv(out / "regiontag" / outputs.REGIONS_CSV)
    assert regions.groupby("session").size().to_dict() == {session_id: 2 for session_id in all_ids}
    assert not list(out.rglob(".*.tmp*"))  # no temporary file left behind under a final name


def test_cli_exit_status_and_one_line_errors(tmp_path, loopback_cluster, monkeypatch, capsys):
    from regiontag.cli.main import main

    input_dir = make_bids_dataset(tmp_path / "bids", ["01"], sessions=("01",), extra=["fail"])
    monkeypatch.setenv("REGIONTAG_SESSION_RUNNER", RUNNER)
    address = loopback_cluster.scheduler_address
    code = main(["run", str(input_dir), str(tmp_path / "out"), "--scheduler", address, "--quiet", "--no-report"])
    captured = capsys.readouterr()
    assert code == 1
    assert captured.out.strip().splitlines()[-1].startswith("2 sessions: 1 ok, 0 warning, 1 failed in ")
    assert main(["run", str(input_dir), str(tmp_path / "out2"), "--scheduler", address, "-q",
                 "--participant-label", "01"]) == 0
    assert list(_csv(tmp_path / "out2" / "regiontag" / outputs.SESSIONS_CSV)["session"]) == ["sub-01_ses-01"]
    capsys.readouterr()

    bad_config = tmp_path / "bad.yaml"
    bad_config.write_text("limits:\n  max_voxels: -5\n")
    assert main(["run", str(input_dir), str(tmp_path / "out3"), "--config", str(bad_config)]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "limits.max_voxels" in error and str(bad_config) in error
    assert main(["run", str(tmp_path / "missing"), str(tmp_path / "out3")]) == 2
    assert "input folder not found" in capsys.readouterr().err
    assert main(["run", str(input_dir), str(tmp_path / "out3"), "--memory-limit", "lots"]) == 2
    assert "invalid memory limit 'lots'" in capsys.readouterr().err
    assert main(["run", str(input_dir), str(tmp_path / "out3"), "--participant-label", "99"]) == 2
    assert "participant label(s) not found: 99" in capsys.readouterr().err
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        assert main(["run", str(input_dir), str(tmp_path / "out3"), "--scheduler", "tcp://127.0.0.1:9", "-q"]) == 2
    assert "cannot connect to the Dask scheduler at tcp://127.0.0.1:9" in capsys.readouterr().err
    assert not (tmp_path / "out3" / outputs.SESSIONS_CSV).exists()


def test_run_rescores_after_a_pattern_edit_and_not_after_a_report_setting(tmp_path, monkeypatch):
    """The real session runner on a cord phantom: the fingerprint decides what a re-run recomputes."""
    shipped, library = patterns_dir(), tmp_path / "patterns"
    shutil.copytree(shipped, library)
    monkeypatch.setenv("REGIONTAG_PATTERNS", str(library))  # the default library, as a user's edited copy
    write_cord_phantom(make_cord_phantom("dorsal", 3), tmp_path / "phantom", "cord-01")
    inputs, out = tmp_path / "phantom" / "inputs", tmp_path / "out"
    config = load_config()
    first = run_batch(inputs, out, config, workers=1, quiet=True)
    assert first.counts["ok"] + first.counts["warning"] == 1 and first.resumed == 0
    scores_before = (out / "cord-01" / outputs.SCORES_CSV).read_text()

    without_report = Config.model_validate({**config.model_dump(), "report": {"enabled": False}})
    assert run_batch(inputs, out, without_report, workers=1, quiet=True).resumed == 1

    edited = library / "vitamin-b12-deficiency.yaml"
    edited.write_text(edited.read_text().replace("p_involved: 0.9", "p_involved: 0.6", 1))
    assert edited.read_text() != (shipped / edited.name).read_text()
    again = run_batch(inputs, out, config, workers=1, quiet=True)
    assert again.resumed == 0 and again.counts["ok"] + again.counts["warning"] == 1
    assert (out / "cord-01" / outputs.SCORES_CSV).read_text() != scores_before  # re-scored with the edit

