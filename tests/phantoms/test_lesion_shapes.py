"""Lesion shapes (``regiontag.phantoms.lesion_shapes``): blobs, confluent patches, grades, placement."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from regiontag.atlas.tree import Atlas, Region
from regiontag.phantoms.lesion_shapes import (
    LESION_SIZES,
    LesionTarget,
    confluent_patches,
    graded_intensity,
    irregular_blob,
    lesion_candidates,
    place_lesions,
    smooth_noise,
)

PERIVENTRICULAR = "Cerebrum > Cerebral white matter > Periventricular white matter"
SHAPE = (30, 30, 30)


@pytest.fixture(scope="module")
def toy():
    """A 30 mm cube: label 1 (left half, white matter) and 2 (right half, grey matter); region "Nucleus"
    (label 3, a small grey block with one white slab) for the tissue fallback."""
    labels = np.zeros(SHAPE, dtype=np.int32)
    labels[:15] = 1
    labels[15:] = 2
    labels[20:26, 10:16, 10:16] = 3
    tissue = np.zeros((3, *SHAPE), dtype=np.float32)
    tissue[2, :15] = 1.0
    tissue[1, 15:] = 1.0
    tissue[:, 20:26, 10:16, 10:16] = 0
    tissue[1, 20:26, 10:16, 10:16] = 1.0
    tissue[:, 20, 10:16, 10:16] = np.array([0, 0, 1])[:, None, None]  # one white slab: too little white matter
    atlas = Atlas("toy", "toy", nib.Nifti1Image(labels.astype(np.int16), np.eye(4)), (
        Region("Hemisphere", {"left": (1,), "right": (2,)}, True),
        Region("Nucleus", {"midline": (3,)}, False),
    ))
    return tissue, labels, atlas


def test_smooth_noise_is_standardised_and_reproducible():
    noise = smooth_noise((20, 20, 20), 2.0, np.random.default_rng(0))
    assert noise.mean() == pytest.approx(0, abs=1e-5) and noise.std() == pytest.approx(1, rel=1e-4)
    np.testing.assert_array_equal(noise, smooth_noise((20, 20, 20), 2.0, np.random.default_rng(0)))


def test_candidates_are_white_matter_or_the_tissue_of_grey_regions(toy):
    tissue, labels, atlas = toy
    left = lesion_candidates(tissue, labels, atlas, LesionTarget("Hemisphere", "left"))
    np.testing.assert_array_equal(left, labels == 1)
    right = lesion_candidates(tissue, labels, atlas, LesionTarget("Hemisphere", "right"))
    np.testing.assert_array_equal(right, labels == 2)  # no white matter: the grey tissue
    nucleus = lesion_candidates(tissue, labels, atlas, LesionTarget("Nucleus", "both"))
    np.testing.assert_array_equal(nucleus, labels == 3)  # 36 white voxels < a quarter of 216: all tissue


def test_irregular_blob_size_connectivity_and_bounds():
    candidates = np.zeros(SHAPE, dtype=bool)
    candidates[5:25, 5:25, 5:25] = True
    blob = irregular_blob(candidates, np.array([15, 15, 15]), 200, np.random.default_rng(0))
    assert blob[15, 15, 15] and not (blob & ~candidates).any()
    _, count = ndimage.label(blob, structure=np.ones((3, 3, 3)))
    assert count == 1 and 150 <= blob.sum() <= 200
    corner = irregular_blob(candidates, np.array([5, 5, 5]), 20, np.random.default_rng(1))
    assert not (corner & ~candidates).any() and 0 < corner.sum() <= 20
    tiny = np.zeros(SHAPE, dtype=bool)
    tiny[10, 10, 10:13] = True
    assert irregular_blob(tiny, np.array([10, 10, 11]), 50, np.random.default_rng(2)).sum() == 3  # ran out


def test_confluent_patches_cover_about_the_fraction():
    candidates = np.zeros((40, 40, 40), dtype=bool)
    candidates[2:38, 2:38, 2:38] = True
    patches = confluent_patches(candidates, 0.2, np.random.default_rng(0))
    assert not (patches & ~candidates).any()
    assert 0.15 <= patches.sum() / candidates.sum() <= 0.2 + 1e-3
    components, count = ndimage.label(patches, structure=np.ones((3, 3, 3)))
    assert count >= 1 and np.bincount(components.ravel())[1:].min() >= 50


def test_graded_intensity_range():
    blob = np.zeros((15, 15, 15), dtype=bool)
    blob[4:11, 4:11, 4:11] = True
    grade = graded_intensity(blob, 0.8)
    assert grade.dtype == np.float32 and not grade[~blob].any()
    assert grade[blob].min() >= 0.6 * 0.8 - 1e-6 and grade[blob].max() == pytest.approx(0.8)
    assert grade[7, 7, 7] > grade[4, 4, 4]  # brighter core, fainter rim


def test_place_lesions_on_a_toy_atlas(toy):
    tissue, labels, atlas = toy
    targets = [LesionTarget("Hemisphere", "left"), LesionTarget("Hemisphere", "right")]
    mask, grade, placed = place_lesions(tissue, labels, atlas, targets, "small", np.random.default_rng(0))
    assert [(p["region"], p["side"]) for p in placed] == [("Hemisphere", "left"), ("Hemisphere", "right")]
    assert sum(p["volume_mm3"] for p in placed) == mask.sum()
    assert (mask[:15].sum(), mask[15:].sum()) == (placed[0]["volume_mm3"], placed[1]["volume_mm3"])
    assert np.array_equal(mask, grade > 0) and grade.max() <= 1.0
    for p in placed:
        assert 3 <= p["n_lesions"] <= 8
    _, count = ndimage.label(mask, structure=np.ones((3, 3, 3)))
    assert count == sum(p["n_lesions"] for p in placed)  # separate foci stay separate
    again = place_lesions(tissue, labels, atlas, targets, "small", np.random.default_rng(0))
    np.testing.assert_array_equal(again[0], mask)


def test_place_lesions_empty_region_and_unknown_size(toy):
    tissue, labels, atlas = toy
    empty = np.zeros_like(labels)
    mask, _, placed = place_lesions(tissue, empty, atlas, [LesionTarget("Nucleus", "both")], "medium",
                                    np.random.default_rng(0))
    assert not mask.any() and placed == [{"region": "Nucleus", "side": "both", "n_lesions": 0, "volume_mm3": 0.0}]
    with pytest.raises(ValueError, match="lesion size 'huge' unknown; choose one of "
                                         r"\['confluent', 'disseminated', 'medium', 'small'\]"):
        place_lesions(tissue, labels, atlas, [], "huge", np.random.default_rng(0))
    assert sorted(LESION_SIZES) == ["confluent", "disseminated", "medium", "small"]


def test_lesions_are_placed_exactly_inside_region_white_matter(anatomy):
    rng = np.random.default_rng(3)
    targets = [LesionTarget(PERIVENTRICULAR, "left")]
    small, _, placed = place_lesions(anatomy.tissue, anatomy.labels, anatomy.atlas, targets, "small", rng)
    region = np.isin(anatomy.labels, anatomy.atlas.region(PERIVENTRICULAR).label_values("left"))
    assert small.any() and not (small & ~region).any()
    components, count = ndimage.label(small, structure=np.ones((3, 3, 3)))
    sizes = np.bincount(components.ravel())[1:]
    assert 3 <= count <= 8 and sizes.max() < 30 and placed[0]["n_lesions"] == count
    confluent, grade, _ = place_lesions(anatomy.tissue, anatomy.labels, anatomy.atlas, targets, "confluent", rng)
    assert confluent.sum() > 10 * small.sum()
    assert grade[confluent].min() > 0.3 and grade[~confluent].max() == 0


def test_medium_lesions_are_discrete_and_never_confluent_sized(anatomy):
    """``medium`` lesions in a large region: several separate foci, none as big as a confluent cluster."""
    from regiontag.config import InvolvementConfig
    from regiontag.phantoms.lesion_shapes import MEDIUM_LESION_MAX_MM3

    juxtacortical = "Cerebrum > Cerebral white matter > Juxtacortical white matter"
    targets = [LesionTarget(juxtacortical, "left")]
    medium, _, placed = place_lesions(anatomy.tissue, anatomy.labels, anatomy.atlas, targets, "medium",
                                      np.random.default_rng(5))
    components, count = ndimage.label(medium, structure=np.ones((3, 3, 3)))
    sizes_mm3 = np.bincount(components.ravel())[1:]  # 1 mm anatomy grid
    region_mm3 = np.isin(anatomy.labels, anatomy.atlas.region(juxtacortical).label_values("left")).sum()
    assert 0.02 * region_mm3 <= medium.sum() <= 0.065 * region_mm3
    assert count == placed[0]["n_lesions"] >= medium.sum() / 1500
    assert sizes_mm3.max() <= MEDIUM_LESION_MAX_MM3 < 1000 * InvolvementConfig().confluent_min_ml



def test_disseminated_targets_get_one_lesion_each_and_a_target_mode_overrides_the_size(toy):
    tissue, labels, atlas = toy
    region = atlas.regions[0].path
    targets = [LesionTarget(region, "both", "disseminated")] * 3
    mask, _, placed = place_lesions(tissue, labels, atlas, targets, "medium", np.random.default_rng(1))
    assert [item["n_lesions"] for item in placed] == [1, 1, 1]
    assert all(20 <= item["volume_mm3"] <= 1500 for item in placed)
