"""End to end: a BIDS dataset (brain and cord phantoms) through the real pipeline, then bids-validator-deno."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import pytest

from tests.outputs.bids_helpers import validator_errors


def make_phantom_bids_dataset(root: Path) -> Path:
    """sub-01: brain FLAIR + T2w (B12 leukoencephalopathy phantom); sub-02: cervical cord T2w (dorsal lesion)."""
    from regiontag.phantoms.brain import make_brain_phantom
    from regiontag.phantoms.cord import make_cord_phantom

    root.mkdir(parents=True, exist_ok=True)
    (root / "dataset_description.json").write_text(json.dumps({"Name": "phantoms", "BIDSVersion": "1.9.0"}))
    brain = make_brain_phantom("b12-leukoencephalopathy", 1, sequences=("FLAIR", "T2w"))
    for sequence, image in brain.images.items():
        path = root / "sub-01" / "anat" / f"sub-01_{sequence}.nii.gz"
        path.parent.mkdir(parents=True, exist_ok=True)
        nib.save(image, str(path))
    cord = make_cord_phantom("dorsal", 3)
    path = root / "sub-02" / "anat" / "sub-02_acq-cspine_T2w.nii.gz"
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(next(iter(cord.images.values())), str(path))
    path.with_name("sub-02_acq-cspine_T2w.json").write_text(json.dumps({"BodyPart": "CSPINE"}))
    return root


@pytest.mark.slow
def test_bids_run_of_brain_and_cord_phantoms_validates(tmp_path: Path):
    from regiontag.config import Config
    from regiontag.workflows.batch import run_batch

    bids = make_phantom_bids_dataset(tmp_path / "bids")
    summary = run_batch(bids, tmp_path / "out", Config(), workers=1, quiet=True)
    assert summary.counts["failed"] == 0, summary.results
    anat = tmp_path / "out" / "sub-01" / "anat"
    assert (anat / "sub-01_from-FLAIR_to-MNI152NLin2009aSym_mode-image_desc-affine_xfm.mat").is_file()
    assert (anat / "sub-01_desc-brainatlas_dseg.tsv").is_file()
    assert (tmp_path / "out" / "sub-02" / "anat" / "sub-02_acq-cspine_label-lesion_desc-cord_mask.nii.gz").is_file()
    assert (tmp_path / "out" / "sub-01.html").is_file() and (tmp_path / "out" / "regiontag" / "index.html").is_file()
    assert validator_errors(tmp_path / "out") == []
