"""Hyperintensity z-maps and lesion detection on synthetic tissue volumes."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from regiontag.config import DetectionConfig
from regiontag.brain.lesions import (
    detect_lesions, drop_thin_clusters, keep_seeded_clusters, remove_small_clusters, robust_zmap,
)


@pytest.fixture()
def flair_like():
    """WM block with a GM rim, 2 lesions (one large, one a single voxel), Gaussian noise, 1 mm voxels."""
    rng = np.random.default_rng(7)
    shape = (40, 40, 20)
    wm = np.zeros(shape, np.float32)
    wm[5:35, 5:35, 3:17] = 1.0
    gm = np.zeros(shape, np.float32)
    gm[2:38, 2:38, 1:19] = 1.0
    gm[wm > 0] = 0.0
    csf = np.zeros(shape, np.float32)
    intensity = 100 * wm + 125 * gm + rng.normal(0, 4, shape).astype(np.float32)
    truth = np.zeros(shape, bool)
    truth[12:18, 12:18, 8:12] = True
    intensity[truth] += 60
    intensity[25, 25, 10] += 60  # one-voxel "lesion": below the minimum cluster size
    brain = (wm + gm) > 0
    image = nib.Nifti1Image(np.where(brain, intensity, 0).astype(np.float32), np.eye(4))
    return image, {"csf": csf, "gm": gm, "wm": wm}, brain, truth


def test_zmap_is_standardised_in_normal_white_matter(flair_like) -> None:
    image, tissue, brain, truth = flair_like
    zmap, stats = robust_zmap(image, tissue, brain, nawm_erosion_mm=1.0)
    z = np.asarray(zmap.dataobj)
    from scipy import ndimage

    # deep WM: more than the 2 mm grey-matter margin away from GM (near GM the floor is the GM level)
    normal_wm = ndimage.binary_erosion(tissue["wm"] > 0, iterations=3) & ~truth
    normal_wm[25, 25, 10] = False
    assert abs(np.median(z[normal_wm])) < 0.2
    assert 0.8 < np.std(z[normal_wm]) < 1.3
    assert stats["nawm_spread"] == pytest.approx(4.0, rel=0.2)
    assert np.median(z[truth]) > 10


def test_grey_matter_is_not_a_lesion(flair_like) -> None:
    image, tissue, brain, truth = flair_like
    z = np.asarray(robust_zmap(image, tissue, brain)[0].dataobj)
    cortex = tissue["gm"] > 0
    # GM is 6 spreads brighter than WM, yet its z stays low: expected intensity follows the tissue
    assert np.percentile(z[cortex], 99) < 3.5


def test_detect_lesions_threshold_and_min_cluster(flair_like) -> None:
    image, tissue, brain, truth = flair_like
    zmap, _ = robust_zmap(image, tissue, brain)
    lesion, combined, count = detect_lesions({"FLAIR": zmap}, brain, DetectionConfig(min_cluster_mm3=10))
    found = np.asarray(lesion.dataobj) > 0
    dice = 2 * (found & truth).sum() / (found.sum() + truth.sum())
    assert dice > 0.9
    assert count == 1 and not found[25, 25, 10]
    assert np.asarray(combined.dataobj).shape == truth.shape


def test_evidence_is_averaged_across_sequences_with_combine_mean(flair_like) -> None:
    image, tissue, brain, truth = flair_like
    zmap, _ = robust_zmap(image, tissue, brain)
    flat = nib.Nifti1Image(np.zeros(truth.shape, np.float32), image.affine)
    config = DetectionConfig(
        min_cluster_mm3=0, seed_threshold_factor=1.0, z_threshold={"FLAIR": 3.0, "T2w": 3.0, "DWI": 3.0},
        combine="mean",
    )
    alone = np.asarray(detect_lesions({"FLAIR": zmap}, brain, config)[0].dataobj) > 0
    with_flat_t2 = np.asarray(detect_lesions({"FLAIR": zmap, "T2w": flat}, brain, config)[0].dataobj) > 0
    assert with_flat_t2.sum() < alone.sum()  # a normal-looking T2 halves the FLAIR evidence
    with pytest.raises(ValueError, match="no FLAIR, T2w or DWI"):
        detect_lesions({"T1w": zmap}, brain, config)


def test_flair_alone_decides_when_present_with_combine_flair(flair_like) -> None:
    image, tissue, brain, truth = flair_like
    zmap, _ = robust_zmap(image, tissue, brain)
    flat = nib.Nifti1Image(np.zeros(truth.shape, np.float32), image.affine)
    config = DetectionConfig(min_cluster_mm3=0, seed_threshold_factor=1.0, combine="flair")
    assert DetectionConfig().combine == "mean"
    alone = np.asarray(detect_lesions({"FLAIR": zmap}, brain, config)[0].dataobj) > 0
    with_flat_t2 = np.asarray(detect_lesions({"FLAIR": zmap, "T2w": flat}, brain, config)[0].dataobj) > 0
    np.testing.assert_array_equal(with_flat_t2, alone)
    t2_only = np.asarray(detect_lesions({"T2w": zmap}, brain, config)[0].dataobj) > 0  # no FLAIR: T2w decides
    assert t2_only.any()


def test_thin_rims_are_dropped_and_blobs_kept() -> None:
    mask = np.zeros((30, 30, 30), bool)
    mask[2:7, 2:7, 2:7] = True  # 125 mm3 blob
    mask[15, 3:27, 3:27] = True  # sheet one voxel thick (ventricle lining)
    mask[20:22, 20:22, 20:22] = True  # 8 mm3: too small to judge by shape
    kept = drop_thin_clusters(mask, (1.0, 1.0, 1.0), min_mm3=25.0, core_depth_mm=1.0)
    assert kept[2:7, 2:7, 2:7].all() and kept[20:22, 20:22, 20:22].all()
    assert not kept[15].any()
    assert kept.sum() == 125 + 8


def test_thin_rim_depth_is_in_plane_on_thick_slices() -> None:
    mask = np.zeros((40, 40, 6), bool)
    mask[5:15, 5:15, 2] = True  # one 8 mm slice, 5 x 5 mm in-plane: a lesion, not a rim
    mask[25, 5:35, 1:5] = True  # one voxel (0.5 mm) wide in-plane: a rim
    kept = drop_thin_clusters(mask, (0.5, 0.5, 8.0), min_mm3=25.0, core_depth_mm=1.0)
    assert kept[5:15, 5:15, 2].all() and not kept[25].any()


def test_remove_small_clusters_counts() -> None:
    mask = np.zeros((10, 10, 10), bool)
    mask[1:4, 1:4, 1:4] = True
    mask[8, 8, 8] = True
    kept, count = remove_small_clusters(mask, 5)
    assert count == 1 and kept.sum() == 27


def test_hysteresis_keeps_whole_bright_clusters_and_drops_faint_ones() -> None:
    evidence = np.zeros((20, 20, 20), np.float32)
    evidence[2:6, 2:6, 2:6] = 1.5  # faint everywhere: dropped
    evidence[10:16, 10:16, 10:16] = 1.2  # faint rim ...
    evidence[12:14, 12:14, 12:14] = 3.0  # ... around a bright core: kept whole
    kept = keep_seeded_clusters(evidence > 1.0, evidence, seed_level=2.0)
    assert not kept[2:6, 2:6, 2:6].any()
    assert kept[10:16, 10:16, 10:16].all() and kept.sum() == 6**3
    assert keep_seeded_clusters(evidence > 1.0, evidence, seed_level=1.0).sum() == 4**3 + 6**3


# --- scikit-image implementations against a plain scipy.ndimage reference -------------------------


def _reference_clusters(mask: np.ndarray, connectivity: int) -> tuple[np.ndarray, int]:
    """Connected components of ``mask`` (``connectivity`` 1 = 6-, 3 = 26-neighbourhood in 3-D)."""
    structure = ndimage.generate_binary_structure(3, connectivity)
    return ndimage.label(mask, structure=structure)


def _reference_remove_small(mask: np.ndarray, min_voxels: int, connectivity: int) -> tuple[np.ndarray, int]:
    labelled, count = _reference_clusters(mask, connectivity)
    kept = np.zeros(mask.shape, bool)
    n_kept = 0
    for label in range(1, count + 1):
        cluster = labelled == label
        if cluster.sum() >= min_voxels:
            kept |= cluster
            n_kept += 1
    return kept, n_kept


def _reference_seeded(candidate: np.ndarray, evidence: np.ndarray, seed_level: float,
                      connectivity: int) -> np.ndarray:
    labelled, count = _reference_clusters(candidate, connectivity)
    kept = np.zeros(candidate.shape, bool)
    for label in range(1, count + 1):
        cluster = labelled == label
        if evidence[cluster].max() >= seed_level:
            kept |= cluster
    return kept


def _random_volume(seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sparse random candidate mask (many diagonal-only contacts) and quantised evidence (ties at 2.0)."""
    rng = np.random.default_rng(seed)
    candidate = rng.random((18, 16, 14)) < 0.22
    evidence = rng.integers(0, 9, candidate.shape).astype(np.float32) / 2.0  # 0, 0.5, ..., 4.0
    return candidate, evidence


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_remove_small_clusters_matches_26_connected_reference(seed: int) -> None:
    candidate, _ = _random_volume(seed)
    differs_from_6 = False
    for min_voxels in (0, 1, 2, 3, 5, 12):
        kept, count = remove_small_clusters(candidate, min_voxels)
        expected, expected_count = _reference_remove_small(candidate, max(min_voxels, 1), connectivity=3)
        np.testing.assert_array_equal(kept, expected)
        assert count == expected_count
        six = _reference_remove_small(candidate, max(min_voxels, 1), connectivity=1)
        differs_from_6 |= six[1] != count or not np.array_equal(six[0], kept)
    assert differs_from_6  # the volumes tell 26- from 6-connectivity apart


