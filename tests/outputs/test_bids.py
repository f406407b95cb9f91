"""BIDS derivatives: the dataset description, .bidsignore and the BIDS view of a session, checked by the validator."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from regiontag.outputs.bids import (
    BIDSIGNORE,
    derivatives_description,
    source_entities,
    write_bids_derivatives,
    write_derivatives_description,
    write_group_tables,
)
from regiontag.types import Session
from tests.outputs.bids_helpers import fake_session_folder, validator_errors


def test_derivatives_description(bids_dataset: Path, tmp_path: Path):
    path = write_derivatives_description(tmp_path / "out", bids_dataset)
    content = json.loads(path.read_text())
    assert content == derivatives_description(bids_dataset)
    assert content["DatasetType"] == "derivative"
    assert content["GeneratedBy"][0]["Name"] == "regiontag" and content["GeneratedBy"][0]["Version"]
    assert content["SourceDatasets"] == [{"URL": bids_dataset.resolve().as_uri(), "Name": "B12 cohort"}]
    assert content["DatasetLinks"] == {"raw": bids_dataset.resolve().as_uri()}
    assert (tmp_path / "out" / ".bidsignore").read_text() == BIDSIGNORE
    assert (tmp_path / "out" / "README.md").read_text().startswith("# regiontag derivatives")


def test_source_entities_keep_acquisition_and_run():
    assert source_entities("sub-01_ses-02_acq-cspine_ce-gd_run-2_T1w.nii.gz") == ("_acq-cspine_ce-gd_run-2", "T1w")
    assert source_entities("sub-01_FLAIR.nii") == ("", "FLAIR")


def _raw_dataset(root: Path) -> dict[str, Path]:
    root.mkdir(parents=True)
    (root / "dataset_description.json").write_text(json.dumps({"Name": "raw", "BIDSVersion": "1.9.0"}))
    references = {"brain": root / "sub-01/ses-02/anat/sub-01_ses-02_FLAIR.nii.gz",
                  "cord": root / "sub-01/ses-02/anat/sub-01_ses-02_acq-cspine_T2w.nii.gz"}
    for path in references.values():
        path.parent.mkdir(parents=True, exist_ok=True)
        nib.save(nib.Nifti1Image(np.zeros((8, 8, 6), np.float32), np.eye(4)), str(path))
    return references


def test_bids_view_of_a_brain_and_cord_session_validates(tmp_path: Path):
    raw = tmp_path / "raw"
    references = _raw_dataset(raw)
    out = tmp_path / "out"
    session_dir = out / "regiontag" / "sub-01_ses-02"
    fake_session_folder(session_dir, references)
    write_derivatives_description(out, raw)
    session = Session("sub-01_ses-02", (), {"subject": "01", "session": "02"})
    written = write_bids_derivatives(out, session, session_dir=session_dir, input_dir=raw)
    anat = out / "sub-01" / "ses-02" / "anat"
    names = {path.name for path in written}
    assert {
        "sub-01_ses-02_label-lesion_mask.nii.gz",
        "sub-01_ses-02_space-MNI152NLin2009aSym_label-lesion_mask.nii.gz",
        "sub-01_ses-02_desc-brainatlas_dseg.nii.gz", "sub-01_ses-02_desc-brainatlas_dseg.tsv",
        "sub-01_ses-02_acq-cspine_label-lesion_desc-cord_mask.nii.gz",
        "sub-01_ses-02_acq-cspine_desc-cordatlas_dseg.tsv",
        "sub-01_ses-02_from-FLAIR_to-MNI152NLin2009aSym_mode-image_desc-affine_xfm.mat",
        "sub-01_ses-02_from-FLAIR_to-MNI152NLin2009aSym_mode-image_desc-warp_xfm.nii.gz",
        "sub-01_ses-02_from-MNI152NLin2009aSym_to-FLAIR_mode-image_desc-warp_xfm.nii.gz",
        "sub-01_ses-02_regions.tsv", "sub-01_ses-02_regions.json", "sub-01_ses-02_scores.tsv",
        "sub-01_ses-02_findings.json", "sub-01_ses-02.html",
    } <= names
    mask = json.loads((anat / "sub-01_ses-02_label-lesion_mask.json").read_text())
    assert mask == {"Description": "Brain lesion mask (hyperintensities)", "Type": "Lesion",
                    "Sources": ["bids:raw:sub-01/ses-02/anat/sub-01_ses-02_FLAIR.nii.gz"],
                    "SpatialReference": "bids:raw:sub-01/ses-02/anat/sub-01_ses-02_FLAIR.nii.gz"}
    template = json.loads((anat / "sub-01_ses-02_space-MNI152NLin2009aSym_label-lesion_mask.json").read_text())
    assert template["SpatialReference"] == "MNI152NLin2009aSym"
    # images are hard links of the session folder's files; tables are TSV with column sidecars
    assert (anat / "sub-01_ses-02_label-lesion_mask.nii.gz").stat().st_ino == (session_dir / "lesions.nii.gz").stat().st_ino
    regions = pd.read_csv(anat / "sub-01_ses-02_regions.tsv", sep="\t", keep_default_na=False)
    assert regions.loc[0, "region"] == "Brain" and regions.loc[0, "laterality_index"] == "n/a"
    sidecar = json.loads((anat / "sub-01_ses-02_regions.json").read_text())
    assert sidecar["lesion_volume_ml"]["Units"] == "mL" and set(sidecar) == set(regions.columns)
    # batch tables of the regiontag folder, as group TSVs
    pd.DataFrame([{"session": "sub-01_ses-02", "status": "ok"}]).to_csv(out / "regiontag" / "sessions.csv", index=False)
    assert [path.name for path in write_group_tables(out, out / "regiontag")] == ["group_sessions.tsv",
                                                                                  "group_sessions.json"]
    again = write_bids_derivatives(out, session, session_dir=session_dir, input_dir=raw)
    assert sorted(again) == sorted(written) and not list(anat.glob(".*"))  # idempotent, no temporaries
    assert validator_errors(out) == []


def test_sessions_without_bids_entities_get_no_view(tmp_path: Path):
    assert write_bids_derivatives(tmp_path, Session("plain", ()), session_dir=tmp_path / "plain",
                                  input_dir=tmp_path) == []


def test_a_batch_on_the_bids_fixture_gives_a_valid_derivatives_dataset(bids_dataset: Path, tmp_path: Path):
    """The conftest BIDS dataset (bp- names, a PD-only subject, nested derivatives) through run_batch."""
    from regiontag.config import Config
    from regiontag.workflows.batch import run_batch
    from tests.workflows.test_batch import RUNNER

    out = tmp_path / "out"
    summary = run_batch(bids_dataset, out, Config(), workers=1, quiet=True, session_runner=RUNNER, report=False)
    assert summary.counts["ok"] == 4
    assert sorted(p.name for p in out.glob("sub-*/**/*_regions.tsv")) == [
        "sub-01_ses-01_regions.tsv", "sub-01_ses-02_regions.tsv", "sub-02_regions.tsv", "sub-03_regions.tsv"]
    assert not [p for p in out.iterdir() if p.is_dir() and "_" in p.name]  # no session folder beside the subjects
    assert validator_errors(out) == []
