"""Template images onto a subject grid: the label vote, the template positions on part of the grid, against ANTs."""

from __future__ import annotations

import ants
import nibabel as nib
import numpy as np
from regiontag.brain.preprocess import to_ants
from regiontag.brain.registration import Registration
from regiontag.brain.positions import nonzero_box
from regiontag.brain.warps import (
    TemplateCells,
    template_point_mapper,
    vote_labels,
    warp_labels_to_subject,
    warp_to_subject,
)


def _label_phantom() -> nib.Nifti1Image:
    """Nested boxes and a sphere, 5 labels, 1 mm, off-centre origin."""
    grid = np.indices((28, 30, 26)).astype(float)
    labels = np.zeros((28, 30, 26), np.int16)
    labels[3:25, 4:26, 3:23] = 1
    labels[6:14, 6:24, 5:20] = 2
    labels[14:22, 6:24, 5:20] = 3
    labels[((grid - np.array([14, 15, 13])[:, None, None, None]) ** 2).sum(0) < 16] = 4
    labels[10:18, 20:25, 8:12] = 7
    affine = np.diag([1.0, 1.0, 1.0, 1.0])
    affine[:3, 3] = (-14, -17, -12)
    return nib.Nifti1Image(labels, affine)


def test_vote_labels_is_the_linear_label_vote():
    labels = np.zeros((3, 3, 3), np.int16)
    labels[1:] = 5
    labels[2, 2, 2] = 9
    index = np.array([[0.4, 0.6, 1.0, 1.9, -0.5, 2.5], [1.0] * 5 + [1.0], [1.0] * 6])
    assert vote_labels(labels, index).tolist() == [0, 5, 5, 5, 0, 0]  # outside the grid: background
    # corner (2, 2, 2) holds 9: its weight at (1.9, 1.9, 1.9) is 0.729, the other corners' 5 share 0.271
    assert vote_labels(labels, np.full((3, 1), 1.9)).tolist() == [9]
    assert vote_labels(labels, np.full((3, 1), 1.5)).tolist() == [5]
    # equal weights: the smaller label wins, as in ANTs
    two = np.zeros((2, 2, 2), np.int16)
    two[1] = 3
    assert vote_labels(two, np.array([[0.5, 0.51], [0.0, 0.0], [0.0, 0.0]])).tolist() == [0, 3]


def test_label_warp_matches_ants_generic_label(tmp_path):
    """The index-vote warp gives ANTs' genericLabel result (affine transform, anisotropic subject grid)."""
    atlas = _label_phantom()
    transform = ants.create_ants_transform(transform_type="AffineTransform", dimension=3,
                                           matrix=np.array([[0.97, 0.08, 0.0], [-0.06, 1.03, 0.05], [0.0, -0.04, 0.95]]),
                                           translation=(1.3, -0.7, 0.4))
    path = str(tmp_path / "sub-to-template_0GenericAffine.mat")
    ants.write_transform(transform, path)
    registration = Registration(forward=[path], inverse=[path], quality=1.0)
    subject_affine = np.diag([0.72, 0.72, 3.0, 1.0])
    subject_affine[:3, 3] = (-12.5, -14.2, -11.0)
    subject = nib.Nifti1Image(np.zeros((34, 40, 8), np.float32), subject_affine)
    ours = np.asarray(warp_labels_to_subject(atlas, subject, registration).dataobj)
    reference = ants.apply_transforms(fixed=to_ants(subject), moving=to_ants(atlas), transformlist=[path],
                                      whichtoinvert=[True], interpolator="genericLabel").numpy()
    assert ours.shape == reference.shape == subject.shape
    assert set(np.unique(ours)) <= {0, 1, 2, 3, 4, 7} and (ours == 4).sum() > 20
    assert (ours == np.rint(reference)).mean() > 0.999


def _affine_registration(tmp_path) -> Registration:
    transform = ants.create_ants_transform(transform_type="AffineTransform", dimension=3,
                                           matrix=np.array([[0.97, 0.08, 0.0], [-0.06, 1.03, 0.05], [0.0, -0.04, 0.95]]),
                                           translation=(1.3, -0.7, 0.4))
    path = str(tmp_path / "sub-to-template_0GenericAffine.mat")
    ants.write_transform(transform, path)
    return Registration(forward=[path], inverse=[path], quality=1.0)


def test_nonzero_box_spans_the_non_zero_voxels():
    data = np.zeros((6, 7, 8), np.float32)
    assert nonzero_box(data) is None
    data[1, 5, 2] = data[3, 2, 6] = 0.5
    first, last = nonzero_box(data)
    assert first.tolist() == [1, 2, 2] and last.tolist() == [3, 5, 6]


