"""Spinal cord segmentation and centreline on T2w, T2*w, STIR (cord dark in bright CSF) or T1w, no learned weights.

Method (canonical RAS+ grid, z = superior):

1. *Centreline*: the globally optimal path through a contrast-invariant cord
   likelihood (:mod:`regiontag.cord.centreline`, :mod:`regiontag.cord.likelihood`);
   T1w volumes (``polarity=-1``) are inverted for the boundary search.
2. *Star-shaped boundary*: from the centre, rays at ``n_rays`` angles sample the
   intensity profile; on each ray the boundary is where, walking inward from the
   first clearly-CSF sample, the signal falls below ``boundary_fraction`` of the way
   from the cord level to that ray's CSF peak.  Hyperintense lesions inside the cord stay below that CSF-anchored
   crossing (or sit inside it), so they are not cut out.  Rays without CSF
   (effaced canal) are left undetermined and filled from neighbouring angles.
3. *Shape prior*: radii are median-filtered over angle and along z and smoothed;
   the centre is moved to the polygon centroid and rays are cast again; slices
   whose area leaves ``[min_csa_mm2, max_csa_mm2]`` are dropped.
4. *Rasterisation* with in-plane supersampling (partial volume), back to the
   input's own grid.  Anisotropic voxels are handled in mm throughout.
"""

from __future__ import annotations

from dataclasses import dataclass

import nibabel as nib
import numpy as np
import pandas as pd
from scipy import ndimage

from regiontag.config import Config, CordConfig
from regiontag.cord.centreline import find_centreline
from regiontag.cord.cross_section import CENTERLINE_COLUMNS, centerline_table
from regiontag.cord.csf_column import normalise_slices
from regiontag.niimg import check_niimg, new_image_like, to_canonical, to_input_space

__all__ = ["CENTERLINE_COLUMNS", "centerline_table", "segment_cord", "segment_cord_canonical", "voxel_sizes"]


def _cord_config(config: Config | CordConfig | None) -> CordConfig:
    if config is None:
        return CordConfig()
    return config.cord if isinstance(config, Config) else config


def voxel_sizes(affine: np.ndarray) -> np.ndarray:
    """Voxel sizes (mm) along the array axes of an affine."""
    return np.sqrt((affine[:3, :3] ** 2).sum(axis=0))


def _cast_rays(volume, centres, angles, radii_mm, zooms):
    """Intensity profiles (n_slices, n_rays, n_samples) along rays from each slice centre."""
    n_slices = volume.shape[2]
    cos, sin = np.cos(angles), np.sin(angles)
    x = centres[:, 0, None, None] + radii_mm[None, None, :] * cos[None, :, None] / zooms[0]
    y = centres[:, 1, None, None] + radii_mm[None, None, :] * sin[None, :, None] / zooms[1]
    z = np.broadcast_to(np.arange(n_slices)[:, None, None], x.shape)
    return ndimage.map_coordinates(volume, [x, y, z], order=1, mode="nearest")


def _crossing(profiles, radii_mm, last_below, threshold, valid):
    """Sub-sample radius where the profile rises through ``threshold`` after index ``last_below``."""
    radius = np.full(valid.shape, np.nan)
    s, r = np.nonzero(valid)
    i0 = last_below[s, r]
    p0, p1 = profiles[s, r, i0], profiles[s, r, i0 + 1]
    level = np.broadcast_to(threshold, valid.shape + (1,))[s, r, 0]
    t = np.clip((level - p0) / np.where(p1 - p0 > 1e-9, p1 - p0, 1e-9), 0, 1)
    radius[s, r] = radii_mm[i0] + t * (radii_mm[i0 + 1] - radii_mm[i0])
    return radius


#: The CSF level of a ray is its peak within this distance (mm) outside the cord/CSF rise.
LOCAL_PEAK_MM = 2.5


