"""Cord likelihood per axial slice: a contrast-invariant "cord inside a CSF ring" detector.

The spinal cord in an axial cross-section is an elliptic disc surrounded by a ring
of CSF of the opposite brightness: dark cord in bright CSF on T2w, T2*w and STIR,
bright cord in dark CSF on T1w.  Each slice of the canonical (RAS+) volume is
resampled to a ~1 mm in-plane grid and compared with a disc/annulus template by
*normalised cross-correlation* (NCC, in [-1, 1]): it is invariant to the local
brightness and contrast, so a low-contrast T2*w cord scores like a high-contrast
T2w one, and a dark muscle framed by very bright fat does not outscore the cord
because it is brighter.  The template is tried at a few sizes (cervical to conus)
and the ring must be *closed* (most of its sectors brighter than the disc),
which distinguishes the CSF ring from a dark band or a corner.  On T2-like scans the
ring's brightest sector must also reach the brightest tissue within ``BRIGHT_RADIUS_MM``
(:func:`csf_weight`): CSF is the brightest thing next to the cord, so a dark ligament or
bone framed by muscle, which a small field of view may show beside the canal, does not
pass for a cord.  The polarity comes from the sequence (see :mod:`regiontag.cord.centreline`).
"""

from __future__ import annotations

import numpy as np
from scipy import fft as sp_fft
from scipy import ndimage, signal

#: Template geometry (mm) at scale 1: cord disc and CSF annulus semi-axes (left-right, anterior-posterior).
#: (Adult cervical cord ~12 x 8 mm: the disc covers its inner 70 %, the annulus the CSF just outside it.)
DISC_SEMI_AXES = (4.2, 2.8)
ANNULUS_INNER = (6.6, 4.4)
ANNULUS_OUTER = (8.4, 5.6)
#: Template sizes tried: conus / thoracic cord (0.75) to a large cervical canal (1.3).
SCALES = (0.75, 1.0, 1.3)
N_SECTORS = 8
#: Pixels whose CSF annulus lies outside the field of view by more than this share score 0 (the disc must be inside).
MAX_OUTSIDE = 0.25
#: Plausible darker/brighter ratio of cord and CSF means (below: a signal void such as air; above: no contrast).
TISSUE_RATIO = (0.1, 1.05)
#: A sector is "bright" when its mean exceeds the disc mean by this many local standard deviations.
SECTOR_MARGIN = 0.5
#: T2-like scans: the brightest ring sector around the cord is CSF, the brightest tissue near the cord.  Its
#: mean relative to the local bright level (:func:`local_bright_level`) weighs the likelihood from 0 (at the
#: first value) to 1 (at the second): a dark ligament, bone or a void framed by muscle, whose brightest
#: neighbour is well below the CSF a centimetre away, does not pass for a cord (a small field of view whose
#: edges cut such structures next to the canal).
CSF_LEVEL = (0.7, 0.9)
#: Half-width (mm) of the neighbourhood whose brightest tissue is taken as the CSF level, and the size (mm)
#: of the blocks averaged first (a sector's scale: single bright pixels and vessels do not count).
BRIGHT_RADIUS_MM = 15.0
BRIGHT_BLOCK_MM = 3.0


def _template(scale, spacing_mm: float):
    sx, sy = (scale, scale) if np.isscalar(scale) else scale
    half = int(np.ceil(ANNULUS_OUTER[0] * max(sx, sy) / spacing_mm))
    axis = np.arange(-half, half + 1) * spacing_mm
    x, y = np.meshgrid(axis, axis, indexing="ij")
    ellipse = lambda axes: (x / (axes[0] * sx)) ** 2 + (y / (axes[1] * sy)) ** 2
    disc = ellipse(DISC_SEMI_AXES) <= 1
    ring = (ellipse(ANNULUS_OUTER) <= 1) & (ellipse(ANNULUS_INNER) > 1)
    angle = np.mod(np.arctan2(y, x), 2 * np.pi)
    sectors = [
        ring & (angle >= i * 2 * np.pi / N_SECTORS) & (angle < (i + 1) * 2 * np.pi / N_SECTORS)
        for i in range(N_SECTORS)
    ]
    return disc, ring, sectors


