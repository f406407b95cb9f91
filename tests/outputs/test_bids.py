"""BIDS derivatives: the dataset description and the BIDS-named view of each session's outputs."""

from __future__ import annotations

import json
from pathlib import Path


from regiontag.outputs.bids import derivatives_description, write_bids_derivatives, write_derivatives_description


def test_derivatives_description(bids_dataset: Path, tmp_path: Path):
    path = write_derivatives_description(tmp_path / "out", bids_dataset)
    content = json.loads(path.read_text())
    assert content == derivatives_description(bids_dataset)
    assert content["DatasetType"] == "derivative"
    assert content["GeneratedBy"][0]["Name"] == "regiontag" and content["GeneratedBy"][0]["Version"]
    assert content["SourceDatasets"] == [{"URL": bids_dataset.resolve().as_uri(), "Name": "B12 cohort"}]


def test_bids_derivatives_view_links_session_outputs(tmp_path: Path):
    from regiontag.types import Session

    session_dir = tmp_path / "sub-01_ses-02"
    session_dir.mkdir()
    for name in ("lesions.nii.gz", "lesions_space-MNI152.nii.gz", "regions.csv", "log.txt"):
        (session_dir / name).write_text(name)
    written = write_bids_derivatives(tmp_path, Session("sub-01_ses-02", (), {"subject": "01", "session": "02"}))
    anat = tmp_path / "sub-01" / "ses-02" / "anat"
    assert sorted(path.name for path in written) == [
        "sub-01_ses-02_desc-lesions_mask.nii.gz",
        "sub-01_ses-02_regions.csv",
        "sub-01_ses-02_space-MNI152NLin2009aSym_desc-lesions_mask.nii.gz",
    ]
    assert (anat / "sub-01_ses-02_regions.csv").read_text() == "regions.csv"
    assert write_bids_derivatives(tmp_path, Session("plain", ())) == []
    again = write_bids_derivatives(tmp_path, Session("sub-01_ses-02", (), {"subject": "01", "session": "02"}))
    assert sorted(again) == sorted(written) and not list(anat.glob(".*"))  # idempotent, no temporaries