def _boundary_radii(profiles, radii_mm, angles, max_axes_mm, inner_mm: float = 2.5, boundary_fraction: float = 0.5):
    """Boundary radius per slice and ray (NaN where undetermined), plus contrast per slice.

    The boundary level of each ray is ``cord + boundary_fraction * (CSF - cord)`` with the
    CSF level of *that ray*: the peak of the CSF just outside the cord (within
    ``LOCAL_PEAK_MM`` of where the profile first rises through the slice's midpoint),
    not the brightest sample anywhere on the ray (epidural fat, a thick CSF pocket
    further out), so a thin, partial-volumed CSF layer places its own edge.  The CSF
    level of the slice is the 75th percentile of its rays' peaks: the CSF may cover only
    part of the ring (the cord against the dura on one side).  Candidates per ray: the
    crossing of that level found walking inward from the first clearly-CSF sample
    (ignores hyperintense lesions inside the cord), and the crossing found walking
    inward from the first rise through the midpoint (thin, partial-volumed CSF).  The
    first is used unless it lies beyond the largest plausible cord outline
    (``max_axes_mm``, an ellipse), where bright tissue outside a thin CSF layer
    (epidural fat) was taken for CSF.  On slices where a whole side has no CSF,
    :func:`_falling_edge` places the edge of the rays without it.
    """
    n_slices, n_rays, n_samples = profiles.shape
    inner = profiles[:, :, radii_mm <= inner_mm].reshape(n_slices, -1)
    cord_level = np.percentile(inner, 30, axis=1)
    reference = ndimage.median_filter(cord_level, size=min(15, n_slices), mode="nearest")
    cord_level = np.minimum(cord_level, 1.1 * reference)
    outer = radii_mm >= inner_mm
    smooth = ndimage.uniform_filter1d(profiles, 3, axis=2, mode="nearest")
    ray_peak = smooth[:, :, outer].max(axis=2)  # smoothed: the peak of noisy samples is biased upward
    csf_level = np.percentile(ray_peak, 75, axis=1)
    span = np.maximum(csf_level - cord_level, 1e-6)
    midpoint = (cord_level + 0.5 * span)[:, None, None]
    clear_csf = (cord_level + 0.75 * span)[:, None, None]
    index = np.arange(n_samples)[None, None, :]
    rises = (smooth >= midpoint) & outer[None, None, :]
    first_rise = np.where(rises.any(axis=2), np.argmax(rises, axis=2), n_samples)
    step = radii_mm[1] - radii_mm[0]
    near = (index >= first_rise[:, :, None]) & (index <= first_rise[:, :, None] + LOCAL_PEAK_MM / step)
    local_peak = np.where(near, smooth, -np.inf).max(axis=2)
    local_span = np.where(np.isfinite(local_peak), local_peak - cord_level[:, None], span[:, None])
    threshold = (cord_level[:, None] + boundary_fraction * local_span)[:, :, None]
    # candidate 1: inward from the first clearly-CSF sample
    is_csf = (smooth >= clear_csf) & outer[None, None, :]
    has_csf = is_csf.any(axis=2)
    first_csf = np.where(has_csf, np.argmax(is_csf, axis=2), n_samples - 1)
    below = (profiles < threshold) & (index < first_csf[:, :, None])
    last_below = np.where(below.any(axis=2), n_samples - 1 - np.argmax(below[:, :, ::-1], axis=2), -1)
    valid = has_csf & (last_below >= 0) & (last_below + 1 < n_samples)
    from_csf = _crossing(profiles, radii_mm, last_below, threshold, valid)
    # candidate 2: inward from the first rise through the slice's midpoint (thin, partial-volumed CSF), so a
    # brighter band inside the cord that stays below the midpoint (grey matter on T2*w) does not end the cord
    below = (profiles < threshold) & (index < first_rise[:, :, None])
    last_below = np.where(below.any(axis=2), n_samples - 1 - np.argmax(below[:, :, ::-1], axis=2), -1)
    valid = (first_rise < n_samples) & (last_below >= 0) & (last_below + 1 < n_samples)
    outward = _crossing(profiles, radii_mm, last_below, threshold, valid)
    limit = 1.0 / np.sqrt((np.cos(angles) / max_axes_mm[0]) ** 2 + (np.sin(angles) / max_axes_mm[1]) ** 2)
    too_far = ~(from_csf <= limit[None, :])
    radius = np.where(too_far, outward, from_csf)
    radius[radius > limit[None, :]] = np.nan
    # candidate 3, rays without CSF (cord against the dura, a canal cut by the field of view): the cord ends
    # where the signal falls to clearly darker tissue (bone, ligament); walking inward from the first dark sample
    # (only where a whole side lacks CSF: a few undetermined rays are better filled from their neighbours)
    falling = _falling_edge(profiles, smooth, radii_mm, cord_level, outer, boundary_fraction, step, limit)
    open_side = (np.isnan(radius).mean(axis=1) >= OPEN_SIDE_SHARE)[:, None]
    # (a ray that reaches the CSF level further out is a cord with a brighter core, e.g. a central lesion)
    no_csf = radii_mm[np.minimum(first_rise, n_samples - 1)] > limit[None, :] + LOCAL_PEAK_MM
    no_csf |= first_rise >= n_samples
    radius = np.where(open_side & no_csf & np.isnan(radius) & (falling <= limit[None, :]), falling, radius)
    contrast = span / np.maximum(csf_level, 1e-6)
    return radius, contrast


