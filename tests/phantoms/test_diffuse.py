"""Diffuse white-matter disease phantoms (B12 / toxic leukoencephalopathy)."""

from __future__ import annotations

import numpy as np
import pytest

from regiontag.phantoms.diffuse import (
    CEREBRAL_WHITE_MATTER,
    diffuse_white_matter_lesions,
    mirror_about_midline,
    SPARED_REGION,
)


def test_mirror_about_midline_is_an_involution() -> None:
    affine = np.eye(4)
    affine[0, 3] = -10.0  # voxel 10 is x = 0
    volume = np.arange(21 * 3 * 2, dtype=float).reshape(21, 3, 2)
    mirrored = mirror_about_midline(volume, affine)
    assert np.array_equal(mirrored[10], volume[10]) and np.array_equal(mirrored[0], volume[20])
    assert np.array_equal(mirror_about_midline(mirrored, affine), volume)


@pytest.fixture(scope="module")
def diffuse(anatomy):
    tissue, labels, atlas = anatomy.tissue, anatomy.labels, anatomy.atlas
    rng = np.random.default_rng(5)
    mask, grade, placed = diffuse_white_matter_lesions(tissue, labels, atlas, [], "confluent", rng, fraction=0.6,
                                                       affine=anatomy.affine)
    return anatomy, mask, grade, placed


def test_diffuse_lesion_is_the_asked_fraction_bilateral_and_spares_u_fibres(diffuse) -> None:
    anatomy, mask, grade, placed = diffuse
    labels, atlas = anatomy.labels, anatomy.atlas
    spared = np.isin(labels, atlas.region(SPARED_REGION).label_values("both"))
    candidates = np.isin(labels, atlas.region(CEREBRAL_WHITE_MATTER).label_values("both")) & ~spared
    candidates &= anatomy.tissue[2] > 0.5
    assert mask.sum() / candidates.sum() == pytest.approx(0.6, abs=0.01)
    assert not (mask & spared).any()
    left = np.isin(labels, atlas.region(CEREBRAL_WHITE_MATTER).label_values("left")) & mask
    right = np.isin(labels, atlas.region(CEREBRAL_WHITE_MATTER).label_values("right")) & mask
    assert 0.8 < left.sum() / right.sum() < 1.25  # symmetric burden
    assert 0.3 < grade[mask].min() and grade[mask].max() < 0.6 and (grade[~mask] == 0).all()
    assert placed[0]["fraction_of_region"] == pytest.approx(mask.sum() / np.isin(
        labels, atlas.region(CEREBRAL_WHITE_MATTER).label_values("both")).sum())


def test_diffuse_lesion_is_confluent_not_patchy(diffuse) -> None:
    from scipy import ndimage

    _, mask, _, _ = diffuse
    components, count = ndimage.label(mask, structure=np.ones((3, 3, 3), bool))
    sizes = np.sort(np.bincount(components.ravel())[1:])
    assert sizes[-2:].sum() > 0.8 * mask.sum()  # a confluent sheet per hemisphere, not many patches


def test_diffuse_fraction_is_validated(anatomy) -> None:
    with pytest.raises(ValueError, match="fraction must be in"):
        diffuse_white_matter_lesions(anatomy.tissue, anatomy.labels, anatomy.atlas, [], "medium",
                                     np.random.default_rng(0), fraction=0.0)


def test_accompanying_tracts_are_involved_whole_on_both_sides(anatomy) -> None:
    from regiontag.phantoms.diffuse import ACCOMPANYING_TRACTS

    tissue, labels, atlas = anatomy.tissue, anatomy.labels, anatomy.atlas
    mask, grade, placed = diffuse_white_matter_lesions(tissue, labels, atlas, [], "confluent", np.random.default_rng(5),
                                                       fraction=0.3, affine=anatomy.affine, tracts=ACCOMPANYING_TRACTS)
    assert [entry["region"] for entry in placed] == [CEREBRAL_WHITE_MATTER, *ACCOMPANYING_TRACTS]
    for tract in ACCOMPANYING_TRACTS:
        for side in ("left", "right"):
            white = np.isin(labels, atlas.region(tract).label_values(side)) & (tissue[2] > 0.5)
            if white.any():
                assert mask[white].all(), (tract, side)
    assert (grade[mask] > 0).all()
