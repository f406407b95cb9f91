"""CSF-column tracking: per-slice normalisation and the ring detector on a synthetic cord in CSF."""

from __future__ import annotations

import numpy as np

from regiontag.cord.csf_column import normalise_slices, ring_scores, track_column


def test_normalise_slices_divides_by_the_per_slice_bright_level():
    volume = np.ones((10, 10, 5), np.float32) * np.array([2.0, 4.0, 40.0, 4.0, 8.0])
    out = normalise_slices(volume, percentile=99.0)
    # the level is median-filtered along z (window 5, edges repeated): the outlier slice keeps its excess
    levels = np.array([2.0, 4.0, 4.0, 8.0, 8.0])
    np.testing.assert_allclose(out, volume / levels, rtol=1e-6)
    assert out.dtype == np.float32


def _cord_in_csf(shape=(48, 40, 12), centre=(24.0, 18.0)) -> np.ndarray:
    """Dark cord (3.5 x 2.2 mm semi-axes) in a bright CSF ring, 1 mm voxels."""
    x, y = np.meshgrid(np.arange(shape[0]) - centre[0], np.arange(shape[1]) - centre[1], indexing="ij")
    r = np.hypot(x / 7.5, y / 5.0)
    plane = np.where(r <= 1.0, 1.0, 0.2).astype(np.float32)
    plane[np.hypot(x / 3.5, y / 2.2) <= 1.0] = 0.3
    return np.repeat(plane[:, :, None], shape[2], axis=2)


def test_ring_score_peaks_at_the_cord_and_the_track_follows_it():
    volume = _cord_in_csf()
    scores, factors = ring_scores(volume, (1.0, 1.0, 1.0))
    assert factors == (1.0, 1.0)
    peak = np.unravel_index(np.argmax(scores[:, :, 5]), scores.shape[:2])
    assert abs(peak[0] - 24) <= 1 and abs(peak[1] - 18) <= 1
    track = track_column(volume, (1.0, 1.0, 1.0))
    assert track.centres.shape == (12, 2)
    np.testing.assert_allclose(track.centres, np.tile([24.0, 18.0], (12, 1)), atol=1.0)
