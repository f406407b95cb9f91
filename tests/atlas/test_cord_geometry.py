"""The parametric cord cross-section: hard leaf kinds and soft memberships."""

from __future__ import annotations

import numpy as np
import pytest

from regiontag.atlas.cord_geometry import (
    CUNEATUS,
    GRACILIS,
    KIND_TO_COMBINED,
    LEAF_KINDS,
    leaf_kinds,
    signed_distances,
    soft_combined,
    soft_gracilis,
)
from regiontag.atlas.cord_spec import load_cord_spec


@pytest.fixture(scope="module")
def geometry():
    spec = load_cord_spec()
    return {**spec.geometry[spec.default_level], **spec.fixed}


def test_model_classes_are_ordered_posterior_to_anterior():
    spec = load_cord_spec()
    geometry = {**spec.geometry[spec.default_level], **spec.fixed}
    kinds = leaf_kinds(np.array([0.0, 0.95, 0.0]), np.array([-0.9, 0.0, 0.9]), geometry)
    assert [LEAF_KINDS[k] for k in kinds] == ["Fasciculus gracilis", "Lateral column", "Anterior column"]
    assert KIND_TO_COMBINED.tolist() == [0, 0, 1, 2, 3, 3, 3]


def test_model_is_mirror_symmetric(geometry):
    rng = np.random.default_rng(3)
    u, v = rng.uniform(-1, 1, 500), rng.uniform(-1, 1, 500)
    np.testing.assert_array_equal(leaf_kinds(u, v, geometry), leaf_kinds(-u, v, geometry))
    np.testing.assert_allclose(soft_combined(u, v, geometry, 20.0), soft_combined(-u, v, geometry, 20.0))


def test_without_cuneatus_the_posterior_column_is_gracilis(geometry):
    u = np.linspace(-0.6, 0.6, 61)
    v = np.full_like(u, -0.85)
    with_cuneatus = leaf_kinds(u, v, geometry)
    without = leaf_kinds(u, v, geometry, with_cuneatus=False)
    assert (with_cuneatus == CUNEATUS).any()
    assert not (without == CUNEATUS).any()
    np.testing.assert_array_equal(without[with_cuneatus == CUNEATUS], GRACILIS)


def test_soft_memberships_sum_to_one_and_sharpen_to_the_hard_labels(geometry):
    axis = np.linspace(-0.9, 0.9, 37)
    u, v = (a.ravel() for a in np.meshgrid(axis, axis, indexing="ij"))
    soft = soft_combined(u, v, geometry, sharpness=1e4)
    np.testing.assert_allclose(soft.sum(axis=0), 1.0, atol=1e-9)
    hard = KIND_TO_COMBINED[leaf_kinds(u, v, geometry)]
    distances = signed_distances(u, v, geometry)
    clear = np.min(np.abs(np.stack([distances[k] for k in ("grey", "posterior", "anterior")])), axis=0) > 1e-3
    assert clear.mean() > 0.9
    np.testing.assert_array_equal(np.argmax(soft, axis=0)[clear], hard[clear])
    gracilis = soft_gracilis(u, v, geometry, sharpness=1e4)
    assert np.all((gracilis > 0.5) == (distances["gracilis"] > 0))
    assert len(LEAF_KINDS) == 7
