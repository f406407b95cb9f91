"""The validation page ``OUT/validation/index.html`` and the batch report's ``extra_sections`` hook."""

from __future__ import annotations

import base64
import io
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from regiontag import outputs
from regiontag.accuracy.checks import check_thresholds
from regiontag.accuracy.metrics import EVALUATION_COLUMNS, summarise
from regiontag.accuracy.report import console_summary, write_validation
from regiontag.report.batch import ExtraSection, sections_page, write_batch_report
from regiontag.report.session import write_session_report

from tests.accuracy.fabricate import THRESHOLDS, passing_table
from tests.report.fabricate import fabricate_batch


def _png(width: int = 40, height: int = 30) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.full((height, width, 3), 200, np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


def _images(document: str) -> list[bytes]:
    return [base64.b64decode(data) for data in re.findall(r'src="data:image/png;base64,([^"]+)"', document)]


def _section_ids(document: str) -> list[str]:
    return re.findall(r'<section class="card" id="([^"]+)"', document)


@pytest.fixture(scope="module")
def suite_out(tmp_path_factory) -> Path:
    """``OUT`` of a validation run: ``results/`` holds a fabricated batch (3 sessions, one failed)."""
    out = tmp_path_factory.mktemp("validation") / "out"
    fabricate_batch(out / "results")
    for session in ("sub-01_ses-1", "sub-02_ses-1"):
        write_session_report(out / "results" / session)
    write_batch_report(out / "results")
    return out


def test_extra_sections_are_placed_escaped_and_embedded(tmp_path, suite_out):
    chart = tmp_path / "chart.png"
    chart.write_bytes(_png())
    sections = [
        ExtraSection("Before <all>", "<p>first</p>", [(chart, "a <chart>"), (_png(20, 10), "from bytes")],
                     position="start"),
        ("Appendix", "<p id='appendix-body'>last</p>"),
    ]
    document = write_batch_report(suite_out / "results", sections, path=tmp_path / "page.html").read_text()
    ids = _section_ids(document)
    assert ids[0] == "x-before-all" and ids[-1] == "x-appendix"
    assert ids[1:4] == ["overview", "sessions-section", "cohort"]
    assert "<h2>Before &lt;all&gt;</h2>" in document and "a &lt;chart&gt;" in document
    assert 'href="#x-before-all"' in document and 'href="#x-appendix"' in document  # table of contents
    images = _images(document)
    assert len(images) == 2 + 3  # the two extra figures, then the three cohort plots
    assert images[0] == chart.read_bytes() and images[1] == _png(20, 10)
    # the page lives outside the batch folder: session links are relative to the page and reach the reports
    link = re.search(r'href="([^"]*sub-01_ses-1/report\.html)"', document).group(1)
    assert not link.startswith("/") and link != "sub-01_ses-1/report.html"
    assert (tmp_path / link).resolve() == (suite_out / "results" / "sub-01_ses-1" / outputs.REPORT_HTML).resolve()


def test_extra_sections_reject_bad_input(tmp_path, suite_out):
    with pytest.raises(ValueError, match="position must be 'start' or 'end'"):
        ExtraSection("x", position="middle")
    with pytest.raises(TypeError, match="ExtraSection or \\(title, html\\)"):
        write_batch_report(suite_out / "results", ["just a string"], path=tmp_path / "a.html")
    not_png = tmp_path / "plot.png"
    not_png.write_bytes(b"GIF89a...")
    with pytest.raises(ValueError, match="not a PNG"):
        write_batch_report(suite_out / "results", [ExtraSection("x", figures=[(not_png, "c")])],
                           path=tmp_path / "b.html")


def test_sections_page_without_a_batch():
    document = sections_page("regiontag validation", "no <run>", [("Only", "<p>x</p>")], "scope")
    assert _section_ids(document) == ["x-only"]
    assert "no &lt;run&gt;" in document and "Research use only - not a medical device" in document


def _write(out: Path, results_dir: Path | None) -> dict[str, Path]:
    table = passing_table()
    summary = summarise(table)
    checks = check_thresholds(table, summary, THRESHOLDS)
    meta = {"profile": "quick", "seed": 0, "command": "regiontag validate OUT --profile quick",
            "timings": {"suite_s": 1.0}, "thresholds": THRESHOLDS.model_dump()}
    return write_validation(out / "validation", table, summary, checks, meta, results_dir=results_dir)


def test_validation_page_is_the_suite_batch_report_with_plots_on_top(suite_out):
    files = _write(suite_out, suite_out / "results")
    assert files["html"] == suite_out / "validation" / "index.html"
    document = files["html"].read_text(encoding="utf-8")
    assert _section_ids(document) == ["result", "metrics", "plots", "conditions", "patterns", "overview",
                                      "sessions-section", "cohort"]
    assert "<title>regiontag validation" in document
    images = _images(document)
    assert len(images) == 4 + 3  # accuracy plots (SNR, slice thickness, rotation, lesion size) + cohort plots
    plots = [files[f"plot_{factor}"].read_bytes() for factor in ("snr", "slice_thickness_mm", "rotation_deg",
                                                                 "lesion_size")]
    assert images[:4] == plots
    assert 'href="../results/index.html"' in document  # the suite's own batch report
    assert 'href="../results/sub-01_ses-1/report.html"' in document
    assert 'href="../results/sub-03_ses-1/log.txt"' in document  # failed session: its log
    body = re.search(r'id="sessions">.*?<tbody>(.*?)</tbody>', document, re.DOTALL).group(1)
    assert body.count("<tr") == 3
    assert re.search(r'id="thresholds">.*?</table>', document, re.DOTALL).group(0).count("<td>PASS</td>") == 5
    assert "http://" not in document.replace("http://www.w3.org", "") and "https://" not in document


def test_validation_page_without_results_keeps_the_validation_sections(tmp_path):
    document = _write(tmp_path, tmp_path / "missing-results")["html"].read_text(encoding="utf-8")
    assert _section_ids(document) == ["result", "metrics", "plots", "conditions", "patterns"]
    assert len(_images(document)) == 4


def _write_table(tmp_path: Path, table: pd.DataFrame) -> dict[str, Path]:
    summary = summarise(table)
    checks = check_thresholds(table, summary, THRESHOLDS)
    meta = {"profile": "quick", "seed": 0, "command": "regiontag validate OUT --profile quick --seed 0",
            "timings": {"suite_s": 10.0, "pipeline_s": 100.0}, "thresholds": THRESHOLDS.model_dump()}
    return write_validation(tmp_path / "validation", table, summary, checks, meta)


def test_write_validation_files(tmp_path):
    table = passing_table()
    table.loc[table["session"] == "b-h0", "false_match"] = True  # 1/4 healthy: fails
    files = _write_table(tmp_path, table)
    folder = tmp_path / "validation"
    assert {path.name for path in folder.iterdir()} == {
        "evaluation.csv", "summary.json", "validation_report.md", "index.html",
        "accuracy_vs_snr.png", "accuracy_vs_slice_thickness_mm.png", "accuracy_vs_rotation_deg.png",
        "accuracy_vs_lesion_size.png",
    }
    evaluation = pd.read_csv(files["evaluation"])
    assert list(evaluation.columns) == EVALUATION_COLUMNS and len(evaluation) == len(table)
    summary = json.loads(files["summary"].read_text())
    assert summary["passed"] is False
    verdicts = {check["key"]: check["passed"] for check in summary["checks"]}
    assert verdicts == {"lesion_dice_reference": True, "region_flag_accuracy": True,
                        "pattern_top1_accuracy": True, "healthy_false_match_rate": False, "failed_fraction": True}
    assert summary["thresholds"]["min_lesion_dice"] == 0.75
    assert summary["metrics"]["healthy_false_match_rate"] == pytest.approx(0.25)
    assert [row["level"] for row in summary["accuracy_by_factor"]["slice_thickness_mm"]] == ["3", "5", "7"]
    report = files["report"].read_text()
    assert "**Validation FAILED.**" in report
    assert "| healthy false-match rate | 0.250 | <= 0.05 | 4 | FAIL |" in report
    assert "| pattern top-1 accuracy | 0.900 | >= 0.9 | 10 | PASS |" in report
    assert "![accuracy against slice thickness (mm)](accuracy_vs_slice_thickness_mm.png)" in report
    assert "| brain | snr=10 | 2 | 0 | 0.700 |" in report  # condition breakdown
    assert "b-h0" in report and "healthy but a pattern matched" in report
    assert "lesion Dice below 0.75 at slice thickness (mm) = 5 (0.72), 7 (0.55)" in report
    page = files["html"].read_text()
    assert page.count('src="data:image/png;base64,') == 4
    assert "http://" not in page.replace("http://www.w3.org", "") and "https://" not in page


def test_console_summary_lists_every_threshold():
    table = passing_table()
    checks = check_thresholds(table, summarise(table), THRESHOLDS)
    text = console_summary(summarise(table), checks)
    lines = text.splitlines()
    assert lines[-1] == "validation PASSED"
    assert sum(line.startswith("PASS ") for line in lines) == 5
    assert "PASS pattern top-1 accuracy: 0.900 >= 0.9 (n=10)" in lines
