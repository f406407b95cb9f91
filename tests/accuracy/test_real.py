"""The --profile real validation: case discovery, per-case metrics, mask-only cases, the real data (slow)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from regiontag import outputs
from regiontag.accuracy.real import (
    REAL_COLUMNS,
    evaluate_case,
    find_real_cases,
    run_real_validation,
    stage_inputs,
)
from regiontag.accuracy.real_cases import build_real_cases
from regiontag.cli.main import main as cli_main
from regiontag.outputs.session_folder import SessionFolder

MNI_4MM = np.array([[4.0, 0, 0, -90], [0, 4.0, 0, -126], [0, 0, 4.0, -72], [0, 0, 0, 1]])


def _save(data: np.ndarray, path: Path, affine=MNI_4MM) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(data.astype(np.float32), affine), str(path))
    return path


def _lesions() -> np.ndarray:
    mask = np.zeros((46, 55, 46), np.uint8)
    mask[18:21, 28:31, 26:28] = 1  # left periventricular-ish (18 voxels)
    mask[26:28, 28:30, 26:28] = 1  # right (8 voxels)
    return mask


def _image_case(root: Path) -> Path:
    case = root / "cases" / "c1"
    _save(np.ones((46, 55, 46)), case / "scan_FLAIR.nii.gz")
    _save(_lesions(), case / "truth_lesions.nii.gz")
    cord = np.zeros((46, 55, 46), np.uint8)
    cord[20:24, 20:24, 5:15] = 1
    _save(cord, case / "truth_cord.nii.gz")
    (case / "truth.json").write_text(json.dumps({"body_part": "brain", "pattern": "multiple-sclerosis",
                                                 "diagnosis": "multiple sclerosis"}))
    return case


def _fake_results(result_dir: Path, case_dir: Path) -> None:
    """What a finished session leaves: provenance (body part), status, lesions, cord mask, labels, scores."""
    result = _lesions()
    result[26:28, 28:30, 26:28] = 0  # the right lesion missed
    result[5:7, 5:7, 5:7] = 1  # 8 voxels false positive
    _save(result, result_dir / outputs.LESIONS_NII)
    cord = np.zeros((46, 55, 46), np.uint8)
    cord[20:24, 20:24, 5:10] = 1  # half of the true cord
    _save(cord, result_dir / outputs.CORD_MASK_NII)
    labels = np.zeros((46, 55, 46), np.int32)
    labels[:10] = 41
    _save(labels, result_dir / outputs.ATLAS_LABELS_NII)
    pd.DataFrame({"index": [41], "name": ["cerebral_wm/juxtacortical/frontal [left]"]}).to_csv(
        result_dir / outputs.ATLAS_LABELS_TSV, sep="\t", index=False)
    pd.DataFrame({"pattern": ["small-vessel-disease", "ms-brain"], "disease": ["SVD", "MS"], "rank": [1, 2],
                  "match": [False, True]}).to_csv(result_dir / outputs.SCORES_CSV, index=False)
    outputs.write_json({"lesion_volume_ml": {"brain": 1.664}}, result_dir / outputs.FINDINGS_JSON)
    outputs.write_json({"inputs": [{"path": str(case_dir / "scan_FLAIR.nii.gz"), "body_part": "brain",
                                    "body_part_source": "image: a head"}]}, result_dir / outputs.PROVENANCE_JSON)
    SessionFolder(result_dir).write_status({"status": "warning", "error": "check", "seconds": 12.0})


def test_find_real_cases_and_stage_inputs(tmp_path):
    case = _image_case(tmp_path)
    mask_case = tmp_path / "cases" / "m1"
    _save(_lesions(), mask_case / "truth_lesions.nii.gz")
    (tmp_path / "cases" / "no-truth").mkdir()  # not a case
    cases = find_real_cases(tmp_path / "cases")
    assert [(c.name, c.kind) for c in cases] == [("c1", "images"), ("m1", "mask")]
    assert cases[0].images == (case / "scan_FLAIR.nii.gz",) and cases[0].cord == case / "truth_cord.nii.gz"
    inputs = stage_inputs(cases, tmp_path / "out" / "inputs")
    assert sorted(p.name for p in (inputs / "c1").iterdir()) == ["scan_FLAIR.nii.gz"]  # truth never staged
    assert not (inputs / "m1").exists()
    with pytest.raises(FileNotFoundError, match="no case folder"):
        find_real_cases(tmp_path / "cases" / "no-truth")


def test_evaluate_case_metrics(tmp_path):
    case_dir = _image_case(tmp_path)
    result_dir = tmp_path / "results" / "c1"
    _fake_results(result_dir, case_dir)
    row = evaluate_case(find_real_cases(tmp_path / "cases")[0], result_dir)
    assert list(row) == REAL_COLUMNS
    assert (row["status"], row["error"], row["result_body_part"], row["body_part_right"]) == ("warning", "check", "brain", True)
    voxel_ml = 0.064
    assert row["truth_lesion_ml"] == pytest.approx(26 * voxel_ml)
    assert row["lesion_dice"] == pytest.approx(2 * 18 / (26 + 26))
    assert (row["lesion_recall"], row["lesion_precision"], row["lesion_f1"]) == (0.5, 0.5, 0.5)
    assert row["abs_volume_difference_ml"] == pytest.approx(0.0)
    assert row["false_positive_ml"] == pytest.approx(8 * voxel_ml)
    assert row["false_positive_by_region"] == f"cerebral_wm/juxtacortical {8 * voxel_ml:.2f}"
    assert row["cord_dice"] == pytest.approx(2 * 80 / (160 + 80))
    assert (row["top_pattern"], row["top_pattern_right"], row["truth_pattern_rank"]) == ("small-vessel-disease", False, 2)
    assert row["result_lesion_ml"] == pytest.approx(26 * voxel_ml)


def test_failed_case_is_a_row_with_the_body_part_decided_again(tmp_path):
    _image_case(tmp_path)
    result_dir = tmp_path / "results" / "c1"
    SessionFolder(result_dir).write_status({"status": "failed", "error": "ValueError: bad", "seconds": 1.0})
    row = evaluate_case(find_real_cases(tmp_path / "cases")[0], result_dir)
    assert (row["status"], row["error"]) == ("failed", "ValueError: bad")
    assert row["result_body_part"] in ("brain", "cord") and "re-derived" in row["body_part_source"]
    assert np.isnan(row["lesion_dice"])


def _mask_case(folder: Path, truth: dict | None) -> None:
    _save(_lesions(), folder / "truth_lesions.nii.gz")
    if truth is not None:
        (folder / "truth.json").write_text(json.dumps(truth))


def test_evaluate_only_reports_what_finished(tmp_path):
    case_dir = _image_case(tmp_path)
    _mask_case(tmp_path / "cases" / "m1", {"body_part": "brain", "space": "MNI152"})
    _fake_results(tmp_path / "out" / "results" / "c1", case_dir)
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
    _save(_lesions(), mask_case / "truth_lesions.nii.gz")
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
