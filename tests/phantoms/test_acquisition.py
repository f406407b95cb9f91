"""Acquisition simulation (``regiontag.phantoms.acquisition``): pose, voxel grids, deformation, sampling."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from regiontag.phantoms import acquisition
from regiontag.phantoms.acquisition import (
    Pose,
    SmoothDeformation,
    acquisition_grid,
    random_pose,
    sample_volumes,
    subvoxel_offsets,
)

#: Corners of a 100 x 120 x 80 mm box centred on the origin (3 x 8).
BOX = np.array(np.meshgrid([-50, 50], [-60, 60], [-40, 40], indexing="ij")).reshape(3, -1).astype(float)


def test_subvoxel_offsets():
    offsets = acquisition.subvoxel_offsets((0.9, 0.9, 3.0), 1.0)
    assert acquisition.subvoxel_offsets((1.0, 1.0, 5.0), 1.5).shape == (3, 3)
    assert offsets.shape == (3, 3) and np.allclose(offsets[2], [-1 / 3, 0, 1 / 3]) and not offsets[:2].any()


def test_subvoxel_offsets_cover_the_voxel_symmetrically():
    offsets = subvoxel_offsets((2.0, 1.0, 4.0), 1.0)
    assert offsets.shape == (3, 2 * 1 * 4)
    assert sorted(set(offsets[0].round(6))) == [-0.25, 0.25]
    assert sorted(set(offsets[2].round(6))) == [-0.375, -0.125, 0.125, 0.375]
    np.testing.assert_allclose(offsets.mean(axis=1), 0, atol=1e-12)


def test_pose_matrix_angle_and_composition():
    quarter = Pose(Rotation.from_euler("z", 90, degrees=True).as_matrix(), np.array([1.0, 2.0, 3.0]))
    np.testing.assert_allclose(quarter.matrix @ [1, 0, 0, 1], [1, 3, 3, 1], atol=1e-12)
    assert quarter.rotation_deg == pytest.approx(90)
    assert quarter.euler_deg == pytest.approx([0, 0, 90])
    twice = quarter.compose(quarter)
    assert twice.rotation_deg == pytest.approx(180)
    np.testing.assert_allclose(twice.shift, [1 - 2, 2 + 1, 6], atol=1e-12)  # R @ shift + shift


def test_random_pose_within_bounds_and_reproducible():
    for seed in range(20):
        pose = random_pose(np.random.default_rng(seed), 10.0, 5.0)
        assert 0 <= pose.rotation_deg <= 10.0 + 1e-9 and np.linalg.norm(pose.shift) <= 5.0 + 1e-9
        np.testing.assert_allclose(pose.rotation @ pose.rotation.T, np.eye(3), atol=1e-12)
    again = random_pose(np.random.default_rng(3), 10.0, 5.0)
    np.testing.assert_array_equal(again.matrix, random_pose(np.random.default_rng(3), 10.0, 5.0).matrix)
    still = random_pose(np.random.default_rng(0), 0.0, 0.0)
    np.testing.assert_array_equal(still.matrix, np.eye(4))


@pytest.mark.parametrize(("plane", "storage", "codes"), [
    ("axial", "RAS", ("R", "A", "S")), ("axial", "LPS", ("L", "P", "S")), ("axial", "LAS", ("L", "A", "S")),
    ("coronal", "RAS", ("R", "S", "A")), ("sagittal", "RAS", ("A", "S", "R")),
])
def test_grid_orientation_spacing_and_coverage(plane, storage, codes):
    grid = acquisition_grid(BOX, (2.0, 2.0, 4.0), plane, storage, np.random.default_rng(0), margin_mm=10.0)
    assert nib.aff2axcodes(grid.affine) == codes
    assert np.allclose(np.linalg.norm(grid.affine[:3, :3], axis=0), (2.0, 2.0, 4.0))
    assert (grid.plane, grid.storage, grid.voxel_size) == (plane, storage, (2.0, 2.0, 4.0))
    # every box corner is inside the field of view, at least margin - 3 mm (random off-centre) from its edge
    voxels = np.linalg.inv(grid.affine) @ np.vstack([BOX, np.ones(8)])
    spacing = np.array([2.0, 2.0, 4.0])[:, None]
    assert (voxels[:3] * spacing >= 7 - 1e-6).all()
    assert ((np.array(grid.shape)[:, None] - 1 - voxels[:3]) * spacing >= 7 - 1e-6).all()


def test_oblique_grid_is_tilted_and_bad_names_are_errors():
    grid = acquisition_grid(BOX, (1.0, 1.0, 1.0), "oblique", "RAS", np.random.default_rng(0), oblique_tilt_deg=20)
    slice_axis = grid.affine[:3, 2]
    assert np.degrees(np.arccos(slice_axis[2])) == pytest.approx(20)
    with pytest.raises(ValueError, match="plane 'transverse' unknown"):
        acquisition_grid(BOX, (1, 1, 1), "transverse", "RAS", np.random.default_rng(0))
    with pytest.raises(ValueError, match="storage 'RPI' unknown"):
        acquisition_grid(BOX, (1, 1, 1), "axial", "RPI", np.random.default_rng(0))


def test_smooth_deformation_amplitude():
    bounds = np.array([[-20.0, -20.0, -20.0], [20.0, 20.0, 20.0]])
    points = np.random.default_rng(1).uniform(-20, 20, size=(3, 500))
    assert SmoothDeformation(np.random.default_rng(0), 0.0, bounds)(points) is points
    deformation = SmoothDeformation(np.random.default_rng(0), 3.0, bounds)
    displacement = deformation(points) - points
    assert np.linalg.norm(displacement, axis=0).max() <= 3.0 + 1e-4  # the peak is over the padded field
    assert np.linalg.norm(displacement, axis=0).mean() > 0.1
    # same noise, twice the amplitude: twice the displacement
    double = SmoothDeformation(np.random.default_rng(0), 6.0, bounds)(points) - points
    np.testing.assert_allclose(double, 2 * displacement, rtol=1e-4, atol=1e-5)


def test_sampling_on_the_volume_grid_returns_the_volume():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, size=(6, 7, 8)).astype(np.int16)
    constant = np.full((6, 7, 8), 3.0, dtype=np.float32)
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    grid = acquisition.AcquisitionGrid((6, 7, 8), affine, "axial", (2.0, 2.0, 2.0), "RAS")
    identity = Pose(np.eye(3), np.zeros(3))
    still = SmoothDeformation(rng, 0.0, np.array([[0, 0, 0], [12, 14, 16]]))
    sampled_labels, sampled_constant = sample_volumes([labels, constant], affine, grid, identity, still, [0, 1],
                                                      step_mm=1.0, max_points=50)
    np.testing.assert_array_equal(sampled_labels, labels)
    assert sampled_labels.dtype == np.int16 and sampled_constant.dtype == np.float32
    # partial volume: 2 x 2 x 2 samples per voxel at +-1/4 voxel; a constant stays constant inside, and at the
    # border the samples outside the volume count as 0 (half of them on a face, 7 of 8 at a corner)
    np.testing.assert_allclose(sampled_constant[1:-1, 1:-1, 1:-1], 3.0, rtol=1e-6)
    assert sampled_constant[0, 3, 3] == pytest.approx(3.0 / 2)
    assert sampled_constant[0, 0, 0] == pytest.approx(3.0 / 8)
