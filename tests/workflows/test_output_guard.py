"""Where a batch may write: OUT against IN, batch-file names, symlinks, the lock, stale temporaries, disk full."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from regiontag.outputs import contract
from regiontag.workflows.output_guard import (
    LOCK_FILE,
    BatchError,
    WriteProblems,
    check_batch_files,
    check_output_location,
    describe_os_error,
    output_lock,
    refusal_reason,
    remove_stale_temporaries,
    unsafe_entry,
)


def test_output_location(tmp_path):
    scans = tmp_path / "scans"
    scans.mkdir()
    check_output_location(scans, tmp_path / "results")
    check_output_location(scans, scans / "results")  # inside IN is fine: its files are not taken for inputs
    with pytest.raises(BatchError, match="is the input folder"):
        check_output_location(scans, scans / "." )
    with pytest.raises(BatchError, match=f"output folder {tmp_path} contains the input folder {scans}"):
        check_output_location(scans, tmp_path)
    with pytest.raises(BatchError, match="contains the input folder"):
        check_output_location(scans, "/")


def test_batch_file_names_taken_by_folders(tmp_path):
    check_batch_files(tmp_path)
    (tmp_path / contract.SESSIONS_CSV).mkdir()
    with pytest.raises(BatchError, match=r"sessions\.csv is a folder where the batch writes a file"):
        check_batch_files(tmp_path)


def test_refusal_reasons(tmp_path):
    assert refusal_reason(tmp_path, "sub-01") == ""
    assert "reserved for a batch file" in refusal_reason(tmp_path, "SCORES.csv")
    assert "not a plain folder name" in refusal_reason(tmp_path, ".hidden")
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "linked").symlink_to(tmp_path / "elsewhere")
    assert refusal_reason(tmp_path, "linked").startswith(f"output folder {tmp_path / 'linked'} is a symlink")
    (tmp_path / "s2" / "transforms").parent.mkdir()
    (tmp_path / "s2" / "transforms").symlink_to(tmp_path / "elsewhere")
    assert "is a symlinked folder" in refusal_reason(tmp_path, "s2")
    assert unsafe_entry(tmp_path, "linked") and unsafe_entry(tmp_path, "index.html")
    assert not unsafe_entry(tmp_path, "s2")


def test_stale_temporaries_removed_without_following_symlinks(tmp_path):
    out, outside = tmp_path / "out", tmp_path / "outside"
    (out / "s1").mkdir(parents=True)
    outside.mkdir()
    (out / "s1" / ".regions.csv.abc.tmp.csv").write_text("partial")
    (out / ".sessions.csv.x.tmp.csv").write_text("partial")
    (outside / ".keep.tmp.txt").write_text("not ours")
    (out / "link").symlink_to(outside)
    assert remove_stale_temporaries(out) == 2
    assert (outside / ".keep.tmp.txt").exists()


def test_lock_file_symlink_is_never_followed(tmp_path):
    target = tmp_path / "target.txt"
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / LOCK_FILE).symlink_to(target)
    with pytest.raises(BatchError, match="cannot open the lock file"):
        with output_lock(tmp_path / "out"):
            pass
    assert not target.exists()


def test_write_problems_in_one_line():
    problems = WriteProblems()
    assert not problems and problems.line() == ""
    full = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "/out/sessions.csv")
    problems.note("sessions.csv", full)
    problems.note("regions.csv", full)
    assert problems.line() == (
        "outputs not written (disk full: No space left on device, first: sessions.csv; 2 writes failed)")
    assert describe_os_error(OSError(errno.EACCES, "Permission denied")) == "Permission denied"
