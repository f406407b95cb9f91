"""BIDS input: sessions and sequences from pybids entities, participant filter."""

from __future__ import annotations

from pathlib import Path

import pytest

from regiontag.inputs.bids import BIDSError, body_part_from_entities, discover_bids_sessions, filename_entities, session_label
from regiontag.config import Config, DiscoveryConfig


def _scans(session) -> dict[tuple[str, str | None], str]:
    return {(scan.sequence, scan.body_part): scan.path.name for scan in session.scans}


def test_sessions_sequences_and_body_parts_from_entities(bids_dataset: Path):
    sessions = discover_bids_sessions(bids_dataset, Config())
    assert [s.session_id for s in sessions] == ["sub-01_ses-01", "sub-01_ses-02", "sub-02", "sub-03"]
    assert [s.bids for s in sessions] == [
        {"subject": "01", "session": "01"}, {"subject": "01", "session": "02"}, {"subject": "02"}, {"subject": "03"},
    ]
    assert _scans(sessions[0]) == {
        ("FLAIR", None): "sub-01_ses-01_FLAIR.nii.gz",
        ("T2w", None): "sub-01_ses-01_T2w.nii.gz",
        ("T1w", None): "sub-01_ses-01_T1w.nii.gz",
        ("T1w_ce", None): "sub-01_ses-01_ce-gadolinium_T1w.nii.gz",
        ("DWI", None): "sub-01_ses-01_dwi.nii.gz",
    }
    assert _scans(sessions[2]) == {("T2w", "cord"): "sub-02_acq-cspine_T2w.nii.gz",
                                   ("FLAIR", "brain"): "sub-02_bp-brain_FLAIR.nii"}
    # two cord T2w runs: the last run is kept; the acq-sag T2w has an undecided body part
    assert _scans(sessions[3]) == {("T2w", "cord"): "sub-03_bp-tspine_run-2_T2w.nii.gz",
                                   ("T2w", None): "sub-03_acq-sag_T2w.nii.gz"}
    cord_scan = next(scan for scan in sessions[2].scans if scan.body_part == "cord")
    assert cord_scan.body_part_source == "BIDS entity: acq-cspine"
    assert all(scan.path.is_absolute() and scan.path.is_file() for s in sessions for scan in s.scans)


def test_participant_filter_accepts_both_label_forms_and_rejects_unknown(bids_dataset: Path):
    sessions = discover_bids_sessions(bids_dataset, Config(), ["sub-01", "03"])
    assert [s.session_id for s in sessions] == ["sub-01_ses-01", "sub-01_ses-02", "sub-03"]
    with pytest.raises(BIDSError, match=r"participant label\(s\) not found: 07 \(subjects present: 01, 02, 03, 04\)"):
        discover_bids_sessions(bids_dataset, Config(), ["01", "07"])


def test_config_overrides_apply_to_bids_files(bids_dataset: Path):
    body_part = Config(discovery=DiscoveryConfig(body_part_overrides={"sub-03_acq-sag_*": "cord"}))
    sessions = discover_bids_sessions(bids_dataset, body_part, ["03"])
    # both are cord T2w now: the file with the larger run number wins (acq-sag has none)
    assert _scans(sessions[0]) == {("T2w", "cord"): "sub-03_bp-tspine_run-2_T2w.nii.gz"}
    sequence = Config(discovery=DiscoveryConfig(sequence_overrides={"*_acq-sag_*": "FLAIR"}))
    scan = next(s for s in discover_bids_sessions(bids_dataset, sequence, ["03"])[0].scans if s.body_part is None)
    assert (scan.path.name, scan.sequence, scan.sequence_source) == (
        "sub-03_acq-sag_T2w.nii.gz", "FLAIR", "config override: *_acq-sag_*")


def test_not_a_bids_dataset(tmp_path: Path):
    with pytest.raises(BIDSError, match="not a BIDS dataset"):
        discover_bids_sessions(tmp_path, Config())


def test_entity_helpers():
    assert filename_entities("sub-1_ses-2_acq-cspine_bp-spine_ce-gad_run-3_T1w.nii.gz") == {
        "acq": "cspine", "bp": "spine", "ce": "gad"}
    assert body_part_from_entities({"bp": "tspine"}) == ("cord", "BIDS entity: bp-tspine")
    assert body_part_from_entities({"acq": "SpinalCord"}) == ("cord", "BIDS entity: acq-SpinalCord")
    assert body_part_from_entities({"bp": "head"}) == ("brain", "BIDS entity: bp-head")
    assert body_part_from_entities({"acq": "brain"}) == (None, "")
    assert session_label("01", None) == "sub-01" and session_label("01", "02") == "sub-01_ses-02"


def test_lead_discovery_dispatches_to_bids(bids_dataset: Path):
    from regiontag.inputs.discovery import discover_sessions

    assert [s.session_id for s in discover_sessions(bids_dataset, Config(), ["02"])] == ["sub-02"]


def test_body_part_from_the_sidecar_and_session_label_filter(bids_dataset: Path, caplog):
    import json

    sidecar = bids_dataset / "sub-01/ses-02/anat/sub-01_ses-02_FLAIR.json"
    sidecar.write_text(json.dumps({"BodyPart": "HEAD"}))  # as dcm2niix writes DICOM's BodyPartExamined
    (bids_dataset / "sub-03/anat/sub-03_acq-sag_T2w.json").write_text(json.dumps({"BodyPartExamined": "TSPINE"}))
    with caplog.at_level("WARNING"):
        sessions = discover_bids_sessions(bids_dataset, Config(), ["01", "03"])
    assert _scans(sessions[1]) == {("FLAIR", "brain"): "sub-01_ses-02_FLAIR.nii.gz"}
    assert sessions[1].scans[0].body_part_source == "BIDS sidecar: BodyPart=HEAD"
    # the acq-sag T2w is a cord T2w now, so the cord T2w of the last run wins over it
    assert "sub-03_acq-sag_T2w.nii.gz ignored, sub-03_bp-tspine_run-2_T2w.nii.gz kept for T2w/cord" in caplog.text
    assert "sub-03_bp-tspine_run-2_T2w.nii.gz: 'bp-' is not a BIDS entity" in caplog.text
    assert [s.session_id for s in discover_bids_sessions(bids_dataset, Config(), None, ["ses-02"])] == ["sub-01_ses-02"]
    with pytest.raises(BIDSError, match=r"session label\(s\) not found: 09 \(sessions present: 01, 02\)"):
        discover_bids_sessions(bids_dataset, Config(), None, ["09"])


def test_t2starw_is_read_as_t2w_and_a_true_t2w_wins(tmp_path: Path):
    import json

    import nibabel as nib
    import numpy as np

    root = tmp_path / "ds"
    for relative in ("sub-01/anat/sub-01_acq-cspine_T2starw.nii.gz", "sub-01/anat/sub-01_acq-cspine_T2w.nii.gz",
                     "sub-02/anat/sub-02_acq-cspine_T2starw.nii.gz"):
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        nib.save(nib.Nifti1Image(np.zeros((4, 4, 4), np.float32), np.eye(4)), root / relative)
    (root / "dataset_description.json").write_text(json.dumps({"Name": "cords", "BIDSVersion": "1.9.0"}))
    first, second = discover_bids_sessions(root, Config())
    assert _scans(first) == {("T2w", "cord"): "sub-01_acq-cspine_T2w.nii.gz"}
    assert _scans(second) == {("T2w", "cord"): "sub-02_acq-cspine_T2starw.nii.gz"}
    assert second.scans[0].sequence_source == "BIDS suffix: T2starw (T2*w, read as T2-weighted: CSF and lesions bright)"
