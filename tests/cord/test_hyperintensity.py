"""Cord hyperintensity helpers: in-plane erosion and seeded lesion detection."""

from __future__ import annotations

import numpy as np

from regiontag.config import CordConfig
from regiontag.cord.hyperintensity import detect_cord_lesions, eroded_in_plane


def test_eroded_in_plane_erodes_each_slice_only():
    mask = np.zeros((9, 9, 3), bool)
    mask[2:7, 2:7, :] = True
    out = eroded_in_plane(mask, np.array([1.0, 1.0, 5.0]), erosion_mm=1.0)
    expected = np.zeros_like(mask)
    expected[3:6, 3:6, :] = True  # one voxel in x and y, none along z
    np.testing.assert_array_equal(out, expected)
    assert eroded_in_plane(mask, np.array([1.0, 1.0, 1.0]), 0.0) is not mask
    np.testing.assert_array_equal(eroded_in_plane(mask, np.array([1.0, 1.0, 1.0]), 0.0), mask)
    # anisotropic: 2 mm in-plane erosion at 0.5 mm x spacing removes 4 voxels along x but 2 along y
    wide = np.zeros((20, 12, 1), bool)
    wide[2:18, 2:10, 0] = True
    eroded = eroded_in_plane(wide, np.array([0.5, 1.0, 1.0]), erosion_mm=2.0)
    xs, ys = np.nonzero(eroded[:, :, 0])
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (6, 13, 4, 7)


def test_detect_cord_lesions_keeps_seeded_clusters_above_min_size():
    config = CordConfig().model_copy(update={"lesion_z_threshold": 4.0, "lesion_hysteresis": 0.5, "min_lesion_mm3": 3.0})
    zmap = np.zeros((12, 12, 12), np.float32)
    zmap[2:5, 2:4, 2] = 2.5  # grows from its seed
    zmap[2, 2, 2] = 5.0
    zmap[8:11, 8, 8] = 3.0  # never reaches the seed level
    zmap[10, 1, 10] = 6.0  # seeded but a single voxel (1 mm^3 < 3 mm^3)
    domain = np.ones(zmap.shape, bool)
    lesions = detect_cord_lesions(zmap, domain, np.array([1.0, 1.0, 1.0]), config)
    expected = np.zeros(zmap.shape, bool)
    expected[2:5, 2:4, 2] = True
    np.testing.assert_array_equal(lesions, expected)
    outside = domain.copy()
    outside[2, 2, 2] = False  # the seed outside the domain: nothing grows
    assert not detect_cord_lesions(zmap, outside, np.array([1.0, 1.0, 1.0]), config).any()
