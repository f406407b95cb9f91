"""Session and sequence discovery from folders of NIfTI files."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from regiontag.config import Config, DiscoveryConfig
from regiontag.inputs.discovery import classify_sequence, discover_sessions, safe_session_id


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("sub-01_FLAIR.nii.gz", "FLAIR"),
        ("t2_flair_tra.nii", "FLAIR"),
        ("T2_TSE.nii.gz", "T2w"),
        ("sub-01_T2w.nii.gz", "T2w"),
        ("sub-01_dwi.nii.gz", "DWI"),
        ("ep2d_diff_trace.nii.gz", "DWI"),
        ("sub-01_ce-gadolinium_T1w.nii.gz", "T1w_ce"),
        ("t1_mprage_post_gd.nii", "T1w_ce"),
        ("sub-01_T1w.nii.gz", "T1w"),
        ("patient12_study1_T2W.nii.gz", "T2w"),
        ("sub-01_T2starw.nii.gz", "T2w"),
        ("t2s.nii.gz", "T2w"),
        ("ax_me_gre_T2star.nii.gz", "T2w"),
        ("sag_STIR_cspine.nii.gz", "T2w"),
        ("t2_tirm_tra_dark-fluid.nii.gz", "FLAIR"),
        ("sub-01_PSIR.nii.gz", "unknown"),
        ("medical_t1.nii.gz", "T1w"),  # "medic" (a T2*w sequence) only as a word
        ("notes.nii", "unknown"),
    ],
)
def test_classify_sequence(name: str, expected: str) -> None:
    assert classify_sequence(name)[0] == expected


def test_t2star_and_stir_say_they_are_read_as_t2_weighted() -> None:
    assert classify_sequence("sag_STIR.nii.gz") == (
        "T2w", "file name matches 'stir' (T2*w / STIR, read as T2-weighted: CSF and lesions bright)")
    assert classify_sequence("sub-01_T2w.nii.gz") == ("T2w", "file name matches '_t2w'")


def test_config_override_wins() -> None:
    config = DiscoveryConfig(sequence_overrides={"*tirm*": "FLAIR", "scan_7*": "T2w"})
    assert classify_sequence("scan_7.nii.gz", config) == ("T2w", "config override 'scan_7*'")


def test_safe_session_id() -> None:
    assert safe_session_id("Patient Müller (2)") == "Patient_Muller_2"
    assert safe_session_id("../../etc") == "etc"
    assert safe_session_id("...") == "session"


def _touch_nifti(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 4), np.float32), np.eye(4)), str(path))


def test_discover_files_and_folders(tmp_path: Path) -> None:
    _touch_nifti(tmp_path / "single case_FLAIR.nii.gz")
    _touch_nifti(tmp_path / "subj2" / "t2_flair.nii")
    _touch_nifti(tmp_path / "subj2" / "T2_TSE.nii.gz")
    _touch_nifti(tmp_path / "subj3" / "cspine_T2w.nii.gz")
    (tmp_path / "readme.txt").write_text("not a scan")
    (tmp_path / "empty").mkdir()
    sessions = discover_sessions(tmp_path, Config())
    assert [s.session_id for s in sessions] == ["single_case_FLAIR", "subj2", "subj3"]
    subj2 = {scan.sequence for scan in sessions[1].scans}
    assert subj2 == {"FLAIR", "T2w"}
    assert sessions[2].scans[0].body_part == "cord"


def test_missing_input_folder(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="input folder not found"):
        discover_sessions(tmp_path / "nope")


def test_a_file_as_input_dir_says_so(tmp_path):
    import pytest as _pytest

    from regiontag.inputs.discovery import discover_sessions

    scan = tmp_path / "s1_FLAIR.nii.gz"
    scan.write_bytes(b"")
    with _pytest.raises(NotADirectoryError, match=r"INPUT_DIR must be a folder, not a file: .*s1_FLAIR.nii.gz \(give the folder"):
        discover_sessions(scan)


def test_a_bids_subject_folder_is_the_subject_not_a_session_named_anat(bids_dataset, tmp_path):
    import shutil

    from regiontag.inputs.discovery import discover_sessions

    inside = discover_sessions(bids_dataset / "sub-01")  # inside its dataset: read with pybids
    assert [s.session_id for s in inside] == ["sub-01_ses-01", "sub-01_ses-02"]
    assert inside[0].bids == {"subject": "01", "session": "01"}
    alone = shutil.copytree(bids_dataset / "sub-02", tmp_path / "sub-02")  # copied out of its dataset
    (session,) = discover_sessions(alone)
    assert session.session_id == "sub-02" and session.bids == {"subject": "02"}
    assert sorted(scan.path.name for scan in session.scans) == ["sub-02_acq-cspine_T2w.nii.gz", "sub-02_bp-brain_FLAIR.nii"]
