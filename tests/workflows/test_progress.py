"""Batch console output: the progress bar's counts, per-session lines, ETA and the summary line."""

from __future__ import annotations

import io
from types import SimpleNamespace

import pytest
from rich.console import Console

from regiontag.workflows import progress as progress_module
from regiontag.workflows.progress import BatchProgress, format_duration


def _console(terminal: bool = True) -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, width=200, force_terminal=terminal, color_system=None, soft_wrap=True), buffer


@pytest.mark.parametrize(("seconds", "text"), [(0.84, "0.8s"), (45, "45s"), (192, "3m12s"), (3720, "1h02m")])
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


@pytest.mark.parametrize("seconds", [-1.0, float("nan"), float("inf")])
def test_format_duration_of_unknown_time_is_a_question_mark(seconds):
    assert format_duration(seconds) == "?"


def test_progress_counts_lines_and_summary():
    console, buffer = _console()
    with BatchProgress(4, 2, console=console) as progress:
        progress.update("s1", "ok", "", 10.0, resumed=True)
        progress.update("s2", "warning", "registration quality 0.4", 20.0, resumed=False)
        assert (progress.done, progress.remaining) == (2, 2)
        assert progress.eta_seconds() is not None and progress.eta_seconds() >= 0
        progress.update("s[3]", "failed", "InputError: not a NIfTI", 1.0, resumed=False)
        progress.update("s4", "ok", "", 5.0, resumed=False)
    text = buffer.getvalue()
    # normal mode: failed sessions only, markup in names kept literally
    assert "failed  s[3] (1.0s): InputError: not a NIfTI" in text
    assert "s2 (" not in text
    line = progress.summary_line("/data/out")
    assert line.startswith("4 sessions: 2 ok, 1 warning, 1 failed (1 already complete) in ")
    assert line.endswith("; results in /data/out")


def test_progress_quiet_prints_nothing_and_verbose_every_session():
    console, buffer = _console()
    with BatchProgress(1, 1, quiet=True, console=console) as progress:
        progress.update("s1", "failed", "boom", 1.0, resumed=False)
    assert buffer.getvalue() == ""
    console, buffer = _console()
    with BatchProgress(1, 1, verbose=True, console=console) as progress:
        progress.update("s1", "ok", "", 2.0, resumed=True)
    assert "ok      s1 (already complete)" in buffer.getvalue()
    assert progress.summary_line("out").startswith("1 session: 1 ok, 0 warning, 0 failed (1 already complete)")


def test_a_non_terminal_gets_a_line_per_session():
    """Issue 19.5: no live bar in a log file or a pipe, so every finished session prints its line."""
    console, buffer = _console(terminal=False)
    with BatchProgress(2, 1, console=console) as progress:
        progress.update("s1", "ok", "", 61.0, resumed=False)
        progress.update("s2", "warning", "registration quality 0.4", 20.0, resumed=False)
    lines = buffer.getvalue().splitlines()
    assert lines[:2] == ["ok      s1 (1m01s)", "warning s2 (20s): registration quality 0.4"]
    assert len(lines) == 3 and lines[2].startswith("regiontag ") and "2/2" in lines[2]  # the bar, once, at the end


def test_unknown_status_counts_as_failed_and_status_text_counts_down():
    progress = BatchProgress(3, 1, quiet=True)
    assert progress.status_text() == "[green]0 ok[/], [yellow]0 warning[/], [red]0 failed[/], 3 left"
    progress.update("s1", "exploded", "", 1.0, resumed=False)
    assert progress.counts == {"ok": 0, "warning": 0, "failed": 1}
    assert progress.status_text().endswith("[red]1 failed[/], 2 left")