#: Share of rays without CSF from which a slice's cord is taken to lie against the dura on one side.
OPEN_SIDE_SHARE = 0.25
#: A rim brighter than the cord by this fraction of the cord level, just before the drop, is thin CSF.
RIM_RISE = 0.15
#: ... within this distance (mm) of the drop (further in, a brighter band is grey matter).
RIM_MM = 4.5
#: A sample is clearly darker tissue than the cord below this fraction of the cord level.
DARK_FRACTION = 0.6


def _falling_edge(profiles, smooth, radii_mm, cord_level, outer, boundary_fraction, step, limit):
    """Radius where each ray falls from the cord level to clearly darker tissue (NaN where it does not).

    The darker tissue must stay darker than the cord up to the largest plausible outline (``limit`` per ray,
    plus ``LOCAL_PEAK_MM``): a darker band followed by brighter signal is cord around a brighter core (a
    central lesion raises the inner level) in front of a thin CSF layer, not the cord's edge.
    """
    n_samples = profiles.shape[2]
    index = np.arange(n_samples)[None, None, :]
    is_dark = (smooth <= DARK_FRACTION * cord_level[:, None, None]) & outer[None, None, :]
    has_dark = is_dark.any(axis=2)
    first_dark = np.where(has_dark, np.argmax(is_dark, axis=2), n_samples - 1)
    reach = radii_mm[None, None, :] <= limit[None, :, None] + LOCAL_PEAK_MM
    recovers = ((smooth >= cord_level[:, None, None]) & (index > first_dark[:, :, None]) & reach).any(axis=2)
    has_dark &= ~recovers
    near = (index >= first_dark[:, :, None]) & (index <= first_dark[:, :, None] + LOCAL_PEAK_MM / step)
    local_min = np.where(near, smooth, np.inf).min(axis=2)
    level = cord_level[:, None] - boundary_fraction * (cord_level[:, None] - np.where(has_dark, local_min, 0.0))
    above = (profiles > level[:, :, None]) & (index < first_dark[:, :, None])
    last_above = np.where(above.any(axis=2), n_samples - 1 - np.argmax(above[:, :, ::-1], axis=2), -1)
    valid = has_dark & (last_above >= 0) & (last_above + 1 < n_samples)
    falling = _crossing(-profiles, radii_mm, last_above, -level[:, :, None], valid)
    # a thin, partial-volumed CSF rim just before the drop: the cord ends where the signal rises into it
    before = outer[None, None, :] & (index < first_dark[:, :, None]) & (index >= first_dark[:, :, None] - RIM_MM / step)
    rim = np.where(before, smooth, -np.inf).max(axis=2)
    has_rim = has_dark & (rim >= (1 + RIM_RISE) * cord_level[:, None])
    rise_level = (cord_level[:, None] + boundary_fraction * (rim - cord_level[:, None]))[:, :, None]
    rises = (smooth >= rise_level) & before
    first_rise = np.argmax(rises, axis=2) - 1
    valid = has_rim & rises.any(axis=2) & (first_rise >= 0)
    rising = _crossing(profiles, radii_mm, np.maximum(first_rise, 0), rise_level, valid)
    return np.where(np.isfinite(rising), rising, falling)


def _regularise(radius, zooms, n_rays):
    """Fill undetermined rays, median over angle and z (shape prior), light smoothing."""
    filled = radius.copy()
    slice_ok = np.isfinite(radius).mean(axis=1) >= 0.5
    angles = np.arange(n_rays)
    for index in np.nonzero(slice_ok)[0]:
        row = radius[index]
        good = np.isfinite(row)
        if not good.all():
            filled[index] = np.interp(angles, angles[good], row[good], period=n_rays)
    if not slice_ok.any():
        return filled, slice_ok
    ok_index = np.nonzero(slice_ok)[0]
    for ray in range(n_rays):
        filled[~slice_ok, ray] = np.interp(np.nonzero(~slice_ok)[0], ok_index, filled[ok_index, ray])
    # at least 3 slices: thick axial slices (5-8 mm) are regularised by their neighbours too
    z_window = max(3, int(round(5.0 / zooms[2])) | 1) if len(radius) >= 3 else 1
    padded = np.concatenate([filled[:, -2:], filled, filled[:, :2]], axis=1)  # angles wrap around
    filled = ndimage.median_filter(padded, size=(z_window, 5), mode="nearest")[:, 2:-2]
    filled = ndimage.gaussian_filter(filled, sigma=(0.7 / zooms[2], 1.0), mode=("nearest", "wrap"))
    return filled, slice_ok


