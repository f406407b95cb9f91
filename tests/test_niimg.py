"""Image utilities: paths or images, canonical orientation and the way back to the input grid."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from regiontag import niimg


def _las_image(shape=(4, 5, 6)) -> nib.Nifti1Image:
    """An LAS image (x flipped) with distinct voxel values and 2 x 3 x 4 mm voxels."""
    data = np.arange(np.prod(shape), dtype=np.int16).reshape(shape)
    affine = np.array([[-2.0, 0, 0, 10], [0, 3.0, 0, -20], [0, 0, 4.0, 5], [0, 0, 0, 1]])
    return nib.Nifti1Image(data, affine)


def test_voxel_volume_ml_from_affine() -> None:
    assert niimg.voxel_volume_ml(_las_image()) == pytest.approx(2 * 3 * 4 / 1000.0)


def test_check_niimg_accepts_path_and_image(tmp_path) -> None:
    image = _las_image()
    path = tmp_path / "scan.nii.gz"
    nib.save(image, path)
    loaded = niimg.check_niimg(path)
    assert np.array_equal(np.asarray(loaded.dataobj), np.asarray(image.dataobj))
    assert np.allclose(loaded.affine, image.affine)
    assert niimg.check_niimg(str(path)).shape == image.shape


def test_to_canonical_flips_without_resampling() -> None:
    image = _las_image()
    canonical = niimg.to_canonical(image)
    assert nib.aff2axcodes(canonical.affine) == ("R", "A", "S")
    data = np.asarray(canonical.dataobj)
    assert np.array_equal(data, np.asarray(image.dataobj)[::-1])
    # the same world point holds the same value
    world = image.affine @ [1, 2, 3, 1]
    index = np.rint(np.linalg.inv(canonical.affine) @ world).astype(int)[:3]
    assert data[tuple(index)] == np.asarray(image.dataobj)[1, 2, 3]


def test_to_input_space_inverts_to_canonical_exactly() -> None:
    image = _las_image()
    back = niimg.to_input_space(niimg.to_canonical(image), image)
    assert np.array_equal(np.asarray(back.dataobj), np.asarray(image.dataobj))
    assert np.allclose(back.affine, image.affine)
    assert back.get_data_dtype() == np.int16
    assert back.header.get_sform(coded=True)[1] >= 1 and back.header.get_qform(coded=True)[1] >= 1


def test_to_input_space_resamples_other_grids_with_nearest_neighbour() -> None:
    reference = nib.Nifti1Image(np.zeros((8, 8, 8), np.uint8), np.eye(4))
    coarse = np.zeros((4, 4, 4), np.uint8)
    coarse[1, 2, 3] = 7
    image = nib.Nifti1Image(coarse, np.diag([2.0, 2.0, 2.0, 1.0]))
    out = niimg.to_input_space(image, reference, order=0)
    data = np.asarray(out.dataobj)
    assert out.shape == reference.shape and np.allclose(out.affine, reference.affine)
    assert data.dtype == np.uint8 and set(np.unique(data)) == {0, 7}
    assert data[2, 4, 6] == 7 and data[0, 0, 0] == 0


def test_new_image_like_and_resample_to() -> None:
    reference = _las_image()
    data = np.ones(reference.shape, np.float32)
    image = niimg.new_image_like(data, reference)
    assert np.allclose(image.affine, reference.affine) and image.get_data_dtype() == np.float32
    assert image.header.get_xyzt_units() == ("mm", "sec")
    target = nib.Nifti1Image(np.zeros((2, 2, 2)), reference.affine)
    resampled = niimg.resample_to(reference, target, order=0)
    assert resampled.shape == (2, 2, 2) and np.allclose(resampled.affine, reference.affine)
    assert np.array_equal(np.asarray(resampled.dataobj), np.asarray(reference.dataobj)[:2, :2, :2])
