"""`regiontag demo OUT`: the parser, the demo session list and input generation (the full run is slow)."""

from __future__ import annotations

import argparse

import pandas as pd
import pytest

from regiontag.cli import demo as demo_cli
from regiontag.cli.main import main
from regiontag.patterns.library import load_library
from regiontag.phantoms.brain import HEALTHY
from regiontag.phantoms.cord import LESION_TYPES

from tests.cli.helpers import command_parser, usage_error


def _parser() -> argparse.ArgumentParser:
    return command_parser(demo_cli)


def test_parser_defaults():
    args = _parser().parse_args(["demo", "out"])
    assert (args.output_dir, args.config, args.workers, args.force, args.quiet) == ("out", None, None, False, False)
    assert args.func is demo_cli.run_demo
    args = _parser().parse_args(["demo", "out", "--workers", "2", "--force", "--quiet", "--config", "c.yaml"])
    assert (args.workers, args.force, args.quiet, args.config) == (2, True, True, "c.yaml")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["demo"], "regiontag demo: error: the following arguments are required: OUT"),
        (["demo", "out", "--workers", "two"], "regiontag demo: error: argument --workers: invalid int value: 'two'"),
    ],
)
def test_bad_arguments_exit_2(argv, message, capsys):
    assert usage_error(_parser().parse_args, argv, capsys) == message


def test_a_bad_config_fails_in_one_line_before_any_phantom_is_made(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("detection: {z_threshold: [1, 2\n")
    assert main(["demo", str(tmp_path / "out"), "--config", str(bad)]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"regiontag demo: {bad}: invalid YAML: line ") and error.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_demo_sessions_are_known_patterns_with_distinct_ids_and_seeds():
    library = {pattern.id: pattern for pattern in load_library().patterns}
    ids = [session_id for session_id, *_ in demo_cli.DEMO_SESSIONS]
    assert len(set(ids)) == len(ids) and all(session_id.startswith("demo-") for session_id in ids)
    assert len({seed for *_, seed in demo_cli.DEMO_SESSIONS}) == len(ids)
    body_parts = set()
    for _, body_part, pattern, _ in demo_cli.DEMO_SESSIONS:
        body_parts.add(body_part)
        if body_part == "brain":
            assert pattern == HEALTHY or library[pattern].body_part == "brain"
        else:
            assert body_part == "cord" and pattern in LESION_TYPES
    assert body_parts == {"brain", "cord"}


def test_make_demo_inputs_keeps_sessions_whose_truth_exists(tmp_path, monkeypatch):
    import regiontag.phantoms.brain as brain
    import regiontag.phantoms.cord as cord

    made = []
    monkeypatch.setattr(brain, "make_brain_phantom", lambda pattern, seed: made.append(("brain", pattern, seed)))
    monkeypatch.setattr(cord, "make_cord_phantom", lambda pattern, seed: made.append(("cord", pattern, seed)))
    monkeypatch.setattr(brain, "write_phantom", lambda phantom, folder, session_id: None)
    monkeypatch.setattr(cord, "write_cord_phantom", lambda phantom, folder, session_id: None)
    first_id, first_part, first_pattern, first_seed = demo_cli.DEMO_SESSIONS[0]
    (tmp_path / "truth" / first_id).mkdir(parents=True)
    demo_cli.make_demo_inputs(tmp_path)
    assert made == [(part, pattern, seed) for _, part, pattern, seed in demo_cli.DEMO_SESSIONS[1:]]
    for session_id, *_ in demo_cli.DEMO_SESSIONS:
        (tmp_path / "truth" / session_id).mkdir(parents=True, exist_ok=True)
    made.clear()
    demo_cli.make_demo_inputs(tmp_path)
    assert made == []


def _evaluation(**columns) -> pd.DataFrame:
    from regiontag.accuracy.metrics import EVALUATION_COLUMNS

    base = {"session": ["b12", "healthy", "cord"], "status": ["ok", "ok", "ok"],
            "pattern": ["b12-leukoencephalopathy", "healthy", ""], "dice": [0.91, None, 0.76],
            "n_region_rows": [88, 88, 18], "top1": [True, None, None], "false_match": [None, False, None]}
    base.update(columns)
    return pd.DataFrame(base).reindex(columns=EVALUATION_COLUMNS)


def test_accuracy_lines_give_n_and_what_good_is():
    """Issue 19.5: each figure with the sessions behind it and the pass mark of `regiontag validate`."""
    from regiontag.config import Config

    metrics = {"mean_dice": 0.835, "region_flag_accuracy": 0.974}
    lines = demo_cli.accuracy_lines(_evaluation(), metrics, Config().accuracy)
    assert lines == [
        "  lesion overlap (Dice)           0.83  mean of 2 sessions with lesions  good >= 0.75  ok",
        "  region flags right             97.4%  regions of 3 sessions            good >= 95%   ok",
        "  true pattern ranked first     1 of 1  1 session with a known pattern   good >= 90%   ok",
        "  healthy scan given a pattern  0 of 1  1 healthy session                good <= 5%    ok",
        "  (too few sessions to judge accuracy: `regiontag validate OUT` runs 100+ phantoms)",
    ]
    worse = demo_cli.accuracy_lines(_evaluation(false_match=[None, True, None]), {"mean_dice": 0.5},
                                    Config().accuracy)
    assert worse[0].endswith("good >= 0.75  BELOW") and worse[-2].startswith("  healthy scan given a pattern  1 of 1")
    assert all(len(line) <= 100 for line in lines)


def test_session_lines_name_the_result_and_the_report(tmp_path):
    from regiontag import outputs

    results = tmp_path / "results"
    (results / "a").mkdir(parents=True)
    (results / "a" / outputs.REPORT_HTML).write_text("<html></html>")
    pd.DataFrame({"session": ["a", "healthy", "bad"], "status": ["ok", "ok", "failed"],
                  "error": ["", "", "InputError: not a NIfTI"], "top_pattern": ["ms-brain", "", ""]}).to_csv(
        results / outputs.SESSIONS_CSV, index=False)
    assert demo_cli.session_lines(results) == [
        "  a        ok       top match: ms-brain",
        f"           report: {results / 'a' / outputs.REPORT_HTML}",
        "  healthy  ok       no pattern matched",
        "  bad      failed   failed: InputError: not a NIfTI",
    ]


@pytest.mark.slow
def test_demo_runs_end_to_end(tmp_path, capsys):
    from regiontag.cli.main import main

    assert main(["demo", str(tmp_path), "--workers", "1", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"regiontag demo: writing {len(demo_cli.DEMO_SESSIONS)} phantom sessions to ")
    assert f"  phantom 1/{len(demo_cli.DEMO_SESSIONS)} {demo_cli.DEMO_SESSIONS[0][0]} (brain) written in " in out
    assert "against the phantoms' truth" in out and "no pattern matched" in out  # the healthy brain
    session_reports = [line for line in out.splitlines() if line.strip().startswith("report: ")]
    assert len(session_reports) == len(demo_cli.DEMO_SESSIONS)  # one per session, plus the batch report's line
    assert f"batch report: {tmp_path / 'results' / 'index.html'}" in out
    # no 600-character line (the temporary folder's own long path aside)
    assert all(len(line.replace(str(tmp_path), "OUT")) < 160 for line in out.splitlines())
    sessions = pd.read_csv(tmp_path / "results" / "sessions.csv")
    assert sorted(sessions["session"]) == sorted(session_id for session_id, *_ in demo_cli.DEMO_SESSIONS)
    assert (tmp_path / "results" / "index.html").is_file()
