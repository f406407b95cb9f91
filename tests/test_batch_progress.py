"""Batch console output and the worker-side helpers that need no cluster."""

from __future__ import annotations

import io
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from rich.console import Console

from pipeline.batch_cluster import parse_memory_limit, thread_environment, threads_per_task
from pipeline.batch_task import (
    MEMORY_BASELINE_BYTES,
    MEMORY_BYTES_PER_VOXEL,
    collapse_repeated_lines,
    estimate_session_memory,
    execute_session,
    one_line_error,
    resolve_runner,
)
from pipeline.config import Config
from pipeline.progress import BatchProgress, format_duration
from pipeline.types import ScanInput, Session


def _console() -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, width=200, force_terminal=False, soft_wrap=True), buffer


@pytest.mark.parametrize(("seconds", "text"), [(0.84, "0.8s"), (45, "45s"), (192, "3m12s"), (3720, "1h02m")])
def test_format_duration(seconds, text):
    assert format_duration(seconds) == text


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


def test_memory_limit_parsing():
    assert parse_memory_limit("4GB") == 4_000_000_000
    assert parse_memory_limit("2GiB") == 2 * 2**30
    assert parse_memory_limit(None) is None
    with pytest.raises(ValueError, match="invalid memory limit '-1GB'"):
        parse_memory_limit("-1GB")


def test_thread_environment_keeps_the_users_choice(monkeypatch):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setenv("ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS", "3")
    environment = thread_environment(2)
    assert environment["OMP_NUM_THREADS"] == "2" and environment["ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"] == "3"


def test_threads_per_task_never_oversubscribes():
    assert threads_per_task(cores=8, slots=2, wanted=None) == 4
    assert threads_per_task(cores=8, slots=2, wanted=1) == 1  # reproducible ANTs: the configured count
    assert threads_per_task(cores=8, slots=8, wanted=4) == 1
    assert threads_per_task(cores=2, slots=4, wanted=None) == 1


def _session(tmp_path: Path, shape=(20, 10, 5)) -> Session:
    path = tmp_path / "in" / "s_FLAIR.nii.gz"
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.zeros(shape, np.float32), np.eye(4)), str(path))
    return Session("s", (ScanInput(path, "FLAIR"),))


def test_memory_estimate_from_headers(tmp_path):
    needed, largest = estimate_session_memory(_session(tmp_path))
    assert needed == MEMORY_BASELINE_BYTES + 1000 * MEMORY_BYTES_PER_VOXEL
    assert largest == "s_FLAIR.nii.gz (1,000 voxels)"


def _raising_runner(session, output_dir, config, **kwargs):
    raise ValueError("bad\nthing")


def test_execute_session_never_raises_and_refuses_oversized_sessions(tmp_path):
    session = _session(tmp_path)
    result = execute_session(session, tmp_path / "out", Config(), runner=_raising_runner)
    assert (result.status, result.error) == ("failed", "ValueError: bad thing")
    assert "Traceback" in (tmp_path / "out" / "s" / "log.txt").read_text()
    refused = execute_session(session, tmp_path / "out2", Config(), runner=_raising_runner,
                              memory_limit_bytes=MEMORY_BASELINE_BYTES)
    assert refused.status == "failed" and refused.error.startswith("needs about ")
    assert "raise --memory-limit" in refused.error
    assert "refused before loading" in (tmp_path / "out2" / "s" / "log.txt").read_text()
    wrong_type = execute_session(session, tmp_path / "out3", Config(), runner=lambda *a, **k: {"status": "ok"})
    assert wrong_type.error == "TypeError: session runner returned dict, not SessionResult"


def test_runner_resolution(monkeypatch):
    from pipeline.session import run_session

    monkeypatch.delenv("REGIONTAG_SESSION_RUNNER", raising=False)
    assert resolve_runner(None) is run_session
    monkeypatch.setenv("REGIONTAG_SESSION_RUNNER", "test_batch_progress:_raising_runner")
    assert resolve_runner(None).__name__ == "_raising_runner"
    with pytest.raises(ValueError, match="expected 'module:function'"):
        resolve_runner("no_colon")
    long_error = one_line_error(RuntimeError("x" * 400))
    assert len(long_error) == 300 and long_error.startswith("RuntimeError: xxx") and long_error.endswith("...")


def test_native_output_is_collapsed():
    text = "Warning: units unknown\nother\n\nWarning: units unknown\nWarning: units unknown\n"
    assert collapse_repeated_lines(text) == "Warning: units unknown (x3)\nother"
