"""Body part from the file name and from the image (body shape in mm, closed top, CSF column)."""

from __future__ import annotations

import os
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from regiontag.accuracy.real_cases import thick_slices
from regiontag.cord.bodypart import assess_body_part, body_sections, detect_body_part
from regiontag.inputs.discovery import body_part_from_name
from regiontag.phantoms.cord import make_cord_phantom
from regiontag.types import ScanInput, Session
from regiontag.workflows.session import _decide_body_parts


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("sub-01_acq-cspine_T2w.nii.gz", "cord"),
        ("sub-01_acq-tspine_T2w.nii.gz", "cord"),
        ("sub-01_bp-spine_T2w.nii.gz", "cord"),
        ("sub-01_bp-brain_acq-cspine_T2w.nii.gz", "brain"),  # bp- decides before acq-
        ("patient3_cord_t2.nii.gz", "cord"),
        ("T2_SAG_C-SPINE.nii", "cord"),
        ("t2_lumbar.nii.gz", "cord"),
        ("sag_conus_T2.nii.gz", "cord"),
        ("head_flair.nii.gz", "brain"),
        ("patient16_lesions_space-MNI152.nii.gz", "brain"),
        ("sub-01_space-MNI152NLin2009cAsym_FLAIR.nii.gz", "brain"),
        ("sub-01_space-PAM50_desc-lesion_mask.nii.gz", "cord"),
        ("patient12_study1_T2W.nii.gz", None),
        ("patient07_FLAIR.nii.gz", None),
        ("scan_T2w.nii.gz", None),
        ("sub-01_acq-axial_T2w.nii.gz", None),
        ("concord_study_T2w.nii", None),  # "cord" inside another word does not count
    ],
)
def test_body_part_from_name(name, expected):
    assert body_part_from_name(name) == expected


@pytest.mark.parametrize("orientation", ["sagittal", "axial"])
def test_cord_phantom_detected_as_cord(orientation):
    phantom = make_cord_phantom("dorsal", 5, orientation, voxel_size=(1.0, 1.0, 3.0), length_mm=40, supersample_mm=1.0)
    decision = assess_body_part(phantom.images["T2w"])
    assert (decision.body_part, decision.confident) == ("cord", True)
    assert "left-right" in decision.reason


def _grid(shape, voxel):
    return np.meshgrid(*[(np.arange(n) - n / 2) * v for n, v in zip(shape, voxel)], indexing="ij")


def _head_volume(*, skull: bool, voxel=(2.0, 2.0, 2.0), shape=(91, 109, 91), seed: int = 0) -> nib.Nifti1Image:
    """A brain (semi-axes 68 x 82 x 60 mm: a small adult brain) in a template-sized field of view.

    With ``skull``: scalp (bright) and skull (dark) around it. Without: skull-stripped, zeros outside.
    """
    rng = np.random.default_rng(seed)
    x, y, z = _grid(shape, voxel)
    z = z + 20  # the brain sits in the upper part of the field of view, the vertex inside it
    radius = np.sqrt((x / 68) ** 2 + (y / 82) ** 2 + (z / 60) ** 2)
    data = np.zeros(shape, dtype=np.float32)
    if skull:
        data[radius < 1.12] = 700  # scalp
        data[radius < 1.06] = 60  # skull
    data[radius < 1.0] = 620  # cortex
    data[radius < 0.8] = 420  # white matter
    data[(((np.abs(x) - 10) / 6) ** 2 + (y / 30) ** 2 + ((z - 10) / 12) ** 2) < 1] = 1000  # ventricles
    data[data > 0] += rng.normal(0, 20, int(np.count_nonzero(data))).astype(np.float32)
    return nib.Nifti1Image(np.clip(data, 0, None), np.diag([-voxel[0], voxel[1], voxel[2], 1.0]))


def _neck_volume(*, ring: bool, head_top_mm: float = 0.0, voxel=(1.0, 1.0, 4.0), shape=(140, 172, 12)):
    """A neck (130 x 110 mm, wider than deep) crossing the whole field of view, optionally with a cord in
    bright CSF; ``head_top_mm`` of head-shaped sections (120 x 160 mm) at the top of the field of view."""
    x, y, z = _grid(shape, voxel)
    data = np.zeros(shape, dtype=np.float32)
    data[(x / 65) ** 2 + (y / 55) ** 2 < 1] = 400
    if ring:
        canal = (x / 7.5) ** 2 + ((y + 20) / 6) ** 2 < 1
        data[canal] = 1000
        data[(x / 4) ** 2 + ((y + 20) / 3) ** 2 < 1] = 350
    if head_top_mm:
        top = z >= z.max() - head_top_mm + voxel[2] / 2
        data[top & ((x / 60) ** 2 + (y / 78) ** 2 < 1)] = 500
    return nib.Nifti1Image(data, np.diag([voxel[0], voxel[1], voxel[2], 1.0]))


def test_body_sections_measure_axes_in_mm():
    sections = body_sections(np.asarray(_head_volume(skull=False).dataobj), (2.0, 2.0, 2.0))
    middle = int(np.argmax(sections.area_mm2))
    assert sections.long_mm[middle] == pytest.approx(164, abs=6)  # AP diameter of the brain
    assert sections.short_mm[middle] == pytest.approx(136, abs=6)
    assert sections.angle_to_ap_deg[middle] < 5
    assert sections.dome  # the vertex is inside the field of view


