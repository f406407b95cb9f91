"""lesions.csv rows of a toy brain whose lesions are known one by one."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from regiontag.atlas.lesion_table import lesion_table, summarise_lesions
from regiontag.atlas.tree import Atlas
from regiontag.config import InvolvementConfig
from regiontag.outputs.contract import LESION_COLUMNS

from tests.atlas.conftest import TOY_LESIONS


@pytest.fixture(scope="module")
def toy_table(toy_brain: Atlas, toy_lesion_mask: nib.Nifti1Image) -> pd.DataFrame:
    return lesion_table(toy_lesion_mask, toy_brain.labels_img, toy_brain, template_space=True)


def _row_of(table: pd.DataFrame, box) -> pd.Series:
    centre = [(part.start + part.stop - 1) / 2 for part in box]
    expected_mm = np.asarray(centre) + (-30.0, -20.0, -20.0)
    distance = np.linalg.norm(table[["centroid_x_mm", "centroid_y_mm", "centroid_z_mm"]].to_numpy() - expected_mm,
                              axis=1)
    assert distance.min() < 1e-6, f"no lesion centred at {expected_mm}"
    return table.iloc[int(np.argmin(distance))]


def test_columns_are_the_contract_and_one_row_per_lesion(toy_table: pd.DataFrame) -> None:
    assert list(toy_table.columns) == [c for c in LESION_COLUMNS if c != "session"]
    assert len(toy_table) == len(TOY_LESIONS)
    assert toy_table["lesion_id"].tolist() == list(range(1, len(TOY_LESIONS) + 1))
    assert toy_table["volume_ml"].is_monotonic_decreasing
    assert set(toy_table["body_part"]) == {"brain"}


@pytest.mark.parametrize("name", list(TOY_LESIONS))
def test_each_lesion_volume_centroid_location_and_side(toy_table: pd.DataFrame, name: str) -> None:
    box, location, side = TOY_LESIONS[name]
    row = _row_of(toy_table, box)
    n_voxels = int(np.prod([part.stop - part.start for part in box]))
    assert row["n_voxels"] == n_voxels
    assert row["volume_ml"] == pytest.approx(n_voxels / 1000)
    assert row["location"] == location
    assert row["side"] == side
    # template space: template mm = subject mm
    assert row["template_x_mm"] == pytest.approx(row["centroid_x_mm"])


def test_regions_and_distances(toy_table: pd.DataFrame) -> None:
    row = _row_of(toy_table, TOY_LESIONS["periventricular"][0])
    assert row["main_region"] == "Cerebrum > Cerebral white matter"
    assert row["regions"] == "Cerebrum > Cerebral white matter:left=1.00"
    assert row["ventricle_distance_mm"] == pytest.approx(1.0)
    cortical = _row_of(toy_table, TOY_LESIONS["cortical"][0])
    assert cortical["cortex_distance_mm"] == 0.0
    assert cortical["regions"] == "Cerebrum > Cerebral cortex:left=1.00"


def test_orientation_to_the_ventricle_wall(toy_table: pd.DataFrame) -> None:
    perpendicular = _row_of(toy_table, TOY_LESIONS["perpendicular rod"][0])
    parallel = _row_of(toy_table, TOY_LESIONS["parallel rod"][0])
    assert perpendicular["orientation"] == "perpendicular"
    assert perpendicular["orientation_angle_deg"] < 10  # nearest wall voxel is off-centre by half a voxel
    assert parallel["orientation"] == "parallel"
    assert perpendicular["elongation"] > 2 and parallel["elongation"] > 2
    cube = _row_of(toy_table, TOY_LESIONS["deep white"][0])
    assert cube["elongation"] == pytest.approx(1.0, abs=0.01)
    assert cube["orientation"] == ""


def test_summary_counts_areas_and_dissemination(toy_table: pd.DataFrame) -> None:
    summary = summarise_lesions(toy_table)
    assert summary["n_lesions"] == 8
    assert summary["by_location"] == {"periventricular": 3, "juxtacortical": 1, "cortical": 1, "infratentorial": 1,
                                      "deep grey matter": 1, "deep white matter": 1}
    assert summary["dis_areas"] == ["periventricular", "cortical/juxtacortical", "infratentorial"]
    assert summary["n_perpendicular"] == 1
    assert summary["fraction_small"] == 1.0
    # lesions under min_lesion_ml are left out of the summary and counted as specks
    big_only = summarise_lesions(toy_table, min_lesion_ml=0.035)
    assert big_only["n_lesions"] == 2 and big_only["n_specks"] == 6


def test_gap_thresholds_come_from_the_config(toy_brain: Atlas, toy_lesion_mask: nib.Nifti1Image) -> None:
    tight = InvolvementConfig(periventricular_max_mm=1.5, juxtacortical_max_mm=0.5)
    table = lesion_table(toy_lesion_mask, toy_brain.labels_img, toy_brain, template_space=True, config=tight)
    assert _row_of(table, TOY_LESIONS["perpendicular rod"][0])["location"] == "deep white matter"  # 2 mm gap
    assert _row_of(table, TOY_LESIONS["juxtacortical"][0])["location"] == "deep white matter"  # 1 mm gap


def test_empty_mask_and_grid_mismatch(toy_brain: Atlas) -> None:
    empty = nib.Nifti1Image(np.zeros(toy_brain.labels_img.shape, np.uint8), toy_brain.labels_img.affine)
    table = lesion_table(empty, toy_brain.labels_img, toy_brain)
    assert table.empty and list(table.columns) == [c for c in LESION_COLUMNS if c != "session"]
    assert summarise_lesions(table)["n_lesions"] == 0
    other = nib.Nifti1Image(np.zeros((5, 5, 5), np.uint8), np.eye(4))
    with pytest.raises(ValueError, match="not on the same grid"):
        lesion_table(other, toy_brain.labels_img, toy_brain)
