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
    if subject.startswith("sigkill") or session.session_id.startswith("sigkill"):
        os.kill(os.getpid(), signal.SIGKILL)  # a crash in native code, a batch system's kill...
    if session.session_id.startswith("enospc"):
        raise OSError(28, "No space left on device", str(session_dir / outputs.REGIONS_CSV))
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
    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    with output_lock(tmp_path / "out"):
        with pytest.raises(BatchError, match="another regiontag run"):
            run_batch(tmp_path / "in", tmp_path / "out", Config(), sessions=[], quiet=True)


def test_lock_file_is_not_left_in_the_output_folder(tmp_path):
    """Issue 19.7: `.regiontag.lock` exists while a run holds it, and is gone afterwards."""
    with output_lock(tmp_path):
        assert (tmp_path / ".regiontag.lock").is_file()
    assert not (tmp_path / ".regiontag.lock").exists()
    (tmp_path / "in").mkdir()
    run_batch(tmp_path / "in", tmp_path / "out", Config(), sessions=[], quiet=True, report=False)
    assert (tmp_path / "out").is_dir() and not (tmp_path / "out" / ".regiontag.lock").exists()
    with output_lock(tmp_path):  # a later run locks afresh
        with pytest.raises(BatchError, match="another regiontag run"):
            with output_lock(tmp_path):
                pass
        assert (tmp_path / ".regiontag.lock").is_file()  # the refused run did not remove the holder's file


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



# --- issue 17: never write where it must not, never stop the batch ----------------------------------------
def _plain_inputs(root: Path, names) -> Path:
    for index, name in enumerate(names):
        _save_volume(root / name / f"{name}_FLAIR.nii.gz", index)
    return root


def _sessions_rows(out: Path) -> dict[str, dict]:
    return _csv(out / outputs.SESSIONS_CSV).set_index("session").to_dict("index")


def test_session_named_like_a_batch_file_is_refused_alone(tmp_path, loopback_cluster):
    """Item 1: session folders named regions.csv/, sessions.csv/, scores.csv/, index.html/ crashed every run."""
    reserved = ["regions.csv", "sessions.csv", "scores.csv", "index.html", "Index.HTML"]
    input_dir = _plain_inputs(tmp_path / "in", ["p1", *reserved])
    out = tmp_path / "out"
    common = dict(scheduler=loopback_cluster.scheduler_address, quiet=True, session_runner=RUNNER)
    for attempt in range(2):  # the re-run neither crashes nor recomputes p1
        summary = run_batch(input_dir, out, Config(), **common)
        assert summary.counts == {"ok": 1, "warning": 0, "failed": 5} and summary.exit_code == 1
        assert summary.resumed == attempt
        rows = _sessions_rows(out)
        assert set(rows) == {"p1", *reserved}
        for name in reserved:
            assert rows[name]["status"] == "failed"
            assert rows[name]["error"] == (
                f"session id {name!r} is reserved for a batch file of the output folder; rename the input "
                "folder or file")
        for name in ("regions.csv", "sessions.csv", "scores.csv", "index.html"):
            assert (out / name).is_file()  # the batch files, not session folders
        assert list(_csv(out / outputs.REGIONS_CSV)["session"].unique()) == ["p1"]
    (out / outputs.INDEX_HTML).unlink()
    (out / outputs.INDEX_HTML).mkdir()  # left by an older version, or made by hand
    with pytest.raises(BatchError, match=r"index\.html is a folder where the batch writes a file"):
        run_batch(input_dir, out, Config(), **common)


def test_output_folder_equal_to_or_above_the_input_is_refused(tmp_path):
    """Item 2: `run IN IN` (or OUT the parent of IN) overwrote IN's own sessions.csv and index.html."""
    phantom = tmp_path / "phantom"  # the layout `regiontag phantom` writes: OUT/inputs/<session>, OUT/truth/<session>
    input_dir = _plain_inputs(phantom / "inputs", ["p1"])
    (phantom / "truth" / "p1").mkdir(parents=True)
    for folder in (input_dir, phantom):
        (folder / outputs.SESSIONS_CSV).write_text("the user's own table\n")
        (folder / outputs.INDEX_HTML).write_text("<p>the user's own page</p>\n")
    before = {path: path.read_bytes() for path in phantom.rglob("*") if path.is_file()}
    for output_dir, problem in ((input_dir, "is the input folder"), (phantom, "contains the input folder"),
                                (tmp_path, "contains the input folder")):
        with pytest.raises(BatchError, match=problem) as caught:
            run_batch(input_dir, output_dir, Config(), quiet=True, session_runner=RUNNER)
        assert len(str(caught.value).splitlines()) == 1
    with pytest.raises(BatchError, match="is the input folder"):  # the same folder through a symlink
        (tmp_path / "link").symlink_to(input_dir)
        run_batch(input_dir, tmp_path / "link", Config(), quiet=True, session_runner=RUNNER)
    after = {path: path.read_bytes() for path in phantom.rglob("*") if path.is_file()}
    assert after == before  # nothing of IN touched, not even a lock file


