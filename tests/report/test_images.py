"""Loading the images of one body part for the report (``regiontag.report.images``)."""

from __future__ import annotations

import nibabel as nib
import numpy as np
from scipy import ndimage

from regiontag import outputs
from regiontag.report.data import load_session
from regiontag.report.images import BodyPartImages, load_body_part, sample_planes


def test_sample_planes_matches_full_resampling():
    from nilearn.image import resample_to_img


    rng = np.random.default_rng(3)
    source = nib.Nifti1Image(ndimage.gaussian_filter(rng.random((30, 34, 20)), 2).astype(np.float32),
                             np.diag([1.2, 1.1, 3.0, 1.0]))
    grid_affine = np.array([[0.9, 0.1, 0, 1.5], [-0.1, 0.9, 0, 2.0], [0, 0, 2.5, 1.0], [0, 0, 0, 1]])
    grid = nib.Nifti1Image(np.zeros((32, 30, 18), np.uint8), grid_affine)
    cuts = {2: [4, 9], 1: [12], 0: [20]}
    sampled = sample_planes(source, grid, cuts)
    full = resample_to_img(source, grid, interpolation="linear", force_resample=True, copy_header=True).get_fdata()
    for axis, indices in cuts.items():
        for index in indices:
            plane = [slice(None)] * 3
            plane[axis] = index
            np.testing.assert_allclose(sampled[tuple(plane)], full[tuple(plane)], atol=1e-4)
    unsampled = np.ones(grid.shape, bool)
    unsampled[:, :, [4, 9]] = unsampled[:, 12, :] = unsampled[20, :, :] = False
    assert np.isnan(sampled[unsampled]).all()


def test_load_body_part_puts_everything_on_the_reference_grid(batch_dir):
    data = load_session(batch_dir / "sub-02_ses-1")
    images = load_body_part(data, "cord")
    assert isinstance(images, BodyPartImages)
    assert images.background_name == "reference scan"
    mask = nib.as_closest_canonical(nib.load(batch_dir / "sub-02_ses-1" / outputs.CORD_MASK_NII))
    assert images.background.shape == mask.shape == images.mask.shape == images.lesion.shape
    np.testing.assert_array_equal(images.mask, np.asarray(mask.dataobj))
    assert images.zooms == tuple(float(z) for z in mask.header.get_zooms()[:3])
    assert images.window_mask is images.crop_mask  # cord: the canal sets the grey window
    assert images.crop_mask.sum() > images.mask.sum()  # dilated around the cord
    assert load_body_part(data, "brain") is None  # cord-only session


def test_load_body_part_without_inputs_uses_the_zmap(batch_dir, tmp_path):
    data = load_session(batch_dir / "sub-01_ses-1")
    data.provenance = {**data.provenance, "inputs": [], "reference": {}}
    images = load_body_part(data, "brain")
    assert images.background_name.startswith("hyperintensity z-map")
    zmap = nib.as_closest_canonical(nib.load(batch_dir / "sub-01_ses-1" / outputs.ZMAP_NII))
    np.testing.assert_allclose(images.background, np.asarray(zmap.dataobj, dtype=np.float32))
    assert images.sequences == {}
    assert images.crop_mask is images.mask and images.window_mask is images.mask
