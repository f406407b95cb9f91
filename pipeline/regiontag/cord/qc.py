"""Self-checks of a cord segmentation: what a reader would look at before trusting it.

Each check returns the canonical slices (the ``slice`` column of ``centerline.csv``) it
doubts, and :func:`cord_qc_warnings` turns them into one-line warnings that make the
session's status ``warning`` (they reach ``sessions.csv`` through ``StageOutput.warnings``):

* **centreline jump**: the centre moves in-plane by more than ``max(JUMP_MM, dz)``
  between consecutive cord slices (a real cord bends by less than 45 degrees);
* **area outside the physiological range** (``cord.qc_csa_range_mm2``): adult
  cross-sectional areas are ~60-90 mm2 in the cervical cord (C2-C3 ~ 70-80 mm2:
  Kato et al. 2012, Papinutto et al. 2015), ~40-60 mm2 in the thoracic cord and
  taper below ~40 mm2 in the conus; much smaller or larger means another structure;
* **no CSF ring** around the "cord" (the likelihood of a cord inside a CSF ring along
  the centreline, median over three consecutive cord slices, below ``cord.qc_min_ring``):
  the path left the spinal canal, or the canal is effaced;
* **low cord/CSF contrast** (``(CSF - cord) / CSF`` below ``cord.qc_min_contrast``);
* **field-of-view edge**: the cord mask touches the in-plane edge of the image.

:func:`conus_end` tells where a cord ends inside the field of view in CSF (the conus
medullaris of a lumbar scan, the thecal sac going on below it) from where it is merely lost.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import ndimage

from regiontag.config import CordConfig

#: Smallest in-plane centreline step (mm) between consecutive slices reported as a jump.
JUMP_MM = 3.0
#: Distance (mm) from the bottom / top of the field of view below which a cord end is the scan's edge.
EDGE_MARGIN_MM = 10.0
#: Length (mm) of canal compared above and below a cord end.
TAPER_MM = 15.0
#: A cord ends in CSF (the conus) when the canal below it is this much brighter (T2) than the cord above.
CSF_RATIO = 1.25


def slice_ranges(slices) -> str:
    """Compact text of slice indices: ``[3, 4, 5, 9] -> "3-5, 9"``.

    Examples
    --------
    >>> slice_ranges([3, 4, 5, 9])
    '3-5, 9'
    """
    values = sorted(int(value) for value in slices)
    if not values:
        return ""
    parts, start, previous = [], values[0], values[0]
    for value in values[1:] + [None]:
        if value is not None and value == previous + 1:
            previous = value
            continue
        parts.append(f"{start}-{previous}" if previous > start else f"{start}")
        if value is not None:
            start = previous = value
    return ", ".join(parts)


def centreline_jumps(centerline: pd.DataFrame) -> list[int]:
    """Slices whose centre moved in-plane by more than ``max(JUMP_MM, dz)`` from the previous cord slice."""
    if len(centerline) < 2:
        return []
    xyz = centerline[["x_mm", "y_mm", "z_mm"]].to_numpy(float)
    step = np.diff(xyz, axis=0)
    in_plane = np.hypot(step[:, 0], step[:, 1])
    jumps = in_plane > np.maximum(JUMP_MM, np.abs(step[:, 2]))
    return centerline["slice"].to_numpy(int)[1:][jumps].tolist()


def csa_outliers(centerline: pd.DataFrame, csa_range: tuple[float, float]) -> list[int]:
    """Slices whose cross-sectional area lies outside ``csa_range`` (mm2)."""
    csa = centerline["csa_mm2"].to_numpy(float)
    outside = (csa < csa_range[0]) | (csa > csa_range[1])
    return centerline["slice"].to_numpy(int)[outside].tolist()


def edge_slices(mask: np.ndarray) -> list[int]:
    """Slices where the canonical cord mask touches the in-plane border of the image."""
    border = np.zeros(mask.shape[:2], dtype=bool)
    border[[0, -1], :] = True
    border[:, [0, -1]] = True
    return np.nonzero((mask & border[:, :, None]).any(axis=(0, 1)))[0].tolist()


def _disc_level(volume: np.ndarray, centre: np.ndarray, k: int, radius_vox: np.ndarray) -> float:
    nx, ny = volume.shape[:2]
    x, y = np.ogrid[:nx, :ny]
    disc = ((x - centre[0]) / radius_vox[0]) ** 2 + ((y - centre[1]) / radius_vox[1]) ** 2 <= 1
    # upper quartile: CSF fills most of the sac below a conus even where roots of the cauda equina gather
    return float(np.percentile(volume[:, :, k][disc], 75)) if disc.any() else np.nan


def conus_end(
    centerline: pd.DataFrame, volume: np.ndarray, centres: np.ndarray, zooms, *, polarity: int = 1
) -> dict | None:
    """Where the cord ends inside the field of view, and whether it ends in CSF (the conus), or None.

    Below the conus medullaris the thecal sac goes on: the canal at the cord's last
    position holds CSF (and the thin roots of the cauda equina), brighter than the cord
    on T2 (darker on T1).  A cord that stops while the canal is still dark (T2) was
    lost (no contrast, an artefact), not ended.

    Parameters
    ----------
    centerline : pandas.DataFrame
        ``slice``, ``z_mm``, ``distance_mm``, ``vertebral_level`` per cord slice.
    volume : numpy.ndarray
        Canonical intensities.
    centres : numpy.ndarray
        (n_slices, 2) cord centre per canonical slice (voxels).
    zooms : sequence of float
        Voxel sizes (mm).
    polarity : {1, -1}
        +1 T2-like (CSF brighter than cord), -1 T1-like.

    Returns
    -------
    dict or None
        ``slice``, ``z_mm``, ``distance_mm``, ``vertebral_level`` of the most inferior cord slice,
        ``csf_ratio`` (canal below / cord above, polarity-corrected) and ``ends_in_csf``
        (``csf_ratio >= CSF_RATIO``); None when the cord reaches the bottom of the field of view
        (within ``EDGE_MARGIN_MM``) or there is no cord.
    """
    if centerline.empty:
        return None
    lowest = int(centerline["slice"].min())
    if lowest * zooms[2] <= EDGE_MARGIN_MM:
        return None
    radius = np.array([3.0 / zooms[0], 3.0 / zooms[1]])
    above = range(lowest, min(volume.shape[2], lowest + int(np.ceil(TAPER_MM / zooms[2]))))
    below = range(max(0, lowest - int(np.ceil(TAPER_MM / zooms[2]))), max(0, lowest - int(np.ceil(3.0 / zooms[2]))))
    cord = np.nanmedian([_disc_level(volume, centres[lowest], k, radius) for k in above])
    canal = np.nanmedian([_disc_level(volume, centres[lowest], k, radius) for k in below]) if len(below) else np.nan
    ratio = float(canal / cord) if polarity > 0 else float(cord / canal)
    row = centerline.loc[centerline["slice"] == lowest].iloc[0]
    return {
        "slice": lowest,
        "z_mm": float(row["z_mm"]),
        "distance_mm": float(row["distance_mm"]),
        "vertebral_level": str(row.get("vertebral_level", "") or ""),
        "csf_ratio": ratio,
        "ends_in_csf": bool(np.isfinite(ratio) and ratio >= CSF_RATIO),
    }


def cord_top_gap(centerline: pd.DataFrame, slice_scores: np.ndarray, ring_score: float, zooms) -> dict | None:
    """Where the cord stops below the top of the field of view while the centreline above still looks like cord.

    The spinal cord runs on up to the brainstem.  A cord that stops more than
    ``EDGE_MARGIN_MM`` below the top edge, while the centreline above it keeps a
    cord-like CSF ring (cord likelihood at least half the cord's own median,
    ``ring_score``) over at least half of the gap, was lost there (a lesion as bright
    as CSF, no contrast).  A cord that stops where the ring ends (the medulla under
    the posterior fossa, the edge of the coil) is not reported.

    Parameters
    ----------
    centerline : pandas.DataFrame
        ``slice``, ``z_mm`` per cord slice.
    slice_scores : numpy.ndarray
        (n_slices,) cord likelihood along the centreline, canonical slices.
    ring_score : float
        Median cord likelihood over the cord slices.
    zooms : sequence of float
        Voxel sizes (mm).

    Returns
    -------
    dict or None
        ``slice``, ``z_mm`` of the most superior cord slice, ``gap_mm`` to the top of the field of
        view and ``cord_like_share`` of the slices above.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> table = pd.DataFrame({"slice": [10, 9, 8], "z_mm": [10.0, 9.0, 8.0]})
    >>> cord_top_gap(table, np.r_[np.full(11, 0.9), np.full(29, 0.7)], 0.9, (1.0, 1.0, 1.0))
    {'slice': 10, 'z_mm': 10.0, 'gap_mm': 29.0, 'cord_like_share': 1.0}
    >>> cord_top_gap(table, np.r_[np.full(11, 0.9), np.full(29, 0.1)], 0.9, (1.0, 1.0, 1.0)) is None
    True
    """
    if centerline.empty or slice_scores is None:
        return None
    top = int(centerline["slice"].max())
    above = np.asarray(slice_scores, dtype=float)[top + 1:]
    gap = above.size * float(zooms[2])
    if gap <= EDGE_MARGIN_MM:
        return None
    share = float(np.mean(np.nan_to_num(above) >= 0.5 * ring_score))
    if share < 0.5:
        return None
    row = centerline.loc[centerline["slice"] == top].iloc[0]
    return {"slice": top, "z_mm": float(row["z_mm"]), "gap_mm": gap, "cord_like_share": share}


def ring_along_cord(slice_scores, slices) -> np.ndarray:
    """CSF-ring likelihood of the cord slices, median over each slice and its two neighbours along the cord.

    One slice whose ring is faint between two clear ones (a thick axial slice through a root sleeve or a
    partial-volumed CSF layer) is not a cord outside the canal; two or more consecutive faint slices are.

    Examples
    --------
    >>> import numpy as np
    >>> ring_along_cord(np.array([0.8, 0.1, 0.8, 0.1, 0.1, 0.8]), np.arange(6)).tolist()
    [0.8, 0.8, 0.1, 0.1, 0.1, 0.8]
    """
    scores = np.asarray(slice_scores, dtype=float)[np.asarray(slices, dtype=int)]
    if scores.size < 3:
        return scores
    order = np.argsort(slices)
    smoothed = np.empty_like(scores)
    smoothed[order] = ndimage.median_filter(scores[order], size=3, mode="nearest")
    return smoothed


def cord_qc_warnings(
    centerline: pd.DataFrame,
    mask: np.ndarray,
    slice_scores: np.ndarray,
    contrast: np.ndarray,
    config: CordConfig,
) -> tuple[list[str], dict]:
    """Warnings (one line each, with the slices concerned) and QC numbers of a cord segmentation.

    Parameters
    ----------
    centerline : pandas.DataFrame
        The cord's ``centerline.csv`` table (canonical ``slice`` indices).
    mask : numpy.ndarray
        Canonical boolean cord mask.
    slice_scores, contrast : numpy.ndarray
        Per canonical slice: cord likelihood along the centreline and cord/CSF contrast.
    config : CordConfig
        ``qc_csa_range_mm2``, ``qc_min_ring``, ``qc_min_contrast``.

    Returns
    -------
    warnings : list of str
    qc : dict
        The slices behind each check, and the CSA range over the cord slices.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> table = pd.DataFrame({"slice": [2, 1, 0], "x_mm": [0.0, 0.0, 9.0], "y_mm": [0.0] * 3,
    ...                       "z_mm": [2.0, 1.0, 0.0], "csa_mm2": [70.0, 72.0, 160.0]})
    >>> mask = np.zeros((9, 9, 3), bool); mask[3:6, 3:6] = True
    >>> warnings, qc = cord_qc_warnings(table, mask, np.full(3, 0.8), np.full(3, 0.6), CordConfig())
    >>> qc["jump_slices"], qc["csa_outlier_slices"]
    ([0], [0])
    """
    if centerline.empty:
        return [], {}
    slices = centerline["slice"].to_numpy(int)
    low, high = config.qc_csa_range_mm2
    checks = {
        "jump_slices": centreline_jumps(centerline),
        "csa_outlier_slices": csa_outliers(centerline, (low, high)),
        "no_csf_ring_slices": slices[ring_along_cord(slice_scores, slices) < config.qc_min_ring].tolist(),
        "low_contrast_slices": slices[np.asarray(contrast)[slices] < config.qc_min_contrast].tolist(),
        "fov_edge_slices": [k for k in edge_slices(mask) if k in set(slices.tolist())],
    }
    checks = {key: sorted(int(k) for k in found) for key, found in checks.items()}
    n = len(slices)
    few = lambda found: len(found) < max(2, int(np.ceil(0.05 * n)))  # isolated slices are not worth a warning
    messages = {
        "jump_slices": f"cord centreline jumps by more than {JUMP_MM:g} mm in-plane at slices {{}}",
        "csa_outlier_slices": f"cord area outside the physiological range [{low:g}, {high:g}] mm2 at slices {{}}",
        "no_csf_ring_slices": "no CSF ring around the cord (outside the spinal canal or effaced canal) at slices {}",
        "low_contrast_slices": f"low cord/CSF contrast (< {config.qc_min_contrast:g}) at slices {{}}",
        "fov_edge_slices": "cord mask touches the edge of the field of view at slices {}",
    }
    warnings = []
    for key, found in checks.items():
        if found and not (key != "jump_slices" and few(found)):
            warnings.append(messages[key].format(slice_ranges(found)) + ": check cord_mask.nii.gz")
    csa = centerline["csa_mm2"].to_numpy(float)
    qc = {**checks, "csa_range_mm2": [float(csa.min()), float(csa.max())]}
    return warnings, qc
