"""Cord phantoms: geometry, ground truth consistency, determinism and the on-disk layout."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from regiontag.phantoms.cord import LESION_TYPES, TRUTH_REGIONS, make_cord_phantom, write_cord_phantom

POSTERIOR = "Spinal cord > Spinal white matter > Posterior column"
LATERAL = "Spinal cord > Spinal white matter > Lateral column"
ANTERIOR = "Spinal cord > Spinal white matter > Anterior column"
GREY = "Spinal cord > Spinal grey matter"


def _flag(phantom, region, side="both"):
    table = phantom.truth_regions
    value = table.loc[(table.region == region) & (table.side == side), "involved"].iloc[0]
    return None if value is None or pd.isna(value) else bool(value)


@pytest.fixture(scope="module")
def dorsal_sagittal():
    return make_cord_phantom("dorsal", seed=4, orientation="sagittal", length_mm=80)


def test_sagittal_phantom_grid_orientation_and_voxels(dorsal_sagittal):
    image = dorsal_sagittal.images["T2w"]
    assert nib.aff2axcodes(image.affine) == ("P", "S", "R")
    assert np.allclose(image.header.get_zooms()[:3], (0.8, 0.8, 2.5), atol=1e-4)
    assert dorsal_sagittal.truth_cord.shape == image.shape
    assert np.allclose(dorsal_sagittal.truth_lesions.affine, image.affine)


def test_axial_phantom_orientation():
    phantom = make_cord_phantom("healthy", seed=1, orientation="axial", length_mm=40)
    assert nib.aff2axcodes(phantom.images["T2w"].affine) == ("L", "A", "S")
    assert np.asarray(phantom.truth_lesions.dataobj).sum() == 0
    assert not phantom.truth_regions["involved"].fillna(False).any()


def test_cord_dark_in_bright_csf_and_lesion_inside_cord(dorsal_sagittal):
    data = np.asarray(dorsal_sagittal.images["T2w"].dataobj)
    cord = np.asarray(dorsal_sagittal.truth_cord.dataobj) > 0
    lesion = np.asarray(dorsal_sagittal.truth_lesions.dataobj) > 0
    assert lesion.any() and np.all(cord[lesion])
    ring = np.zeros_like(cord)
    for index in range(cord.shape[1]):  # sagittal: axis 1 is superior
        plane = cord[:, index, :]
        if plane.any():
            from scipy import ndimage

            ring[:, index, :] = ndimage.binary_dilation(plane, iterations=3) & ~ndimage.binary_dilation(plane)
    normal_cord = cord & ~lesion
    assert np.median(data[ring]) > 1.8 * np.median(data[normal_cord])  # CSF bright around the cord
    assert np.median(data[lesion]) > 1.4 * np.median(data[normal_cord])  # T2 hyperintense lesion
    area = cord.sum(axis=(0, 2)) * 0.8 * 2.5
    assert 40 < np.median(area[area > 0]) < 140  # cord cross-sectional area in mm2 (sagittal grid)


def test_truth_regions_per_lesion_type(dorsal_sagittal):
    assert set(dorsal_sagittal.truth_regions["region"]) == set(TRUTH_REGIONS)
    assert _flag(dorsal_sagittal, POSTERIOR, "left") is True
    assert _flag(dorsal_sagittal, POSTERIOR, "right") is True
    for region in (LATERAL, ANTERIOR, GREY):
        assert _flag(dorsal_sagittal, region) is False
    length = dorsal_sagittal.info["lesion_length_mm"]
    assert length >= 2 * 18
    assert dorsal_sagittal.info["longitudinally_extensive"] == (length >= 3 * 18)
    eccentric = make_cord_phantom("eccentric", seed=2, orientation="axial", length_mm=60)
    side = eccentric.info["lesion_side"]
    other = "left" if side == "right" else "right"
    assert _flag(eccentric, LATERAL, side) is True
    assert _flag(eccentric, LATERAL, other) is False
    assert eccentric.info["lesion_length_mm"] < 18


def test_same_seed_same_phantom_other_seed_other_pose():
    first = make_cord_phantom("central", seed=7, orientation="axial", length_mm=40)
    again = make_cord_phantom("central", seed=7, orientation="axial", length_mm=40)
    other = make_cord_phantom("central", seed=8, orientation="axial", length_mm=40)
    assert np.array_equal(np.asarray(first.images["T2w"].dataobj), np.asarray(again.images["T2w"].dataobj))
    assert not np.allclose(first.images["T2w"].affine, other.images["T2w"].affine)
    assert first.info["cord_swelling"] is True


def test_stir_phantom_nulls_fat_and_keeps_the_anatomy():
    t2 = make_cord_phantom("dorsal", seed=4, orientation="axial", length_mm=40, supersample_mm=0.8)
    stir = make_cord_phantom("dorsal", seed=4, orientation="axial", length_mm=40, supersample_mm=0.8, contrast="STIR")
    assert stir.info["contrast"] == "STIR" and list(stir.images) == ["T2w"]  # read as T2-weighted
    assert np.array_equal(np.asarray(t2.truth_cord.dataobj), np.asarray(stir.truth_cord.dataobj))
    assert np.array_equal(np.asarray(t2.truth_lesions.dataobj), np.asarray(stir.truth_lesions.dataobj))
    t2_data, stir_data = (np.asarray(p.images["T2w"].dataobj) for p in (t2, stir))
    cord = np.asarray(t2.truth_cord.dataobj) > 0
    lesion = np.asarray(t2.truth_lesions.dataobj) > 0
    normal = cord & ~lesion
    # the lesion stands out more on STIR; the body (vertebral marrow, fat) is darker relative to the cord
    assert (np.median(stir_data[lesion]) / np.median(stir_data[normal])
            > np.median(t2_data[lesion]) / np.median(t2_data[normal]))
    outside = ~ndimage.binary_dilation(cord, iterations=12)
    assert (np.percentile(stir_data[outside], 25) / np.median(stir_data[normal])
            < np.percentile(t2_data[outside], 25) / np.median(t2_data[normal]))


def test_unknown_lesion_type_and_orientation_are_rejected():
    with pytest.raises(ValueError, match="contrast must be one of"):
        make_cord_phantom("healthy", seed=0, contrast="PSIR")
    with pytest.raises(ValueError, match="lesion_type must be one of"):
        make_cord_phantom("diffuse", seed=0)
    with pytest.raises(ValueError, match="orientation must be"):
        make_cord_phantom("healthy", seed=0, orientation="coronal", length_mm=30)
    assert "healthy" in LESION_TYPES


def test_write_cord_phantom_layout(tmp_path, dorsal_sagittal):
    input_dir = write_cord_phantom(dorsal_sagittal, tmp_path, "sub-01")
    scan = input_dir / "sub-01_acq-cspine_T2w.nii.gz"
    assert scan.is_file()
    truth = tmp_path / "truth" / "sub-01"
    for name in ("lesions.nii.gz", "cord_mask.nii.gz", "regions.csv", "truth.json"):
        assert (truth / name).is_file(), name
    regions = pd.read_csv(truth / "regions.csv")
    assert list(regions.columns) == ["region", "side", "involved"]
    info = json.loads((truth / "truth.json").read_text())
    assert info["body_part"] == "cord" and info["lesion_type"] == "dorsal"
    assert np.array_equal(np.asarray(nib.load(scan).dataobj), np.asarray(dorsal_sagittal.images["T2w"].dataobj))