def test_remove_small_clusters_keeps_clusters_of_exactly_min_voxels() -> None:
    mask = np.zeros((9, 9, 9), bool)
    mask[1, 1, 1:4] = True  # 3 voxels
    mask[5, 5, 5] = mask[6, 6, 6] = True  # 2 voxels, touching only at a corner
    kept, count = remove_small_clusters(mask, 3)
    assert count == 1 and kept.sum() == 3 and kept[1, 1, 1:4].all()
    kept, count = remove_small_clusters(mask, 2)
    assert count == 2 and kept.sum() == 5
    empty, count = remove_small_clusters(np.zeros((4, 4, 4), bool), 3)
    assert count == 0 and not empty.any()


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_keep_seeded_clusters_matches_26_connected_reference(seed: int) -> None:
    candidate, evidence = _random_volume(seed)
    differs_from_6 = False
    for seed_level in (2.0, 3.5, 4.0, 4.5):
        kept = keep_seeded_clusters(candidate, evidence, seed_level)
        assert kept.dtype == bool
        np.testing.assert_array_equal(kept, _reference_seeded(candidate, evidence, seed_level, connectivity=3))
        differs_from_6 |= not np.array_equal(kept, _reference_seeded(candidate, evidence, seed_level, 1))
    assert differs_from_6
    assert not keep_seeded_clusters(candidate, evidence, 4.5).any()  # no voxel reaches 4.5


