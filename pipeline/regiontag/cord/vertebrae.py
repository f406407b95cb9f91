"""Vertebral segment height from the image: periodicity of vertebral bodies and discs in front of the cord.

On a T2 scan, vertebral bodies and intervertebral discs alternate in front of
the cord.  The intensity is sampled in a band parallel to the centreline,
``BAND_MM`` anterior to the cord centre (vertebral bodies), and averaged across
a few mm left-right; the autocorrelation of this profile along the cord peaks
at the segment height (body + disc).  The estimate is used only when that peak
is clear and lies within ``HEIGHT_RANGE_MM``; otherwise the configured
``cord.segment_length_mm`` stays in force.  This measures segment *height*, not
which vertebra is which: absolute levels still need an anchor.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

BAND_MM = (10.0, 18.0)
HALF_WIDTH_MM = 4.0
HEIGHT_RANGE_MM = (12.0, 28.0)
MIN_PEAK = 0.25
MIN_PROFILE_MM = 40.0


def segment_height(
    volume: np.ndarray, zooms: np.ndarray, centres: np.ndarray, valid: np.ndarray, step_mm: float
) -> tuple[float | None, float]:
    """Vertebral segment height (mm) from the body/disc periodicity, or None when unclear.

    Parameters
    ----------
    volume : ndarray
        Canonical T2 intensities (x right, y anterior, z superior).
    zooms : ndarray
        Voxel sizes (mm).
    centres : ndarray
        (n_slices, 2) cord centre per canonical slice (voxel x, y).
    valid : ndarray
        Slices with cord.
    step_mm : float
        Centreline distance between consecutive slices (mm).

    Returns
    -------
    height_mm : float or None
        Segment height, None when the field of view is too short or the peak unclear.
    peak : float
        Autocorrelation at the chosen lag (0..1), the confidence of the estimate.
    """
    slices = np.nonzero(valid)[0]
    if slices.size < 3 or step_mm <= 0 or slices.size * step_mm < MIN_PROFILE_MM:
        return None, 0.0
    offsets_y = np.arange(BAND_MM[0], BAND_MM[1] + 1e-6, 1.0) / zooms[1]
    offsets_x = np.arange(-HALF_WIDTH_MM, HALF_WIDTH_MM + 1e-6, 1.0) / zooms[0]
    ox, oy = np.meshgrid(offsets_x, offsets_y, indexing="ij")
    x = centres[slices, 0, None] + ox.ravel()[None, :]
    y = centres[slices, 1, None] + oy.ravel()[None, :]
    z = np.broadcast_to(slices[:, None], x.shape)
    samples = ndimage.map_coordinates(volume, [x, y, z], order=1, mode="constant", cval=np.nan)
    profile = np.nanmean(np.where(samples > 0, samples, np.nan), axis=1)
    if np.isnan(profile).mean() > 0.2:
        return None, 0.0
    profile = np.nan_to_num(profile, nan=float(np.nanmedian(profile)))
    trend = ndimage.uniform_filter1d(profile, max(3, int(round(30.0 / step_mm))), mode="nearest")
    detrended = profile - trend
    detrended -= detrended.mean()
    energy = float((detrended**2).sum())
    if energy <= 0:
        return None, 0.0
    lags = np.arange(int(HEIGHT_RANGE_MM[0] / step_mm), int(HEIGHT_RANGE_MM[1] / step_mm) + 1)
    lags = lags[lags < detrended.size - 1]
    if lags.size < 3:
        return None, 0.0
    correlation = np.array([(detrended[:-lag] * detrended[lag:]).sum() / energy for lag in lags])
    correlation *= detrended.size / (detrended.size - lags)  # unbiased for shorter overlaps
    best = int(np.argmax(correlation))
    if best in (0, lags.size - 1) or correlation[best] < MIN_PEAK:
        return None, float(max(correlation[best], 0.0))
    # parabolic refinement of the peak
    left, centre, right = correlation[best - 1 : best + 2]
    denominator = left - 2 * centre + right
    shift = 0.5 * (left - right) / denominator if denominator < 0 else 0.0
    return float((lags[best] + shift) * step_mm), float(correlation[best])
