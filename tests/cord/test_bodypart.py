"""Body part from the file name and from the image (field of view, CSF column)."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from regiontag.cord.bodypart import detect_body_part
from regiontag.inputs.discovery import body_part_from_name
from regiontag.phantoms.cord import make_cord_phantom


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("sub-01_acq-cspine_T2w.nii.gz", "cord"),
        ("sub-01_acq-tspine_T2w.nii.gz", "cord"),
        ("sub-01_bp-spine_T2w.nii.gz", "cord"),
        ("sub-01_bp-brain_acq-cspine_T2w.nii.gz", "brain"),  # bp- decides before acq-
        ("patient3_cord_t2.nii.gz", "cord"),
        ("T2_SAG_C-SPINE.nii", "cord"),
        ("head_flair.nii.gz", "brain"),
        ("patient12_study1_T2W.nii.gz", None),
        ("sub-01_acq-axial_T2w.nii.gz", None),
        ("concord_study_T2w.nii", None),  # "cord" inside another word does not count
    ],
)
def test_body_part_from_name(name, expected):
    assert body_part_from_name(name) == expected


@pytest.mark.parametrize("orientation", ["sagittal", "axial"])
def test_cord_phantom_detected_as_cord(orientation):
    phantom = make_cord_phantom("dorsal", 5, orientation, voxel_size=(1.0, 1.0, 3.0), length_mm=40, supersample_mm=1.0)
    body_part, reason = detect_body_part(phantom.images["T2w"])
    assert body_part == "cord"
    assert "left-right" in reason


def _brain_like_volume(seed: int = 0) -> nib.Nifti1Image:
    """A head: air, scalp (bright), skull (dark), CSF rim, grey and white matter, ventricles; 2 mm voxels."""
    rng = np.random.default_rng(seed)
    shape = (100, 115, 80)
    x, y, z = np.meshgrid(*[(np.arange(n) - n / 2) * 2.0 for n in shape], indexing="ij")
    radius = np.sqrt((x / 75) ** 2 + (y / 90) ** 2 + (z / 65) ** 2)
    data = np.zeros(shape, dtype=np.float32)
    data[radius < 1.0] = 700  # scalp
    data[radius < 0.95] = 80  # skull
    data[radius < 0.90] = 1000  # CSF
    data[radius < 0.86] = 620  # cortex
    data[radius < 0.70] = 420  # white matter
    ventricles = ((np.abs(x) - 10) / 6) ** 2 + (y / 30) ** 2 + ((z - 10) / 12) ** 2 < 1
    data[ventricles] = 1000
    data += rng.normal(0, 20, shape).astype(np.float32)
    return nib.Nifti1Image(np.abs(data), np.diag([-2.0, 2.0, 2.0, 1.0]))


def test_brain_like_volume_detected_as_brain():
    body_part, reason = detect_body_part(_brain_like_volume())
    assert body_part == "brain"
    assert "head-sized" in reason


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


@pytest.mark.real
def test_real_scans(real_cord_dir, real_brain_dir):
    assert detect_body_part(real_cord_dir / "t2.nii.gz")[0] == "cord"
    assert detect_body_part(real_brain_dir / "patient12_study1_T2W.nii.gz")[0] == "brain"
