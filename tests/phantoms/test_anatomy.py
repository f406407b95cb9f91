"""Phantom anatomy (``regiontag.phantoms.anatomy``): tissue fractions, labels on a grid, atrophy."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from regiontag.phantoms.anatomy import (
    TISSUES,
    apply_atrophy,
    fit_class_means,
    labels_on_grid,
    partial_volume_fractions,
    ventricle_labels,
)

PERIVENTRICULAR = "Cerebrum > Cerebral white matter > Periventricular white matter"


def test_fit_class_means_recovers_a_three_class_mixture():
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.normal(20, 3, 3000), rng.normal(60, 4, 5000), rng.normal(100, 4, 6000)])
    means = fit_class_means(rng.permutation(values))
    assert means == pytest.approx((20, 60, 100), abs=1.0)
    assert list(means) == sorted(means)
    assert fit_class_means(values) == fit_class_means(values)  # deterministic


def test_partial_volume_fractions_exact_values():
    t1 = np.array([5.0, 10.0, 30.0, 50.0, 75.0, 100.0, 120.0, 80.0], dtype=np.float32)
    mask = np.array([True] * 7 + [False])
    tissue = partial_volume_fractions(t1, mask, (10.0, 50.0, 100.0))
    assert tissue.shape == (3, 8) and tissue.dtype == np.float32 and TISSUES == ("csf", "gm", "wm")
    expected = np.array([
        [1, 1, 0.5, 0, 0, 0, 0, 0],      # CSF
        [0, 0, 0.5, 1, 0.5, 0, 0, 0],    # GM
        [0, 0, 0, 0, 0.5, 1, 1, 0],      # WM
    ])
    np.testing.assert_allclose(tissue, expected)


def test_labels_on_grid_resamples_by_world_coordinates():
    data = np.arange(4 * 4 * 4, dtype=np.int32).reshape(4, 4, 4)
    image = nib.Nifti1Image(data, np.eye(4))
    np.testing.assert_array_equal(labels_on_grid(image, (4, 4, 4), np.eye(4)), data)
    shifted = np.eye(4)
    shifted[:3, 3] = (1, 0, 0)  # target voxel i is source voxel i + 1
    moved = labels_on_grid(image, (4, 4, 4), shifted)
    np.testing.assert_array_equal(moved[:3], data[1:])
    assert not moved[3].any()  # outside the source: background
    coarse = np.diag([2.0, 2.0, 2.0, 1.0])
    np.testing.assert_array_equal(labels_on_grid(image, (2, 2, 2), coarse), data[::2, ::2, ::2])


def test_anatomy_arrays_agree(anatomy):
    assert anatomy.tissue.shape == (3, *anatomy.shape) and anatomy.labels.shape == anatomy.shape
    outside = anatomy.brain_fraction == 0
    assert not anatomy.labels[outside].any()
    assert anatomy.brain_fraction.max() <= 1 + 1e-5


def test_ventricle_labels_are_the_ventricles_only(anatomy):
    values = set(ventricle_labels(anatomy.atlas))
    assert values == set(anatomy.atlas.region("Ventricles").label_values("both"))
    assert not values & set(anatomy.atlas.region(PERIVENTRICULAR).label_values("both"))


def test_no_atrophy_returns_unchanged_copies(anatomy):
    tissue, labels = apply_atrophy(anatomy, 0.0)
    assert tissue is not anatomy.tissue and labels is not anatomy.labels
    np.testing.assert_array_equal(tissue, anatomy.tissue)
    np.testing.assert_array_equal(labels, anatomy.labels)


def test_anatomy_is_not_the_registration_template(anatomy):
    assert anatomy.class_means[0] < anatomy.class_means[1] < anatomy.class_means[2]
    volumes_ml = anatomy.tissue.reshape(3, -1).sum(axis=1) / 1000
    assert 100 < volumes_ml[0] < 400 and 600 < volumes_ml[1] < 1100 and 500 < volumes_ml[2] < 950
    # the 2009c asymmetric image: not left-right symmetric like the 2009a symmetric template
    wm = anatomy.tissue[2]
    assert not np.allclose(wm, wm[::-1], atol=0.05)


def test_atrophy_enlarges_ventricles_and_sulci(anatomy):
    ventricle_values = ventricle_labels(anatomy.atlas)
    assert not set(ventricle_values) & set(anatomy.atlas.region(PERIVENTRICULAR).label_values("both"))
    tissue, labels = apply_atrophy(anatomy, 1.0)
    csf_gain_ml = (tissue[0].sum() - anatomy.tissue[0].sum()) / 1000
    assert 60 < csf_gain_ml < 250
    assert np.isin(labels, ventricle_values).sum() > 1.3 * np.isin(anatomy.labels, ventricle_values).sum()
    assert np.allclose(tissue.sum(axis=0), anatomy.tissue.sum(axis=0), atol=1e-4)  # brain outline unchanged

