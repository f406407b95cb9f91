"""Cord segmentation and centreline: phantoms (sagittal/axial, anisotropic, curved, lesions) and the real scan."""

from __future__ import annotations

import time

import nibabel as nib
import numpy as np
import pytest

from regiontag.config import CordConfig, load_config
from regiontag.cord.segmentation import CENTERLINE_COLUMNS, segment_cord
from regiontag.phantoms.cord import make_cord_phantom


def dice(first: nib.Nifti1Image, second: nib.Nifti1Image) -> float:
    a = np.asarray(first.dataobj) > 0
    b = np.asarray(second.dataobj) > 0
    return float(2 * (a & b).sum() / (a.sum() + b.sum()))


@pytest.mark.parametrize(
    ("lesion_type", "seed", "orientation", "voxel_size"),
    [
        ("healthy", 11, "sagittal", (0.8, 0.8, 2.5)),
        ("central", 12, "sagittal", (1.0, 1.0, 3.0)),
        ("dorsal", 13, "axial", (0.7, 0.7, 3.0)),
        ("eccentric", 14, "axial", (0.5, 0.5, 4.0)),
    ],
)
def test_phantom_cord_dice(lesion_type, seed, orientation, voxel_size):
    phantom = make_cord_phantom(lesion_type, seed, orientation, voxel_size=voxel_size, length_mm=70)
    mask, centerline = segment_cord(phantom.images["T2w"], CordConfig())
    assert mask.shape == phantom.images["T2w"].shape
    assert np.allclose(mask.affine, phantom.images["T2w"].affine)
    assert dice(mask, phantom.truth_cord) >= 0.85
    assert list(centerline.columns) == CENTERLINE_COLUMNS


def test_centerline_table_follows_the_cord():
    phantom = make_cord_phantom("dorsal", 21, "sagittal", length_mm=80)
    mask, centerline = segment_cord(phantom.images["T2w"], load_config())
    truth = nib.as_closest_canonical(phantom.truth_cord)
    canonical = np.asarray(truth.dataobj) > 0
    # the centreline lies inside the true cord on every slice it reports
    for row in centerline.itertuples():
        voxel = np.linalg.solve(truth.affine, [row.x_mm, row.y_mm, row.z_mm, 1.0])[:3]
        i, j, k = np.round(voxel).astype(int)
        assert k == row.slice
        assert canonical[i, j, k]
    assert centerline["z_mm"].is_monotonic_decreasing  # from the top of the scan down
    assert centerline["distance_mm"].iloc[0] == 0
    assert np.all(np.diff(centerline["distance_mm"]) > 0)
    # cord length along the curve >= its straight superior-inferior extent
    assert centerline["distance_mm"].iloc[-1] >= (centerline["z_mm"].iloc[0] - centerline["z_mm"].iloc[-1]) - 1e-6
    true_area = canonical.sum(axis=(0, 1)) * np.prod(truth.header.get_zooms()[:2])
    measured = centerline.set_index("slice")["csa_mm2"]
    ratio = measured / true_area[measured.index]
    assert 0.85 < float(np.median(ratio)) < 1.1  # CSA normal to the cord <= axial-plane area


def test_no_cord_in_noise_returns_empty_mask_and_table():
    rng = np.random.default_rng(0)
    image = nib.Nifti1Image(rng.normal(100, 10, (40, 40, 30)).astype(np.float32), np.diag([1.0, 1.0, 2.0, 1.0]))
    mask, centerline = segment_cord(image)
    assert int(np.asarray(mask.dataobj).sum()) == 0
    assert centerline.empty and list(centerline.columns) == CENTERLINE_COLUMNS



def test_cord_against_the_dura_on_one_side_is_outlined_where_it_meets_dark_tissue():
    # axial T2*w-like slices: CSF in front of and beside the cord only, the back of the cord against dark
    # tissue (a cord filling a tight canal, a small field of view): the back edge is the fall to that tissue
    x, y, _ = np.meshgrid(np.arange(80), np.arange(80), np.arange(8), indexing="ij")
    u, v = (x - 40) * 0.5, (y - 40) * 0.5
    cord = (u / 6.0) ** 2 + (v / 3.5) ** 2 <= 1
    csf = ((u / 8.0) ** 2 + ((v - 1.0) / 5.5) ** 2 <= 1) & (v > -1.0)
    volume = np.where(cord, 0.55, np.where(csf, 1.0, np.where(v < 0, 0.15, 0.4))).astype(np.float32)
    mask, centerline = segment_cord(nib.Nifti1Image(volume, np.diag([0.5, 0.5, 5.0, 1.0])))
    found = np.asarray(mask.dataobj) > 0
    assert len(centerline) == 8
    assert 2 * (found & cord).sum() / (found.sum() + cord.sum()) > 0.9


#: Real cords with a manual mask on the scan's own grid: (scan, mask, polarity). References: SCT PropSeg
#: Dice 0.86-0.90 (De Leener et al. 2014), SCT's deep-learning models ~0.95 (Gros et al. 2019).
REAL_MASKED = [
    pytest.param("t2", "t2_seg-manual", 1, id="sagittal-T2w"),
    pytest.param("t1w", "t1w_seg-manual", -1, id="T1w"),
    pytest.param("sub-test001_T2star", "sub-test001_T2star_seg-manual", 1, id="axial-T2star-7.5mm"),
    # a 24 x 27 mm crop: the cord fills half the field of view, CSF only in front of and beside it
    pytest.param("t2s", "t2s_seg", 1, id="axial-T2star-cropped"),
]


@pytest.mark.real
@pytest.mark.parametrize(("scan", "mask_name", "polarity"), REAL_MASKED)
def test_real_cord_scan_dice_against_manual_mask(real_cord_dir, scan, mask_name, polarity):
    image_path = real_cord_dir / f"{scan}.nii.gz"
    if not image_path.is_file():
        pytest.skip(f"{image_path} is not in ../shared")
    image = nib.load(str(image_path))
    manual = nib.load(str(real_cord_dir / f"{mask_name}.nii.gz"))
    start = time.perf_counter()
    mask, centerline = segment_cord(image, load_config(), polarity=polarity)
    seconds = time.perf_counter() - start
    score = dice(mask, manual)
    print(f"real cord {scan}: Dice {score:.3f} against the manual mask, {seconds:.2f} s")
    assert mask.shape == image.shape and np.allclose(mask.affine, image.affine)
    assert score >= 0.90
