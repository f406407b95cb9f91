"""Region table from a lesion mask and leaf labels: volumes, fractions, clusters, flags, laterality."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from regiontag.atlas.tree import Atlas, Region
from regiontag.config import InvolvementConfig
from regiontag.atlas.involvement import TABLE_COLUMNS, laterality_index, region_table


@pytest.fixture()
def toy_atlas() -> Atlas:
    """Two paired leaves (A left=1, right=2) under a paired parent, plus a midline region (3)."""
    labels = np.zeros((20, 10, 10), dtype=np.int16)
    labels[0:10, :, 0:5] = 1  # left A (x < 0 in RAS when the affine centres the grid)
    labels[10:20, :, 0:5] = 2  # right A
    labels[:, :, 5:10] = 3  # midline B
    affine = np.diag([2.0, 2.0, 2.0, 1.0])  # 8 mm3 voxels
    regions = (
        Region("Parent", {"left": (1,), "right": (2,), "midline": (3,)}, paired=True),
        Region("Parent > A", {"left": (1,), "right": (2,)}, paired=True),
        Region("Parent > B", {"midline": (3,)}, paired=False),
    )
    return Atlas("toy", "toy", nib.Nifti1Image(labels, affine), regions)


def _mask_like(atlas: Atlas, slices) -> nib.Nifti1Image:
    mask = np.zeros(atlas.labels_img.shape, dtype=np.uint8)
    for region_slice in slices:
        mask[region_slice] = 1
    return nib.Nifti1Image(mask, atlas.labels_img.affine)


def test_columns_and_rows(toy_atlas: Atlas) -> None:
    lesion = _mask_like(toy_atlas, [np.s_[2:4, 2:4, 1:3]])
    table = region_table(lesion, toy_atlas.labels_img, toy_atlas)
    assert list(table.columns) == TABLE_COLUMNS
    assert list(zip(table["region"], table["side"])) == [
        ("Parent", "left"), ("Parent", "right"), ("Parent", "both"),
        ("Parent > A", "left"), ("Parent > A", "right"), ("Parent > A", "both"),
        ("Parent > B", "both"),
    ]


def test_volumes_fractions_and_parent_aggregation(toy_atlas: Atlas) -> None:
    lesion = _mask_like(toy_atlas, [np.s_[2:4, 2:4, 1:3], np.s_[0:20, 0:10, 9:10]])  # 8 voxels left A, 200 in B
    table = region_table(lesion, toy_atlas.labels_img, toy_atlas).set_index(["region", "side"])
    assert table.loc[("Parent > A", "left"), "lesion_voxels"] == 8
    assert table.loc[("Parent > A", "left"), "lesion_volume_ml"] == pytest.approx(8 * 8 / 1000)
    assert table.loc[("Parent > A", "left"), "region_volume_ml"] == pytest.approx(500 * 8 / 1000)
    assert table.loc[("Parent > A", "left"), "fraction_involved"] == pytest.approx(8 / 500)
    assert table.loc[("Parent > A", "right"), "lesion_voxels"] == 0
    assert table.loc[("Parent > B", "both"), "lesion_voxels"] == 200
    assert table.loc[("Parent", "both"), "lesion_voxels"] == 208
    assert table.loc[("Parent", "both"), "n_clusters"] == 2


def test_involved_flag_thresholds_and_propagation(toy_atlas: Atlas) -> None:
    lesion = _mask_like(toy_atlas, [np.s_[2:6, 2:6, 1:4]])  # 48 voxels = 0.384 ml, 9.6% of left A
    # focal involvement off (no lesion is big enough): the diffuse criteria alone decide
    strict = InvolvementConfig(min_fraction=0.2, min_volume_ml=0.01, focal_min_lesion_ml=10.0)
    loose = InvolvementConfig(min_fraction=0.05, min_volume_ml=0.3, focal_min_lesion_ml=10.0)
    table_strict = region_table(lesion, toy_atlas.labels_img, toy_atlas, config=strict).set_index(["region", "side"])
    table_loose = region_table(lesion, toy_atlas.labels_img, toy_atlas, config=loose).set_index(["region", "side"])
    assert not table_strict.loc[("Parent > A", "left"), "involved"]
    assert table_loose.loc[("Parent > A", "left"), "involved"]
    assert table_loose.loc[("Parent > A", "left"), "involved_diffuse"]
    assert not table_loose.loc[("Parent > A", "left"), "involved_focal"]
    assert not table_loose.loc[("Parent > A", "right"), "involved"]
    # an involved child makes its parent involved on the same side even below the parent's own fraction
    assert table_loose.loc[("Parent", "left"), "involved"]
    assert not table_loose.loc[("Parent > B", "both"), "involved"]


def test_focal_involvement_needs_one_lesion_of_the_minimum_size_mostly_in_the_region(toy_atlas: Atlas) -> None:
    lesion = _mask_like(toy_atlas, [np.s_[2:4, 2:4, 1:3]])  # 8 voxels = 0.064 ml, 1.6% of left A: not diffuse
    config = InvolvementConfig(min_fraction=0.02, min_volume_ml=0.05, focal_min_lesion_ml=0.05, focal_min_share=0.5)
    table = region_table(lesion, toy_atlas.labels_img, toy_atlas, config=config).set_index(["region", "side"])
    assert not table.loc[("Parent > A", "left"), "involved_diffuse"]
    assert table.loc[("Parent > A", "left"), "involved_focal"]
    assert table.loc[("Parent > A", "left"), "involved"]
    assert table.loc[("Parent", "left"), "involved_focal"]  # propagated to the parent
    assert not table.loc[("Parent > A", "right"), "involved"]
    smaller_than_minimum = InvolvementConfig(focal_min_lesion_ml=0.1)
    table = region_table(lesion, toy_atlas.labels_img, toy_atlas, config=smaller_than_minimum)
    assert not table.set_index(["region", "side"]).loc[("Parent > A", "left"), "involved"]


def test_laterality_and_z_statistics(toy_atlas: Atlas) -> None:
    lesion = _mask_like(toy_atlas, [np.s_[2:4, 2:4, 1:3], np.s_[12:16, 2:6, 1:3]])  # 8 left, 32 right
    zmap = np.zeros(toy_atlas.labels_img.shape, dtype=np.float32)
    zmap[2:4, 2:4, 1:3] = 4.0
    zmap[12:16, 2:6, 1:3] = 6.0
    table = region_table(lesion, toy_atlas.labels_img, toy_atlas,
                         zmap=nib.Nifti1Image(zmap, toy_atlas.labels_img.affine)).set_index(["region", "side"])
    assert table.loc[("Parent > A", "both"), "laterality_index"] == pytest.approx((8 - 32) / (8 + 32))
    assert table.loc[("Parent > A", "both"), "mean_z"] == pytest.approx((8 * 4 + 32 * 6) / 40)
    assert table.loc[("Parent > A", "both"), "max_z"] == pytest.approx(6.0)
    assert np.isnan(table.loc[("Parent > A", "left"), "laterality_index"])
    assert np.isnan(laterality_index(0.0, 0.0))


def test_empty_mask_and_grid_mismatch(toy_atlas: Atlas) -> None:
    empty = _mask_like(toy_atlas, [])
    table = region_table(empty, toy_atlas.labels_img, toy_atlas)
    assert (table["lesion_voxels"] == 0).all() and not table["involved"].any()
    wrong = nib.Nifti1Image(np.zeros((5, 5, 5), np.uint8), np.eye(4))
    with pytest.raises(ValueError, match="same grid"):
        region_table(wrong, toy_atlas.labels_img, toy_atlas)
