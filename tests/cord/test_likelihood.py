"""Cord likelihood: contrast-invariant CSF-ring detector, polarity, signal voids and the field-of-view edge."""

from __future__ import annotations

import numpy as np

from regiontag.cord.likelihood import cord_likelihoods, csf_weight, ncc_ring, tissue_weight


def _tube(shape=(61, 61, 4), centre=(30, 30), cord=0.45, csf=1.0, outside=0.25):
    x, y, _ = np.meshgrid(*(np.arange(n) for n in shape), indexing="ij")
    r = np.hypot((x - centre[0]) / 6.0, (y - centre[1]) / 4.0)  # a 12 x 8 mm cord on a 1 mm grid
    return np.where(r < 1.0, cord, np.where(r < 1.45, csf, outside)).astype(np.float32)


def test_ncc_peaks_on_the_cord_and_ignores_brightness_and_contrast_scale():
    volume = _tube()
    ncc, bright, dark, ratio, _ = ncc_ring(volume)
    assert np.unravel_index(ncc[:, :, 1].argmax(), ncc.shape[:2]) == (30, 30)
    assert ncc[30, 30, 1] > 0.6 and bright[30, 30, 1] == 1.0 and dark[30, 30, 1] == 0.0
    assert abs(ratio[30, 30, 1] - 0.45) < 0.1
    scaled, *_ = ncc_ring(3.0 * volume + 100.0)  # NCC is invariant to gain and offset
    assert np.allclose(scaled[25:36, 25:36], ncc[25:36, 25:36], atol=5e-3)


def test_low_contrast_cord_scores_like_a_high_contrast_one():
    strong, _ = cord_likelihoods(_tube(cord=0.3), (1.0, 1.0, 5.0))
    weak, _ = cord_likelihoods(_tube(cord=0.8), (1.0, 1.0, 5.0))  # T2*w-like: cord close to CSF
    assert weak[1][30, 30, 1] > 0.7 * strong[1][30, 30, 1] > 0.3


def test_polarity_t1_cord_is_found_only_with_negative_polarity():
    t1 = _tube(cord=0.8, csf=0.2, outside=0.6)
    likelihoods, factors = cord_likelihoods(t1, (1.0, 1.0, 1.0))
    assert factors == (1.0, 1.0)
    assert likelihoods[-1][30, 30, 1] > 0.5
    assert likelihoods[1][30, 30, 1] == 0.0


def test_air_in_a_bright_rim_is_not_a_cord():
    airway = _tube(cord=0.02)  # a signal void framed by bright mucosa
    likelihoods, _ = cord_likelihoods(airway, (1.0, 1.0, 1.0))
    assert likelihoods[1][30, 30, 1] == 0.0
    assert tissue_weight(np.array([0.02, 0.5, 1.2])).tolist() == [0.0, 1.0, 0.0]


def test_template_mostly_outside_the_field_of_view_scores_zero():
    volume = _tube(shape=(61, 61, 2), centre=(1, 30))  # the cord and its ring are cut by the image edge
    likelihoods, _ = cord_likelihoods(volume, (1.0, 1.0, 1.0))
    assert likelihoods[1][:3].max() == 0.0
    assert likelihoods[1][30, 30].max() == 0.0  # no cord in the middle either


def test_anisotropic_voxels_are_resampled_to_the_detector_grid():
    volume = _tube(shape=(61, 61, 3))[::2]  # 2 mm left-right voxels
    likelihoods, factors = cord_likelihoods(volume, (2.0, 1.0, 3.0))
    assert likelihoods[1].shape[1] == 61 and likelihoods[1].shape[0] in (61, 62)
    assert np.isclose(factors[0], 0.5, atol=0.02) and factors[1] == 1.0
    i, j = np.unravel_index(likelihoods[1][:, :, 1].argmax(), likelihoods[1].shape[:2])
    assert abs(i * factors[0] - 15) <= 1 and abs(j - 30) <= 1


def test_dark_structure_framed_by_tissue_dimmer_than_the_nearby_csf_is_not_a_cord():
    # a cord in its CSF ring and, 15 mm behind it, the same dark-disc-in-a-ring shape framed by muscle at
    # 60 % of the CSF level (a ligament between the laminae, as a small field of view cuts it)
    volume = _tube(shape=(61, 81, 2), centre=(30, 55))
    x, y, _ = np.meshgrid(np.arange(61), np.arange(81), np.arange(2), indexing="ij")
    r = np.hypot((x - 30) / 4.0, (y - 40) / 2.5)
    volume = np.where(r < 1.0, 0.15, np.where(r < 1.6, 0.6, volume)).astype(np.float32)
    likelihoods, _ = cord_likelihoods(volume, (1.0, 1.0, 1.0))
    assert likelihoods[1][30, 55, 0] > 0.5
    assert likelihoods[1][27:34, 37:44, 0].max() == 0.0
    without_csf = np.where(y > 47, 0.25, volume).astype(np.float32)  # the same structure with no CSF near it
    likelihoods, _ = cord_likelihoods(without_csf, (1.0, 1.0, 1.0))
    assert likelihoods[1][27:34, 37:44, 0].max() > 0.3
    assert csf_weight(np.array([0.5, 0.8, 1.0]), 1.0).round(2).tolist() == [0.0, 0.5, 1.0]
