"""``regiontag validate``: profiles, thresholds, plots and reports on fabricated evaluation tables,
and the quick suite end to end (slow)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from regiontag.accuracy.suite import suite_plan
from regiontag.accuracy.validate import (
    PROFILES,
    interleaved,
    run_validation,
    validation_plan,
)
from regiontag.cli.main import build_parser, main

# --- fabricated evaluation tables ----------------------------------------------------------------------------


# --- profiles -------------------------------------------------------------------------------------------------
def test_profiles_cover_every_pattern_and_condition():
    from regiontag.patterns.library import load_library

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
    from regiontag.cli.validate import PROFILES as CLI_PROFILES

    assert CLI_PROFILES == PROFILES == ("quick", "full", "patterns")
    with pytest.raises(ValueError, match="profile must be one of"):
        validation_plan("huge")


# --- thresholds -----------------------------------------------------------------------------------------------


# --- breakdown and curves -------------------------------------------------------------------------------------


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


# --- written files --------------------------------------------------------------------------------------------


# --- command line ---------------------------------------------------------------------------------------------
def test_cli_registers_validate_and_rejects_bad_arguments(tmp_path, capsys):
    args = build_parser().parse_args(["validate", str(tmp_path / "out"), "--profile", "full", "--workers", "2"])
    assert args.profile == "full" and args.workers == 2 and args.seed == 0 and not args.force
    assert main(["validate", str(tmp_path / "out"), "--workers", "0"]) == 2
    assert "--workers must be at least 1" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("accuracy:\n  min_lesion_dice: 1.5\n")
    assert main(["validate", str(tmp_path / "out"), "--config", str(bad)]) == 2
    error = capsys.readouterr().err
    assert str(bad) in error and "accuracy.min_lesion_dice" in error
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
    from regiontag.accuracy.validate import prepare_suite

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
    from regiontag.accuracy.validate import SUITE_DIR, prepare_suite

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


def test_prepare_suite_shows_the_generation_phase(tmp_path, monkeypatch):
    """The generation phase of validate has its own bar: count, current phantom (issue 18)."""
    import io

    from rich.console import Console

    from regiontag.accuracy import validate as validate_module
    from regiontag.workflows.progress import PhaseProgress

    plan = [s for s in validation_plan("quick", 0)][:3]
    made = []

    def fake_make_session(session, suite_dir):
        made.append(session.session)
        (suite_dir / "truth" / session.session).mkdir(parents=True)
        (suite_dir / "truth" / session.session / "truth.json").write_text(json.dumps({"seed": session.seed}))

    monkeypatch.setattr(validate_module, "make_session", fake_make_session)
    buffer = io.StringIO()
    validate_module.prepare_suite(tmp_path, plan, phases=PhaseProgress(console=Console(file=buffer, width=200)))
    assert made == [s.session for s in plan]
    assert "validate: generate phantoms" in buffer.getvalue() and "3/3" in buffer.getvalue()
