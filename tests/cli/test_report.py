"""`regiontag report OUTPUT_DIR`: the parser, session folder selection, exit status and one-line errors."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

import regiontag.report.batch as batch_report
import regiontag.report.session as session_report
from regiontag import outputs
from regiontag.cli import report as report_cli

from tests.cli.helpers import command_parser, usage_error


def _parser() -> argparse.ArgumentParser:
    return command_parser(report_cli)


def test_parser_defaults_and_options():
    args = _parser().parse_args(["report", "out"])
    assert (args.output_dir, args.sessions, args.no_index, args.jobs) == (Path("out"), None, False, 1)
    assert args.func is report_cli.run
    args = _parser().parse_args(["report", "out", "--sessions", "a", "b", "--no-index", "--jobs", "3"])
    assert (args.sessions, args.no_index, args.jobs) == (["a", "b"], True, 3)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["report"], "regiontag report: error: the following arguments are required: OUTPUT_DIR"),
        (["report", "out", "--jobs", "many"], "regiontag report: error: argument --jobs: invalid int value: 'many'"),
        (["report", "out", "--sessions"], "regiontag report: error: argument --sessions: expected at least one argument"),
    ],
)
def test_bad_arguments_exit_2(argv, message, capsys):
    assert usage_error(_parser().parse_args, argv, capsys) == message


@pytest.fixture()
def output_dir(tmp_path) -> Path:
    """Session folders marked by provenance.json, regions.csv and log.txt, plus folders that are not sessions."""
    for name, marker in (("s1", outputs.PROVENANCE_JSON), ("s2", outputs.REGIONS_CSV), ("s3", outputs.LOG_FILE)):
        (tmp_path / name).mkdir()
        (tmp_path / name / marker).write_text("")
    (tmp_path / "transforms").mkdir()
    (tmp_path / outputs.REGIONS_CSV).write_text("")  # a batch file, not a folder
    return tmp_path


@pytest.fixture()
def written(monkeypatch):
    """Fake report writers: record the folders and fail on any folder named 'broken'."""
    calls = []

    def write_session_report(folder):
        if folder.name == "broken":
            raise RuntimeError("no regions.csv")
        calls.append(folder.name)
        return folder / outputs.REPORT_HTML

    def write_batch_report(folder):
        calls.append("index")
        return folder / outputs.INDEX_HTML

    monkeypatch.setattr(session_report, "write_session_report", write_session_report)
    monkeypatch.setattr(batch_report, "write_batch_report", write_batch_report)
    return calls


def test_session_folders_are_the_ones_with_outputs(output_dir):
    found = sorted(path.name for path in output_dir.iterdir() if report_cli._is_session_dir(path))
    assert found == ["s1", "s2", "s3"]


def test_missing_output_folder_is_one_line_and_exit_2(tmp_path, capsys, written):
    assert report_cli.run(_parser().parse_args(["report", str(tmp_path / "missing")])) == 2
    assert capsys.readouterr().err == f"regiontag report: {tmp_path / 'missing'}: no such output folder\n"
    assert written == []


def test_unknown_sessions_are_named_and_nothing_is_written(output_dir, capsys, written):
    args = _parser().parse_args(["report", str(output_dir), "--sessions", "s1", "transforms", "nope"])
    assert report_cli.run(args) == 2
    assert capsys.readouterr().err == f"regiontag report: not session folders in {output_dir}: transforms, nope\n"
    assert written == []


def test_jobs_below_one_exit_2(output_dir, capsys, written):
    assert report_cli.run(_parser().parse_args(["report", str(output_dir), "--jobs", "0"])) == 2
    assert capsys.readouterr().err == "regiontag report: --jobs must be at least 1\n"
    assert written == []


def test_all_sessions_then_the_index(output_dir, capsys, written):
    assert report_cli.run(_parser().parse_args(["report", str(output_dir)])) == 0
    assert written == ["s1", "s2", "s3", "index"]
    out = capsys.readouterr().out.splitlines()
    assert out[:4] == [f"wrote {output_dir / name / outputs.REPORT_HTML}" for name in ("s1", "s2", "s3")] + [
        f"wrote {output_dir / outputs.INDEX_HTML}"]
    assert out[4].startswith("3 session report(s) in ")


def test_chosen_sessions_or_no_index_skip_the_index(output_dir, written):
    assert report_cli.run(_parser().parse_args(["report", str(output_dir), "--sessions", "s3", "s1"])) == 0
    assert written == ["s3", "s1"]
    written.clear()
    assert report_cli.run(_parser().parse_args(["report", str(output_dir), "--no-index"])) == 0
    assert written == ["s1", "s2", "s3"]


def test_a_broken_session_fails_alone_with_exit_1(output_dir, capsys, written):
    (output_dir / "broken").mkdir()
    (output_dir / "broken" / outputs.LOG_FILE).write_text("")
    assert report_cli.run(_parser().parse_args(["report", str(output_dir)])) == 1
    assert written == ["s1", "s2", "s3", "index"]
    assert capsys.readouterr().err == "regiontag report: broken: RuntimeError: no regions.csv\n"


def test_write_one_never_raises(tmp_path, written):
    assert report_cli._write_one(tmp_path / "broken") == ("", "RuntimeError: no regions.csv")
    assert report_cli._write_one(tmp_path / "s1") == (str(tmp_path / "s1" / outputs.REPORT_HTML), "")
