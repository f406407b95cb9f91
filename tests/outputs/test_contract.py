"""The output contract: column lists, atomic writers, CSV truth values, label tables."""

from __future__ import annotations

import json
import os
import stat

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from regiontag.outputs import contract
from regiontag.outputs.contract import (
    REGION_COLUMNS,
    SCORE_COLUMNS,
    SESSION_COLUMNS,
    atomic_path,
    label_table,
    parse_flag,
    write_csv,
    write_json,
    write_nifti,
    write_text,
)


def _leftovers(folder) -> list[str]:
    """Temporary files of the atomic writers left in a folder."""
    return sorted(path.name for path in folder.iterdir() if ".tmp" in path.name)


@pytest.fixture()
def umask_027():
    previous = os.umask(0o027)
    try:
        yield 0o027
    finally:
        os.umask(previous)


def test_column_lists_have_no_duplicates_and_start_with_the_session():
    for columns in (REGION_COLUMNS, SESSION_COLUMNS, SCORE_COLUMNS):
        assert len(set(columns)) == len(columns)
        assert columns[0] == "session"


def test_write_csv_reorders_and_fills_missing_columns(tmp_path):
    table = pd.DataFrame({"b": [1.0, 2.5], "extra": ["x", "y"], "a": ["one", "two"]})
    path = write_csv(table, tmp_path / "sub" / "t.csv", ["a", "b", "missing"])
    assert path == tmp_path / "sub" / "t.csv"
    assert path.read_text().splitlines() == ["a,b,missing", "one,1,", "two,2.5,"]
    assert list(table.columns) == ["b", "extra", "a"]  # the caller's table is not changed
    assert _leftovers(path.parent) == []


def test_write_csv_without_columns_keeps_the_table_and_tsv_is_tab_separated(tmp_path):
    table = pd.DataFrame({"index": [1, 2], "name": ["Putamen [left]", "Putamen [right]"], "v": [1 / 3, 2e-9]})
    assert write_csv(table, tmp_path / "t.csv").read_text().splitlines() == [
        "index,name,v", "1,Putamen [left],0.333333", "2,Putamen [right],2e-09"]
    assert write_csv(table, tmp_path / "t.tsv").read_text().splitlines()[1] == "1\tPutamen [left]\t0.333333"


def test_write_json_sorts_keys_and_writes_nan_and_infinity_as_null(tmp_path):
    content = {
        "b": float("nan"), "a": {"inf": float("inf"), "list": [1.0, float("-inf"), np.float64("nan")]},
        "numpy": {"int": np.int64(3), "float": np.float32(0.5), "nan32": np.float32("nan"), "array": np.arange(3)},
        "path": tmp_path / "x",
    }
    path = write_json(content, tmp_path / "out.json")
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text and text.endswith("}\n")
    assert json.loads(text) == {
        "a": {"inf": None, "list": [1.0, None, None]}, "b": None,
        "numpy": {"array": [0, 1, 2], "float": 0.5, "int": 3, "nan32": None}, "path": str(tmp_path / "x"),
    }
    assert list(json.loads(text)) == ["a", "b", "numpy", "path"]
    assert content["b"] != content["b"]  # the caller's dict still holds NaN


def test_failed_json_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = write_json({"version": 1}, tmp_path / "findings.json")
    with pytest.raises(TypeError, match="not JSON serialisable: object"):
        write_json({"version": 2, "bad": object()}, path)
    assert json.loads(path.read_text()) == {"version": 1}
    assert _leftovers(tmp_path) == []


def test_write_interrupted_halfway_leaves_no_partial_file(tmp_path, monkeypatch):
    def half_then_fail(self, path, **kwargs):
        with open(path, "w") as handle:
            handle.write("session,sta")
        raise OSError("No space left on device")

    write_csv(pd.DataFrame({"session": ["s1"], "status": ["ok"]}), tmp_path / "sessions.csv")
    before = (tmp_path / "sessions.csv").read_text()
    monkeypatch.setattr(pd.DataFrame, "to_csv", half_then_fail)
    with pytest.raises(OSError, match="No space left"):
        write_csv(pd.DataFrame({"session": ["s2"], "status": ["failed"]}), tmp_path / "sessions.csv")
    with pytest.raises(OSError):
        write_csv(pd.DataFrame({"session": ["s3"]}), tmp_path / "new.csv")
    assert (tmp_path / "sessions.csv").read_text() == before
    assert not (tmp_path / "new.csv").exists()
    assert _leftovers(tmp_path) == []