def _polygon_centroid_area(centres, radius, angles, zooms):
    """Centroid (voxel) and area (mm^2) of each slice's star-shaped polygon."""
    x = radius * np.cos(angles)[None, :]
    y = radius * np.sin(angles)[None, :]
    xn, yn = np.roll(x, -1, axis=1), np.roll(y, -1, axis=1)
    cross = x * yn - xn * y
    area = 0.5 * cross.sum(axis=1)
    safe = np.where(np.abs(area) > 1e-9, area, 1e-9)
    cx = ((x + xn) * cross).sum(axis=1) / (6 * safe)
    cy = ((y + yn) * cross).sum(axis=1) / (6 * safe)
    centroid = centres + np.stack([cx / zooms[0], cy / zooms[1]], axis=1)
    return centroid, np.abs(area)


def _rasterise(shape, centres, radius, angles, zooms, valid, max_radius_mm):
    """Partial-volume cord mask: in-plane supersampling of the polar boundary."""
    mask = np.zeros(shape, dtype=bool)
    n_rays = len(angles)
    half = [int(np.ceil(max_radius_mm / zooms[axis])) + 1 for axis in (0, 1)]
    sub = [int(min(7, max(1, np.ceil(zooms[axis] / 0.35)))) for axis in (0, 1)]
    offsets = [(np.arange(n) + 0.5) / n - 0.5 for n in sub]
    for index in np.nonzero(valid)[0]:
        cx, cy = centres[index]
        x0, y0 = int(round(cx)) - half[0], int(round(cy)) - half[1]
        xs = np.arange(x0, x0 + 2 * half[0] + 1)
        ys = np.arange(y0, y0 + 2 * half[1] + 1)
        px = ((xs[:, None] + offsets[0][None, :]).ravel() - cx) * zooms[0]
        py = ((ys[:, None] + offsets[1][None, :]).ravel() - cy) * zooms[1]
        gx, gy = np.meshgrid(px, py, indexing="ij")
        rho = np.hypot(gx, gy)
        theta = np.mod(np.arctan2(gy, gx), 2 * np.pi) / (2 * np.pi) * n_rays
        boundary = np.interp(theta, np.arange(n_rays + 1), np.append(radius[index], radius[index, 0]))
        inside = (rho < boundary).reshape(len(xs), sub[0], len(ys), sub[1]).mean(axis=(1, 3)) >= 0.5
        keep_x = (xs >= 0) & (xs < shape[0])
        keep_y = (ys >= 0) & (ys < shape[1])
        mask[xs[keep_x][:, None], ys[keep_y][None, :], index] = inside[np.ix_(keep_x, keep_y)]
    return mask


@dataclass
class CordSegmentation:
    """Cord segmentation on a canonical (RAS+) grid.

    Attributes
    ----------
    mask : ndarray
        Boolean cord mask.
    centres : ndarray
        (n_slices, 2) cord centre per axial slice (voxel x, y).
    area_mm2 : ndarray
        Cord area in each axial slice (mm^2, in the slice plane).
    valid : ndarray
        Slices that contain cord.
    ring_score : float
        Median cord likelihood (CSF-ring detector) on the cord slices (0 = no CSF column).
    polarity : int
        +1 dark cord in bright CSF (T2-like), -1 bright cord in dark CSF (T1-like).
    slice_scores : ndarray
        (n_slices,) cord likelihood along the centreline.
    contrast : ndarray
        (n_slices,) cord/CSF contrast ``(CSF - cord) / CSF`` per slice (polarity-corrected).
    """

    mask: np.ndarray
    centres: np.ndarray
    area_mm2: np.ndarray
    valid: np.ndarray
    ring_score: float
    polarity: int = 1
    slice_scores: np.ndarray | None = None
    contrast: np.ndarray | None = None


