"""Template positions of subject voxels: subsampled ANTs warps interpolated, against ANTs on every voxel."""

from __future__ import annotations

import ants
import nibabel as nib
import numpy as np
import pytest
from regiontag.brain import positions
from regiontag.brain.positions import _upsampled, template_positions
from regiontag.brain.registration import Registration


def test_upsampling_is_linear_interpolation_between_samples():
    coarse = np.fromfunction(lambda x, y, z: 2.0 * x - y + 0.5 * z, (4, 3, 5)).astype(np.float32)
    full = _upsampled(coarse, np.array([3, 2, 1]), (10, 5, 5))
    expected = np.fromfunction(lambda x, y, z: 2.0 * x / 3 - y / 2 + 0.5 * z, (10, 5, 5))
    np.testing.assert_allclose(full, expected, atol=1e-5)


def _nonlinear_registration(tmp_path) -> Registration:
    """A smooth displacement field on a 2 mm grid (sine, 3 mm amplitude), as SyN writes one."""
    grid = np.indices((40, 40, 30)).astype(np.float32)
    field = np.stack([3.0 * np.sin(grid[1] / 6.0), 2.0 * np.cos(grid[0] / 7.0), 1.5 * np.sin(grid[2] / 5.0)], axis=-1)
    image = ants.from_numpy(field.astype(np.float32), origin=(-40.0, -40.0, -30.0), spacing=(2.0, 2.0, 2.0),
                            has_components=True)
    path = str(tmp_path / "sub-to-template_1InverseWarp.nii.gz")
    ants.image_write(image, path)
    return Registration(forward=[path], inverse=[path], quality=1.0)


@pytest.mark.parametrize("zooms", [(0.7, 0.7, 3.0), (1.0, 1.0, 1.0)])
def test_subsampled_positions_match_ants_on_every_voxel(tmp_path, zooms, monkeypatch):
    """With a nonlinear field, positions from every ~2 mm sample are within 0.05 template voxel of ANTs' own."""
    template = nib.Nifti1Image(np.ones((60, 60, 44), np.float32), np.diag([1.0, 1.0, 1.0, 1.0]) @ _shift(-30, -30, -22))
    shape = tuple(int(round(48 / z)) for z in zooms)
    subject = nib.Nifti1Image(np.zeros(shape, np.float32), np.diag([*zooms, 1.0]) @ _shift(-24 / zooms[0], -24 / zooms[1],
                                                                                        -24 / zooms[2]))
    registration = _nonlinear_registration(tmp_path)
    subsampled, _ = template_positions(registration, subject, template)
    monkeypatch.setattr(positions, "POSITION_SPACING_MM", 1e-3)  # ANTs on every subject voxel
    exact, _ = template_positions(_nonlinear_registration(tmp_path / ".."), subject, template)
    valid = (exact[0] > -5) & (subsampled[0] > -5)
    assert valid.mean() > 0.9 and ((exact[0] > -5) == (subsampled[0] > -5)).mean() > 0.99
    assert np.abs(subsampled[:, valid] - exact[:, valid]).max() < 0.05


def _shift(x: float, y: float, z: float) -> np.ndarray:
    shift = np.eye(4)
    shift[:3, 3] = (x, y, z)
    return shift