@pytest.mark.parametrize("skull", [False, True], ids=["skull-stripped", "with-skull"])
def test_brain_in_template_field_of_view_is_brain(skull):
    image = _head_volume(skull=skull)
    decision = assess_body_part(image)
    assert (decision.body_part, decision.confident, decision.warning) == ("brain", True, "")
    assert "a head" in decision.reason
    thick = assess_body_part(thick_slices(image, slice_mm=8.0, in_plane_mm=1.0))
    assert (thick.body_part, thick.confident) == ("brain", True), thick.reason


def test_rotated_brain_is_brain():
    image = _head_volume(skull=False)
    angle = np.radians(25)
    rotation = np.eye(4)
    rotation[:2, :2] = [[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]
    decision = assess_body_part(nib.Nifti1Image(np.asarray(image.dataobj), rotation @ image.affine))
    assert (decision.body_part, decision.confident) == ("brain", True), decision.reason


def test_neck_with_csf_column_is_cord():
    decision = assess_body_part(_neck_volume(ring=True))
    assert (decision.body_part, decision.confident) == ("cord", True), decision.reason
    assert "CSF column" in decision.reason


def test_cord_inside_head_sized_field_of_view_is_a_warning():
    decision = assess_body_part(_neck_volume(ring=True, head_top_mm=16))
    assert decision.body_part == "cord"
    assert not decision.confident
    assert "cord inside a head-sized field of view" in decision.warning


def test_weak_evidence_is_brain_with_a_warning():
    decision = assess_body_part(_neck_volume(ring=False))  # a wide body, no head shape, no CSF column
    assert (decision.body_part, decision.confident) == ("brain", False)
    assert "uncertain" in decision.warning and "no CSF column" in decision.warning


def test_wide_field_of_view_without_head_uses_csf_column():
    # a cord phantom inside a wide field of view (neck-sized body in air): FOV rule does not apply
    phantom = make_cord_phantom("healthy", 6, "axial", voxel_size=(1.0, 1.0, 4.0), length_mm=48, supersample_mm=1.0)
    image = phantom.images["T2w"]
    data = np.asarray(image.dataobj)
    wide = np.zeros((150, 150, data.shape[2]), dtype=np.float32)
    wide[47:47 + data.shape[0], 47:47 + data.shape[1]] = data
    shift = np.eye(4)
    shift[:3, 3] = -47 * image.affine[:3, 0] - 47 * image.affine[:3, 1]
    body_part, reason = detect_body_part(nib.Nifti1Image(wide, shift @ image.affine))
    assert body_part == "cord", reason
    assert "CSF column" in reason


def test_session_gets_the_body_part_warning(tmp_path):
    images = {tmp_path / "scan_T2w.nii.gz": _neck_volume(ring=False), tmp_path / "head_FLAIR.nii.gz": _head_volume(skull=True)}
    session = Session("s1", (ScanInput(tmp_path / "scan_T2w.nii.gz", "T2w"),
                             ScanInput(tmp_path / "head_FLAIR.nii.gz", "FLAIR", body_part="brain", body_part_source="file name")))
    warnings: list[str] = []
    scans = _decide_body_parts(session, images, warnings)
    assert [scan.body_part for scan in scans] == ["brain", "brain"]
    assert scans[0].body_part_source.startswith("image: ")
    assert len(warnings) == 1 and warnings[0].startswith("scan_T2w.nii.gz: body part from the image uncertain")


# --- every real scan, with a neutral file name -----------------------------------------------------
REAL = Path(os.environ.get("REGIONTAG_SHARED") or Path(__file__).resolve().parents[3] / "shared") / "data" / "real"
_BRAIN_GLOBS = ("brain/patient12_study1_*.nii.gz", "brain/raw/patient0*/study*_*.nii.gz",
                "brain/mni/patient*/patient*_FLAIR.nii.gz", "brain/mni/patient*/patient*_T2.nii.gz",
                "brain/mni/patient*/patient*_T1.nii.gz", "brain/mni/patient*/patient*_T1POST.nii.gz")


def _real_scans() -> list[tuple[str, str]]:
    scans = [(str(p.relative_to(REAL)), "brain") for glob in _BRAIN_GLOBS for p in sorted(REAL.glob(glob))
             if "gt" not in p.name]
    scans += [(str(p.relative_to(REAL)), "cord") for p in sorted(REAL.glob("cord/*.nii.gz")) if "_seg" not in p.name]
    return scans or [("(no real data)", "")]


def _neutral(path: Path, tmp_path: Path) -> Path:
    link = tmp_path / "scan_01.nii.gz"
    os.symlink(path, link)
    assert body_part_from_name(link.name) is None
    return link


@pytest.mark.slow
@pytest.mark.real
@pytest.mark.parametrize(("relative", "expected"), _real_scans())
def test_real_scan_body_part(relative, expected, shared_dir, tmp_path):
    path = shared_dir / "data" / "real" / relative
    if not path.is_file():
        pytest.skip(f"{path} not found")
    decision = assess_body_part(_neutral(path, tmp_path))
    assert decision.body_part == expected, decision.reason
    assert decision.confident, decision.warning


@pytest.mark.slow
@pytest.mark.real
@pytest.mark.parametrize("relative", [r for r, _ in _real_scans() if r.startswith("brain/mni/")] or ["(none)"])
def test_real_thick_slice_brain_is_brain(relative, shared_dir):
    path = shared_dir / "data" / "real" / relative
    if not path.is_file():
        pytest.skip(f"{path} not found")
    decision = assess_body_part(thick_slices(path, slice_mm=8.0, in_plane_mm=0.5))
    assert (decision.body_part, decision.confident) == ("brain", True), decision.reason
