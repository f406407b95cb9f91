"""Session orchestration: output contract, provenance, failures as one-line reasons, resume."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from pipeline import outputs
from pipeline.config import Config
from pipeline.involvement import region_table
from pipeline.session import is_complete, run_session
from pipeline.stage import StageOutput
from pipeline.types import ScanInput, Session


def _write_scan(path: Path, value: float = 100.0) -> Path:
    rng = np.random.default_rng(0)
    data = (value + rng.normal(0, 5, (24, 24, 12))).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(data, np.diag([2.0, 2.0, 4.0, 1.0])), str(path))
    return path


@pytest.fixture()
def fake_brain_stage(monkeypatch: pytest.MonkeyPatch):
    """Replace the (slow, registration-based) brain stage with one that tags a fixed toy atlas."""
    from pipeline import brain

    calls = []

    def fake_process_brain(images, config, session_dir):
        calls.append(sorted(images))
        reference = images["FLAIR"]
        from pipeline.atlas.tree import Atlas, Region

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

    monkeypatch.setattr(brain, "process_brain", fake_process_brain)
    return calls


def _session(tmp_path: Path) -> Session:
    scan = _write_scan(tmp_path / "in" / "s1" / "s1_FLAIR.nii.gz")
    return Session("s1", (ScanInput(scan, "FLAIR", "test", "brain", "test"),))


def test_outputs_follow_the_contract(tmp_path: Path, fake_brain_stage) -> None:
    result = run_session(_session(tmp_path), tmp_path / "out", Config(), report=False)
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
    session = _session(tmp_path)
    run_session(session, tmp_path / "out", Config(), report=False)
    assert is_complete(session, tmp_path / "out", Config())
    assert run_session(session, tmp_path / "out", Config(), report=False).status == "skipped"
    assert len(fake_brain_stage) == 1
    changed = Config.model_validate({"involvement": {"min_fraction": 0.5}})
    assert not is_complete(session, tmp_path / "out", changed)
    assert run_session(session, tmp_path / "out", Config(), force=True, report=False).status == "ok"
    assert len(fake_brain_stage) == 2


def test_changed_input_is_not_complete(tmp_path: Path, fake_brain_stage) -> None:
    session = _session(tmp_path)
    run_session(session, tmp_path / "out", Config(), report=False)
    _write_scan(session.scans[0].path, value=120.0)
    assert not is_complete(session, tmp_path / "out", Config())


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
    scan = _write_scan(tmp_path / "in" / "scan0001.nii.gz")
    session = Session("scan0001", (ScanInput(scan, "unknown", "no rule", "brain", "test"),))
    result = run_session(session, tmp_path / "out", Config(), report=False)
    assert result.status == "failed"
    assert "cannot tell the sequence from the file name" in result.error
