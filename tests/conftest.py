"""Shared fixtures: the ../shared data folder (real scans, PAM50), temporary caches, a small BIDS dataset."""

from __future__ import annotations

import json
import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def _shared_dir() -> Path | None:
    candidates = [os.environ.get("REGIONTAG_SHARED"), REPO_ROOT.parent / "shared"]
    for candidate in candidates:
        if candidate and (Path(candidate) / "data").is_dir():
            return Path(candidate)
    return None


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The ``../shared`` folder beside the checkout; tests using it skip when it is absent."""
    found = _shared_dir()
    if found is None:
        pytest.skip("../shared/data not found beside the checkout (set REGIONTAG_SHARED to its folder)")
    return found


@pytest.fixture(scope="session")
def real_brain_dir(shared_dir: Path) -> Path:
    """Folder with the real clinical brain scans (patient12 FLAIR/T2W/T1W)."""
    path = shared_dir / "data" / "real" / "brain"
    if not path.is_dir():
        pytest.skip(f"{path} not found")
    return path


@pytest.fixture(scope="session")
def real_cord_dir(shared_dir: Path) -> Path:
    """Folder with the real cord T2 scan and its manual cord mask."""
    path = shared_dir / "data" / "real" / "cord"
    if not path.is_dir():
        pytest.skip(f"{path} not found")
    return path


@pytest.fixture(scope="session")
def pam50_dir(shared_dir: Path) -> Path:
    """The PAM50 spinal cord template and atlas (SCT)."""
    path = shared_dir / "data" / "pam50"
    if not path.is_dir():
        pytest.skip(f"{path} not found")
    return path


def _save(root: Path, relative: str, shape=(6, 6, 4)) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.zeros(shape, np.float32), np.eye(4)), str(path))


@pytest.fixture()
def bids_dataset(tmp_path: Path) -> Path:
    root = tmp_path / "ds"
    root.mkdir()
    (root / "dataset_description.json").write_text(json.dumps({"Name": "B12 cohort", "BIDSVersion": "1.9.0"}))
    for relative in (
        "sub-01/ses-01/anat/sub-01_ses-01_FLAIR.nii.gz",
        "sub-01/ses-01/anat/sub-01_ses-01_T2w.nii.gz",
        "sub-01/ses-01/anat/sub-01_ses-01_T1w.nii.gz",
        "sub-01/ses-01/anat/sub-01_ses-01_ce-gadolinium_T1w.nii.gz",
        "sub-01/ses-01/dwi/sub-01_ses-01_dwi.nii.gz",
        "sub-01/ses-02/anat/sub-01_ses-02_FLAIR.nii.gz",
        "sub-02/anat/sub-02_acq-cspine_T2w.nii.gz",
        "sub-02/anat/sub-02_bp-brain_FLAIR.nii",
        "sub-03/anat/sub-03_bp-tspine_run-1_T2w.nii.gz",
        "sub-03/anat/sub-03_bp-tspine_run-2_T2w.nii.gz",
        "sub-03/anat/sub-03_acq-sag_T2w.nii.gz",
        "sub-04/anat/sub-04_PD.nii.gz",  # no usable sequence: subject left out
    ):
        _save(root, relative)
    (root / "sub-01/ses-01/anat/sub-01_ses-01_FLAIR.json").write_text("{}")
    (root / "sub-01/ses-01/dwi/sub-01_ses-01_dwi.bval").write_text("0 1000\n")
    _save(root, "derivatives/other/sub-01/anat/sub-01_FLAIR.nii.gz")  # not an input
    return root