def _correlate(planes: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    kernel = np.asarray(kernel, dtype=np.float32)[::-1, ::-1, None]
    return signal.fftconvolve(planes, kernel, mode="same", axes=(0, 1))


class _Correlator:
    """In-plane correlation of one stack with many kernels of one size: the stack's FFT is computed once."""

    def __init__(self, planes: np.ndarray, kernel_size: int):
        self.shape = planes.shape
        self.half = kernel_size // 2
        self.full = tuple(sp_fft.next_fast_len(n + kernel_size - 1, real=True) for n in planes.shape[:2])
        self.spectrum = sp_fft.rfft2(planes, s=self.full, axes=(0, 1))

    def __call__(self, kernel: np.ndarray) -> np.ndarray:
        flipped = np.asarray(kernel, dtype=np.float32)[::-1, ::-1]
        out = sp_fft.irfft2(self.spectrum * sp_fft.rfft2(flipped, s=self.full)[:, :, None], s=self.full, axes=(0, 1))
        h = self.half
        return out[h : h + self.shape[0], h : h + self.shape[1]].astype(np.float32)


def ncc_ring(planes: np.ndarray, scale: float = 1.0, spacing_mm: float = 1.0):
    """NCC with the bright-ring / dark-disc template and the closed-ring fractions, per pixel.

    Parameters
    ----------
    planes : ndarray
        (nx, ny, nz) stack of axial slices on a square in-plane grid of ``spacing_mm``.
    scale : float
        Template size relative to an adult cervical cord.
    spacing_mm : float
        In-plane grid spacing.

    Returns
    -------
    ncc : ndarray
        Normalised cross-correlation in [-1, 1] (+1: dark disc in a bright ring, -1: the reverse).
    closed_bright, closed_dark : ndarray
        Fraction of the ``N_SECTORS`` ring sectors brighter / darker than the disc (0..1).
    ratio : ndarray
        Disc mean / ring mean (intensities assumed non-negative).
    brightest : ndarray
        Mean of the brightest ring sector (intensity units of ``planes``).

    Examples
    --------
    >>> import numpy as np
    >>> x, y = np.meshgrid(np.arange(-20, 21), np.arange(-20, 21), indexing="ij")
    >>> r = np.hypot(x / 1.5, y)
    >>> plane = np.where(r < 4, 0.3, np.where(r < 6, 1.0, 0.2))[:, :, None]
    >>> ncc, bright, dark, ratio, brightest = ncc_ring(plane)
    >>> bool(ncc[20, 20, 0] > 0.7 and bright[20, 20, 0] == 1.0 and dark[20, 20, 0] == 0.0)
    True
    """
    planes = np.asarray(planes, dtype=np.float32)
    disc, ring, sectors = _template(scale, spacing_mm)
    inside = np.ones(planes.shape[:2] + (1,), dtype=np.float32)  # the field of view (same for every slice)
    # only the pixels inside the field of view count: masked region means
    n_disc, n_ring = _correlate(inside, disc), _correlate(inside, ring)
    correlate = _Correlator(planes, disc.shape[0])
    sum_disc, sum_ring = correlate(disc), correlate(ring)
    n_all = n_disc + n_ring
    sum_sq = _correlate(planes * planes, disc | ring)
    safe = lambda count: np.maximum(count, 1e-6)
    mean_disc, mean_ring = sum_disc / safe(n_disc), sum_ring / safe(n_ring)
    mean_all = (sum_disc + sum_ring) / safe(n_all)
    sd = np.sqrt(np.maximum(sum_sq / safe(n_all) - mean_all**2, 1e-12))
    # Pearson correlation with the two-level template (point-biserial) on the pixels inside the image
    ncc = (mean_ring - mean_disc) / sd * np.sqrt(n_disc * n_ring) / safe(n_all)
    margin = SECTOR_MARGIN * sd
    bright = np.zeros(planes.shape, dtype=np.float32)
    dark = np.zeros(planes.shape, dtype=np.float32)
    present = np.zeros(inside.shape, dtype=np.float32)
    brightest = np.zeros(planes.shape, dtype=np.float32)
    for sector in sectors:
        n_sector = _correlate(inside, sector)
        there = n_sector >= 0.5 * sector.sum()
        sector_mean = correlate(sector) / safe(n_sector)
        bright += there & (sector_mean > mean_disc + margin)
        dark += there & (sector_mean < mean_disc - margin)
        present += there
        np.maximum(brightest, np.where(there, sector_mean, 0.0), out=brightest)
    keep = (n_disc >= 0.9 * disc.sum()) & (n_ring >= (1 - MAX_OUTSIDE) * ring.sum()) & (present >= N_SECTORS - 2)
    present = np.maximum(present, 1)
    finish = lambda array: np.where(keep, array, 0.0).astype(np.float32)
    ratio = mean_disc / np.maximum(mean_ring, 1e-6)
    return (
        np.clip(finish(ncc), -1, 1), finish(bright / present), finish(dark / present), ratio.astype(np.float32),
        brightest,
    )


def tissue_weight(ratio: np.ndarray) -> np.ndarray:
    """1 where the darker of cord and CSF is tissue, not a signal void, relative to the brighter (0..1).

    Real cords are darker than their CSF but not void (T2*w cords reach ~0.9 of the CSF mean where
    the CSF is thin); air in the airway framed by bright mucosa or a flow void gives ratios near 0.
    """
    low, high = TISSUE_RATIO
    return np.clip((ratio - low) / 0.1, 0, 1) * np.clip((high - ratio) / 0.1, 0, 1)


def csf_weight(brightest: np.ndarray, bright_level) -> np.ndarray:
    """1 where the brightest ring sector reaches the slice's CSF level, 0 well below it (T2-like scans).

    Examples
    --------
    >>> import numpy as np
    >>> csf_weight(np.array([0.5, 0.8, 1.0]), 1.0).round(2).tolist()
    [0.0, 0.5, 1.0]
    """
    low, high = CSF_LEVEL
    relative = brightest / np.maximum(bright_level, 1e-6)
    return np.clip((relative - low) / (high - low), 0, 1).astype(np.float32)


def local_bright_level(planes: np.ndarray, spacing_mm: float = 1.0) -> np.ndarray:
    """Brightest ``BRIGHT_BLOCK_MM`` block mean within ``BRIGHT_RADIUS_MM`` of each pixel, per slice.

    Fat far from the canal (bright on T2 TSE) does not set the level the CSF around the cord is compared with.

    Examples
    --------
    >>> import numpy as np
    >>> plane = np.zeros((60, 10, 1)); plane[5:10] = 1.0; plane[50:55] = 0.5
    >>> level = local_bright_level(plane)
    >>> bool(level[10, 5, 0] > 0.9 and 0.4 < level[50, 5, 0] < 0.6)
    True
    """
    block = max(1, int(round(BRIGHT_BLOCK_MM / spacing_mm)))
    reach = 2 * int(round(BRIGHT_RADIUS_MM / spacing_mm)) + 1
    blocks = ndimage.uniform_filter(np.asarray(planes, dtype=np.float32), size=(block, block, 1), mode="nearest")
    return ndimage.maximum_filter(blocks, size=(reach, reach, 1), mode="nearest")


def to_detector_grid(volume: np.ndarray, zooms, spacing_mm: float = 1.0) -> tuple[np.ndarray, tuple[float, float]]:
    """Axial slices resampled to a square ``spacing_mm`` in-plane grid, and the grid -> voxel scale (x, y)."""
    factors = (spacing_mm / zooms[0], spacing_mm / zooms[1])
    small = ndimage.zoom(volume, (1 / factors[0], 1 / factors[1], 1), order=1, grid_mode=False)
    scale = tuple((volume.shape[axis] - 1) / max(small.shape[axis] - 1, 1) for axis in (0, 1))
    return small.astype(np.float32), scale


def cord_likelihoods(
    volume: np.ndarray, zooms, *, spacing_mm: float = 1.0, scales=None
) -> tuple[dict[int, np.ndarray], tuple[float, float]]:
    """Cord likelihood (0..1) per axial slice on a ``spacing_mm`` in-plane grid, for both polarities.

    Parameters
    ----------
    volume : ndarray
        Canonical (x, y, z) intensities.
    zooms : sequence of float
        Voxel sizes (mm).
    spacing_mm : float
        In-plane detector grid spacing.
    scales : sequence, optional
        Template sizes tried (a float or a (left-right, anterior-posterior) pair each; the best
        one counts at each pixel); default ``SCALES``.

    Returns
    -------
    likelihoods : dict
        ``{+1: dark cord in bright CSF (T2w, T2*w, STIR), -1: bright cord in dark CSF (T1w)}``, each
        (nx', ny', nz): ``max over scales of clip(polarity * NCC, 0, 1) * closed-ring fraction`` (times
        :func:`tissue_weight` and, for +1, :func:`csf_weight`: the ring's brightest sector is CSF).
    factors : tuple of float
        Detector grid index -> canonical voxel index scale along x and y.

    Examples
    --------
    >>> import numpy as np
    >>> x, y, _ = np.meshgrid(np.arange(-20, 21), np.arange(-20, 21), np.arange(3), indexing="ij")
    >>> r = np.hypot(x / 1.5, y)
    >>> t2 = np.where(r < 4, 0.3, np.where(r < 6, 1.0, 0.2))
    >>> likelihoods, _ = cord_likelihoods(t2, (1.0, 1.0, 3.0))
    >>> tuple(int(i) for i in np.unravel_index(likelihoods[1][:, :, 1].argmax(), (41, 41)))
    (20, 20)
    >>> bool(likelihoods[1][20, 20, 1] > 0.5)
    True
    """
    small, factors = to_detector_grid(np.asarray(volume, dtype=np.float32), zooms, spacing_mm)
    small = np.maximum(small, 0.0)
    bright_level = local_bright_level(small, spacing_mm)
    best = {1: np.zeros(small.shape, dtype=np.float32), -1: np.zeros(small.shape, dtype=np.float32)}
    for scale in SCALES if scales is None else scales:
        ncc, bright, dark, ratio, brightest = ncc_ring(small, scale, spacing_mm)
        t2_like = np.clip(ncc, 0, 1) * bright * tissue_weight(ratio) * csf_weight(brightest, bright_level)
        np.maximum(best[1], t2_like, out=best[1])
        np.maximum(best[-1], np.clip(-ncc, 0, 1) * dark * tissue_weight(1.0 / np.maximum(ratio, 1e-6)), out=best[-1])
    return best, factors