def test_keep_seeded_clusters_seed_level_is_inclusive() -> None:
    candidate = np.zeros((6, 6, 6), bool)
    candidate[1:3, 1:3, 1:3] = True
    evidence = np.where(candidate, 1.5, 0.0).astype(np.float32)
    evidence[1, 1, 1] = 2.0
    assert keep_seeded_clusters(candidate, evidence, 2.0).sum() == 8  # peak == seed level: kept
    assert not keep_seeded_clusters(candidate, evidence, np.nextafter(np.float32(2.0), np.float32(3.0))).any()
    # evidence outside the candidate does not seed a cluster
    evidence[4, 4, 4] = 10.0
    assert not keep_seeded_clusters(candidate, evidence, 3.0).any()


# --------------------------------------------------------------------------- heavy and diffuse lesion load


def test_peak_reference_ignores_a_heavy_bright_tail() -> None:
    from regiontag.brain.lesions import _robust_center_spread, peak_center_spread

    rng = np.random.default_rng(3)
    normal = rng.normal(100, 5, 30000)
    lesions = rng.normal(135, 12, 15000)  # a third of the "white matter" is lesion
    partial_volume = rng.uniform(40, 95, 3000)  # CSF partial volume, dark side
    values = np.concatenate([normal, lesions, partial_volume])
    centre, spread = peak_center_spread(values)
    assert centre == pytest.approx(100, abs=1.5)
    assert spread == pytest.approx(5, rel=0.15)
    median, mad = _robust_center_spread(values)
    assert median > 102 and mad > 1.8 * spread  # the median / MAD reference: lesions at half their z


