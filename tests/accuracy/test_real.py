"""The --profile real validation: case discovery, per-case metrics, mask-only cases, the real data (slow)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pandas as pd
import pytest
from regiontag import outputs
from regiontag.accuracy.real import (
    REAL_COLUMNS,
    find_real_cases,
    run_real_validation,
    stage_inputs,
)
from regiontag.accuracy.real_cases import build_real_cases
from regiontag.cli.main import main as cli_main

from tests.accuracy.real_helpers import fake_results, image_case, lesions, save


def test_find_real_cases_and_stage_inputs(tmp_path):
    case = image_case(tmp_path)
    mask_case = tmp_path / "cases" / "m1"
    save(lesions(), mask_case / "truth_lesions.nii.gz")
    (tmp_path / "cases" / "no-truth").mkdir()  # not a case
    cases = find_real_cases(tmp_path / "cases")
    assert [(c.name, c.kind) for c in cases] == [("c1", "images"), ("m1", "mask")]
    assert cases[0].images == (case / "scan_FLAIR.nii.gz",) and cases[0].cord == case / "truth_cord.nii.gz"
    inputs = stage_inputs(cases, tmp_path / "out" / "inputs")
    assert sorted(p.name for p in (inputs / "c1").iterdir()) == ["scan_FLAIR.nii.gz"]  # truth never staged
    assert not (inputs / "m1").exists()
    with pytest.raises(FileNotFoundError, match="no case folder"):
        find_real_cases(tmp_path / "cases" / "no-truth")


def _mask_case(folder: Path, truth: dict | None) -> None:
    save(lesions(), folder / "truth_lesions.nii.gz")
    if truth is not None:
        (folder / "truth.json").write_text(json.dumps(truth))


def test_evaluate_only_reports_what_finished(tmp_path):
    case_dir = image_case(tmp_path)
    _mask_case(tmp_path / "cases" / "m1", {"body_part": "brain", "space": "MNI152"})
    fake_results(tmp_path / "out" / "results" / "c1", case_dir)
    result = run_real_validation(tmp_path / "cases", tmp_path / "out", evaluate_only=True)
    assert list(result.table["case"]) == ["c1", "m1"]
    assert list(result.table["status"]) == ["warning", "missing"]  # nothing run: the mask was never tagged
    assert result.exit_code == 1


def test_run_real_validation_mask_only_cases(tmp_path):
    _mask_case(tmp_path / "cases" / "m1", {"body_part": "brain", "space": "MNI152", "pattern": "multiple-sclerosis"})
    _mask_case(tmp_path / "cases" / "m2", None)  # no truth.json space: a failed row, not a crash
    result = run_real_validation(tmp_path / "cases", tmp_path / "out")
    table = result.table.set_index("case")
    assert table.loc["m1", "status"] in ("ok", "warning")
    assert table.loc["m1", "result_body_part"] == "brain" and bool(table.loc["m1", "body_part_right"])
    assert isinstance(table.loc["m1", "top_pattern"], str) and table.loc["m1", "top_pattern"]
    assert table.loc["m1", "truth_pattern_rank"] >= 1
    assert table.loc["m2", "status"] == "failed" and "template space" in table.loc["m2", "error"]
    assert result.exit_code == 1  # one case failed
    csv = pd.read_csv(result.files["evaluation"])
    assert list(csv.columns) == REAL_COLUMNS and len(csv) == 2
    report = result.files["report"].read_text()
    assert "## Per case" in report and "| m1 |" in report
    assert result.summary["n_cases"] == 2 and result.summary["failed_cases"] == ["m2"]
    assert (tmp_path / "out" / "results" / "m1" / outputs.SCORES_CSV).is_file()


def test_cli_profile_real(tmp_path, capsys):
    mask_case = tmp_path / "cases" / "m1"
    save(lesions(), mask_case / "truth_lesions.nii.gz")
    (mask_case / "truth.json").write_text(json.dumps({"body_part": "brain", "space": "MNI152"}))
    assert cli_main(["validate", "--profile", "real", str(tmp_path / "cases"), "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "body part right" in out and "m1" in out
    assert (tmp_path / "cases_validation" / "validation" / "real_report.md").is_file()
    assert cli_main(["validate", str(tmp_path / "phantoms"), "--output", str(tmp_path / "x")]) == 2
    assert "--output is for --profile real only" in capsys.readouterr().err


@pytest.mark.slow
@pytest.mark.real
def test_real_profile_on_the_development_data(shared_dir, tmp_path):
    """Every real case gets a row, the right body part and metrics in [0, 1]; mask-only cases a top pattern.

    Brain sessions take minutes each: set REGIONTAG_REAL_VALIDATION_OUT to a folder to resume a run there.
    """
    cases = build_real_cases(shared_dir / "data" / "real", tmp_path / "cases")
    out = Path(os.environ.get("REGIONTAG_REAL_VALIDATION_OUT") or tmp_path / "out")
    result = run_real_validation(tmp_path / "cases", out, workers=1, quiet=True)
    table = result.table
    assert sorted(table["case"]) == sorted(case.name for case in cases)
    assert table["body_part_right"].map(bool).all(), table[["case", "truth_body_part", "result_body_part"]]
    assert table["status"].isin(["ok", "warning"]).all(), table[["case", "status", "error"]]
    for column in ("lesion_dice", "lesion_recall", "lesion_precision", "lesion_f1", "cord_dice"):
        values = pd.to_numeric(table[column], errors="coerce").dropna()
        assert ((values >= 0) & (values <= 1)).all(), column
    lesion_cases = table[table["kind"].eq("images") & table["truth_lesion_ml"].notna()]
    assert len(lesion_cases) >= 2 and lesion_cases["lesion_dice"].notna().all()
    cord_cases = table[table["cord_dice"].notna()]
    assert len(cord_cases) >= 3
    masks = table[table["kind"] == "mask"]
    assert len(masks) >= 15 and masks["top_pattern"].map(lambda p: isinstance(p, str) and bool(p)).all()
    assert result.exit_code == 0


def test_real_profile_has_no_phantom_plan():
    from regiontag.accuracy.suite import REAL_PROFILE, suite_plan

    with pytest.raises(ValueError, match="real scans, not a phantom suite"):
        suite_plan(REAL_PROFILE)
