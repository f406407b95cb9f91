"""Find the bright CSF column with the dark cord inside it on T2 (coarse cord centre per slice).

Each axial slice of the canonical (RAS+) volume is resampled to a ~1 mm in-plane
grid and filtered with a *ring* detector: a dark elliptic disc (the cord)
surrounded by a bright elliptic annulus (CSF), scored as the median of eight
annulus sector means minus the disc mean, so a ring partly effaced anteriorly
(disc bulge) still scores.  A dynamic programme then picks the smoothest
high-scoring path through the slices (the cord is a continuous tube, so the
path follows curvature and ignores isolated ring-like structures).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage, signal

#: Detector geometry (mm): cord disc and CSF annulus semi-axes (left-right, anterior-posterior).
INNER_SEMI_AXES = (3.5, 2.2)
ANNULUS_INNER = (6.8, 4.3)
ANNULUS_OUTER = (9.5, 6.3)
N_SECTORS = 8


@dataclass
class ColumnTrack:
    """The coarse cord path: per canonical slice, centre (voxel x, y) and ring score."""

    centres: np.ndarray  # (n_slices, 2) voxel coordinates in the canonical grid
    scores: np.ndarray  # (n_slices,) ring contrast relative to the slice's bright level (0..1)


def _kernels(spacing_mm: float) -> tuple[np.ndarray, list[np.ndarray]]:
    """Normalised disc kernel and sector-annulus kernels on a square grid of ``spacing_mm``."""
    half = int(np.ceil(ANNULUS_OUTER[0] / spacing_mm))
    axis = np.arange(-half, half + 1) * spacing_mm
    x, y = np.meshgrid(axis, axis, indexing="ij")
    inner = (x / INNER_SEMI_AXES[0]) ** 2 + (y / INNER_SEMI_AXES[1]) ** 2 <= 1
    outer = (x / ANNULUS_OUTER[0]) ** 2 + (y / ANNULUS_OUTER[1]) ** 2 <= 1
    ring = outer & ((x / ANNULUS_INNER[0]) ** 2 + (y / ANNULUS_INNER[1]) ** 2 > 1)
    angle = np.mod(np.arctan2(y, x), 2 * np.pi)
    sectors = []
    for index in range(N_SECTORS):
        sector = ring & (angle >= index * 2 * np.pi / N_SECTORS) & (angle < (index + 1) * 2 * np.pi / N_SECTORS)
        sectors.append(sector / max(sector.sum(), 1))
    return inner / inner.sum(), sectors


def ring_scores(volume: np.ndarray, zooms: tuple[float, float, float], spacing_mm: float = 1.0):
    """Ring-detector score maps for every slice of ``volume`` on a ``spacing_mm`` in-plane grid.

    Parameters
    ----------
    volume : ndarray
        Canonical (x, y, z) intensities, normalised so that the bright level is ~1 per slice.
    zooms : tuple of float
        Voxel sizes (mm).
    spacing_mm : float
        In-plane grid spacing of the detector.

    Returns
    -------
    scores : ndarray
        (nx', ny', nz) score maps.
    factors : tuple of float
        Detector grid -> voxel index scale along x and y.
    """
    factors = (spacing_mm / zooms[0], spacing_mm / zooms[1])
    small = ndimage.zoom(volume, (1 / factors[0], 1 / factors[1], 1), order=1, grid_mode=False)
    inner, sectors = _kernels(spacing_mm)
    conv = lambda kernel: signal.fftconvolve(small, kernel[:, :, None][::-1, ::-1], mode="same", axes=(0, 1))
    inner_mean = conv(inner)
    sector_means = np.stack([conv(kernel) for kernel in sectors], axis=0)
    # the median sector must be bright and the weakest sectors not much darker than the cord
    score = np.median(sector_means, axis=0) - inner_mean
    score = np.minimum(score, np.sort(sector_means, axis=0)[2] - inner_mean + 0.25)
    return np.clip(score, 0, None), factors


def track_column(
    volume: np.ndarray,
    zooms: tuple[float, float, float],
    step_mm: float = 2.0,
    max_slope: float = 1.0,
) -> ColumnTrack:
    """Coarse cord centre per canonical slice by dynamic programming over ring scores.

    Parameters
    ----------
    volume : ndarray
        Canonical intensities normalised per slice (bright level ~1).
    zooms : tuple of float
        Voxel sizes (mm).
    step_mm : float
        Slices are searched every ``step_mm`` (centres are interpolated in between).
    max_slope : float
        Largest in-plane displacement of the cord per mm along z.

    Returns
    -------
    ColumnTrack
    """
    n_slices = volume.shape[2]
    stride = max(1, int(round(step_mm / zooms[2])))
    sampled = np.arange(0, n_slices, stride)
    if sampled[-1] != n_slices - 1:
        sampled = np.append(sampled, n_slices - 1)
    spacing = 1.0
    scores, factors = ring_scores(volume[:, :, sampled], zooms, spacing)
    reach = int(np.ceil(max_slope * stride * zooms[2] / spacing)) + 1
    offsets = np.arange(-reach, reach + 1)
    penalty = -0.02 * np.hypot(*np.meshgrid(offsets, offsets, indexing="ij"))
    cumulative = scores[:, :, 0].copy()
    history = [cumulative]
    for index in range(1, len(sampled)):
        cumulative = scores[:, :, index] + ndimage.grey_dilation(cumulative, structure=penalty, mode="constant", cval=-1e9)
        history.append(cumulative)
    path = np.zeros((len(sampled), 2), dtype=int)
    path[-1] = np.unravel_index(np.argmax(history[-1]), history[-1].shape)
    for index in range(len(sampled) - 2, -1, -1):
        x, y = path[index + 1]
        x0, x1 = max(0, x - reach), min(scores.shape[0], x + reach + 1)
        y0, y1 = max(0, y - reach), min(scores.shape[1], y + reach + 1)
        window = history[index][x0:x1, y0:y1] + penalty[x0 - x + reach : x1 - x + reach, y0 - y + reach : y1 - y + reach]
        dx, dy = np.unravel_index(np.argmax(window), window.shape)
        path[index] = (x0 + dx, y0 + dy)
    path_scores = scores[path[:, 0], path[:, 1], np.arange(len(sampled))]
    centres_sampled = path * np.asarray(factors)
    all_slices = np.arange(n_slices)
    centres = np.stack([np.interp(all_slices, sampled, centres_sampled[:, axis]) for axis in (0, 1)], axis=1)
    return ColumnTrack(centres=centres, scores=np.interp(all_slices, sampled, path_scores))


def normalise_slices(volume: np.ndarray, percentile: float = 99.0) -> np.ndarray:
    """Divide each axial slice by a smoothed per-slice bright level (removes bias along z)."""
    levels = np.percentile(volume.reshape(-1, volume.shape[2]), percentile, axis=0)
    levels = ndimage.median_filter(levels, size=min(9, len(levels)), mode="nearest")
    levels = np.where(levels > 0, levels, max(float(levels.max()), 1e-6))
    return (volume / levels[None, None, :]).astype(np.float32)
