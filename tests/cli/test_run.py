"""`regiontag run INPUT_DIR OUTPUT_DIR`: the parser and the argument checks made before the batch starts.

Missing input folder, bad --memory-limit, bad config and unknown participant labels are checked
end to end in tests/workflows/test_batch.py; these tests cover the rest of ``run_command``.
"""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path

import pytest

from regiontag.cli import run as run_cli

from tests.cli.helpers import command_parser, usage_error


def _parser() -> argparse.ArgumentParser:
    return command_parser(run_cli)


def test_parser_defaults():
    args = _parser().parse_args(["run", "in", "out"])
    assert args.func is run_cli.run_command
    assert (args.input_dir, args.output_dir, args.config, args.workers) == (Path("in"), Path("out"), None, None)
    assert (args.scheduler, args.memory_limit, args.force, args.participant_labels) == (None, None, False, None)
    assert (args.cord_atlas, args.patterns, args.no_report, args.quiet, args.verbose) == (None, None, False, False,
                                                                                         False)


def test_parser_options():
    args = _parser().parse_args(["run", "in", "out", "--participant-label", "01", "sub-02", "-v", "--workers", "3",
                                 "--memory-limit", "4GB", "--cord-atlas", "pam50", "--no-report", "--force"])
    assert args.participant_labels == ["01", "sub-02"] and args.verbose and not args.quiet
    assert (args.workers, args.memory_limit, args.cord_atlas, args.no_report, args.force) == (
        3, "4GB", Path("pam50"), True, True)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "in"], "regiontag run: error: the following arguments are required: OUTPUT_DIR"),
        (["run", "in", "out", "-q", "-v"], "regiontag run: error: argument --verbose/-v: not allowed with argument "
                                           "--quiet/-q"),
        (["run", "in", "out", "--workers", "all"], "regiontag run: error: argument --workers: invalid int value: "
                                                   "'all'"),
    ],
)
def test_bad_arguments_exit_2(argv, message, capsys):
    assert usage_error(_parser().parse_args, argv, capsys) == message


def test_help_explains_the_cluster_resuming_and_exit_status(capsys):
    with pytest.raises(SystemExit):
        _parser().parse_args(["run", "--help"])
    text = capsys.readouterr().out
    assert "--scheduler ADDRESS" in text and "Re-running the same command resumes" in text
    assert "Exit status: 0 when every session finished, 1 when any\nfailed, 2 for bad arguments" in text


@pytest.fixture()
def no_batch(monkeypatch):
    """run_batch must not be reached: the arguments are refused first."""
    import regiontag.workflows.batch as batch

    def refuse(*args, **kwargs):
        raise AssertionError("the batch started")

    monkeypatch.setattr(batch, "run_batch", refuse)


def test_every_problem_is_reported_on_its_own_line(tmp_path, capsys, no_batch):
    args = _parser().parse_args(["run", str(tmp_path), str(tmp_path / "out"), "--workers", "2",
                                 "--scheduler", "tcp://head:8786", "--cord-atlas", str(tmp_path / "no-pam50"),
                                 "--patterns", str(tmp_path / "no-library")])
    assert run_cli.run_command(args) == 2
    assert capsys.readouterr().err.splitlines() == [
        "regiontag run: --workers applies to the local cluster; leave it out with --scheduler",
        f"regiontag run: --cord-atlas: not found: {tmp_path / 'no-pam50'}",
        f"regiontag run: --patterns: not found: {tmp_path / 'no-library'}",
    ]
    assert not (tmp_path / "out").exists()


def test_workers_below_one_exit_2(tmp_path, capsys, no_batch):
    args = _parser().parse_args(["run", str(tmp_path), str(tmp_path / "out"), "--workers", "0"])
    assert run_cli.run_command(args) == 2
    assert capsys.readouterr().err == "regiontag run: --workers must be at least 1, got 0\n"


def test_an_empty_input_folder_is_exit_2(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    args = _parser().parse_args(["run", str(tmp_path / "empty"), str(tmp_path / "out"), "-q", "--no-report"])
    assert run_cli.run_command(args) == 2
    captured = capsys.readouterr()
    assert captured.err == f"regiontag run: no sessions found in {tmp_path / 'empty'}\n"
    assert captured.out == ""


def test_sigterm_becomes_a_clean_exit():
    previous = signal.getsignal(signal.SIGTERM)
    try:
        run_cli._terminate_on_sigterm()
        handler = signal.getsignal(signal.SIGTERM)
        assert handler is not previous
        with pytest.raises(SystemExit) as exit_info:
            handler(signal.SIGTERM, None)
        assert exit_info.value.code == 128 + signal.SIGTERM
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_sigterm_handler_is_not_installed_off_the_main_thread():
    previous = signal.getsignal(signal.SIGTERM)
    errors = []

    def install():
        try:
            run_cli._terminate_on_sigterm()
        except Exception as error:  # noqa: BLE001 - the test reports it
            errors.append(error)

    thread = threading.Thread(target=install)
    thread.start()
    thread.join()
    assert errors == [] and signal.getsignal(signal.SIGTERM) is previous


def test_bids_apps_levels_participant_then_group(tmp_path, monkeypatch, capsys):
    """`run BIDS OUT participant --participant-label --session-label`, then `group`; the output validates."""
    from regiontag.cli.main import main
    from tests.outputs.bids_helpers import validator_errors
    from tests.workflows.test_batch import RUNNER, make_bids_dataset

    monkeypatch.setenv("REGIONTAG_SESSION_RUNNER", RUNNER)
    bids = make_bids_dataset(tmp_path / "bids", ["01", "02"])
    out = tmp_path / "out"
    assert main(["run", str(bids), str(out), "participant", "--participant-label", "01", "--session-label", "ses-01",
                 "--workers", "1", "-q"]) == 0
    assert capsys.readouterr().out.startswith("1 session: 1 ok")
    assert sorted(path.name for path in (out / "regiontag").iterdir() if path.is_dir()) == ["sub-01_ses-01"]
    assert not (out / "regiontag" / "index.html").exists()  # the participant level leaves the batch report
    assert main(["run", str(bids), str(out), "participant", "--participant-label", "02", "--workers", "1", "-q"]) == 0
    capsys.readouterr()
    assert main(["run", str(bids), str(out), "group"]) == 0
    assert capsys.readouterr().out.strip() == f"group level: batch tables rebuilt in {out / 'regiontag'}"
    sessions = (out / "group_sessions.tsv").read_text().splitlines()
    assert [line.split("\t")[0] for line in sessions] == ["session", "sub-01_ses-01", "sub-02_ses-01", "sub-02_ses-02"]
    assert (out / "regiontag" / "sessions.csv").is_file()
    assert validator_errors(out) == []


def test_group_level_without_participant_runs_and_a_file_as_input(tmp_path, capsys):
    from regiontag.cli.main import main

    (tmp_path / "bids").mkdir()
    assert main(["run", str(tmp_path / "bids"), str(tmp_path / "out"), "group"]) == 2
    assert "run the participant level first" in capsys.readouterr().err
    scan = tmp_path / "s1_FLAIR.nii.gz"
    scan.write_bytes(b"")
    assert main(["run", str(scan), str(tmp_path / "out")]) == 2
    assert capsys.readouterr().err.strip() == (
        f"regiontag run: INPUT_DIR must be a folder, not a file: {scan} (give the folder that holds it; "
        "`regiontag tag MASK --image IMAGE` tags a single mask)")
