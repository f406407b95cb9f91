"""The worker-side wrapper of one session: memory estimate, runner resolution, logs, never raising."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from regiontag.config import Config
from regiontag.types import ScanInput, Session, SessionResult
from regiontag.workflows.task import (
    MEMORY_BASELINE_BYTES,
    MEMORY_BYTES_PER_VOXEL,
    SESSION_LOGGER,
    capture_native_output,
    collapse_repeated_lines,
    estimate_session_memory,
    execute_session,
    header_voxels,
    one_line_error,
    resolve_runner,
    session_logging,
    worker_memory_limit,
)


def _session(tmp_path: Path, shape=(20, 10, 5)) -> Session:
    path = tmp_path / "in" / "s_FLAIR.nii.gz"
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.zeros(shape, np.float32), np.eye(4)), str(path))
    return Session("s", (ScanInput(path, "FLAIR"),))


def test_memory_estimate_from_headers(tmp_path):
    needed, largest = estimate_session_memory(_session(tmp_path))
    assert needed == MEMORY_BASELINE_BYTES + 1000 * MEMORY_BYTES_PER_VOXEL
    assert largest == "s_FLAIR.nii.gz (1,000 voxels)"


def test_memory_estimate_sums_scans_names_the_largest_and_skips_unreadable_headers(tmp_path):
    small = tmp_path / "s_T2w.nii.gz"
    large = tmp_path / "s_FLAIR.nii"
    broken = tmp_path / "s_T1w.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((4, 5, 6), np.int16), np.eye(4)), str(small))
    nib.save(nib.Nifti1Image(np.zeros((30, 40, 10), np.uint8), np.eye(4)), str(large))
    broken.write_bytes(b"not a nifti header")
    session = Session("s", (ScanInput(small, "T2w"), ScanInput(broken, "T1w"), ScanInput(large, "FLAIR")))
    needed, largest = estimate_session_memory(session)
    assert needed == MEMORY_BASELINE_BYTES + (120 + 12_000) * MEMORY_BYTES_PER_VOXEL
    assert largest == "s_FLAIR.nii (12,000 voxels)"
    assert estimate_session_memory(Session("empty", ())) == (MEMORY_BASELINE_BYTES, "")


def test_header_voxels_counts_every_dimension_without_loading_data(tmp_path):
    path = tmp_path / "dwi.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((2, 3, 4, 5), np.float32), np.eye(4)), str(path))
    assert header_voxels(path) == 120
    single = tmp_path / "single.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((7, 1, 3), np.float32), np.eye(4)), str(single))
    assert header_voxels(single) == 21
    with pytest.raises(ValueError, match="missing.nii.gz: file not found"):
        header_voxels(tmp_path / "missing.nii.gz")


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


def test_execute_session_passes_options_and_fills_in_the_time(tmp_path):
    seen = {}

    def runner(session, output_dir, config, **kwargs):
        seen.update(kwargs, output_dir=output_dir)
        return SessionResult(session.session_id, "ok")

    result = execute_session(_session(tmp_path), str(tmp_path / "out"), Config(), force=True, runner=runner,
                             patterns_dir=tmp_path / "lib", memory_limit_bytes=MEMORY_BASELINE_BYTES * 2)
    assert result.status == "ok" and result.seconds > 0
    assert seen == {"force": True, "cord_atlas_path": None, "patterns_dir": tmp_path / "lib",
                    "output_dir": tmp_path / "out"}
    skipped = execute_session(_session(tmp_path), tmp_path / "out", Config(),
                              runner=lambda s, *a, **k: SessionResult(s.session_id, "skipped"))
    assert skipped.seconds == 0.0  # a resumed session took no time


def test_execute_session_reports_memory_errors_as_out_of_memory(tmp_path):
    def runner(*args, **kwargs):
        raise MemoryError("cannot allocate 8 GiB")

    result = execute_session(_session(tmp_path), tmp_path / "out", Config(), runner=runner)
    assert (result.status, result.error) == ("failed", "ran out of memory (MemoryError: cannot allocate 8 GiB)")
    assert "MemoryError" in (tmp_path / "out" / "s" / "log.txt").read_text()


def test_runner_resolution(monkeypatch):
    from regiontag.workflows.session import run_session

    monkeypatch.delenv("REGIONTAG_SESSION_RUNNER", raising=False)
    assert resolve_runner(None) is run_session
    monkeypatch.setenv("REGIONTAG_SESSION_RUNNER", "tests.workflows.test_task:_raising_runner")
    assert resolve_runner(None).__name__ == "_raising_runner"
    with pytest.raises(ValueError, match="expected 'module:function'"):
        resolve_runner("no_colon")
    long_error = one_line_error(RuntimeError("x" * 400))
    assert len(long_error) == 300 and long_error.startswith("RuntimeError: xxx") and long_error.endswith("...")


def test_runner_resolution_prefers_the_argument_over_the_environment(monkeypatch):
    monkeypatch.setenv("REGIONTAG_SESSION_RUNNER", "tests.workflows.test_task:_raising_runner")
    assert resolve_runner(_session) is _session
    assert resolve_runner("os.path:join") is os.path.join


def test_one_line_error_without_a_message_is_the_type():
    assert one_line_error(KeyboardInterrupt()) == "KeyboardInterrupt"
    assert one_line_error(OSError("disk\n\t full ")) == "OSError: disk full"


def test_native_output_is_collapsed():
    text = "Warning: units unknown\nother\n\nWarning: units unknown\nWarning: units unknown\n"
    assert collapse_repeated_lines(text) == "Warning: units unknown (x3)\nother"


def test_collapse_keeps_first_appearance_order_and_drops_blank_lines():
    assert collapse_repeated_lines("b\na\n   \nb\nc") == "b (x2)\na\nc"
    assert collapse_repeated_lines("") == ""


def test_session_logging_sets_and_restores_the_package_level():
    logger = logging.getLogger(SESSION_LOGGER)
    before = logger.level
    with session_logging(verbose=True):
        assert logger.level == logging.DEBUG
    assert logger.level == before
    with session_logging(verbose=False):
        assert logger.level == logging.INFO
    assert logger.level == before


def test_capture_native_output_sends_file_descriptor_output_to_the_log(tmp_path):
    with capture_native_output(tmp_path / "s", enabled=True):
        os.write(2, b"ITK warning\nITK warning\n")
        os.write(1, b"done\n")
    log = (tmp_path / "s" / "log.txt").read_text()
    assert "INFO output of native libraries:\nITK warning (x2)\ndone" in log
    with capture_native_output(tmp_path / "quiet", enabled=True):
        pass
    assert not (tmp_path / "quiet").exists()  # nothing printed, nothing logged
    with capture_native_output(tmp_path / "off", enabled=False):
        os.write(1, b"")
    assert not (tmp_path / "off").exists()


def test_worker_memory_limit_outside_a_worker_is_none():
    assert worker_memory_limit() is None


def _validating_runner(session, output_dir, config, **kwargs):
    from regiontag.inputs.scan import load_scan

    for scan in session.scans:
        load_scan(scan.path, config.limits)
    raise AssertionError("a scan with dim[0]=8 must not validate")


def test_bad_dim0_is_a_bad_header_not_a_memory_problem(tmp_path):
    """Issue 17 item 8: dim[0]=8 (garbage dims after it) is reported by validation, never as "PiB of memory"."""
    from tests.inputs import corpus

    path = tmp_path / "in" / "s_FLAIR.nii"
    path.parent.mkdir()
    dims = [8, 12, 14, 10, 32767, 32767, 32767, 32767]
    path.write_bytes(corpus.nifti_bytes(corpus.phantom_data(), edits={"dim": dims}))
    session = Session("s", (ScanInput(path, "FLAIR"),))
    assert estimate_session_memory(session) == (MEMORY_BASELINE_BYTES, "")  # counted as nothing
    with pytest.raises(ValueError, match=r"dim\[0\]=8"):
        header_voxels(path)
    result = execute_session(session, tmp_path / "out", Config(), runner=_validating_runner,
                             memory_limit_bytes=4 * 2**30)
    assert result.status == "failed"
    assert result.error == "InputError: s_FLAIR.nii: invalid header: dim[0]=8 (must be 1..7)"
    assert "memory" not in result.error
