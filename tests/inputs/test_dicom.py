"""DICOM input: a series written with pydicom, converted by dcm2niix, cached, classified from its sidecar."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from regiontag.config import Config
from regiontag.inputs import dicom
from regiontag.inputs.discovery import discover_sessions
from regiontag.inputs.scan import InputError
from tests.inputs.dicom_helpers import write_dicom_series

pytest.importorskip("pydicom")


def _dcm2niix_or_skip() -> None:
    try:
        dicom.dcm2niix_executable()
    except InputError as error:
        pytest.skip(str(error))


def _volume() -> nib.Nifti1Image:
    data = np.random.default_rng(3).random((12, 10, 5)).astype(np.float32) * 1000
    affine = np.array([[0.0, 0.0, -2.5, 10.0], [-0.8, 0.0, 0.0, 40.0], [0.0, 0.9, 0.0, -30.0], [0, 0, 0, 1]])
    return nib.Nifti1Image(data, affine)


def test_series_converts_with_geometry_sidecar_and_cache(tmp_path: Path, monkeypatch):
    _dcm2niix_or_skip()
    monkeypatch.setenv("REGIONTAG_CACHE", str(tmp_path / "cache"))
    image = _volume()
    write_dicom_series(image, tmp_path / "in" / "patient7", series_description="T2_TSE_SAG", body_part="CSPINE")
    sessions = discover_sessions(tmp_path / "in", Config())
    assert [s.session_id for s in sessions] == ["patient7"]
    (scan,) = sessions[0].scans
    assert (scan.sequence, scan.body_part) == ("T2w", "cord")
    assert scan.sequence_source.startswith("DICOM SeriesDescription 'T2_TSE_SAG'")
    assert scan.body_part_source == "DICOM BodyPartExamined 'CSPINE'"
    converted = nib.load(str(scan.path))
    # same voxels in space as the volume the series was made from (up to the 12-bit quantisation)
    canonical, original = nib.as_closest_canonical(converted), nib.as_closest_canonical(image)
    np.testing.assert_allclose(canonical.affine, original.affine, atol=1e-3)
    np.testing.assert_allclose(canonical.get_fdata(), original.get_fdata(), atol=1.0)
    sidecar = json.loads(scan.path.with_name(scan.path.name.replace(".nii.gz", ".json")).read_text())
    assert sidecar["SeriesDescription"] == "T2_TSE_SAG" and sidecar["BodyPart"] == "CSPINE"
    record = dicom.conversion_record(scan.path)
    assert record["n_files"] == 5 and "dcm2niix" in record["dcm2niix"].lower()
    assert record["source"] == str((tmp_path / "in" / "patient7").resolve())
    # cached by the files' hashes: a second discovery converts nothing; a changed file converts again
    stamp = scan.path.stat().st_mtime_ns
    again = discover_sessions(tmp_path / "in", Config()).pop().scans[0]
    assert again.path == scan.path and again.path.stat().st_mtime_ns == stamp
    write_dicom_series(nib.Nifti1Image(image.get_fdata() * 0.5, image.affine), tmp_path / "in" / "patient7",
                       series_description="T2_TSE_SAG", body_part="CSPINE")
    assert discover_sessions(tmp_path / "in", Config()).pop().scans[0].path.parent != scan.path.parent


def test_missing_dcm2niix_is_one_clear_line(tmp_path: Path, monkeypatch):
    write_dicom_series(_volume(), tmp_path / "in" / "p1", series_description="FLAIR_AX")
    monkeypatch.setattr(dicom.shutil, "which", lambda name: None)
    monkeypatch.setitem(__import__("sys").modules, "dcm2niix", None)  # the package is absent
    with pytest.raises(InputError) as raised:
        discover_sessions(tmp_path / "in", Config())
    assert str(raised.value) == "DICOM input needs dcm2niix: pip install 'regiontag[dicom]' (or put dcm2niix on the PATH)"


def test_unconvertible_folder_fails_its_session_with_the_reason(tmp_path: Path, monkeypatch):
    _dcm2niix_or_skip()
    monkeypatch.setenv("REGIONTAG_CACHE", str(tmp_path / "cache"))
    broken = tmp_path / "in" / "p2"
    broken.mkdir(parents=True)
    (broken / "IM0001.dcm").write_bytes(b"not a dicom file")
    (session,) = discover_sessions(tmp_path / "in", Config())
    assert session.scans[0].sequence == "unknown"
    assert "dcm2niix could not convert the DICOM files" in session.scans[0].sequence_source


@pytest.mark.slow
def test_dicom_cord_phantom_session_runs_to_ok(tmp_path: Path, monkeypatch):
    """A cord phantom written as a sagittal DICOM series: converted, classified and run end to end (~1 min)."""
    _dcm2niix_or_skip()
    from regiontag.phantoms.cord import make_cord_phantom
    from regiontag.workflows.session import run_session

    monkeypatch.setenv("REGIONTAG_CACHE", str(tmp_path / "cache"))
    phantom = make_cord_phantom("dorsal", 3)
    (image,) = phantom.images.values()
    write_dicom_series(image, tmp_path / "in" / "cord-dicom", series_description="t2_tse_sag", body_part="CSPINE")
    (session,) = discover_sessions(tmp_path / "in", Config())
    result = run_session(session, tmp_path / "out", Config())
    assert result.status in ("ok", "warning"), result.error
    assert result.body_parts == ("cord",)
    provenance = json.loads((tmp_path / "out" / "cord-dicom" / "provenance.json").read_text())
    (record,) = provenance["inputs"]
    assert record["sequence"] == "T2w" and record["body_part"] == "cord"
    assert record["dicom"]["source"] == str((tmp_path / "in" / "cord-dicom").resolve())
    assert record["dicom"]["n_files"] == image.shape[2]
    involved = set(result.region_table.query("involved")["region"])
    assert any("Posterior column" in region for region in involved)  # the dorsal lesion is found
