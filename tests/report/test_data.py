"""Reading a session folder for the report (``regiontag.report.data``): tables, paths, grids, label names.

``load_session`` (status decisions) is covered through the session and batch report tests.
"""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pandas as pd

from regiontag import outputs
from regiontag.report.data import (
    SessionData,
    load_image,
    read_label_names,
    read_table,
    resolve_input_path,
    same_grid,
)

COLUMNS = ["session", "region", "involved"]


def test_read_table_missing_file(tmp_path):
    problems: list[str] = []
    table = read_table(tmp_path / "regions.csv", COLUMNS, problems)
    assert table.empty and list(table.columns) == COLUMNS
    assert problems == []  # a missing file is not a problem, the report says "not available"
    assert list(read_table(tmp_path / "regions.csv").columns) == []


def test_read_table_empty_file_records_a_problem(tmp_path):
    path = tmp_path / "regions.csv"
    path.write_text("", encoding="utf-8")
    problems: list[str] = []
    table = read_table(path, COLUMNS, problems)
    assert table.empty and list(table.columns) == COLUMNS
    assert len(problems) == 1 and problems[0].startswith("regions.csv: unreadable (")
    assert read_table(path, COLUMNS).empty  # without a problem list it still returns the columns


def test_read_table_corrupt_file_records_a_problem(tmp_path):
    path = tmp_path / "scores.csv"
    path.write_bytes(b'a,b\n1,"unterminated\n2,3\n')
    problems: list[str] = []
    table = read_table(path, COLUMNS, problems)
    assert list(table.columns) == COLUMNS and table.empty
    assert len(problems) == 1 and problems[0].startswith("scores.csv: unreadable (")


def test_read_table_adds_missing_columns_and_keeps_others(tmp_path):
    path = tmp_path / "regions.csv"
    path.write_text("region,extra\nPutamen,1\nThalamus,\n", encoding="utf-8")
    problems: list[str] = []
    table = read_table(path, COLUMNS, problems)
    assert problems == []
    assert list(table.columns) == ["region", "extra", "session", "involved"]
    assert table["region"].tolist() == ["Putamen", "Thalamus"]
    assert table["session"].isna().all() and table["involved"].isna().all()
    assert table["extra"].iloc[0] == 1 and pd.isna(table["extra"].iloc[1])


def test_resolve_input_path(tmp_path):
    batch = tmp_path / "out"
    session_dir = batch / "sub-01"
    session_dir.mkdir(parents=True)
    (session_dir / "in_session.nii.gz").write_bytes(b"x")
    (batch / "beside.nii.gz").write_bytes(b"x")
    absolute = tmp_path / "scan.nii.gz"
    absolute.write_bytes(b"x")
    assert resolve_input_path(str(absolute), session_dir) == absolute
    assert resolve_input_path("in_session.nii.gz", session_dir) == session_dir / "in_session.nii.gz"
    assert resolve_input_path("beside.nii.gz", session_dir) == batch / "beside.nii.gz"
    assert resolve_input_path(tmp_path / "moved.nii.gz", session_dir) is None
    assert resolve_input_path("sub-01", batch) is None  # a folder is not a scan
    assert resolve_input_path("", session_dir) is None and resolve_input_path(None, session_dir) is None


def test_resolve_input_path_as_written_first(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    session_dir = tmp_path / "out" / "sub-01"
    session_dir.mkdir(parents=True)
    (tmp_path / "scan.nii.gz").write_bytes(b"cwd")
    (session_dir / "scan.nii.gz").write_bytes(b"session")
    assert resolve_input_path("scan.nii.gz", session_dir).read_bytes() == b"cwd"


def test_same_grid():
    affine = np.diag([1.0, 1.0, 2.0, 1.0])
    first = nib.Nifti1Image(np.zeros((4, 5, 6), np.uint8), affine)
    assert same_grid(first, nib.Nifti1Image(np.ones((4, 5, 6, 2), np.float32), affine))  # 4th axis ignored
    assert not same_grid(first, nib.Nifti1Image(np.zeros((4, 5, 7), np.uint8), affine))
    nudged = affine.copy()
    nudged[0, 3] = 5e-4
    assert same_grid(first, nib.Nifti1Image(np.zeros((4, 5, 6), np.uint8), nudged))
    nudged[0, 3] = 0.01
    assert not same_grid(first, nib.Nifti1Image(np.zeros((4, 5, 6), np.uint8), nudged))
    assert same_grid(first, nib.Nifti1Image(np.zeros((4, 5, 6), np.uint8), nudged), tolerance_mm=0.05)


def test_load_image_canonical_or_none(tmp_path):
    data = np.arange(24, dtype=np.int16).reshape(2, 3, 4)
    lps = np.diag([-1.0, -1.0, 1.0, 1.0])
    nib.save(nib.Nifti1Image(data, lps), tmp_path / "lps.nii.gz")
    image = load_image(tmp_path / "lps.nii.gz")
    assert nib.aff2axcodes(image.affine) == ("R", "A", "S")
    np.testing.assert_array_equal(np.asarray(image.dataobj), data[::-1, ::-1, :])
    assert load_image(tmp_path / "absent.nii.gz") is None and load_image(None) is None
    (tmp_path / "broken.nii.gz").write_bytes(b"not a nifti")
    assert load_image(tmp_path / "broken.nii.gz") is None


def test_read_label_names(tmp_path):
    (tmp_path / "cord_labels.tsv").write_text("name\tindex\nleft dorsal\t1\nright dorsal\t2.0\n", encoding="utf-8")
    assert read_label_names(tmp_path, outputs.CORD_LABELS_NII) == {1: "left dorsal", 2: "right dorsal"}
    (tmp_path / "atlas_labels.tsv").write_text("1\tPutamen\n", encoding="utf-8")  # only a header row: no entry
    assert read_label_names(tmp_path, outputs.ATLAS_LABELS_NII) == {}
    assert read_label_names(tmp_path, outputs.LESIONS_NII) == {}  # no table for that image
    assert read_label_names(tmp_path / "none", outputs.CORD_LABELS_NII) == {}


def test_session_data_body_parts_and_inputs(tmp_path):
    data = SessionData(tmp_path, "s", provenance={
        "inputs": [{"path": "c.nii.gz", "body_part": "cord"}, {"path": "b.nii.gz", "body_part": "brain"}, "junk"],
        "reference": {"cord": "c.nii.gz"},
    })
    assert data.body_parts() == ["brain", "cord"]
    assert data.inputs_of("cord") == [{"path": "c.nii.gz", "body_part": "cord"}]
    assert data.reference_path("cord") is None  # not on disk
    (tmp_path / "c.nii.gz").write_bytes(b"x")
    assert data.reference_path("cord") == tmp_path / "c.nii.gz" and data.reference_path("brain") is None
    bare = SessionData(tmp_path, "s")
    assert bare.body_parts() == []
    (tmp_path / outputs.CORD_MASK_NII).write_bytes(b"x")
    (tmp_path / outputs.ATLAS_LABELS_NII).write_bytes(b"x")
    assert bare.body_parts() == ["brain", "cord"]  # inferred from the files
    assert bare.file("x.csv") == tmp_path / "x.csv"


