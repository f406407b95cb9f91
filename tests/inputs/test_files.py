"""Input discovery on disk, hashing and output-path confinement (moved from test_scan.py)."""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path

import pytest

from regiontag.inputs.files import confine_to, safe_input_files, sha256_file
from regiontag.inputs.scan import load_scan
from tests.inputs import corpus


@pytest.fixture(scope="module")
def corpus_cases(tmp_path_factory) -> dict[str, tuple[Path, str]]:
    cases = corpus.make_corpus(tmp_path_factory.mktemp("corpus"))
    return {path.name: (path, fragment) for path, fragment in cases}


def test_safe_input_files(tmp_path):
    good = corpus.gz(corpus.nifti_bytes(corpus.phantom_data()))
    (tmp_path / "sub-01_FLAIR.nii.gz").write_bytes(good)
    session = tmp_path / "patient 2 é"
    session.mkdir()
    (session / "T2 TSE.NII").write_bytes(good)
    (session / "notes.txt").write_text("not a scan")
    (session / "back_to_top").symlink_to(tmp_path, target_is_directory=True)
    (session / "self").symlink_to(session, target_is_directory=True)
    (tmp_path / "loop_a.nii").symlink_to("loop_b.nii")
    (tmp_path / "loop_b.nii").symlink_to("loop_a.nii")
    (tmp_path / "gone.nii.gz").symlink_to("nowhere.nii.gz")
    (tmp_path / "folder.nii").mkdir()
    os.mkfifo(tmp_path / "pipe.nii.gz")
    (tmp_path / "empty.nii").write_bytes(b"")
    (tmp_path / "._sub-01_FLAIR.nii.gz").write_bytes(b"\x00\x05\x16\x07")
    hidden = tmp_path / ".cache"
    hidden.mkdir()
    (hidden / "old.nii.gz").write_bytes(good)
    started = time.monotonic()
    candidates, skipped = safe_input_files(tmp_path)
    assert time.monotonic() - started < 5
    assert candidates == [session / "T2 TSE.NII", tmp_path / "sub-01_FLAIR.nii.gz"]
    reasons = {path.relative_to(tmp_path).as_posix(): reason for path, reason in skipped}
    assert reasons["loop_a.nii"] == "symlink loop"
    assert reasons["loop_b.nii"] == "symlink loop"
    assert reasons["gone.nii.gz"].startswith("broken symlink")
    assert reasons["folder.nii"] == "directory with a NIfTI name"
    assert reasons["pipe.nii.gz"].startswith("not a regular file")
    assert reasons["empty.nii"].startswith("empty file")
    assert reasons["._sub-01_FLAIR.nii.gz"].startswith("macOS resource-fork")
    assert reasons["patient 2 é/back_to_top"].startswith("symlink loop")
    assert reasons["patient 2 é/self"].startswith("symlink loop")
    for candidate in candidates:
        assert load_scan(candidate)[0].shape == corpus.SHAPE
    with pytest.raises(NotADirectoryError):
        safe_input_files(tmp_path / "sub-01_FLAIR.nii.gz")


def test_sha256_file_streams(tmp_path):
    path = tmp_path / "scan é.nii.gz"
    content = os.urandom(100_003)
    path.write_bytes(content)
    expected = hashlib.sha256(content).hexdigest()
    assert sha256_file(path) == expected
    assert sha256_file(path, chunk_bytes=4096) == expected


def test_confine_to_keeps_outputs_inside(tmp_path):
    output_dir = tmp_path / "out"
    (output_dir / "sub-01").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    (output_dir / "escape").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    assert confine_to(output_dir, "sub-01/regions.csv") == output_dir / "sub-01" / "regions.csv"
    assert confine_to(output_dir, "new session é/report.html") == output_dir / "new session é" / "report.html"
    with pytest.raises(ValueError, match="path traversal"):
        confine_to(output_dir, "sub-01/../../etc/passwd")
    with pytest.raises(ValueError, match="absolute path"):
        confine_to(output_dir, "/etc/passwd")
    with pytest.raises(ValueError, match="outside"):
        confine_to(output_dir, "escape/regions.csv")


def test_safe_input_files_skips_every_unreadable_corpus_entry(corpus_cases):
    folder = next(iter(corpus_cases.values()))[0].parent
    candidates, skipped = safe_input_files(folder)
    skipped_names = {path.name for path, _ in skipped}
    for name in ("loop.nii.gz", "dangling.nii", "pipe.nii", "folder.nii.gz", "empty.nii.gz"):
        assert name in skipped_names
        assert folder / name not in candidates
