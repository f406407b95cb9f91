"""Cord coordinates (u, v, s) and atlas labels in subject space on a synthetic curved, oblique, anisotropic cord."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from regiontag.atlas.cord import cord_labels_at, load_cord_atlas
from regiontag.atlas.cord import cord_labels_in_subject
from regiontag.atlas.cord_frames import cord_coordinates, cord_frames

HALF_WIDTH_MM = 5.0
HALF_DEPTH_MM = 3.5


def _centre_x(z):
    return 4.0 * np.sin(z / 25.0)


def _centre_y(z):
    return -2.0 + 3.0 * np.cos(z / 40.0)


def _rotation(degrees_x: float, degrees_z: float) -> np.ndarray:
    ax, az = np.radians(degrees_x), np.radians(degrees_z)
    rot_x = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    rot_z = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    return rot_z @ rot_x


def _synthetic_cord(tilt_x: float = 12.0, tilt_z: float = 8.0) -> tuple[nib.Nifti1Image, np.ndarray]:
    """A curved elliptical cord (axial ellipses around a curved centreline) on a sagittal-like oblique grid.

    Voxel axes: 0 = posterior (0.5 mm), 1 = inferior (0.8 mm), 2 = left-right (1.2 mm), rotated.
    Returns the mask image and the world coordinates of every voxel (shape + (3,)).
    """
    directions = np.column_stack([[0, -1, 0], [0, 0, -1], [1, 0, 0]]).astype(float)
    zooms = np.array([0.5, 0.8, 1.2])
    shape = (56, 90, 26)
    linear = _rotation(tilt_x, tilt_z) @ directions @ np.diag(zooms)
    centre_index = (np.array(shape) - 1) / 2.0
    affine = np.eye(4)
    affine[:3, :3] = linear
    affine[:3, 3] = np.array([0.0, -1.0, 0.0]) - linear @ centre_index
    index = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), axis=-1)
    world = index @ linear.T + affine[:3, 3]
    x, y, z = world[..., 0], world[..., 1], world[..., 2]
    inside = ((x - _centre_x(z)) / HALF_WIDTH_MM) ** 2 + ((y - _centre_y(z)) / HALF_DEPTH_MM) ** 2 <= 1.0
    inside &= np.abs(z) < 30
    return nib.Nifti1Image(inside.astype(np.uint8), affine), world


@pytest.fixture(scope="module")
def synthetic():
    return _synthetic_cord()


@pytest.fixture(scope="module")
def atlas():
    return load_cord_atlas()


def test_coordinates_are_centred_and_normalised(synthetic):
    img, world = synthetic
    mask = np.asarray(img.dataobj) > 0
    coords = cord_coordinates(img)
    u, v, s = coords["u"], coords["v"], coords["s"]
    assert u.shape == img.shape and v.shape == img.shape and s.shape == img.shape
    assert np.isfinite(u[mask]).all() and np.isnan(u[~mask]).all() and np.isnan(s[~mask]).all()
    assert u[mask].min() >= -1.0 and u[mask].max() <= 1.0
    assert v[mask].min() >= -1.0 and v[mask].max() <= 1.0
    assert np.all(np.hypot(u[mask], v[mask]) <= 1.0 + 1e-9)
    # centred: per-slice means near 0; normalised: the cord reaches near +-1 on both axes
    canonical = nib.as_closest_canonical(nib.Nifti1Image(np.stack([u, v], -1), img.affine))
    cu, cv = np.asarray(canonical.dataobj)[..., 0], np.asarray(canonical.dataobj)[..., 1]
    cord_slices = np.flatnonzero(np.isfinite(cu).any(axis=(0, 1)))
    full_slices = cord_slices[2:-2]  # the ends are cut obliquely by the |z| < 30 limit
    assert len(full_slices) > 30
    for k in full_slices:
        slice_u, slice_v = cu[:, :, k][np.isfinite(cu[:, :, k])], cv[:, :, k][np.isfinite(cv[:, :, k])]
        assert abs(slice_u.mean()) < 0.1 and abs(slice_v.mean()) < 0.1, k
        assert slice_u.max() > 0.7 and slice_u.min() < -0.7 and slice_v.max() > 0.7 and slice_v.min() < -0.7, k


def test_coordinates_follow_the_curved_cord(synthetic):
    """u, v match the analytic (x - cx(z)) / a, (y - cy(z)) / b despite curvature, tilt and anisotropy."""
    img, world = synthetic
    mask = np.asarray(img.dataobj) > 0
    coords = cord_coordinates(img)
    x, y, z = world[..., 0][mask], world[..., 1][mask], world[..., 2][mask]
    true_u = (x - _centre_x(z)) / HALF_WIDTH_MM
    true_v = (y - _centre_y(z)) / HALF_DEPTH_MM
    interior = np.abs(z) < 26
    error_u = np.abs(coords["u"][mask] - true_u)[interior]
    error_v = np.abs(coords["v"][mask] - true_v)[interior]
    print(f"\nmean |u error| {error_u.mean():.3f}, mean |v error| {error_v.mean():.3f}")
    assert error_u.mean() < 0.12 and error_v.mean() < 0.12
    assert np.corrcoef(coords["u"][mask][interior], true_u[interior])[0, 1] > 0.95
    assert np.corrcoef(coords["v"][mask][interior], true_v[interior])[0, 1] > 0.95


def test_s_is_arc_length_from_the_top(synthetic):
    img, world = synthetic
    mask = np.asarray(img.dataobj) > 0
    coords = cord_coordinates(img)
    table = coords["table"]
    assert list(table.columns) == [
        "slice", "x_mm", "y_mm", "z_mm", "s_mm", "half_width_mm", "half_depth_mm", "area_mm2",
    ]  # fmt: skip
    top = table.loc[table["z_mm"].idxmax()]
    assert top["s_mm"] == pytest.approx(0.0)
    assert np.all(np.diff(table.sort_values("z_mm")["s_mm"]) <= 0), "s grows downward"
    # length of the analytic centreline between the extreme slice centres
    z = np.linspace(table["z_mm"].min(), table["z_mm"].max(), 2000)
    length = np.sum(np.hypot(np.hypot(np.diff(_centre_x(z)), np.diff(_centre_y(z))), np.diff(z)))
    assert table["s_mm"].max() == pytest.approx(length, rel=0.05)
    # per-voxel s grows downward in the world
    z_mm = world[..., 2][mask]
    assert np.corrcoef(coords["s"][mask], z_mm)[0, 1] < -0.98
    # half-width and half-depth recover the ellipse (cross-section of a slightly tilted slice)
    middle = table[np.abs(table["z_mm"]) < 20]
    assert middle["half_width_mm"].median() == pytest.approx(HALF_WIDTH_MM, rel=0.15)
    assert middle["half_depth_mm"].median() == pytest.approx(HALF_DEPTH_MM, rel=0.15)


def test_labels_in_subject_space_cover_the_mask(synthetic, atlas):
    img, world = synthetic
    labels = cord_labels_in_subject(img, atlas)
    data = np.asarray(labels.dataobj)
    mask = np.asarray(img.dataobj) > 0
    assert labels.shape == img.shape and np.allclose(labels.affine, img.affine)
    assert data.dtype == np.int16
    assert np.array_equal(data > 0, mask)
    # anatomy in world terms: right labels to the right of the centreline, dorsal columns posterior
    x, y, z = (world[..., i][mask] for i in range(3))
    dx, dy = x - _centre_x(z), y - _centre_y(z)
    values = data[mask]
    right = np.isin(values, atlas.region("Spinal cord").label_values("right"))
    left = np.isin(values, atlas.region("Spinal cord").label_values("left"))
    assert dx[right].min() > -0.8 and dx[left].max() < 0.8
    posterior = np.isin(values, atlas.region("Spinal cord > Spinal white matter > Posterior column").label_values())
    anterior = np.isin(values, atlas.region("Spinal cord > Spinal white matter > Anterior column").label_values())
    assert posterior.sum() > 100 and anterior.sum() > 100
    assert np.median(dy[posterior]) < -1.5 and np.median(dy[anterior]) > 1.5
    for region in atlas.regions:
        assert np.isin(values, region.label_values()).any(), region.path


def test_labels_do_not_depend_on_voxel_order(synthetic, atlas):
    img, _ = synthetic
    data = np.asarray(img.dataobj)
    # the same voxels stored with axes permuted and flipped (affine adjusted): identical labels
    ornt = np.array([[2, -1], [0, 1], [1, -1]])
    reordered_data = nib.orientations.apply_orientation(data, ornt)
    reordered_affine = img.affine @ nib.orientations.inv_ornt_aff(ornt, data.shape)
    reordered = nib.Nifti1Image(reordered_data, reordered_affine)
    labels_a = np.asarray(cord_labels_in_subject(img, atlas).dataobj)
    labels_b = np.asarray(cord_labels_in_subject(reordered, atlas).dataobj)
    assert np.array_equal(nib.orientations.apply_orientation(labels_a, ornt), labels_b)


def test_accepts_a_path(tmp_path, synthetic, atlas):
    img, _ = synthetic
    path = tmp_path / "cord_mask.nii.gz"
    nib.save(img, path)
    assert np.array_equal(
        np.asarray(cord_labels_in_subject(path, atlas).dataobj), np.asarray(cord_labels_in_subject(img, atlas).dataobj)
    )
    # the header stores the affine in float32: coordinates agree to ~1e-7
    assert np.allclose(cord_coordinates(path)["u"], cord_coordinates(img)["u"], atol=1e-6, equal_nan=True)


def test_centerline_table_sets_the_centre():
    mask = np.zeros((40, 40, 12), dtype=bool)
    yy, xx = np.meshgrid(np.arange(40), np.arange(40))
    mask[((xx - 20) / 8.0) ** 2 + ((yy - 20) / 6.0) ** 2 <= 1] = True
    affine = np.diag([0.5, 0.5, 1.0, 1.0])
    own = cord_frames(mask, affine, smooth_mm=0)
    assert np.allclose(own.centre_mm[:, :2], 10.0, atol=1e-6)
    shifted = pd.DataFrame({"slice": np.arange(12), "x_mm": 10.5, "y_mm": 10.0})
    frames = cord_frames(mask, affine, centerline=shifted, smooth_mm=0)
    assert np.allclose(frames.centre_mm[:, 0], 10.5)
    u, _ = frames.to_cord(0, np.array([10.5]), np.array([10.0]))
    assert u[0] == pytest.approx(0.0)
    with pytest.raises(ValueError, match="x_mm"):
        cord_frames(mask, affine, centerline=pd.DataFrame({"slice": [0], "x": [1.0]}))


def test_round_trip_between_world_and_cord_coordinates(synthetic):
    img, _ = synthetic
    frames = cord_coordinates(img)["frames"]
    row = len(frames.slices) // 2
    u = np.array([0.0, 0.5, -0.3, 0.9])
    v = np.array([0.0, -0.2, 0.7, 0.1])
    x_mm, y_mm = frames.to_world(row, u, v)
    back_u, back_v = frames.to_cord(row, x_mm, y_mm)
    assert np.allclose(back_u, u, atol=1e-9) and np.allclose(back_v, v, atol=1e-9)


def test_levels_pick_level_geometry_and_are_validated(synthetic, atlas):
    img, _ = synthetic
    n_slices = nib.as_closest_canonical(img).shape[2]
    cervical = np.asarray(cord_labels_in_subject(img, atlas, levels=np.full(n_slices, "C6")).dataobj)
    thoracic = np.asarray(cord_labels_in_subject(img, atlas, levels=np.full(n_slices, 15)).dataobj)
    default = np.asarray(cord_labels_in_subject(img, atlas).dataobj)
    unknown = np.asarray(cord_labels_in_subject(img, atlas, levels=np.full(n_slices, np.nan)).dataobj)
    assert np.array_equal(default, unknown)
    cuneatus = atlas.region("Spinal cord > Spinal white matter > Posterior column > Fasciculus cuneatus")
    assert np.isin(cervical, cuneatus.label_values()).any()
    assert not np.isin(thoracic, cuneatus.label_values()).any(), "no cuneatus below T6"
    with pytest.raises(ValueError, match="levels has"):
        cord_labels_in_subject(img, atlas, levels=np.ones(n_slices + 1))


def test_empty_mask():
    empty = nib.Nifti1Image(np.zeros((8, 8, 8), dtype=np.uint8), np.eye(4))
    assert not np.asarray(cord_labels_in_subject(empty).dataobj).any()
    with pytest.raises(ValueError, match="empty"):
        cord_coordinates(empty)


def test_frames_can_be_reused_and_levels_reported(synthetic, atlas):
    img, _ = synthetic
    mask = np.asarray(img.dataobj) > 0
    n_slices = nib.as_closest_canonical(img).shape[2]
    levels = np.full(n_slices, "", dtype=object)
    levels[: n_slices // 2] = "C6"
    coords = cord_coordinates(img, levels=levels)
    reported = coords["level"][mask]
    assert set(np.unique(reported[np.isfinite(reported)])) == {6.0} and np.isnan(reported).any()
    assert np.isnan(coords["level"][~mask]).all()
    direct = np.asarray(cord_labels_in_subject(img, atlas, levels=levels).dataobj)
    reused = np.asarray(cord_labels_in_subject(img, atlas, levels=levels, frames=coords["frames"]).dataobj)
    assert np.array_equal(direct, reused)
    other = cord_frames(np.ones((4, 4, 3), dtype=bool), np.eye(4))
    with pytest.raises(ValueError, match="different cord mask"):
        cord_labels_in_subject(img, atlas, frames=other)


def _tilted_elliptical_cord(tilt_deg: float, azimuth_deg: float, atlas, roll_deg: float = 0.0):
    """A straight elliptical cord (6.5 x 4 mm half-axes in its own cross-section) tilted ``tilt_deg`` from
    the z axis towards azimuth ``azimuth_deg`` (0 = right, 90 = anterior) and turned ``roll_deg`` about its
    own axis, cut by axial planes; with the atlas labels drawn in its true perpendicular cross-section."""
    voxel = 0.5
    shape = (100, 100, 40)
    grid = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), axis=-1) * voxel
    xyz = grid - np.array(shape) * voxel / 2
    tilt, azimuth = np.radians(tilt_deg), np.radians(azimuth_deg)
    t = np.array([np.sin(tilt) * np.cos(azimuth), np.sin(tilt) * np.sin(azimuth), np.cos(tilt)])
    right = np.array([1.0, 0.0, 0.0]) - t[0] * t
    right /= np.linalg.norm(right)
    anterior = np.cross(t, right)
    roll = np.radians(roll_deg)
    right, anterior = np.cos(roll) * right + np.sin(roll) * anterior, np.cos(roll) * anterior - np.sin(roll) * right
    u, v = xyz @ right / 6.5, xyz @ anterior / 4.0
    mask = u**2 + v**2 <= 1.0
    truth = np.zeros(shape, np.int16)
    truth[mask] = cord_labels_at(atlas, u[mask], v[mask])
    return nib.Nifti1Image(mask.astype(np.uint8), np.diag([voxel] * 3 + [1.0])), mask, truth


@pytest.mark.parametrize("tilt_deg", [30.0, 45.0])
def test_columns_follow_a_diagonally_tilted_cord(atlas, tilt_deg):
    # tilted towards right-anterior: the axial section is an ellipse sheared off the scanner axes; without the
    # projection onto the perpendicular plane 90 % (30 deg) / 79 % (45 deg) of voxels got the right label
    img, mask, truth = _tilted_elliptical_cord(tilt_deg, 45.0, atlas)
    labels = np.asarray(cord_labels_in_subject(img, atlas).dataobj)
    assert (labels[mask] == truth[mask]).mean() >= 0.95
    posterior = [value for region in atlas.regions if region.name == "Posterior column"
                 for value in region.label_values("both")]
    found, expected = np.isin(labels, posterior), np.isin(truth, posterior)
    assert 2 * (found & expected).sum() / (found.sum() + expected.sum()) >= 0.97


@pytest.mark.parametrize("tilt_deg, roll_deg", [(0.0, 20.0), (30.0, 15.0)])
def test_columns_follow_a_cord_turned_about_its_axis(atlas, tilt_deg, roll_deg):
    # the cord's own left-right axis comes from its shape (wider than deep); kept on the scanner's x axis,
    # 54 % (upright, 20 degrees) / 65 % (tilted 30 degrees, turned 15) of voxels got the right label
    img, mask, truth = _tilted_elliptical_cord(tilt_deg, 45.0, atlas, roll_deg=roll_deg)
    labels = np.asarray(cord_labels_in_subject(img, atlas).dataobj)
    assert (labels[mask] == truth[mask]).mean() >= 0.95
    kept = cord_frames(mask, img.affine, follow_roll=False)
    still = np.asarray(cord_labels_in_subject(img, atlas, frames=kept).dataobj)
    assert (still[mask] == truth[mask]).mean() < 0.8


def test_an_untilted_cord_keeps_the_axial_plane():
    tube = np.zeros((20, 20, 10), bool)
    tube[5:15, 7:13, :] = True
    frames = cord_frames(tube, np.eye(4), smooth_mm=0)
    assert np.array_equal(frames.planes, np.tile(np.eye(2), (10, 1, 1)))