def test_warps_of_part_of_the_template_match_ants(tmp_path):
    """Positions computed on the box around the labels serve a smaller image; a wider one widens the box."""
    atlas = _label_phantom()
    grid = np.zeros((46, 50, 44), np.int16)
    grid[9:37, 10:40, 9:35] = np.asarray(atlas.dataobj)  # the labels fill the centre of a larger template grid
    affine = np.diag([1.0, 1.0, 1.0, 1.0])
    affine[:3, 3] = (-23, -27, -21)
    labels = nib.Nifti1Image(grid, affine)
    registration = _affine_registration(tmp_path)
    subject_affine = np.diag([0.9, 0.9, 2.5, 1.0])
    subject_affine[:3, 3] = (-21.0, -24.0, -20.0)
    subject = nib.Nifti1Image(np.zeros((48, 54, 17), np.float32), subject_affine)
    fixed = to_ants(subject)

    def ants_warp(image, interpolator):
        return ants.apply_transforms(fixed=fixed, moving=to_ants(image), transformlist=registration.inverse,
                                     whichtoinvert=[True], interpolator=interpolator).numpy()

    ours = np.asarray(warp_to_subject(labels, subject, registration, "genericLabel").dataobj)
    assert (ours == np.rint(ants_warp(labels, "genericLabel"))).mean() > 0.999 and (ours == 4).sum() > 20
    (box,) = [entry[3] for entry in registration.positions.values()]
    assert box[0].tolist() == [4, 6, 4] and box[1].tolist() == [41, 43, 39]  # labels [12..33, 14..35, 12..31] +- 8
    inner = np.where(grid > 1, 1.0, 0.0).astype(np.float32)  # inside the box: served by the same positions
    np.testing.assert_allclose(np.asarray(warp_to_subject(nib.Nifti1Image(inner, affine), subject, registration,
                                                          "linear").dataobj), ants_warp(nib.Nifti1Image(inner, affine),
                                                                                        "linear"), atol=1e-4)
    assert [entry[3][0].tolist() for entry in registration.positions.values()] == [[4, 6, 4]]
    smooth = np.fromfunction(lambda x, y, z: 1.0 + 0.1 * x + 0.05 * y - 0.02 * z, grid.shape).astype(np.float32)
    wide = nib.Nifti1Image(smooth, affine)  # non-zero everywhere: the whole grid
    np.testing.assert_allclose(np.asarray(warp_to_subject(wide, subject, registration, "linear").dataobj),
                               ants_warp(wide, "linear"), atol=1e-4)
    (box,) = [entry[3] for entry in registration.positions.values()]
    assert box[0].tolist() == [0, 0, 0] and box[1].tolist() == [45, 49, 43]


def test_point_mapper_agrees_with_ants_point_transform(tmp_path):
    """Subject mm -> template mm through the warped positions equals ANTs' own point mapping (LPS <-> RAS)."""
    import pandas as pd

    atlas = _label_phantom()
    registration = _affine_registration(tmp_path)
    subject_affine = np.diag([0.9, 0.9, 2.5, 1.0])
    subject_affine[:3, 3] = (-12.0, -13.0, -9.0)
    subject = nib.Nifti1Image(np.zeros((27, 30, 10), np.float32), subject_affine)
    points = np.array([[0.0, 0.0, 0.0], [3.1, -4.2, 5.5], [-6.0, 7.5, -2.0]])
    ours = template_point_mapper(registration, subject, atlas)(points)
    lps = pd.DataFrame({"x": -points[:, 0], "y": -points[:, 1], "z": points[:, 2]})
    mapped = ants.apply_transforms_to_points(3, lps, registration.inverse, whichtoinvert=[True])
    expected = np.column_stack([-mapped["x"], -mapped["y"], mapped["z"]])
    np.testing.assert_allclose(ours, expected, atol=0.05)
    far = template_point_mapper(registration, subject, atlas)(np.array([[500.0, 0.0, 0.0]]))
    assert np.isnan(far).all()  # outside the subject grid: no template position


def test_template_cells_interpolate_as_map_coordinates():
    """8 gathers and the trilinear weights give scipy's order-1 interpolation; outside the grid 0."""
    from scipy.ndimage import map_coordinates

    rng = np.random.default_rng(3)
    data = rng.random((9, 8, 7)).astype(np.float32)
    index = np.vstack([rng.uniform(-0.5, s - 0.5, 500) for s in data.shape])
    cells = TemplateCells.of(index, data.shape)
    assert np.allclose(cells.weights.sum(axis=0), 1.0, atol=1e-6)
    inside = np.all((index >= 0) & (index <= np.array(data.shape)[:, None] - 1), axis=0)
    expected = np.where(inside, map_coordinates(data, index, order=1, mode="constant", cval=0.0), 0.0)
    np.testing.assert_allclose(cells.interpolate(data, index.shape[1]), expected, atol=1e-5)


def test_lesion_warp_on_a_box_of_the_template_equals_the_whole_grid(tmp_path):
    """Warping a small mask only around its mapped voxels gives ANTs' values on the whole template grid."""
    from regiontag.brain.registration import warp_to_template
    from regiontag.brain.warps import template_box_of_mask

    template_affine = np.eye(4)
    template_affine[:3, 3] = (-40.0, -40.0, -30.0)
    atlas = nib.Nifti1Image(np.zeros((80, 80, 60), np.int16), template_affine)
    registration = _affine_registration(tmp_path)
    subject_affine = np.diag([0.9, 0.9, 2.5, 1.0])
    subject_affine[:3, 3] = (-12.0, -13.0, -9.0)
    mask = np.zeros((27, 30, 10), np.float32)
    mask[10:14, 12:15, 4:6] = 1
    subject = nib.Nifti1Image(mask, subject_affine)
    to_template = template_point_mapper(registration, subject, atlas)
    box = template_box_of_mask(mask > 0, subject_affine, to_template, atlas, pad_mm=14.0)
    assert box is not None and np.prod(box[1] - box[0] + 1) < 0.2 * np.prod(atlas.shape)  # a small part
    whole = np.asarray(warp_to_template(subject, atlas, registration, "linear").dataobj)
    boxed = warp_to_template(subject, atlas, registration, "linear", box=box)
    assert whole.max() > 0.5
    np.testing.assert_allclose(np.asarray(boxed.dataobj), whole, atol=1e-6)
    np.testing.assert_allclose(boxed.affine, atlas.affine)
