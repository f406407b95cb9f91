"""Session orchestration: output contract, provenance, failures as one-line reasons, resume."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from regiontag import outputs
from regiontag.config import Config
from regiontag.atlas.involvement import region_table
from regiontag.workflows.session import is_complete, run_session
from regiontag.stage import StageOutput
from regiontag.types import ScanInput, Session


def write_scan(path: Path, value: float = 100.0) -> Path:
    """A small noisy volume (24 x 24 x 12 voxels of 2 x 2 x 4 mm)."""
    rng = np.random.default_rng(0)
    data = (value + rng.normal(0, 5, (24, 24, 12))).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(data, np.diag([2.0, 2.0, 4.0, 1.0])), str(path))
    return path


@pytest.fixture()
def fake_brain_stage(monkeypatch: pytest.MonkeyPatch):
    """Replace the (slow, registration-based) brain stage with one that tags a fixed toy atlas."""
    from regiontag.workflows import session as session_workflow

    calls = []

    def fake_process_brain(images, config, session_dir):
        calls.append(sorted(images))
        reference = images["FLAIR"]
        from regiontag.atlas.tree import Atlas, Region

        labels = np.zeros(reference.shape, np.int16)
        labels[:12] = 1
        labels[12:] = 2
        atlas = Atlas("brain", "toy", nib.Nifti1Image(labels, reference.affine),
                      (Region("Cerebrum", {"left": (1,), "right": (2,)}, paired=True),))
        lesion = np.zeros(reference.shape, np.uint8)
        lesion[2:6, 2:6, 2:6] = 1
        lesion_img = nib.Nifti1Image(lesion, reference.affine)
        table = region_table(lesion_img, atlas.labels_img, atlas)
        return StageOutput(region_table=table, images={outputs.LESIONS_NII: lesion_img},
                           findings={"lesion_volume_ml": 1.0, "n_lesions": 1, "features": {"confluent": False}},
                           qc={"atlas": {"name": "brain", "space": "toy", "sha256": atlas.sha256}})

    monkeypatch.setattr(session_workflow, "process_brain", fake_process_brain)  # where it is called
    return calls


def make_session(tmp_path: Path) -> Session:
    """Session ``s1``: one small brain FLAIR under ``tmp_path/in`` (use with ``fake_brain_stage``)."""
    scan = write_scan(tmp_path / "in" / "s1" / "s1_FLAIR.nii.gz")
    return Session("s1", (ScanInput(scan, "FLAIR", "test", "brain", "test"),))


def test_outputs_follow_the_contract(tmp_path: Path, fake_brain_stage) -> None:
    result = run_session(make_session(tmp_path), tmp_path / "out", Config(), report=False)
    assert result.status == "ok", result.error
    session_dir = tmp_path / "out" / "s1"
    regions = pd.read_csv(session_dir / outputs.REGIONS_CSV)
    assert list(regions.columns) == outputs.REGION_COLUMNS
    assert set(regions["session"]) == {"s1"}
    scores = pd.read_csv(session_dir / outputs.SCORES_CSV)
    assert list(scores.columns) == outputs.SCORE_COLUMNS
    provenance = json.loads((session_dir / outputs.PROVENANCE_JSON).read_text())
    assert provenance["inputs"][0]["sha256"] and provenance["software"]["nibabel"]
    assert provenance["parameters"]["registration"]["random_seed"] == 42
    assert provenance["atlases"]["brain"]["space"] == "toy"
    findings = json.loads((session_dir / outputs.FINDINGS_JSON).read_text())
    assert findings["body_parts_imaged"] == ["brain"]
    assert json.loads((session_dir / outputs.STATUS_JSON).read_text())["status"] == "ok"
    assert not list(session_dir.glob(".*tmp*")), "temporary files left behind"


def test_resume_skips_complete_sessions_and_force_redoes(tmp_path: Path, fake_brain_stage) -> None:
    session = make_session(tmp_path)
    run_session(session, tmp_path / "out", Config(), report=False)
    assert is_complete(session, tmp_path / "out", Config())
    assert run_session(session, tmp_path / "out", Config(), report=False).status == "skipped"
    assert len(fake_brain_stage) == 1
    changed = Config.model_validate({"involvement": {"min_fraction": 0.5}})
    assert not is_complete(session, tmp_path / "out", changed)
    assert run_session(session, tmp_path / "out", Config(), force=True, report=False).status == "ok"
    assert len(fake_brain_stage) == 2


def test_bad_input_fails_alone_with_one_line_reason(tmp_path: Path) -> None:
    broken = tmp_path / "in" / "broken_FLAIR.nii.gz"
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"\x1f\x8b\x08\x00" + b"truncated gzip")
    session = Session("broken", (ScanInput(broken, "FLAIR", "test", "brain", "test"),))
    result = run_session(session, tmp_path / "out", Config(), report=False)
    assert result.status == "failed"
    assert "broken_FLAIR.nii.gz" in result.error and "\n" not in result.error
    status = json.loads((tmp_path / "out" / "broken" / outputs.STATUS_JSON).read_text())
    assert status["status"] == "failed" and status["error"] == result.error
    assert "Traceback" in (tmp_path / "out" / "broken" / outputs.LOG_FILE).read_text()
    assert not (tmp_path / "out" / "broken" / outputs.PROVENANCE_JSON).exists()


def test_unknown_sequence_is_a_clear_failure(tmp_path: Path) -> None:
    scan = write_scan(tmp_path / "in" / "scan0001.nii.gz")
    session = Session("scan0001", (ScanInput(scan, "unknown", "no rule", "brain", "test"),))
    result = run_session(session, tmp_path / "out", Config(), report=False)
    assert result.status == "failed"
    assert "cannot tell the sequence from the file name" in result.error


def test_results_carry_the_tables_in_memory(tmp_path: Path, fake_brain_stage) -> None:
    session = make_session(tmp_path)
    computed = run_session(session, tmp_path / "out", Config(), report=False)
    session_dir = tmp_path / "out" / "s1"
    for table, name, columns in ((computed.region_table, outputs.REGIONS_CSV, outputs.REGION_COLUMNS),
                                 (computed.scores, outputs.SCORES_CSV, outputs.SCORE_COLUMNS)):
        assert list(table.columns) == columns
        again = outputs.write_csv(table, tmp_path / "again" / name, columns)  # the same bytes as the file
        assert again.read_bytes() == (session_dir / name).read_bytes()
    skipped = run_session(session, tmp_path / "out", Config(), report=False)
    assert skipped.status == "skipped"
    pd.testing.assert_frame_equal(skipped.region_table, pd.read_csv(session_dir / outputs.REGIONS_CSV))
    pd.testing.assert_frame_equal(skipped.scores, pd.read_csv(session_dir / outputs.SCORES_CSV))
    restored = pickle.loads(pickle.dumps(computed))  # Dask sends results between processes
    pd.testing.assert_frame_equal(restored.region_table, computed.region_table)
    assert restored == computed  # the tables take no part in ==
    assert "region_table" not in repr(computed)


def test_failed_session_has_no_tables(tmp_path: Path) -> None:
    broken = tmp_path / "in" / "broken_FLAIR.nii.gz"
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"not a nifti")
    result = run_session(Session("broken", (ScanInput(broken, "FLAIR", "test", "brain", "test"),)),
                         tmp_path / "out", Config(), report=False)
    assert result.status == "failed" and result.region_table is None and result.scores is None


def test_log_holds_the_stage_messages(tmp_path: Path, fake_brain_stage) -> None:
    """Issue 19.7: log.txt says what ran, how long it took and what it found -- not one INFO line."""
    run_session(make_session(tmp_path), tmp_path / "out", Config(), report=True)
    lines = (tmp_path / "out" / "s1" / outputs.LOG_FILE).read_text().splitlines()
    messages = [line.split(": ", 1)[1] for line in lines if " INFO regiontag" in line]
    assert messages[0] == "session s1: 1 scan(s)"
    assert messages[1].startswith("loaded in ") and "s1_FLAIR.nii.gz (FLAIR, brain: test)" in messages[1]
    assert messages[2].startswith("brain stage: FLAIR (")
    assert messages[3].startswith("brain stage done in ") and messages[3].endswith(": 1 lesion(s), 1.00 ml; 0 warning(s)")
    assert messages[4].startswith("scoring: ") and " pattern(s) scored; " in messages[4]
    assert messages[5].startswith("report.html written in ")
    assert messages[-1] == "session s1 ok; provenance.json written last"


def test_a_retry_after_a_lost_attempt_is_in_provenance(tmp_path: Path, fake_brain_stage) -> None:
    """Issue 19.3: an attempt that never finished (lost worker) makes the next one attempt 2, in provenance too."""
    from regiontag.outputs.session_folder import SessionFolder

    folder = SessionFolder(tmp_path / "out" / "s1")
    folder.start_attempt().close()  # started, then its worker died: no status.json
    result = run_session(make_session(tmp_path), tmp_path / "out", Config(), report=False)
    assert result.status == "ok"
    provenance = folder.read_provenance()
    assert provenance["attempt"]["attempt"] == 2 and provenance["attempt"]["previous"]["attempt"] == 1
    status = folder.read_status(from_provenance=False)
    assert status["attempts"] == 2 and "never finished" in status["retry"]
    assert "WARNING regiontag: session s1: attempt 2: attempt 1 (started" in folder.log_path.read_text()