def test_atomic_path_keeps_suffixes_and_renames_only_on_success(tmp_path):
    destination = tmp_path / "deep" / "lesions.nii.gz"
    with atomic_path(destination) as temporary:
        assert temporary.parent == destination.parent and temporary.name.endswith(".nii.gz")
        assert temporary.name.startswith(".lesions.nii.gz.") and not destination.exists()
        temporary.write_bytes(b"data")
    assert destination.read_bytes() == b"data" and not temporary.exists()
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(destination) as temporary:
            temporary.write_bytes(b"half")
            raise KeyboardInterrupt
    assert destination.read_bytes() == b"data"
    assert _leftovers(destination.parent) == []


def test_written_files_honour_the_umask_not_mkstemps_0600(tmp_path, umask_027):
    paths = [
        write_csv(pd.DataFrame({"a": [1]}), tmp_path / "t.csv"),
        write_json({"a": 1}, tmp_path / "t.json"),
        write_text("hello", tmp_path / "t.txt"),
        write_nifti(nib.Nifti1Image(np.zeros((2, 2, 2), np.uint8), np.eye(4)), tmp_path / "t.nii.gz"),
    ]
    for path in paths:
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask_027 == 0o640
    os.umask(0o022)
    assert stat.S_IMODE(write_text("x", tmp_path / "u.txt").stat().st_mode) == 0o644


def test_write_text_and_write_nifti_round_trip(tmp_path):
    assert write_text("line one\nline two", tmp_path / "a.md").read_text() == "line one\nline two"
    data = np.arange(24, dtype=np.int16).reshape(2, 3, 4)
    affine = np.diag([2.0, 2.0, 3.0, 1.0])
    path = write_nifti(nib.Nifti1Image(data, affine), tmp_path / "img.nii.gz")
    loaded = nib.load(str(path))
    assert np.array_equal(np.asarray(loaded.dataobj), data) and np.allclose(loaded.affine, affine)
    assert _leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True), (False, False), (np.bool_(True), True), (np.bool_(False), False),
        ("true", True), ("True", True), (" TRUE ", True), ("yes", True), ("1", True),
        ("false", False), ("False", False), ("no", False), ("0", False),
        (1, True), (0, False), (1.0, True), (0.0, False), (np.int64(1), True),
        ("", None), ("maybe", None), ("nan", None), (None, None), (float("nan"), None), (np.nan, None),
        ([1], None),
    ],
)
def test_parse_flag(value, expected):
    assert parse_flag(value) is expected


def test_parse_flag_reads_a_csv_column_with_blanks(tmp_path):
    (tmp_path / "r.csv").write_text("involved\nTrue\nFalse\n\n1\n")
    column = pd.read_csv(tmp_path / "r.csv", skip_blank_lines=False)["involved"]
    assert [parse_flag(value) for value in column] == [True, False, None, True]


def test_label_table_lists_leaf_labels_in_order():
    table = label_table({3: "Pons [midline]", 1: "Putamen [right]", 2: "Putamen [left]"})
    assert list(table.columns) == ["index", "name"]
    assert table.to_dict("records") == [
        {"index": 3, "name": "Pons [midline]"}, {"index": 1, "name": "Putamen [right]"},
        {"index": 2, "name": "Putamen [left]"},
    ]
    assert label_table({}).empty


def test_package_reexports_the_contract():
    from regiontag import outputs

    assert outputs.write_csv is contract.write_csv and outputs.REGIONS_CSV == contract.REGIONS_CSV == "regions.csv"


def test_atomic_writes_fsync_the_file_and_its_folder_before_the_rename(tmp_path, monkeypatch):
    """Issue 17: after a power cut a renamed file must hold its data, and the rename must be on disk."""
    import os
    import stat
    from pathlib import Path

    import nibabel as nib
    import numpy as np
    import pandas as pd

    from regiontag.outputs import contract

    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(descriptor):
        mode = os.fstat(descriptor).st_mode
        events.append(("fsync", "folder" if stat.S_ISDIR(mode) else "file"))
        return real_fsync(descriptor)

    def replace(source, destination):
        events.append(("replace", Path(destination).name))
        return real_replace(source, destination)

    monkeypatch.setattr(contract.os, "fsync", fsync)
    monkeypatch.setattr(contract.os, "replace", replace)
    writers = {
        "t.csv": lambda path: contract.write_csv(pd.DataFrame({"a": [1]}), path),
        "t.json": lambda path: contract.write_json({"a": 1}, path),
        "t.txt": lambda path: contract.write_text("a", path),
        "t.nii.gz": lambda path: contract.write_nifti(nib.Nifti1Image(np.zeros((2, 2, 2), np.uint8), np.eye(4)), path),
    }
    for name, write in writers.items():
        events.clear()
        write(tmp_path / name)
        assert events[:2] == [("fsync", "file"), ("replace", name)], (name, events)
        assert events[2:] == [("fsync", "folder")], (name, events)  # the rename itself made durable
        assert (tmp_path / name).is_file()
