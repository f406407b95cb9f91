"""Registration helpers that need no ANTs registration run: threads, similarity, the schedule, the label warp."""

from __future__ import annotations

import os

import ants
import nibabel as nib
import numpy as np
import pytest

from regiontag.brain.preprocess import to_ants
from regiontag.brain.registration import (
    LINEAR_STAGE,
    Registration,
    _linear_schedule,
    set_itk_threads,
    similarity,
    vote_labels,
    warp_labels_to_subject,
)
from regiontag.config import Config


def test_similarity_is_pearson_correlation_inside_the_mask():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(6, 6, 6)).astype(np.float32)
    b = (2 * a + 1).astype(np.float32)
    b[0] = rng.normal(size=(6, 6)).astype(np.float32)  # outside the mask: ignored
    mask = np.ones(a.shape, np.float32)
    mask[0] = 0
    value = similarity(ants.from_numpy(a), ants.from_numpy(b), ants.from_numpy(mask))
    assert value == pytest.approx(1.0, abs=1e-6)
    value = similarity(ants.from_numpy(a), ants.from_numpy(-b), ants.from_numpy(mask))
    assert value == pytest.approx(-1.0, abs=1e-6)
    flat = np.ones(a.shape, np.float32)
    assert np.isnan(similarity(ants.from_numpy(a), ants.from_numpy(flat), ants.from_numpy(mask)))


def test_set_itk_threads_sets_the_environment(monkeypatch):
    monkeypatch.setenv("ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS", "7")
    config = Config().registration
    set_itk_threads(config)
    assert os.environ["ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"] == str(config.threads)


def test_registration_record():
    record = Registration(forward=["a.mat"], inverse=["a.mat"], quality=0.8)
    assert record.files == {} and record.quality == 0.8


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


def test_linear_schedule_levels():
    assert _linear_schedule((1000, 500, 250, 0)) == {
        "aff_iterations": (1000, 500, 250, 0), "aff_shrink_factors": (8, 4, 2, 1),
        "aff_smoothing_sigmas": (3, 2, 1, 0)}
    assert _linear_schedule((100, 50))["aff_shrink_factors"] == (2, 1)
    assert set(LINEAR_STAGE) == {"Rigid", "Affine", "SyN", "SyNRA", "SyNOnly"}
