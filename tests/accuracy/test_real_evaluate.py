"""One real case against its truth: lesion, cord and pattern columns, failed sessions."""

from __future__ import annotations

import numpy as np
import pytest
from regiontag.accuracy.real import find_real_cases
from regiontag.accuracy.real_evaluate import REAL_COLUMNS, disease_ids, evaluate_case
from regiontag.outputs.session_folder import SessionFolder

from tests.accuracy.real_helpers import fake_results, image_case


def test_evaluate_case_metrics(tmp_path):
    case_dir = image_case(tmp_path)
    result_dir = tmp_path / "results" / "c1"
    fake_results(result_dir, case_dir)
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
    image_case(tmp_path)
    result_dir = tmp_path / "results" / "c1"
    SessionFolder(result_dir).write_status({"status": "failed", "error": "ValueError: bad", "seconds": 1.0})
    row = evaluate_case(find_real_cases(tmp_path / "cases")[0], result_dir)
    assert (row["status"], row["error"]) == ("failed", "ValueError: bad")
    assert row["result_body_part"] in ("brain", "cord") and "re-derived" in row["body_part_source"]
    assert np.isnan(row["lesion_dice"])


def test_disease_ids_map_patterns_to_their_disease():
    diseases = disease_ids()
    assert diseases["ms-brain"] == diseases["ms-cord"] == "multiple-sclerosis"