def test_symlinks_inside_the_output_folder_never_lead_outside(tmp_path, loopback_cluster):
    """Item 3: a symlinked session folder sent the session elsewhere; a symlinked log.txt truncated its target."""
    input_dir = _plain_inputs(tmp_path / "in", ["p1", "p2", "p3"])
    out, elsewhere = tmp_path / "out", tmp_path / "elsewhere"
    elsewhere.mkdir()
    precious = elsewhere / "precious.txt"
    precious.write_text("keep me\n")
    stale_lookalike = elsewhere / ".notes.tmp.csv"  # looks like a temporary of ours, but is outside OUT
    stale_lookalike.write_text("mine\n")
    out.mkdir()
    (out / "p1").symlink_to(elsewhere, target_is_directory=True)
    (out / "p2").mkdir()
    (out / "p2" / outputs.LOG_FILE).symlink_to(precious)
    (out / "linked").symlink_to(elsewhere, target_is_directory=True)  # not a session: never entered
    summary = run_batch(input_dir, out, Config(), scheduler=loopback_cluster.scheduler_address, quiet=True,
                        session_runner=RUNNER)
    assert summary.counts == {"ok": 1, "warning": 0, "failed": 2}
    rows = _sessions_rows(out)
    assert rows["p1"]["error"] == f"output folder {out / 'p1'} is a symlink (to {elsewhere}); refusing to write outside the output folder"
    assert rows["p2"]["error"] == f"{out / 'p2' / outputs.LOG_FILE} is a symlink (to {precious}); refusing to write through it"
    assert rows["p3"]["status"] == "ok"
    assert precious.read_text() == "keep me\n" and stale_lookalike.read_text() == "mine\n"
    assert sorted(path.name for path in elsewhere.iterdir()) == [".notes.tmp.csv", "precious.txt"]


def test_full_disk_gives_one_line_reasons_tries_every_session_and_resumes(tmp_path, loopback_cluster, monkeypatch):
    """Item 4: ENOSPC in the batch tables stopped the batch with a traceback and no index.html."""
    import errno

    from regiontag.outputs import contract

    input_dir = _plain_inputs(tmp_path / "in", ["p1", "p2", "p3", "enospc"])
    out = tmp_path / "out"
    common = dict(scheduler=loopback_cluster.scheduler_address, quiet=True, session_runner=RUNNER)
    attempts = []
    original = contract.atomic_path

    def full_disk(destination):
        attempts.append(Path(destination).name)
        raise OSError(errno.ENOSPC, "No space left on device", str(destination))

    monkeypatch.setattr(contract, "atomic_path", full_disk)  # every write of this process: the workers still write
    summary = run_batch(input_dir, out, Config(), **common)
    assert len(summary.results) == 4  # every session tried
    assert summary.results["enospc"].error == (
        f"OSError: [Errno 28] No space left on device: '{out / 'enospc' / outputs.REGIONS_CSV}'")
    assert summary.exit_code == 1
    assert "outputs not written (disk full: No space left on device" in summary.line
    assert len(summary.line.splitlines()) == 1
    assert {outputs.SESSIONS_CSV, outputs.INDEX_HTML, outputs.REGIONS_CSV} <= set(attempts)  # index.html attempted
    assert summary.report_error.startswith("OSError: [Errno 28] No space left on device")
    monkeypatch.setattr(contract, "atomic_path", original)
    again = run_batch(input_dir, out, Config(), **common)  # the disk has room again: resume
    assert again.resumed == 3 and again.counts == {"ok": 3, "warning": 0, "failed": 1}
    rows = _sessions_rows(out)
    assert [rows[name]["status"] for name in ("p1", "p2", "p3", "enospc")] == ["ok", "ok", "ok", "failed"]
    assert (out / outputs.INDEX_HTML).is_file()


def test_bad_pattern_library_stops_the_batch_before_any_session(tmp_path):
    """Item 7: a library that fails to load is found at the start, not after hours of sessions."""
    from regiontag.config import ConfigError

    input_dir = _plain_inputs(tmp_path / "in", ["p1"])
    library = tmp_path / "lib"
    library.mkdir()
    (library / "broken.yml").write_text("id: broken\ndisease: Broken\nreferences: [x]\npatterns: []\n")
    with pytest.raises(ConfigError, match=r"broken\.yml: patterns: "):
        run_batch(input_dir, tmp_path / "out", Config(), patterns_dir=library, quiet=True, session_runner=RUNNER)
    assert not (tmp_path / "out" / "p1").exists()


@pytest.mark.slow  # two worker deaths and restarts on a fresh local cluster
def test_worker_killed_by_a_signal_is_reported_with_the_signal(tmp_path):
    """Item 8: a worker killed by a signal was reported as "most likely out of memory"."""
    input_dir = _plain_inputs(tmp_path / "in", ["p1", "sigkill"])
    summary = run_batch(input_dir, tmp_path / "out", Config(), workers=1, quiet=True, session_runner=RUNNER,
                        report=False)
    error = summary.results["sigkill"].error
    assert error.startswith("worker process killed by signal SIGKILL while running this session"), error
    assert "out of memory" not in error
    assert summary.results["p1"].status in ("ok", "skipped")  # re-run by Dask if its result died with the worker
    assert _sessions_rows(tmp_path / "out")["p1"]["status"] == "ok"
    assert error in (tmp_path / "out" / "sigkill" / outputs.LOG_FILE).read_text()
