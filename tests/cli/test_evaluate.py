"""`regiontag evaluate TRUTH_DIR RESULTS_DIR`: the parser and what run_evaluate prints."""

from __future__ import annotations

import argparse

import pytest

import regiontag.accuracy.metrics as metrics
from regiontag.cli import evaluate as evaluate_cli

from tests.cli.helpers import command_parser


def _parser() -> argparse.ArgumentParser:
    return command_parser(evaluate_cli)


def test_parser_positionals_and_out():
    args = _parser().parse_args(["evaluate", "truth", "results"])
    assert (args.truth_dir, args.results_dir, args.out, args.func) == ("truth", "results", None,
                                                                       evaluate_cli.run_evaluate)
    assert _parser().parse_args(["evaluate", "t", "r", "--out", "elsewhere"]).out == "elsewhere"


def test_missing_results_dir_exits_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        _parser().parse_args(["evaluate", "truth"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "regiontag evaluate: error: the following arguments are required: RESULTS_DIR")


def test_prints_scalar_metrics_and_where_the_files_are(monkeypatch, capsys, tmp_path):
    calls = []

    def fake_evaluate(truth_dir, results_dir, out_dir=None):
        calls.append((truth_dir, results_dir, out_dir))
        return None, {"lesion_dice": 0.81234, "n_sessions": 4, "per_pattern": {"a": 1.0}, "pattern_top1": None,
                      "label": "phantoms"}

    monkeypatch.setattr(metrics, "evaluate", fake_evaluate)
    args = _parser().parse_args(["evaluate", str(tmp_path / "truth"), str(tmp_path / "results")])
    assert evaluate_cli.run_evaluate(args) == 0
    assert calls == [(str(tmp_path / "truth"), str(tmp_path / "results"), None)]
    assert capsys.readouterr().out.splitlines() == [
        "lesion_dice: 0.812", "n_sessions: 4", "label: phantoms",
        f"per-session metrics: {tmp_path / 'results' / metrics.EVALUATION_CSV}",
        f"summary: {tmp_path / 'results' / metrics.EVALUATION_SUMMARY_JSON}",
    ]
    args = _parser().parse_args(["evaluate", "t", "r", "--out", str(tmp_path / "elsewhere")])
    assert evaluate_cli.run_evaluate(args) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"summary: {tmp_path / 'elsewhere' / 'evaluation_summary.json'}"


def test_missing_truth_is_one_line_and_exit_2(tmp_path, capsys):
    args = _parser().parse_args(["evaluate", str(tmp_path / "nothing"), str(tmp_path / "results")])
    assert evaluate_cli.run_evaluate(args) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.startswith("regiontag evaluate: ")
    assert len(captured.err.strip().splitlines()) == 1
    assert not (tmp_path / "results").exists()