def segment_cord_canonical(
    canonical: nib.Nifti1Image, config: Config | CordConfig | None = None, *, polarity: int = 1
) -> CordSegmentation:
    """Segment the cord on an image already in canonical orientation (see :func:`segment_cord`)."""
    cord = _cord_config(config)
    zooms = voxel_sizes(canonical.affine)
    data = np.asarray(canonical.dataobj, dtype=np.float32).reshape(canonical.shape[:3])
    volume = normalise_slices(np.nan_to_num(data))
    track = find_centreline(
        volume, zooms, step_mm=cord.search_step_mm, stiffness=cord.centerline_stiffness, polarity=polarity
    )
    if track.polarity < 0:  # T1-like: make the cord dark in bright CSF for the boundary search
        volume = (1.0 - volume).astype(np.float32)
    angles = np.arange(cord.n_rays) * 2 * np.pi / cord.n_rays
    radii_mm = np.arange(0.0, cord.max_radius_mm + 1e-6, 0.25)
    centres = track.centres
    # largest plausible outline: an ellipse (left-right 1.5 x anterior-posterior) of 1.1 x max area
    semi_lr = np.sqrt(1.1 * cord.max_csa_mm2 * 1.5 / np.pi)
    max_axes = (semi_lr, semi_lr / 1.5)
    for iteration in range(3):
        profiles = _cast_rays(volume, centres, angles, radii_mm, zooms)
        radius, contrast = _boundary_radii(profiles, radii_mm, angles, max_axes, boundary_fraction=cord.boundary_fraction)
        radius, slice_ok = _regularise(radius, zooms, cord.n_rays)
        if iteration == 2:
            break
        centroid, _ = _polygon_centroid_area(centres, radius, angles, zooms)
        sigma = cord.centerline_smoothing_mm / zooms[2]
        shift = np.where(slice_ok[:, None], centroid - centres, 0.0)
        if len(shift) >= 3:  # one slice's outline does not move its centre away from its neighbours'
            shift = ndimage.median_filter(shift, size=(3, 1), mode="nearest")
        centres = centres + ndimage.gaussian_filter1d(shift, sigma, axis=0, mode="nearest")
    _, area = _polygon_centroid_area(centres, radius, angles, zooms)
    valid = slice_ok & (area >= 0.6 * cord.min_csa_mm2) & (area <= 1.3 * cord.max_csa_mm2)
    valid &= (contrast >= cord.min_contrast) & (track.scores >= cord.min_ring_score)
    valid = _largest_run(valid)
    mask = _rasterise(volume.shape, centres, radius, angles, zooms, valid, cord.max_radius_mm)
    score = float(np.median(track.scores[valid])) if valid.any() else 0.0
    return CordSegmentation(mask, centres, area, valid, score, track.polarity, track.scores, contrast)


def _largest_run(valid: np.ndarray) -> np.ndarray:
    """Keep the longest run of valid slices (gaps up to 3 slices bridged)."""
    closed = ndimage.binary_closing(valid, structure=np.ones(3), border_value=0) | valid
    runs, n_runs = ndimage.label(closed)
    if n_runs == 0:
        return valid
    sizes = ndimage.sum(closed, runs, index=np.arange(1, n_runs + 1))
    return runs == (1 + int(np.argmax(sizes)))


def segment_cord(
    image: nib.Nifti1Image | str, config: Config | CordConfig | None = None, *, polarity: int = 1
) -> tuple[nib.Nifti1Image, pd.DataFrame]:
    """Segment the spinal cord and its centreline on a T2w, T2*w, STIR or T1w image.

    Parameters
    ----------
    image : Nifti1Image or path
        Sagittal or axial scan, any orientation and voxel size.
    config : Config or CordConfig, optional
        Parameters of the ``cord`` section (defaults when omitted).
    polarity : {1, -1}
        +1 cord dark in bright CSF (T2w, T2*w, STIR); -1 cord bright in dark CSF (T1w).

    Returns
    -------
    cord_mask : Nifti1Image
        Binary cord mask (uint8) on the input's own grid and affine; empty when no cord is found.
    centerline : pandas.DataFrame
        One row per canonical axial slice containing cord, top of the scan first:
        ``slice`` (canonical z index), ``x_mm``, ``y_mm``, ``z_mm`` (world), ``distance_mm``
        (along the centreline from the top), ``csa_mm2`` (area perpendicular to the
        centreline), ``vertebral_level`` (empty here; see :mod:`regiontag.cord.levels`).
    """
    source = check_niimg(image)
    canonical = to_canonical(source)
    result = segment_cord_canonical(canonical, config, polarity=polarity)
    table = centerline_table(result.centres, result.area_mm2, result.valid, canonical.affine, mask=result.mask)
    mask_img = to_input_space(new_image_like(result.mask.astype(np.uint8), canonical), source, order=0)
    return mask_img, table
