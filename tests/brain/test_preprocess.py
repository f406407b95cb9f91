"""Skull-stripping heuristic, first brain mask and the nibabel <-> ANTs conversion."""

from __future__ import annotations

import nibabel as nib
import numpy as np

from regiontag.brain.preprocess import MAX_STRIPPED_VOLUME_ML, from_ants, initial_brain_mask, is_skull_stripped, to_ants


def _ball(shape=(40, 40, 40), radius=12, zooms=(1.0, 1.0, 1.0)) -> nib.Nifti1Image:
    grid = np.indices(shape) - np.array(shape)[:, None, None, None] / 2
    data = np.where((grid**2).sum(0) <= radius**2, 100.0, 0.0).astype(np.float32)
    return nib.Nifti1Image(data, np.diag(list(zooms) + [1.0]))


def test_is_skull_stripped_needs_constant_background_and_brain_size():
    assert is_skull_stripped(_ball())
    noisy = _ball()
    noisy = nib.Nifti1Image(np.asarray(noisy.dataobj) + np.random.default_rng(0).uniform(1, 2, noisy.shape).astype(np.float32), noisy.affine)
    assert not is_skull_stripped(noisy)  # no constant background
    # same foreground fraction, but at 7 mm voxels the foreground is far larger than a brain
    big = _ball(zooms=(7.0, 7.0, 7.0))
    assert (np.asarray(big.dataobj) > 0).sum() * 0.343 > MAX_STRIPPED_VOLUME_ML
    assert not is_skull_stripped(big)


def test_initial_brain_mask_of_a_stripped_image_fills_holes_and_drops_islands():
    image = _ball()
    data = np.asarray(image.dataobj).copy()
    data[20, 20, 20] = 0  # a hole
    data[2, 2, 2] = 50  # a detached island
    mask = np.asarray(initial_brain_mask(nib.Nifti1Image(data, image.affine), skull_stripped=True).dataobj)
    assert mask.dtype == np.uint8
    np.testing.assert_array_equal(mask, np.asarray(image.dataobj) > 0)


def test_ants_round_trip_keeps_data_and_affine():
    data = np.random.default_rng(1).normal(size=(5, 6, 7)).astype(np.float32)
    affine = np.array([[-1.5, 0, 0, 10], [0, 2.0, 0, -5], [0, 0, 3.0, 2], [0, 0, 0, 1]])
    back = from_ants(to_ants(nib.Nifti1Image(data, affine)))
    np.testing.assert_allclose(np.asarray(back.dataobj), data, rtol=1e-6)
    np.testing.assert_allclose(back.affine, affine, atol=1e-5)


def _head_like(shape=(48, 44, 20)) -> np.ndarray:
    """A noisy bright head cut by the first and last slices, a dark enclosed hole, one open at the last slice, a speck."""
    rng = np.random.default_rng(3)
    half_axes = np.array(shape, dtype=float) / np.array([2.4, 2.4, 1.6])
    grid = (np.indices(shape) - np.array(shape)[:, None, None, None] / 2) / half_axes[:, None, None, None]
    data = np.where((grid**2).sum(0) <= 1.0, 100.0, 5.0) + rng.normal(0, 8, shape)
    data[20:26, 18:24, 8:12] = 3.0  # enclosed dark region
    data[22:26, 20:24, 15:] = 3.0  # dark region open to the last slice
    data[2, 2, 2] = 300.0
    return data.astype(np.float32)


def test_head_mask_is_the_voxels_of_ants_get_mask():
    import ants

    from regiontag.brain.preprocess import head_mask

    data = _head_like()
    expected = ants.get_mask(ants.from_numpy(data), cleanup=2).numpy() > 0
    mask = head_mask(data)
    assert mask[22:26, 20:24, 16:].all()  # filled although open to the edge, as iMath FillHoles does
    assert not mask[2, 2, 2]
    np.testing.assert_array_equal(mask, expected)


def test_initial_brain_mask_with_skull_matches_the_ants_route():
    import ants
    from scipy import ndimage

    from regiontag.brain.preprocess import _largest_component

    zooms = (0.8, 0.8, 3.0)
    image = nib.Nifti1Image(_head_like(), np.diag(list(zooms) + [1.0]))
    # the previous implementation: ants.get_mask, box erosion / dilation of about 4 mm with binary morphology
    head = ants.get_mask(to_ants(image), cleanup=2).numpy() > 0
    box = np.ones((11, 11, 3), dtype=bool)
    expected = _largest_component(ndimage.binary_dilation(_largest_component(ndimage.binary_erosion(head, box)), box))
    expected = np.stack([ndimage.binary_fill_holes(expected[:, :, k]) for k in range(expected.shape[2])], axis=2)
    mask = np.asarray(initial_brain_mask(image, skull_stripped=False).dataobj)
    assert 0.3 < mask.mean() < 0.7
    np.testing.assert_array_equal(mask > 0, expected)
