"""Evaluation metrics on hand-made masks, and ``evaluate`` end to end on fake truth/results folders."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from regiontag.accuracy.metrics import (
    EVALUATION_COLUMNS,
    dice,
    evaluate,
    hausdorff95,
    label_dice,
    lesion_detection,
    pattern_outcome,
    region_flag_agreement,
    volume_difference_percent,
)
from scipy import ndimage
from scipy.spatial import cKDTree


def _cube(shape, low, high):
    mask = np.zeros(shape, dtype=bool)
    mask[tuple(slice(lo, hi) for lo, hi in zip(low, high))] = True
    return mask


def test_dice_known_values():
    truth = _cube((20, 20, 20), (0, 0, 0), (10, 10, 10))  # 1000 voxels
    result = _cube((20, 20, 20), (5, 0, 0), (15, 10, 10))  # 1000 voxels, 500 shared
    assert dice(truth, result) == pytest.approx(0.5)
    assert dice(truth, truth) == 1.0
    assert dice(truth, np.zeros_like(truth)) == 0.0
    assert np.isnan(dice(np.zeros_like(truth), np.zeros_like(truth)))


def test_hausdorff95_single_points_and_anisotropic_spacing():
    truth = _cube((12, 12, 12), (5, 5, 2), (6, 6, 3))
    result = _cube((12, 12, 12), (5, 5, 6), (6, 6, 7))
    assert hausdorff95(truth, result, (1.0, 1.0, 2.0)) == pytest.approx(8.0)
    assert hausdorff95(truth, truth, (1.0, 1.0, 2.0)) == 0.0
    assert np.isnan(hausdorff95(truth, np.zeros_like(truth), (1.0, 1.0, 1.0)))


def _brute_force_hd95(truth, result, spacing):
    """The MICCAI WMH definition with a KD-tree on outline points (independent of distance transforms)."""
    def outline(mask):
        return mask & ~ndimage.binary_erosion(mask, structure=ndimage.generate_binary_structure(3, 1))

    a = np.argwhere(outline(truth)) * spacing
    b = np.argwhere(outline(result)) * spacing
    a_to_b = cKDTree(b).query(a)[0]
    b_to_a = cKDTree(a).query(b)[0]
    return max(np.percentile(a_to_b, 95), np.percentile(b_to_a, 95))


def test_hausdorff95_matches_brute_force_on_irregular_masks():
    rng = np.random.default_rng(0)
    truth = ndimage.gaussian_filter(rng.standard_normal((40, 40, 20)), 3) > 0.05
    result = ndimage.binary_dilation(truth, iterations=2) & (ndimage.gaussian_filter(
        rng.standard_normal((40, 40, 20)), 4) > -0.1)
    spacing = np.array([0.9, 0.9, 3.0])
    expected = _brute_force_hd95(truth, result, spacing)
    assert hausdorff95(truth, result, tuple(spacing)) == pytest.approx(expected, abs=1e-6)
    # concentric cubes 3 voxels apart: the truth outline is everywhere exactly 3 mm inside
    inner = _cube((30, 30, 30), (8, 8, 8), (19, 19, 19))
    outer = _cube((30, 30, 30), (5, 5, 5), (22, 22, 22))
    assert hausdorff95(inner, outer, (1.0, 1.0, 1.0)) == pytest.approx(_brute_force_hd95(inner, outer, 1.0))
    assert hausdorff95(inner, outer, (1.0, 1.0, 1.0)) >= 3.0


def test_lesion_wise_recall_and_f1_known_values():
    shape = (30, 30, 10)
    truth = _cube(shape, (2, 2, 2), (5, 5, 5)) | _cube(shape, (10, 10, 2), (13, 13, 5)) | _cube(
        shape, (20, 20, 2), (23, 23, 5))
    # detects lesions 1 and 2 (partly), misses 3, plus one false positive
    result = _cube(shape, (3, 3, 3), (4, 4, 4)) | _cube(shape, (11, 11, 2), (16, 16, 5)) | _cube(
        shape, (25, 2, 2), (28, 5, 5))
    recall, f1, n_truth, n_result = lesion_detection(truth, result)
    assert (n_truth, n_result) == (3, 3)
    assert recall == pytest.approx(2 / 3) and f1 == pytest.approx(2 / 3)
    # 26-connectivity: voxels touching at a corner are one lesion
    diagonal = np.zeros(shape, dtype=bool)
    diagonal[5, 5, 5] = diagonal[6, 6, 6] = True
    assert lesion_detection(diagonal, diagonal)[2] == 1
    # no true lesions: recall 1 by the WMH definition, precision 0 -> F1 0
    assert lesion_detection(np.zeros(shape, bool), result)[:2] == (1.0, 0.0)
    assert volume_difference_percent(truth, result) == pytest.approx(abs(1 + 75 + 27 - 81) / 81 * 100)


def test_label_dice_and_region_flags():
    truth_labels = np.zeros((10, 10, 10), dtype=np.int16)
    truth_labels[:5] = 1
    truth_labels[5:] = 2
    result_labels = truth_labels.copy()
    result_labels[4] = 2  # one slab of label 1 given to label 2
    expected = np.mean([2 * 400 / (500 + 400), 2 * 500 / (500 + 600)])
    assert label_dice(truth_labels, result_labels) == pytest.approx(expected)

    truth = pd.DataFrame({"region": ["A", "A", "A", "B"], "side": ["left", "right", "both", "both"],
                          "involved": [True, False, True, False]})
    result = pd.DataFrame({"region": ["A", "A", "A", "B"], "side": ["left", "right", "both", "both"],
                           "involved": ["True", "True", "True", "False"]})
    flags = region_flag_agreement(truth, result)
    assert flags == {"region_accuracy": 0.75, "region_sensitivity": 1.0, "region_specificity": 0.5,
                     "n_region_rows": 4, "n_region_rows_missing": 0}
    # rows missing from the results count as not involved: A/both is then wrong
    partial = region_flag_agreement(truth, result.iloc[:1])
    assert (partial["region_accuracy"], partial["region_sensitivity"], partial["n_region_rows_missing"]) == (
        0.75, 0.5, 3)


def test_pattern_outcome():
    scores = pd.DataFrame({"pattern": ["a", "b", "c", "d"], "rank": [2, 1, 3, 4],
                           "match": [True, True, False, False]})
    outcome = pattern_outcome(scores, "a")
    assert (outcome["pattern_rank"], outcome["top1"], outcome["top3"], outcome["pattern_matched"]) == (
        2, False, True, True)
    assert pattern_outcome(scores, "d")["top3"] is False
    assert pattern_outcome(scores, "healthy")["false_match"] is True
    assert pattern_outcome(scores.assign(match=False), "healthy")["false_match"] is False


# --- end to end on fake folders ------------------------------------------------------------------------------
AFFINE = np.diag([1.0, 1.0, 2.0, 1.0])
REGIONS = pd.DataFrame({"region": ["WM", "WM", "WM", "Putamen"], "side": ["left", "right", "both", "both"]})


def _write_session(root: Path, session: str, lesions: np.ndarray, labels: np.ndarray, involved: list[bool],
                   extra: dict | None = None, scores: pd.DataFrame | None = None) -> None:
    root.mkdir(parents=True, exist_ok=True)
    folder = root / session
    folder.mkdir()
    nib.save(nib.Nifti1Image(lesions.astype(np.uint8), AFFINE), str(folder / "lesions.nii.gz"))
    nib.save(nib.Nifti1Image(labels.astype(np.int16), AFFINE), str(folder / "atlas_labels.nii.gz"))
    REGIONS.assign(involved=involved).to_csv(folder / "regions.csv", index=False)
    if extra is not None:
        (folder / "truth.json").write_text(json.dumps(extra))
    if scores is not None:
        scores.to_csv(folder / "scores.csv", index=False)
        (folder / "provenance.json").write_text("{}")


def test_evaluate_end_to_end(tmp_path):
    shape = (30, 30, 12)
    labels = np.zeros(shape, dtype=np.int16)
    labels[5:15, 5:25, 2:10] = 1
    labels[15:25, 5:25, 2:10] = 2
    lesion = _cube(shape, (8, 8, 4), (12, 12, 7)) | _cube(shape, (18, 8, 4), (22, 12, 7))
    half = _cube(shape, (8, 8, 4), (12, 12, 7))
    truth, results = tmp_path / "phantoms" / "truth", tmp_path / "results"
    scores_right = pd.DataFrame({"pattern": ["p1", "p2"], "rank": [1, 2], "match": [True, False]})
    scores_wrong = pd.DataFrame({"pattern": ["p2", "p3", "p1"], "rank": [1, 2, 3], "match": [True, False, False]})
    meta = {"body_part": "brain", "params": {"snr": 20.0, "slice_thickness_mm": 3.0}}
    _write_session(truth, "perfect", lesion, labels, [True, True, True, False],
                   {**meta, "pattern": "p1", "condition": "baseline"})
    _write_session(results, "perfect", lesion, labels, [True, True, True, False], scores=scores_right)
    _write_session(truth, "half", lesion, labels, [True, True, True, False],
                   {**meta, "pattern": "p1", "condition": "snr=5"})
    _write_session(results, "half", half, np.where(labels == 2, 0, labels), [True, False, True, False],
                   scores=scores_wrong)
    _write_session(truth, "control", np.zeros(shape), labels, [False] * 4, {**meta, "pattern": "healthy"})
    _write_session(results, "control", _cube(shape, (1, 1, 1), (2, 3, 2)), labels, [False] * 4,
                   scores=scores_wrong)
    _write_session(truth, "crashed", lesion, labels, [True, True, True, False], {**meta, "pattern": "p1"})

    table, summary = evaluate(tmp_path / "phantoms", results)
    assert list(table.columns) == EVALUATION_COLUMNS
    rows = table.set_index("session")
    assert rows.loc["perfect", "dice"] == 1.0 and rows.loc["perfect", "hd95_mm"] == 0.0
    assert rows.loc["perfect", "registration_dice"] == 1.0 and rows.loc["perfect", "top1"]
    assert rows.loc["half", "dice"] == pytest.approx(2 / 3)
    assert rows.loc["half", "lesion_recall"] == 0.5 and rows.loc["half", "lesion_f1"] == pytest.approx(2 / 3)
    assert rows.loc["half", "avd_percent"] == pytest.approx(50.0)
    assert rows.loc["half", "region_accuracy"] == 0.75 and rows.loc["half", "pattern_rank"] == 3
    assert rows.loc["half", "registration_dice"] == pytest.approx(0.5)
    assert rows.loc["half", "snr"] == 20.0 and rows.loc["half", "condition"] == "snr=5"
    assert rows.loc["control", "false_match"] and rows.loc["control", "false_positive_ml"] == pytest.approx(0.004)
    assert np.isnan(rows.loc["control", "dice"])
    assert rows.loc["crashed", "status"] == "missing"
    assert summary["n_sessions"] == 4 and summary["n_evaluated"] == 3 and summary["n_missing"] == 1
    assert summary["mean_dice"] == pytest.approx((1 + 2 / 3) / 2)
    assert summary["pattern_top1_accuracy"] == 0.5 and summary["pattern_top3_accuracy"] == 1.0
    assert summary["healthy_false_match_rate"] == 1.0
    assert summary["region_flag_accuracy"] == pytest.approx((4 + 3 + 4) / 12)
    assert set(summary["by_condition"]) == {"baseline", "snr=5"}
    assert summary["by_body_part"]["brain"]["n"] == 3
    assert summary["by_body_part"]["brain"]["healthy_false_match_rate"] == 1.0
    written = pd.read_csv(results / "evaluation.csv")
    assert list(written.columns) == EVALUATION_COLUMNS and len(written) == 4
    assert json.loads((results / "evaluation_summary.json").read_text())["n_missing"] == 1


def test_evaluate_command(tmp_path, capsys):
    from regiontag.cli.main import main

    assert main(["evaluate", str(tmp_path / "nothing"), str(tmp_path)]) == 2
    assert "no <session>/truth.json" in capsys.readouterr().err
