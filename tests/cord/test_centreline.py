"""Optimal-path centreline: global optimum, tilt, a lesion inside the cord, T1 polarity, real tilted scans."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from regiontag.cord.centreline import find_centreline, optimal_path, sampled_slices


def _tilted_cord(n_z=60, slope=0.58, lesion=None, distractor=False):
    """T2-like tube tilted by ``atan(slope)`` (0.58 = 30 degrees) in the sagittal plane, 1 mm voxels."""
    x, y, z = np.meshgrid(np.arange(50), np.arange(80), np.arange(n_z), indexing="ij")
    cy = 20 + slope * z
    r = np.hypot((x - 25) / 6.0, (y - cy) / (4.0 * np.sqrt(1 + slope**2)))
    volume = np.where(r < 1.0, 0.4, np.where(r < 1.45, 1.0, 0.25))
    if lesion is not None:
        volume[(r < 1.0) & (z >= lesion[0]) & (z < lesion[1])] = 1.0  # bright lesion filling the cord
    if distractor:  # bright posterior soft tissue with a dark centre beside the lower half
        rd = np.hypot((x - 25) / 6.0, (y - 8) / 4.0)
        volume[(rd < 1.45) & (z < n_z // 2)] = np.where(rd < 1.0, 0.35, 1.0)[(rd < 1.45) & (z < n_z // 2)]
    return volume.astype(np.float32), cy[25, 0, :]


def test_optimal_path_is_global_not_greedy():
    stack = np.zeros((20, 20, 6))
    stack[5, 5, :] = 1.0
    stack[15, 15, 3] = 1.6  # one strong outlier slice far away
    path, total = optimal_path(stack, np.arange(6) * 2.0)
    assert path[:, 0].tolist() == [5] * 6 and np.isclose(total, 6.0)


def test_sampled_slices_include_both_ends():
    assert sampled_slices(10, 1.0, 3.0).tolist() == [0, 3, 6, 9]
    assert sampled_slices(5, 7.5, 2.0).tolist() == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("lesion", [None, (35, 45)])
def test_thirty_degree_tilt_and_lesion_do_not_make_it_drift(lesion):
    volume, true_y = _tilted_cord(lesion=lesion, distractor=True)
    line = find_centreline(volume, (1.0, 1.0, 1.0))
    error = np.hypot(line.centres[:, 0] - 25, line.centres[:, 1] - true_y)
    assert error.max() < 2.5, error.max()
    if lesion is not None:  # the lesion slices have no ring: bridged, with a low likelihood
        assert line.scores[lesion[0] + 2 : lesion[1] - 2].max() < line.scores[:30].min()


def test_t1_polarity_follows_a_bright_cord_in_dark_csf():
    volume, true_y = _tilted_cord(slope=0.2)
    t1 = np.where(volume == 0.4, 0.8, np.where(volume == 1.0, 0.2, 0.6)).astype(np.float32)
    line = find_centreline(t1, (1.0, 1.0, 1.0), polarity=-1)
    assert line.polarity == -1
    assert np.abs(line.centres[:, 1] - true_y).max() < 2.0


@pytest.mark.real
@pytest.mark.parametrize(("scan", "mask", "polarity"), [("t2", "t2_seg-manual", 1), ("t1w", "t1w_seg-manual", -1)])
def test_real_cord_tilted_by_thirty_degrees(real_cord_dir, scan, mask, polarity):
    """The real scans rotated by 30 degrees in the sagittal plane: the cord is still found (Dice >= 0.88)."""
    from regiontag.cord.segmentation import segment_cord

    image = nib.as_closest_canonical(nib.load(str(real_cord_dir / f"{scan}.nii.gz")))
    truth = nib.as_closest_canonical(nib.load(str(real_cord_dir / f"{mask}.nii.gz")))
    data = ndimage.rotate(image.get_fdata(), 30, axes=(1, 2), reshape=True, order=1)
    truth_rotated = ndimage.rotate(truth.get_fdata(), 30, axes=(1, 2), reshape=True, order=1) > 0.5
    affine = np.diag([*image.header.get_zooms()[:3], 1.0])
    found, centerline = segment_cord(nib.Nifti1Image(data.astype(np.float32), affine), polarity=polarity)
    found = np.asarray(found.dataobj) > 0
    dice = 2 * (found & truth_rotated).sum() / (found.sum() + truth_rotated.sum())
    print(f"{scan} tilted 30 degrees: Dice {dice:.3f}, median CSA {centerline['csa_mm2'].median():.1f} mm2")
    assert dice >= 0.88
    assert 50 <= centerline["csa_mm2"].median() <= 100  # perpendicular area, not the oblique section
