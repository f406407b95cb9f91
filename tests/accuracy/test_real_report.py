"""Summary, Markdown report and console table of the real-data profile."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from regiontag.accuracy.real import REAL_COLUMNS
from regiontag.accuracy.real_report import (
    real_console_summary,
    real_markdown,
    summarise_real,
    write_real_validation,
)


def _table() -> pd.DataFrame:
    rows = [
        {"case": "mni-a", "kind": "images", "status": "ok", "truth_body_part": "brain", "result_body_part": "brain",
         "body_part_right": True, "lesion_dice": 0.6, "lesion_recall": 0.5, "lesion_precision": 0.25, "lesion_f1": 1 / 3,
         "abs_volume_difference_ml": 2.0, "false_positive_ml": 1.0, "top_pattern": "ms-brain", "top_pattern_right": True,
         "false_positive_by_region": "cerebral_wm/juxtacortical 0.80; cortex 0.20"},
        {"case": "cord-b", "kind": "images", "status": "warning", "truth_body_part": "cord", "result_body_part": "brain",
         "body_part_right": False, "cord_dice": np.nan, "error": "body part from the image uncertain"},
        {"case": "mask-c", "kind": "mask", "status": "ok", "truth_body_part": "brain", "result_body_part": "brain",
         "body_part_right": True, "top_pattern": "b12-leukoencephalopathy", "top_pattern_right": False},
        {"case": "cord-d", "kind": "images", "status": "failed", "truth_body_part": "cord", "error": "ValueError: x"},
    ]
    return pd.DataFrame(rows).reindex(columns=REAL_COLUMNS)


def test_summarise_real():
    summary = summarise_real(_table())
    assert (summary["n_cases"], summary["n_image_cases"], summary["n_mask_cases"]) == (4, 3, 1)
    assert (summary["n_finished"], summary["n_warning"], summary["n_failed"]) == (3, 1, 1)
    assert summary["body_part_accuracy"] == pytest.approx(2 / 3)  # the failed case has no decision recorded
    assert summary["mean_lesion_dice"] == pytest.approx(0.6) and summary["mean_lesion_f1"] == pytest.approx(1 / 3)
    assert summary["mean_cord_dice"] is None
    assert summary["top_pattern_accuracy"] == pytest.approx(0.5) and summary["top_pattern_accuracy_masks"] == 0.0
    assert summary["failed_cases"] == ["cord-d"] and summary["wrong_body_part"] == ["cord-b"]


def test_markdown_and_console(tmp_path):
    table = _table()
    summary = summarise_real(table)
    text = real_markdown(table, summary, {"command": "regiontag validate --profile real X", "cases_dir": "X"})
    assert text.startswith("# regiontag validation on real scans")
    assert "| body part right | 0.667 |" in text
    assert "| mni-a | ok | brain | brain | 0.600 | 0.50 | 0.25 | 0.33 |" in text
    assert "| mni-a | cerebral_wm/juxtacortical 0.80; cortex 0.20 |" in text
    assert "| cord-d | failed | ValueError: x |" in text
    console = real_console_summary(table, summary)
    assert "mask-c" in console and "b12-leukoencephalopathy" in console
    files = write_real_validation(tmp_path, table, summary, {"profile": "real"}, REAL_COLUMNS)
    assert list(pd.read_csv(files["evaluation"]).columns) == REAL_COLUMNS
    assert json.loads(files["summary"].read_text())["metrics"]["n_cases"] == 4
    assert files["report"].read_text() == real_markdown(table, summary, {"profile": "real"})
