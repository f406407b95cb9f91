"""`regiontag validate OUT`: the parser, argument checks before anything runs, and what is printed."""

from __future__ import annotations

import argparse
from pathlib import Path
from types import SimpleNamespace

import pytest

import regiontag.accuracy.report as accuracy_report
import regiontag.accuracy.validate as accuracy_validate
from regiontag.cli import validate as validate_cli

from tests.cli.helpers import command_parser, usage_error


def _parser() -> argparse.ArgumentParser:
    return command_parser(validate_cli)


def test_parser_defaults():
    args = _parser().parse_args(["validate", "out"])
    assert args.func is validate_cli.run_validate
    assert (args.out_dir, args.profile, args.seed, args.workers, args.config) == (Path("out"), "quick", 0, None, None)
    assert (args.force, args.quiet, args.evaluate_only) == (False, False, False)
    args = _parser().parse_args(["validate", "out", "--profile", "patterns", "-q", "--evaluate-only", "--seed", "7"])
    assert (args.profile, args.quiet, args.evaluate_only, args.seed) == ("patterns", True, True, 7)


@pytest.mark.parametrize(
    ("argv", "start"),
    [
        (["validate"], "regiontag validate: error: the following arguments are required: OUT"),
        (["validate", "o", "--profile", "huge"], "regiontag validate: error: argument --profile: invalid choice: 'huge'"),
        (["validate", "o", "--seed", "1.5"], "regiontag validate: error: argument --seed: invalid int value: '1.5'"),
    ],
)
def test_bad_arguments_exit_2(argv, start, capsys):
    assert usage_error(_parser().parse_args, argv, capsys).startswith(start)


@pytest.fixture()
def validation_calls(monkeypatch):
    calls = []

    def run_validation(out_dir, profile, seed, **options):
        calls.append((out_dir, profile, seed, options))
        return SimpleNamespace(batch_line="3 sessions: 3 ok", summary={"dice": 0.9}, checks=["check"], exit_code=1,
                               files={"report": out_dir / "validation_report.md", "html": out_dir / "index.html"})

    monkeypatch.setattr(accuracy_validate, "run_validation", run_validation)
    monkeypatch.setattr(accuracy_report, "console_summary", lambda summary, checks: f"summary {summary} {checks}")
    return calls


def test_negative_seed_is_refused_before_anything_runs(tmp_path, capsys, validation_calls):
    assert validate_cli.run_validate(_parser().parse_args(["validate", str(tmp_path / "out"), "--seed", "-1"])) == 2
    assert capsys.readouterr().err == "regiontag validate: --seed must not be negative, got -1\n"
    assert validation_calls == [] and not (tmp_path / "out").exists()


def test_prints_the_batch_line_summary_and_report_paths_and_passes_the_exit_code(tmp_path, capsys,
                                                                                 validation_calls):
    out = tmp_path / "out"
    args = _parser().parse_args(["validate", str(out), "--profile", "full", "--workers", "2", "--force"])
    assert validate_cli.run_validate(args) == 1  # a failed threshold
    ((out_dir, profile, seed, options),) = validation_calls
    assert (out_dir, profile, seed) == (out, "full", 0)
    assert (options["workers"], options["force"], options["quiet"], options["evaluate_only"]) == (2, True, False, False)
    assert options["config"] is not None
    assert capsys.readouterr().out.splitlines() == [
        "3 sessions: 3 ok", "summary {'dice': 0.9} ['check']",
        f"report: {out / 'validation_report.md'}", f"html:   {out / 'index.html'}",
    ]


def test_validation_errors_are_one_line_and_exit_2(tmp_path, capsys, monkeypatch):
    def fail(*args, **kwargs):
        raise ValueError("profile 'quick' needs the cord phantom")

    monkeypatch.setattr(accuracy_validate, "run_validation", fail)
    assert validate_cli.run_validate(_parser().parse_args(["validate", str(tmp_path)])) == 2
    assert capsys.readouterr().err == "regiontag validate: profile 'quick' needs the cord phantom\n"