def test_heavy_lesion_load_keeps_lesions_well_above_threshold(flair_like) -> None:
    image, tissue, brain, truth = flair_like
    data = np.asarray(image.dataobj).copy()
    heavy = np.zeros_like(truth)
    heavy[6:34, 6:20, 4:16] = True  # 40% of the white matter is lesion
    rng = np.random.default_rng(1)
    data[heavy] += 25 + rng.normal(0, 4, heavy.sum())
    z = np.asarray(robust_zmap(nib.Nifti1Image(data, image.affine), tissue, brain)[0].dataobj)
    deep = ndimage.binary_erosion(heavy, iterations=3)
    assert np.median(z[deep]) > 4.5  # 25 / 4 = 6.2 spreads; the old median/MAD reference gave about 1.5


def test_white_matter_as_bright_as_grey_matter_falls_back_to_grey_matter(flair_like) -> None:
    image, tissue, brain, truth = flair_like
    data = np.asarray(image.dataobj).copy()
    wm = tissue["wm"] > 0
    data[wm] = 146 + np.random.default_rng(2).normal(0, 4, wm.sum())  # diffuse: WM at 1.17 x GM (125)
    zmap, stats = robust_zmap(nib.Nifti1Image(data, image.affine), tissue, brain, normal_wm_gm_ratio=0.8)
    assert stats["wm_reference_from_gm"] == 1.0 and stats["wm_gm_ratio"] == pytest.approx(1.17, abs=0.03)
    assert stats["wm_level"] == pytest.approx(100, abs=2)
    deep = ndimage.binary_erosion(wm, iterations=3)
    assert np.median(np.asarray(zmap.dataobj)[deep]) > 8
    normal = robust_zmap(image, tissue, brain)[1]
    assert normal["wm_reference_from_gm"] == 0.0 and normal["wm_gm_ratio"] == pytest.approx(0.8, abs=0.03)


def test_thick_slices_keep_a_white_matter_reference() -> None:
    from regiontag.brain.lesions import erode_mm, white_matter_reference

    shape = (80, 80, 4)  # 0.5 x 0.5 x 8 mm: an erosion by voxel count would leave nothing
    wm = np.zeros(shape, np.float32)
    wm[20:60, 20:60, :] = 0.85  # partial volume of thick slices: never above 0.9
    data = np.random.default_rng(0).normal(100, 4, shape).astype(np.float32)
    selected = white_matter_reference(data, wm, np.ones(shape, bool), (0.5, 0.5, 8.0), erosion_mm=2.0)
    assert selected[:, :, 0].sum() > 0 and selected[:, :, 3].sum() > 0  # no slice eroded away
    assert selected.sum() == (32 * 32 * 4)  # 4 voxels (2 mm) in-plane, 0 through-plane
    assert erode_mm(wm > 0, (1.0, 1.0, 1.0), 0.0).sum() == (wm > 0).sum()
    with pytest.raises(ValueError, match="too little normal-appearing white matter"):
        white_matter_reference(data, np.zeros(shape, np.float32), np.ones(shape, bool), (0.5, 0.5, 8.0))


def test_diffuse_disease_outlines_lesions_at_a_lower_level() -> None:
    z = np.zeros((30, 30, 30), np.float32)
    z[5:25, 5:25, 5:25] = 2.5  # faint diffuse hyperintensity: below the FLAIR threshold of 3 ...
    z[12:18, 12:18, 12:18] = 6.0  # ... around a bright core
    z[26:29, 26:29, 26:29] = 4.0  # above the threshold, but no voxel reaches the seed level (1.8 x 3)
    zmap = nib.Nifti1Image(z, np.eye(4))
    brain = np.ones(z.shape, bool)
    config = DetectionConfig()
    focal = np.asarray(detect_lesions({"FLAIR": zmap}, brain, config)[0].dataobj) > 0
    diffuse = np.asarray(detect_lesions({"FLAIR": zmap}, brain, config, diffuse={"FLAIR"})[0].dataobj) > 0
    assert focal.sum() == 6**3
    assert diffuse.sum() == 20**3 + 3**3  # outline and seeds at 0.67 x: the faint sheet and the faint focus
    # a diffuse T2w does not lower the outline of a FLAIR that decides alone
    other = np.asarray(detect_lesions({"FLAIR": zmap}, brain, config, diffuse={"T2w"})[0].dataobj) > 0
    assert other.sum() == 6**3
