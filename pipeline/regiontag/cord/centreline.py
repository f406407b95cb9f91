"""A cord centreline that cannot drift: the globally optimal path through a cord-likelihood volume.

As in SCT's OptiC (Gros et al. 2018), the centreline is not followed slice by
slice from a seed (where one bad slice sends the rest astray) but found at once
over the whole scan: among all paths with one point per axial slice, the one
maximising

    sum over slices of likelihood(point)  -  stiffness * sum over steps of |step in-plane|^2 / step along z

is found exactly by dynamic programming (Viterbi).  The quadratic penalty per mm
along z allows a steady tilt (30 degrees costs ~0.3 x stiffness per mm) and the
smooth bends of lordosis and kyphosis, but a jump of a centimetre to bright soft
tissue costs more than several slices of likelihood, so a short segment with a
weak ring (a lesion inside the cord, an effaced canal, a slice without CSF) is
bridged rather than followed out of the canal.  The likelihood is
:func:`regiontag.cord.likelihood.cord_likelihoods`; the polarity (T2-like or
T1-like) comes from the sequence: choosing it from the image alone is not
reliable (on T2w the bright CSF-filled canal in dark bone is itself a
"bright disc in a dark ring").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from regiontag.cord.likelihood import cord_likelihoods

#: Largest in-plane displacement of the cord per mm along z considered (~50 degrees).
MAX_SLOPE = 1.2


@dataclass
class Centreline:
    """The optimal cord path on the canonical grid.

    Attributes
    ----------
    centres : ndarray
        (n_slices, 2) cord centre per canonical axial slice (voxel x, y).
    scores : ndarray
        (n_slices,) cord likelihood along the path (0..1).
    polarity : int
        +1 dark cord in bright CSF (T2-like), -1 bright cord in dark CSF (T1-like).
    """

    centres: np.ndarray
    scores: np.ndarray
    polarity: int


def sampled_slices(n_slices: int, slice_mm: float, step_mm: float) -> np.ndarray:
    """Slice indices searched every ``step_mm`` (first and last always included)."""
    stride = max(1, int(round(step_mm / slice_mm)))
    sampled = np.arange(0, n_slices, stride)
    if sampled[-1] != n_slices - 1:
        sampled = np.append(sampled, n_slices - 1)
    return sampled


def optimal_path(
    likelihood: np.ndarray, z_mm: np.ndarray, *, spacing_mm: float = 1.0, stiffness: float = 0.1,
    max_slope: float = MAX_SLOPE,
) -> tuple[np.ndarray, float]:
    """Globally optimal path (one pixel per slice) through a likelihood stack.

    Parameters
    ----------
    likelihood : ndarray
        (nx, ny, n) likelihood per slice on a square grid of ``spacing_mm``.
    z_mm : ndarray
        (n,) position of each slice along z (mm, increasing).
    spacing_mm : float
        In-plane grid spacing (mm).
    stiffness : float
        Penalty per mm^2 of in-plane step and per mm along z (``stiffness * d^2 / dz``).
    max_slope : float
        Largest in-plane step per mm along z.

    Returns
    -------
    path : ndarray
        (n, 2) integer grid positions.
    total : float
        The maximised objective.

    Examples
    --------
    >>> import numpy as np
    >>> stack = np.zeros((20, 20, 5)); stack[5, 5, :] = 1.0; stack[15, 15, 2] = 1.5  # one bright outlier
    >>> path, _ = optimal_path(stack, np.arange(5) * 2.0)
    >>> path[:, 0].tolist()
    [5, 5, 5, 5, 5]
    """
    n = likelihood.shape[2]
    steps = np.diff(np.asarray(z_mm, dtype=float))
    history = [likelihood[:, :, 0].astype(np.float64)]
    penalties = []
    for index in range(1, n):
        dz = max(float(steps[index - 1]), 1e-3)
        reach = int(np.ceil(max_slope * dz / spacing_mm))
        offsets = np.arange(-reach, reach + 1) * spacing_mm
        ox, oy = np.meshgrid(offsets, offsets, indexing="ij")
        penalty = -stiffness * (ox**2 + oy**2) / dz
        penalty[np.hypot(ox, oy) > max_slope * dz + 1e-9] = -1e9
        penalties.append((reach, penalty))
        previous = ndimage.grey_dilation(history[-1], structure=penalty, mode="constant", cval=-1e12)
        history.append(likelihood[:, :, index] + previous)
    path = np.zeros((n, 2), dtype=int)
    path[-1] = np.unravel_index(np.argmax(history[-1]), history[-1].shape)
    total = float(history[-1].max())
    nx, ny = likelihood.shape[:2]
    for index in range(n - 2, -1, -1):
        reach, penalty = penalties[index]
        x, y = path[index + 1]
        x0, x1 = max(0, x - reach), min(nx, x + reach + 1)
        y0, y1 = max(0, y - reach), min(ny, y + reach + 1)
        window = history[index][x0:x1, y0:y1] + penalty[x0 - x + reach : x1 - x + reach, y0 - y + reach : y1 - y + reach]
        dx, dy = np.unravel_index(np.argmax(window), window.shape)
        path[index] = (x0 + dx, y0 + dy)
    return path, total


def find_centreline(
    volume: np.ndarray, zooms, *, step_mm: float = 2.0, stiffness: float = 0.1, polarity: int = 1
) -> Centreline:
    """The cord centreline of a canonical volume: the optimal path through its cord likelihood.

    Parameters
    ----------
    volume : ndarray
        Canonical (x, y, z) intensities (any scale).
    zooms : sequence of float
        Voxel sizes (mm).
    step_mm : float
        Slices are searched every ``step_mm`` (at least every slice); centres are interpolated between.
    stiffness : float
        See :func:`optimal_path`.
    polarity : {1, -1}
        +1 dark cord in bright CSF (T2w, T2*w, STIR), -1 bright cord in dark CSF (T1w).

    Returns
    -------
    Centreline

    Examples
    --------
    >>> import numpy as np
    >>> x, y, z = np.meshgrid(np.arange(40), np.arange(40), np.arange(30), indexing="ij")
    >>> r = np.hypot((x - 15 - 0.3 * z) / 1.5, y - 20)  # a tilted tube
    >>> t1 = np.where(r < 4, 1.0, np.where(r < 6, 0.2, 0.6))  # bright cord, dark CSF
    >>> line = find_centreline(t1, (1.0, 1.0, 1.0), polarity=-1)
    >>> bool(np.abs(line.centres[:, 0] - (15 + 0.3 * np.arange(30))).max() < 1.5)
    True
    """
    n_slices = volume.shape[2]
    sampled = sampled_slices(n_slices, float(zooms[2]), step_mm)
    spacing = 1.0
    likelihoods, factors = cord_likelihoods(volume[:, :, sampled], zooms, spacing_mm=spacing)
    z_mm = sampled * float(zooms[2])
    sign = 1 if polarity >= 0 else -1
    path, _ = optimal_path(likelihoods[sign], z_mm, spacing_mm=spacing, stiffness=stiffness)
    path_scores = likelihoods[sign][path[:, 0], path[:, 1], np.arange(len(sampled))]
    centres_sampled = path * np.asarray(factors)
    every = np.arange(n_slices)
    centres = np.stack([np.interp(every, sampled, centres_sampled[:, axis]) for axis in (0, 1)], axis=1)
    return Centreline(centres=centres, scores=np.interp(every, sampled, path_scores), polarity=int(sign))
