"""`regiontag score OUTPUT_DIR`: the parser, session folders, findings, the batch table and one-line errors.

Re-scoring real session tables against an edited library is tested in tests/cli/test_patterns.py.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd
import pytest

from regiontag import outputs
from regiontag.cli import score as score_cli

from tests.cli.helpers import command_parser


def _parser() -> argparse.ArgumentParser:
    return command_parser(score_cli)


def test_parser_defaults():
    args = _parser().parse_args(["score", "out"])
    assert (args.output_dir, args.patterns, args.config, args.func) == (Path("out"), None, None, score_cli.run)
    args = _parser().parse_args(["score", "out", "--patterns", "lib", "--config", "c.yaml"])
    assert (args.patterns, args.config) == (Path("lib"), Path("c.yaml"))


def test_missing_output_dir_argument_exits_2(capsys):
    with pytest.raises(SystemExit) as exit_info:
        _parser().parse_args(["score"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "regiontag score: error: the following arguments are required: OUTPUT_DIR")


def test_missing_folder_is_one_line_and_exit_2(tmp_path, capsys):
    assert score_cli.run(_parser().parse_args(["score", str(tmp_path / "absent")])) == 2
    assert capsys.readouterr().err == f"regiontag score: {tmp_path / 'absent'}: no such output folder\n"


def test_bad_config_is_one_line_and_exit_2(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("detection:\n  min_cluster_mm3: -1\n")
    assert score_cli.run(_parser().parse_args(["score", str(tmp_path), "--config", str(bad)])) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"regiontag score: {bad}") and "detection.min_cluster_mm3" in error
    assert len(error.strip().splitlines()) == 1
    assert not (tmp_path / outputs.SCORES_CSV).exists()


def test_session_dirs_are_sorted_folders_with_a_region_table(tmp_path):
    for name in ("b", "a", "failed"):
        (tmp_path / name).mkdir()
    (tmp_path / "b" / outputs.REGIONS_CSV).write_text("")
    (tmp_path / "a" / outputs.REGIONS_CSV).write_text("")
    (tmp_path / "failed" / outputs.LOG_FILE).write_text("")
    (tmp_path / outputs.REGIONS_CSV).write_text("")
    assert score_cli.session_dirs(tmp_path) == [tmp_path / "a", tmp_path / "b"]


def test_read_findings(tmp_path):
    assert score_cli.read_findings(tmp_path) == {}
    (tmp_path / outputs.FINDINGS_JSON).write_text('{"features": {"confluent": true}}')
    assert score_cli.read_findings(tmp_path) == {"features": {"confluent": True}}
    (tmp_path / outputs.FINDINGS_JSON).write_text("[1, 2]")
    with pytest.raises(ValueError, match="findings.json: expected a JSON object"):
        score_cli.read_findings(tmp_path)


def _scores(session: str | None, patterns: list[str]) -> pd.DataFrame:
    table = pd.DataFrame({"pattern": patterns, "score": [0.5] * len(patterns), "rank": range(1, len(patterns) + 1)})
    if session is not None:
        table.insert(0, "session", session)
    return table


def test_rebuild_batch_scores_concatenates_session_tables(tmp_path):
    for name in ("s1", "s2", "empty", "none"):
        (tmp_path / name).mkdir()
    _scores("sub-01", ["a", "b"]).to_csv(tmp_path / "s1" / outputs.SCORES_CSV, index=False)
    _scores(None, ["c"]).to_csv(tmp_path / "s2" / outputs.SCORES_CSV, index=False)  # no session column
    (tmp_path / "empty" / outputs.SCORES_CSV).write_text("")  # unreadable: left out
    path = score_cli.rebuild_batch_scores(tmp_path)
    assert path == tmp_path / outputs.SCORES_CSV
    batch = pd.read_csv(path)
    assert list(batch.columns) == outputs.SCORE_COLUMNS
    assert batch[["session", "pattern", "rank"]].values.tolist() == [["sub-01", "a", 1], ["sub-01", "b", 2],
                                                                     ["s2", "c", 1]]


def test_rebuild_batch_scores_without_sessions_writes_the_header(tmp_path):
    path = score_cli.rebuild_batch_scores(tmp_path)
    assert path.read_text().strip() == ",".join(outputs.SCORE_COLUMNS)


def test_a_session_that_cannot_be_read_fails_alone_with_exit_1(tmp_path, capsys):
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / outputs.REGIONS_CSV).write_text("")
    assert score_cli.run(_parser().parse_args(["score", str(tmp_path)])) == 1
    captured = capsys.readouterr()
    assert captured.err.startswith("regiontag score: broken: ") and len(captured.err.strip().splitlines()) == 1
    assert captured.out.startswith("re-scored 0 of 1 sessions against ")
    assert pd.read_csv(tmp_path / outputs.SCORES_CSV).empty


def test_score_takes_the_lock_and_rebuilds_sessions_csv_and_the_index(tmp_path, capsys):
    """Issue 17 item 6: `regiontag score` took no lock and left sessions.csv top_pattern and index.html stale."""
    from regiontag.outputs.session_folder import SessionFolder
    from regiontag.types import SessionResult
    from regiontag.workflows.batch import output_lock
    from tests.cli.test_patterns import POSTERIOR, write_session

    out = tmp_path / "out"
    write_session(out, "scd", {POSTERIOR: "both", "Spinal cord > Spinal white matter > Lateral column": "both"},
                  ("cord",), {"longitudinally_extensive": True})
    write_session(out, "healthy", {}, ("brain", "cord"), {})
    for name in ("scd", "healthy"):
        SessionFolder(out / name).write_status(SessionResult(name, "ok", "", 3.0, ("cord",), 1.5, "stale-pattern"))
    (out / outputs.INDEX_HTML).write_text("<p>stale</p>")
    with output_lock(out):
        assert score_cli.run(_parser().parse_args(["score", str(out)])) == 2
    assert capsys.readouterr().err == f"regiontag score: {out}: another regiontag run is writing to this folder\n"
    assert not (out / "scd" / outputs.SCORES_CSV).exists()

    assert score_cli.run(_parser().parse_args(["score", str(out)])) == 0
    sessions = pd.read_csv(out / outputs.SESSIONS_CSV, keep_default_na=False).set_index("session")
    scd = pd.read_csv(out / "scd" / outputs.SCORES_CSV)
    expected_top = scd[scd["match"]].sort_values("rank")["pattern"].iloc[0]  # as run_session picks it
    assert sessions.loc["scd", "top_pattern"] == expected_top != "stale-pattern"
    assert sessions.loc["healthy", "top_pattern"] == ""  # nothing matches any more
    assert sessions.loc["scd", "seconds"] == 3.0 and sessions.loc["scd", "status"] == "ok"  # the rest is kept
    assert (out / outputs.INDEX_HTML).read_text() != "<p>stale</p>"
    assert "scd" in (out / outputs.INDEX_HTML).read_text()
