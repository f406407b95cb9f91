"""Choosing the voxel-to-world affine from qform/sform, shear, units and voxel-size checks."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from regiontag.inputs.affine import (
    check_voxel_sizes,
    choose_affine,
    has_shear,
    max_corner_distance,
    units_warning,
)
from regiontag.inputs.nifti_io import InputError
from regiontag.inputs.scan import load_scan
from tests.inputs import corpus

AFFINE = np.array([[-1.0, 0, 0, 90], [0, 1.2, 0, -100], [0, 0, 2.5, -60], [0, 0, 0, 1]])
SHAPE = (10, 12, 8)


@pytest.fixture(scope="module")
def tolerated_cases(tmp_path_factory) -> dict[str, tuple[Path, str | None]]:
    cases = corpus.make_tolerated_inputs(tmp_path_factory.mktemp("tolerated"))
    return {path.name: (path, fragment) for path, fragment in cases}


def test_qsform_disagreement_resolved_in_header(tolerated_cases):
    loaded, warnings = load_scan(tolerated_cases["qsform_disagree.nii.gz"][0])
    sform = nib.load(tolerated_cases["qsform_disagree.nii.gz"][0]).header.get_sform()
    np.testing.assert_allclose(loaded.affine, sform, atol=1e-5)
    np.testing.assert_allclose(loaded.header.get_qform(), sform, atol=1e-4)
    assert "5.00 mm" in warnings[0]


def test_sheared_sform_falls_back_to_qform(tolerated_cases):
    path = tolerated_cases["sheared_sform.nii"][0]
    loaded, _ = load_scan(path)
    np.testing.assert_allclose(loaded.affine, nib.load(path).header.get_qform(), atol=1e-5)


def _header(qform=AFFINE, sform=AFFINE, qcode=1, scode=1) -> nib.Nifti1Header:
    header = nib.Nifti1Header()
    header.set_data_shape(SHAPE)
    header.set_qform(qform, code=qcode)
    header.set_sform(sform, code=scode)
    return header


def test_has_shear_and_corner_distance() -> None:
    assert not has_shear(AFFINE)
    sheared = AFFINE.copy()
    sheared[0, 1] = 0.3
    assert has_shear(sheared)
    shifted = AFFINE.copy()
    shifted[:3, 3] += [3.0, 4.0, 0.0]
    assert max_corner_distance(AFFINE, shifted, SHAPE) == pytest.approx(5.0)
    scaled = AFFINE.copy()
    scaled[2, 2] = 3.5  # 1 mm more per slice: the far corners move by 7 mm
    assert max_corner_distance(AFFINE, scaled, SHAPE) == pytest.approx(7.0)


def test_choose_affine_agreeing_forms_no_warning() -> None:
    warnings: list[str] = []
    np.testing.assert_allclose(choose_affine(Path("a.nii"), _header(), SHAPE, warnings), AFFINE, atol=1e-5)
    assert warnings == []


def test_choose_affine_prefers_sform_and_rewrites_qform() -> None:
    moved = AFFINE.copy()
    moved[:3, 3] += [0.0, 0.0, 2.0]
    header = _header(sform=moved)
    warnings: list[str] = []
    np.testing.assert_allclose(choose_affine(Path("a.nii"), header, SHAPE, warnings), moved, atol=1e-5)
    assert warnings == ["qform and sform disagree by up to 2.00 mm; using the sform (as nibabel and ITK/ANTs do)"]
    np.testing.assert_allclose(header.get_qform(), moved, atol=1e-4)


def test_choose_affine_qform_only_and_missing() -> None:
    warnings: list[str] = []
    np.testing.assert_allclose(choose_affine(Path("q.nii"), _header(scode=0), SHAPE, warnings), AFFINE, atol=1e-5)
    assert warnings == []
    with pytest.raises(InputError, match=r"^none\.nii: missing affine: qform_code and sform_code are both 0"):
        choose_affine(Path("none.nii"), _header(qcode=0, scode=0), SHAPE, [])


def test_choose_affine_ignores_a_singular_sform() -> None:
    singular = AFFINE.copy()
    singular[:, 1] = 0
    header = _header(sform=singular)
    warnings: list[str] = []
    np.testing.assert_allclose(choose_affine(Path("s.nii"), header, SHAPE, warnings), AFFINE, atol=1e-5)
    assert warnings == ["sform ignored (singular affine (a voxel axis has zero length)); using the qform (as ITK/ANTs do)"]


def test_check_voxel_sizes_and_units() -> None:
    header = _header()
    assert check_voxel_sizes(Path("v.nii"), header, 0.1, 10.0) == pytest.approx((1.0, 1.2, 2.5))
    with pytest.raises(InputError, match=r"voxel size 1x1.2x2.5 mm exceeds 2 mm \(limits.max_voxel_size_mm\)"):
        check_voxel_sizes(Path("v.nii"), header, 0.1, 2.0)
    with pytest.raises(InputError, match="below 1.1 mm"):
        check_voxel_sizes(Path("v.nii"), header, 1.1, 10.0)
    assert units_warning(header) is None
    header.set_xyzt_units("meter")
    assert units_warning(header) == "spatial units are meters; treated as mm (as nibabel does)"
