"""Building the --profile real case folder from the development data layout; thick-slice versions."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from regiontag.accuracy.real_cases import build_real_cases, main, thick_slices
from regiontag.inputs.discovery import body_part_from_name, classify_sequence


def _save(path: Path, shape=(8, 8, 8)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(np.ones(shape, np.float32), np.eye(4)), str(path))


@pytest.fixture()
def real_dir(tmp_path: Path) -> Path:
    real = tmp_path / "real"
    for name in ("FLAIR", "T2", "T1", "T1POST", "lesions-consensus"):
        _save(real / "brain/mni/patient19" / f"patient19_{name}.nii.gz", (16, 16, 16))
    for name in ("FLAIR", "T2W", "T1W"):
        _save(real / "brain" / f"patient12_study1_{name}.nii.gz")
        _save(real / "brain/raw/patient01" / f"study1_{name}.nii.gz")
    _save(real / "brain/raw/patient01/gt.nii.gz")
    (real / "brain/raw/patient01/study1_FLAIR_to_common_space.txt").write_text("transform")
    _save(real / "brain/ms_masks_mni/patient16_lesions_space-MNI152.nii.gz")
    for name in ("t2", "t2_seg-manual", "t2_lumbar", "t2s_uncropped"):
        _save(real / "cord" / f"{name}.nii.gz")
    return real


def test_build_real_cases_layout(real_dir, tmp_path):
    cases = build_real_cases(real_dir, tmp_path / "cases", thick=True)
    names = [case.name for case in cases]
    assert names == ["cord-t2", "cord-t2_lumbar", "cord-t2s_uncropped", "mask-patient16", "mni-patient19",
                     "raw-patient01-study1", "raw-patient12-study1", "thick-patient19"]
    mni = tmp_path / "cases/mni-patient19"
    assert sorted(p.name for p in mni.iterdir()) == ["scan_FLAIR.nii.gz", "scan_T1w.nii.gz", "scan_T2w.nii.gz",
                                                     "truth.json", "truth_lesions.nii.gz"]
    assert (mni / "truth_lesions.nii.gz").resolve() == (real_dir / "brain/mni/patient19/patient19_lesions-consensus.nii.gz")
    assert (mni / "scan_T1w.nii.gz").resolve().name == "patient19_T1.nii.gz"  # not T1POST
    truth = json.loads((mni / "truth.json").read_text())
    assert truth["body_part"] == "brain" and truth["space"] == "MNI152" and truth["pattern"] == "multiple-sclerosis"
    # the images carry their sequence but never the body part in their names
    for case in cases:
        for image in case.glob("scan_*.nii.gz"):
            assert body_part_from_name(image.name) is None
            assert classify_sequence(image.name)[0] in ("FLAIR", "T2w", "T1w")
    raw = tmp_path / "cases/raw-patient01-study1"
    assert not (raw / "truth_lesions.nii.gz").exists()  # gt.nii.gz is lesion change, not a lesion map
    assert json.loads((raw / "truth.json").read_text())["space"] == "subject"
    assert sorted(p.name for p in (tmp_path / "cases/mask-patient16").iterdir()) == ["truth.json", "truth_lesions.nii.gz"]
    cord = tmp_path / "cases/cord-t2"
    assert (cord / "truth_cord.nii.gz").resolve().name == "t2_seg-manual.nii.gz"
    assert json.loads((cord / "truth.json").read_text())["body_part"] == "cord"
    assert not (tmp_path / "cases/cord-t2s_uncropped/truth_cord.nii.gz").exists()
    thick = nib.load(str(tmp_path / "cases/thick-patient19/scan_FLAIR.nii.gz"))
    assert tuple(float(z) for z in thick.header.get_zooms()) == (0.5, 0.5, 8.0)
    # rebuilding refreshes the links, it does not fail
    assert [case.name for case in build_real_cases(real_dir, tmp_path / "cases")] == [n for n in names if "thick" not in n]


def test_main_reports_a_missing_folder(tmp_path, capsys):
    assert main([str(tmp_path / "absent"), str(tmp_path / "out")]) == 2
    assert "no such folder" in capsys.readouterr().err


def test_thick_slices_keep_the_field_of_view_and_the_signal():
    data = np.zeros((20, 24, 32), np.float32)
    data[:, :, 8:16] = 1.0  # one 8 mm slab
    affine = np.diag([-1.0, 1.0, 1.0, 1.0])
    affine[:3, 3] = [10, -12, -16]
    image = nib.Nifti1Image(data, affine)
    thick = thick_slices(image, slice_mm=8.0, in_plane_mm=0.5)
    assert thick.shape == (40, 48, 4)
    thick_data = np.asarray(thick.dataobj)
    assert np.allclose(thick_data[:, :, 1], 1.0) and np.allclose(thick_data[:, :, [0, 2, 3]], 0.0)
    canonical = nib.as_closest_canonical(image)
    corner = lambda img: nib.affines.apply_affine(img.affine, [-0.5, -0.5, -0.5])
    far = lambda img: nib.affines.apply_affine(img.affine, np.asarray(img.shape) - 0.5)
    assert np.allclose(corner(thick), corner(canonical)) and np.allclose(far(thick), far(canonical))
    with pytest.raises(ValueError, match="do not fit"):
        thick_slices(nib.Nifti1Image(np.ones((4, 4, 4), np.float32), np.eye(4)), slice_mm=8.0)
