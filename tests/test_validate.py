"""``regiontag validate``: profiles, thresholds, plots and reports on fabricated evaluation tables,
and the quick suite end to end (slow)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipeline.cli import build_parser, main
from pipeline.config import ValidationConfig
from pipeline.evaluate import EVALUATION_COLUMNS, summarise
from pipeline.phantoms.suite import suite_plan
from pipeline.validate import (
    PROFILES,
    ThresholdCheck,
    check_thresholds,
    condition_breakdown,
    interleaved,
    per_pattern_top1,
    reference_dice,
    run_validation,
    validation_plan,
)
from pipeline.validate_plots import (
    accuracy_curve,
    breaking_points,
    write_accuracy_plots,
)
from pipeline.validate_report import console_summary, write_validation

THRESHOLDS = ValidationConfig()
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


# --- fabricated evaluation tables ----------------------------------------------------------------------------
def _row(session: str, condition: str = "baseline", pattern: str = "ms-brain", *, body_part: str = "brain",
         status: str = "ok", dice: float = 0.8, region_accuracy: float = 0.97, region_rows: int = 40,
         top1: bool | None = True, false_match: bool | None = None, snr: float = 20.0, thickness: float = 3.0,
         rotation: float = 7.0, lesion_size: str = "medium", lesion_ml: float = 5.0) -> dict:
    row = {column: np.nan for column in EVALUATION_COLUMNS}
    healthy = pattern == "healthy"
    row.update(
        session=session, status=status, pattern=pattern, body_part=body_part, condition=condition,
        truth_lesion_ml=0.0 if healthy else lesion_ml, n_region_rows=region_rows, region_accuracy=region_accuracy,
        snr=snr, slice_thickness_mm=thickness, rotation_deg=rotation, lesion_size=lesion_size, note="",
    )
    if status not in ("ok", "warning"):
        row.update(region_accuracy=np.nan, n_region_rows=np.nan)
        return row
    if healthy:
        row.update(false_match=bool(false_match), false_positive_ml=0.0)
    else:
        row.update(dice=dice, lesion_f1=dice, hd95_mm=3.0, top1=top1, top3=True, pattern_rank=1 if top1 else 2)
    return row


def passing_table() -> pd.DataFrame:
    """A suite whose metrics pass every default threshold, with curves that break at 7 mm and SNR 5."""
    rows = [
        _row("b-ms-base", dice=0.82, rotation=3.0),
        _row("b-svd-base", pattern="small-vessel-disease", dice=0.78, rotation=12.0),
        _row("b-snr-10", "snr=10", snr=10.0, dice=0.70),
        _row("b-snr-5", "snr=5", snr=5.0, dice=0.40, top1=False, region_accuracy=0.9),
        _row("b-st-5", "slice_thickness_mm=5", thickness=5.0, dice=0.72),
        _row("b-st-7", "slice_thickness_mm=7", thickness=7.0, dice=0.55),
        _row("b-rot-25", "rotation_deg=25", rotation=22.0, dice=0.79),
        _row("b-small", "lesion_size=small", lesion_size="small", dice=0.5, lesion_ml=0.02),
        _row("b-h0", pattern="healthy", false_match=False, region_accuracy=1.0),
        _row("b-h1", pattern="healthy", false_match=False, region_accuracy=1.0),
        _row("b-h-snr", "snr=10", pattern="healthy", snr=10.0, false_match=False, region_accuracy=1.0),
        _row("c-ms", pattern="ms-cord", body_part="cord", snr=np.nan, thickness=np.nan, rotation=np.nan,
             lesion_size=np.nan, dice=0.6),
        _row("c-h", pattern="healthy", body_part="cord", snr=np.nan, thickness=np.nan, rotation=np.nan,
             lesion_size=np.nan, false_match=False, region_accuracy=1.0),
    ]
    # top-1: 9 lesion sessions, one miss -> 8/9 < 0.9; add one more hit to pass: 9/10
    rows.append(_row("b-wernicke", pattern="wernicke-encephalopathy", dice=0.9, rotation=8.0))
    return pd.DataFrame(rows, columns=EVALUATION_COLUMNS)


def _checks(table: pd.DataFrame) -> dict[str, ThresholdCheck]:
    return {check.key: check for check in check_thresholds(table, summarise(table), THRESHOLDS)}


# --- profiles -------------------------------------------------------------------------------------------------
def test_profiles_cover_every_pattern_and_condition():
    from pipeline.patterns.library import load_library

    quick = validation_plan("quick", seed=3)
    assert [(s.session, s.seed) for s in quick] == [(s.session, s.seed) for s in suite_plan("quick", 3)]
    assert [s.seed for s in validation_plan("quick", seed=4)] != [s.seed for s in quick]
    library = {(pattern.id, pattern.body_part) for pattern in load_library().patterns}
    covered = {(s.pattern, s.body_part) for s in quick}
    assert library <= covered and ("healthy", "brain") in covered
    # every hard condition runs on a lesion pattern and on a healthy control
    for condition in {s.condition for s in quick} - {"baseline"}:
        patterns = {s.pattern for s in quick if s.condition == condition}
        assert patterns - {"healthy"}, condition
    assert sum(s.pattern == "healthy" for s in quick) >= 3
    full_conditions = {s.condition for s in validation_plan("full")}
    assert {"snr=5", "slice_thickness_mm=7", "rotation_deg=25", "lesion_size=confluent"} <= full_conditions
    from pipeline.commands.validate import PROFILES as CLI_PROFILES

    assert CLI_PROFILES == PROFILES == ("quick", "full", "patterns")
    with pytest.raises(ValueError, match="profile must be one of"):
        validation_plan("huge")


# --- thresholds -----------------------------------------------------------------------------------------------
def test_reference_dice_uses_finished_lesion_sessions_at_snr20_3mm():
    table = pd.DataFrame([
        _row("a", dice=0.9), _row("b", dice=0.7),
        _row("c", "snr=10", snr=10.0, dice=0.1),  # other SNR
        _row("d", "slice_thickness_mm=5", thickness=5.0, dice=0.1),  # other slices
        _row("e", pattern="healthy", false_match=False),  # no lesion
        _row("f", status="failed"),  # not finished (counted by the failed-sessions check)
        _row("g", pattern="ms-cord", body_part="cord", snr=np.nan, thickness=np.nan, dice=0.1),
    ], columns=EVALUATION_COLUMNS)
    assert reference_dice(table, 20.0, 3.0) == (pytest.approx(0.8), 2)
    table.loc[table["session"] == "b", "dice"] = np.nan  # finished but no lesion mask: Dice 0
    assert reference_dice(table, 20.0, 3.0) == (pytest.approx(0.45), 2)
    assert reference_dice(table, 40.0, 3.0) == (None, 0)


def test_thresholds_pass_on_a_good_suite_and_each_fails_alone():
    table = passing_table()
    checks = _checks(table)
    assert set(checks) == {"lesion_dice_reference", "region_flag_accuracy", "pattern_top1_accuracy",
                           "healthy_false_match_rate", "failed_fraction"}
    assert all(check.passed for check in checks.values()), [c.line() for c in checks.values()]
    # reference Dice: SNR 20 and 3 mm, including the small-lesion and rotation sessions
    assert checks["lesion_dice_reference"].value == pytest.approx(np.mean([0.82, 0.78, 0.79, 0.5, 0.9]))
    assert checks["lesion_dice_reference"].n == 5
    assert checks["pattern_top1_accuracy"].value == pytest.approx(9 / 10)
    assert checks["healthy_false_match_rate"].value == 0.0 and checks["healthy_false_match_rate"].n == 4

    low_dice = passing_table()
    low_dice.loc[low_dice["session"] == "b-ms-base", "dice"] = 0.2
    assert not _checks(low_dice)["lesion_dice_reference"].passed

    regions = passing_table()
    regions.loc[regions["session"] == "b-ms-base", "region_accuracy"] = 0.0
    failing = _checks(regions)
    assert not failing["region_flag_accuracy"].passed
    assert failing["lesion_dice_reference"].passed and failing["pattern_top1_accuracy"].passed

    top1 = passing_table()
    top1.loc[top1["session"] == "b-svd-base", "top1"] = False
    assert _checks(top1)["pattern_top1_accuracy"].value == pytest.approx(8 / 10)
    assert not _checks(top1)["pattern_top1_accuracy"].passed

    false_match = passing_table()
    false_match.loc[false_match["session"] == "c-h", "false_match"] = True
    check = _checks(false_match)["healthy_false_match_rate"]
    assert check.value == pytest.approx(0.25) and not check.passed
    assert check.line() == "FAIL healthy false-match rate: 0.250 <= 0.05 (n=4)"

    failed = pd.concat([passing_table(), pd.DataFrame([_row("x", status="failed")])], ignore_index=True)
    assert not _checks(failed)["failed_fraction"].passed


def test_each_pattern_with_enough_phantoms_of_a_condition_is_checked_on_its_own():
    rows = [_row(f"ms-{i}", top1=i != 0) for i in range(12)]  # 11/12 = 0.917
    rows += [_row(f"svd-{i}", pattern="small-vessel-disease", top1=i > 1) for i in range(10)]  # 8/10
    rows += [_row(f"x-{i}", pattern="x-ald-parieto-occipital", top1=False) for i in range(3)]  # too few
    rows += [_row(f"ms-snr-{i}", "snr=5", snr=5.0, top1=False) for i in range(5)]  # too few at SNR 5
    rows += [_row(f"h-{i}", pattern="healthy", false_match=False) for i in range(12)]
    table = pd.DataFrame(rows, columns=EVALUATION_COLUMNS)
    checks = _checks(table)
    each = {key: check for key, check in checks.items() if key.startswith("pattern_top1/")}
    assert set(each) == {"pattern_top1/brain/ms-brain at baseline", "pattern_top1/brain/small-vessel-disease at baseline"}
    ms = each["pattern_top1/brain/ms-brain at baseline"]
    assert ms.passed and ms.n == 12
    svd = each["pattern_top1/brain/small-vessel-disease at baseline"]
    assert not svd.passed
    assert svd.line() == "FAIL pattern top-1 of brain/small-vessel-disease at baseline: 0.800 >= 0.9 (n=10)"
    loose = per_pattern_top1(table, 3)
    assert loose["brain/x-ald-parieto-occipital at baseline"] == (0.0, 3)
    assert loose["brain/ms-brain at snr=5"] == (0.0, 5)


def test_unmeasurable_threshold_fails():
    table = pd.DataFrame([_row("a", pattern="healthy", false_match=False)], columns=EVALUATION_COLUMNS)
    checks = _checks(table)
    assert checks["lesion_dice_reference"].value is None
    assert not checks["lesion_dice_reference"].passed
    assert "not measured" in checks["lesion_dice_reference"].line()
    assert checks["lesion_dice_reference"].as_dict()["passed"] is False
    assert not checks["pattern_top1_accuracy"].passed


# --- breakdown and curves -------------------------------------------------------------------------------------
def test_condition_breakdown_means_per_condition():
    breakdown = condition_breakdown(passing_table())
    assert list(breakdown.columns[:4]) == ["body_part", "condition", "n", "n_failed"]
    brain = breakdown[breakdown["body_part"] == "brain"]
    assert brain.iloc[0]["condition"] == "baseline"  # baseline first
    baseline = brain[brain["condition"] == "baseline"].iloc[0]
    assert baseline["n"] == 5
    assert baseline["dice"] == pytest.approx(np.mean([0.82, 0.78, 0.9]))
    assert baseline["top1"] == 1.0 and baseline["healthy_false_match"] == 0.0
    snr10 = brain[brain["condition"] == "snr=10"].iloc[0]
    assert snr10["n"] == 2 and snr10["dice"] == pytest.approx(0.70)
    assert set(breakdown["body_part"]) == {"brain", "cord"}


def test_full_profile_runs_cord_first_then_round_robin_over_patterns():
    plan = validation_plan("full")
    order = interleaved(plan)
    assert sorted(s.session for s in order) == sorted(s.session for s in plan)
    n_cord = sum(s.body_part == "cord" for s in plan)
    assert {s.body_part for s in order[:n_cord]} == {"cord"}
    brain_patterns = {s.pattern for s in plan if s.body_part == "brain"}
    first_brain = order[n_cord:n_cord + len(brain_patterns)]
    assert {s.pattern for s in first_brain} == brain_patterns  # every pattern before any second session
    assert all(s.condition == "baseline" for s in first_brain)


def test_pattern_breakdown_counts_every_phantom_of_a_pattern():
    breakdown = condition_breakdown(passing_table(), by="pattern")
    assert list(breakdown.columns[:3]) == ["body_part", "pattern", "n"]
    brain = breakdown[breakdown["body_part"] == "brain"].set_index("pattern")
    assert brain.index[0] == "healthy"  # controls first
    assert brain.loc["ms-brain", "n"] == 7  # every condition of the pattern
    assert brain.loc["ms-brain", "top1"] == pytest.approx(6 / 7)  # the SNR 5 phantom missed
    assert brain.loc["healthy", "healthy_false_match"] == 0.0 and np.isnan(brain.loc["healthy", "top1"])


def test_accuracy_curves_use_baseline_plus_one_factor():
    table = passing_table()
    snr = accuracy_curve(table, "snr")
    assert snr["level"].tolist() == ["5", "10", "20"]
    assert snr["n"].tolist() == [1, 2, 5]  # the baseline brain sessions, cord excluded
    assert snr.set_index("level").loc["20", "dice"] == pytest.approx(np.mean([0.82, 0.78, 0.9]))
    assert snr.set_index("level").loc["5", "top1"] == 0.0
    thickness = accuracy_curve(table, "slice_thickness_mm")
    assert thickness["level"].tolist() == ["3", "5", "7"]
    rotation = accuracy_curve(table, "rotation_deg")  # actual rotation in 5-degree bins
    assert rotation["level"].tolist() == ["0-5", "5-10", "10-15", "20-25"]
    size = accuracy_curve(table, "lesion_size")  # healthy controls have no lesion size
    assert size["level"].tolist() == ["small", "medium"] and size["n"].tolist() == [1, 3]
    sentences = breaking_points({"slice_thickness_mm": thickness, "snr": snr}, THRESHOLDS)
    assert "lesion Dice below 0.75 at slice thickness (mm) = 5 (0.72), 7 (0.55)" in sentences
    assert any(s.startswith("pattern top-1 below 0.9 at SNR = 5 (0.00)") for s in sentences)
    with pytest.raises(ValueError, match="unknown factor"):
        accuracy_curve(table, "colour")


def test_plots_are_pngs_that_show_data(tmp_path):
    import matplotlib.image

    _, paths = write_accuracy_plots(passing_table(), THRESHOLDS, tmp_path)
    assert set(paths) == {"snr", "slice_thickness_mm", "rotation_deg", "lesion_size"}
    for factor, path in paths.items():
        assert path.name == f"accuracy_vs_{factor}.png"
        assert path.read_bytes()[:8] == PNG_MAGIC
        pixels = matplotlib.image.imread(path)
        assert pixels.shape[0] >= 300 and pixels.shape[1] >= 500
        # the Dice curve colour (#e53e3e) is drawn
        red = (np.abs(pixels[..., 0] - 0xE5 / 255) < 0.05) & (np.abs(pixels[..., 1] - 0x3E / 255) < 0.05)
        assert red.sum() > 50, factor
    # an empty table still gives a (labelled) figure
    empty = passing_table().iloc[0:0]
    _, empty_paths = write_accuracy_plots(empty, THRESHOLDS, tmp_path / "empty")
    assert all(path.read_bytes()[:8] == PNG_MAGIC for path in empty_paths.values())


# --- written files --------------------------------------------------------------------------------------------
def _write(tmp_path: Path, table: pd.DataFrame) -> dict[str, Path]:
    summary = summarise(table)
    checks = check_thresholds(table, summary, THRESHOLDS)
    meta = {"profile": "quick", "seed": 0, "command": "regiontag validate OUT --profile quick --seed 0",
            "timings": {"suite_s": 10.0, "pipeline_s": 100.0}, "thresholds": THRESHOLDS.model_dump()}
    return write_validation(tmp_path / "validation", table, summary, checks, meta)


def test_write_validation_files(tmp_path):
    table = passing_table()
    table.loc[table["session"] == "b-h0", "false_match"] = True  # 1/4 healthy: fails
    files = _write(tmp_path, table)
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


# --- command line ---------------------------------------------------------------------------------------------
def test_cli_registers_validate_and_rejects_bad_arguments(tmp_path, capsys):
    args = build_parser().parse_args(["validate", str(tmp_path / "out"), "--profile", "full", "--workers", "2"])
    assert args.profile == "full" and args.workers == 2 and args.seed == 0 and not args.force
    assert main(["validate", str(tmp_path / "out"), "--workers", "0"]) == 2
    assert "--workers must be at least 1" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("validation:\n  min_lesion_dice: 1.5\n")
    assert main(["validate", str(tmp_path / "out"), "--config", str(bad)]) == 2
    error = capsys.readouterr().err
    assert str(bad) in error and "validation.min_lesion_dice" in error
    assert not (tmp_path / "out").exists()
    with pytest.raises(SystemExit):
        build_parser().parse_args(["validate", str(tmp_path), "--profile", "huge"])


# --- end to end -----------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_quick_suite_end_to_end_meets_thresholds(tmp_path):
    """The quick profile: generate, run with 2 workers, evaluate; the thresholds of issue 5 must hold.

    The measured numbers are in the assertion message (and ``validation/summary.json``).
    """
    result = run_validation(tmp_path / "out", "quick", seed=0, workers=2, quiet=True)
    plan = validation_plan("quick", 0)
    assert len(result.table) == len(plan)
    assert set(result.table["session"]) == {s.session for s in plan}
    files = {path.name for path in (tmp_path / "out" / "validation").iterdir()}
    assert {"evaluation.csv", "summary.json", "validation_report.md", "index.html"} <= files
    assert (tmp_path / "out" / "results" / "sessions.csv").is_file()
    lines = "\n".join(check.line() for check in result.checks)
    print(lines)
    assert result.passed, f"validation thresholds not met:\n{lines}"
    assert result.exit_code == 0
    # issue 4: a B12 phantom imaged at one body part reports the other B12 pattern as not assessable
    for session, other, missing in (
        ("brain-b12-leukoencephalopathy-baseline-r0", "b12-subacute-combined-degeneration", "cord"),
        ("cord-b12-subacute-combined-degeneration-baseline-r0", "b12-leukoencephalopathy", "brain"),
    ):
        scores = pd.read_csv(tmp_path / "out" / "results" / session / "scores.csv").set_index("pattern")
        assert not scores.loc[other, "assessable"], session
        assert scores.loc[other, "explanation"].startswith(f"not assessable: {missing} not imaged"), session


def test_prepare_suite_resumes_and_regenerates_stale_phantoms(tmp_path):
    """Existing phantoms are kept; one made with another seed is regenerated; suite.csv lists the plan."""
    from pipeline.validate import prepare_suite

    plan = [s for s in validation_plan("quick", 0) if s.session == "cord-healthy-baseline-r0"]
    table = prepare_suite(tmp_path, plan)
    truth = tmp_path / "truth" / "cord-healthy-baseline-r0" / "truth.json"
    assert json.loads(truth.read_text())["seed"] == plan[0].seed
    assert table["session"].tolist() == ["cord-healthy-baseline-r0"]
    assert pd.read_csv(tmp_path / "suite.csv")["seed"].tolist() == [plan[0].seed]
    inputs = sorted((tmp_path / "inputs" / "cord-healthy-baseline-r0").iterdir())
    stamps = {path: path.stat().st_mtime_ns for path in inputs}
    prepare_suite(tmp_path, plan)  # resumed: nothing rewritten
    assert {path: path.stat().st_mtime_ns for path in inputs} == stamps
    content = json.loads(truth.read_text())
    truth.write_text(json.dumps({**content, "seed": plan[0].seed + 1}))  # as if made with another --seed
    prepare_suite(tmp_path, plan)
    assert json.loads(truth.read_text())["seed"] == plan[0].seed
    assert all(path.stat().st_mtime_ns != stamps[path] for path in inputs)


def test_evaluate_only_reports_a_stopped_run_without_running_anything(tmp_path):
    """--evaluate-only: no suite -> clear error; unfinished sessions count as missing and fail completeness."""
    from pipeline.validate import SUITE_DIR, prepare_suite

    out = tmp_path / "out"
    with pytest.raises(FileNotFoundError, match="no suite to evaluate"):
        run_validation(out, "quick", evaluate_only=True, patterns=[("ms-cord", "cord")])
    plan = validation_plan("quick", 0, [("ms-cord", "cord")])
    prepare_suite(out / SUITE_DIR, plan)
    result = run_validation(out, "quick", evaluate_only=True, patterns=[("ms-cord", "cord")])
    assert not (out / "results").exists()  # nothing was run
    assert set(result.table["status"]) == {"missing"} and len(result.table) == len(plan)
    assert result.summary["n_missing"] == len(plan)
    assert not result.passed and result.exit_code == 1
    assert (out / "validation" / "validation_report.md").is_file()