def test_eta_unknown_before_a_computed_session_and_zero_when_done(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(progress_module, "time", SimpleNamespace(monotonic=lambda: now[0]))
    progress = BatchProgress(4, 1, quiet=True)  # started at t=100
    progress.update("resumed", "ok", "", 0.0, resumed=True)
    assert progress.eta_seconds() is None  # resumed sessions say nothing about the rate
    progress.update("s2", "ok", "", 30.0, resumed=False)
    now[0] = 130.0
    assert progress.eta_seconds() == pytest.approx(30.0 * 2)  # 30 s per computed session, 2 left
    progress.update("s3", "ok", "", 1.0, resumed=True)
    progress.update("s4", "ok", "", 1.0, resumed=True)
    assert progress.remaining == 0 and progress.eta_seconds() == 0.0


def test_eta_is_weighted_by_body_part_and_moves_while_the_first_session_runs(monkeypatch):
    now = [0.0]
    monkeypatch.setattr(progress_module, "time", SimpleNamespace(monotonic=lambda: now[0]))
    progress = BatchProgress(3, 1, quiet=True)
    progress.set_sessions({"b1": ["brain"], "c1": ["cord"], "c2": ["cord", None]})
    assert progress.eta_seconds() is None  # nothing ran yet: no evidence at all
    progress.on_stage("b1", "load")
    now[0] = 10.0
    first = progress.eta_seconds()
    progress.on_stage_event((123.0, {"session": "b1", "stage": "register"}))  # as Dask delivers it
    now[0] = 40.0
    second = progress.eta_seconds()
    # prior 60 s per brain: 60 - elapsed for b1, then the cord session (0.25) and cord + undecided (1.25)
    assert first == pytest.approx(60 - 10 + 60 * 1.5) and second == pytest.approx(60 - 40 + 60 * 1.5)
    now[0] = 100.0  # b1 runs longer than the prior: its own elapsed time raises the rate
    assert progress.eta_seconds() == pytest.approx(100 * 1.5)
    assert progress.stage_text() == "b1 register 1m30s"  # in that stage since t=10
    progress.update("b1", "ok", "", 80.0, resumed=False)  # the batch saw it run 100 s: that is the measure
    assert progress.eta_seconds() == pytest.approx(100 * 0.25 + 100 * 1.25) and progress.stage_text() == ""
    progress.on_stage("c1", "load")
    now[0] = 101.0
    progress.update("c1", "ok", "", 12.0, resumed=False)  # its own record is longer than the 1 s seen
    assert progress.eta_seconds() == pytest.approx((100 + 12) / (1 + 0.25) * 1.25)


def staged_runner(session, output_dir, config, **options):
    """Reports three stages a second apart, then finishes like the batch tests' fake runner."""
    import time

    from regiontag.workflows.progress import publish_stage
    from tests.workflows.test_batch import fake_run_session

    for stage in ("load", "register", "detect"):
        publish_stage(session.session_id, stage)
        time.sleep(0.7)
    return fake_run_session(session, output_dir, config, **options)


def test_stages_from_the_workers_move_the_eta_before_the_first_session_ends(tmp_path, monkeypatch):
    from regiontag.config import Config
    from regiontag.workflows import batch
    from tests.workflows.test_batch import _save_volume

    seen = []

    class Recording(BatchProgress):
        def on_stage(self, session_id, stage):
            super().on_stage(session_id, stage)
            seen.append((self.done, stage, self.eta_seconds(), self.stage_text()))

    monkeypatch.setattr(batch, "BatchProgress", Recording)
    for index in (1, 2):
        _save_volume(tmp_path / "in" / f"p{index}" / f"p{index}_brain_FLAIR.nii.gz", index)
    summary = batch.run_batch(tmp_path / "in", tmp_path / "out", Config(), workers=1, quiet=True, report=False,
                              session_runner="tests.workflows.test_progress:staged_runner")
    assert summary.counts["ok"] == 2
    before_first_end = [item for item in seen if item[0] == 0]
    assert [stage for _, stage, _, _ in before_first_end][:3] == ["load", "register", "detect"]
    etas = [eta for _, _, eta, _ in before_first_end]
    assert all(eta is not None for eta in etas) and etas[0] > etas[1] > etas[2]  # it moves, down
    assert before_first_end[1][3].startswith("p1 register ")


def test_phase_progress_counts_items_and_shows_the_last_one():
    console, buffer = _console()
    with progress_module.PhaseProgress(console=console).phase("brain phantoms", 2) as phase:
        for name in ("phantom-a", "phantom-[b]"):
            phase.start(name)
            phase.done(name)
    assert phase.completed == 2
    text = buffer.getvalue()
    assert "brain phantoms" in text and "2/2" in text and "phantom-[b]" in text
    console, buffer = _console()
    with progress_module.PhaseProgress(quiet=True, console=console).phase("x", 3) as phase:
        phase.done("a")
    assert buffer.getvalue() == "" and phase.completed == 1
