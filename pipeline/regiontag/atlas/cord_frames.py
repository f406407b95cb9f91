"""Normalised cord coordinates (u, v, s) per voxel of a cord mask: the system the cord atlas is drawn in.

Each axial cross-section of a cord mask (canonical RAS+ slice ``k``) gets a
*frame*: the cord centroid (world mm), the second-moment half-axes ``a``
(left-right) and ``b`` (posterior-anterior), and the cord outline as a radius
``R(phi)`` per angle in the ellipse-normalised plane ``((x - cx) / a, (y - cy) / b)``.
The outline is the 0.5 iso-contour of the linearly interpolated mask, found by
ray marching from the centroid, so it is sub-voxel and independent of voxel
counts.  A voxel at in-plane world position ``(x, y)`` maps to

    x' = (x - cx) / a,  y' = (y - cy) / b,  phi = atan2(y', x'),
    (u, v) = (x', y') / R(phi)

so the cord outline maps onto the unit circle: ``u = +1`` at the subject's right
edge (RAS +x), ``v = +1`` at the anterior edge, ``(0, 0)`` the centroid.  For an
elliptical cord this is the plain affine normalisation by half-width and
half-depth.  ``s`` is the arc length (mm) of the centroid curve from the most
superior cord slice (``s = 0``) downward.

Curvature is handled per slice: each slice has its own centroid, optionally
smoothed along z, and, where the centroid curve is tilted by ``MIN_TILT_DEG`` or
more from the slice normal, its own plane.  An axial slice cuts an oblique cord
at an angle; the in-plane offsets ``(dx, dy)`` from the centroid are then first
projected along the centreline tangent ``t`` onto the plane perpendicular to it,
``(x, y) = (d . e_right, d . e_anterior)`` with ``e_right`` the subject's right
(+x) made orthogonal to ``t`` and ``e_anterior = t x e_right``, and the moments,
outline and ``(u, v)`` are taken there.  For a locally straight cord this
projection maps the oblique section exactly onto the true cross-section, so the
columns follow the cord's own left-right and anterior-posterior axes however it
is tilted.  (Without it, a tilt along the scanner's x or y axis is absorbed by the
ellipse normalisation, but a diagonal tilt shears the section: on a synthetic
elliptical cord tilted 30 / 45 degrees diagonally, 90 % / 79 % of voxels got the
right atlas label, against 98 % with the projection.)  Each frame is then turned
about the cord's axis onto the cord's own left-right axis, the major principal
axis of its cross-section (:func:`~regiontag.atlas.cord_planes.cord_roll`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from scipy import ndimage

from regiontag.atlas.cord_planes import MIN_TILT_DEG, centreline_tangents, cord_roll, cross_section_planes, rotation
from regiontag.atlas.cord_spec import level_numbers

#: Number of angles at which the cord outline radius is sampled.
N_ANGLES = 72
_ANGLES = np.linspace(-np.pi, np.pi, N_ANGLES, endpoint=False)
_RAY_STEP = 0.01
_RAY_MAX = 2.5


@dataclass(frozen=True)
class CordFrames:
    """Per-slice cord frames of a canonical (RAS+) cord mask.

    Attributes
    ----------
    slices : numpy.ndarray
        Canonical z indices of slices that contain cord, ascending.
    centre_mm : numpy.ndarray
        ``(n, 3)`` world coordinates of the (smoothed) centroid of each slice.
    axes_mm : numpy.ndarray
        ``(n, 2)`` second-moment half-width (x) and half-depth (y), mm.
    boundary : numpy.ndarray
        ``(n, N_ANGLES)`` outline radius in ellipse-normalised units at ``angles``.
    s_mm : numpy.ndarray
        Arc length of the centroid curve from the most superior slice, mm.
    area_mm2 : numpy.ndarray
        Cross-sectional area of the mask in each slice (voxel count x in-plane area).
    affine : numpy.ndarray
        Affine of the canonical image the frames were computed on.
    planes : numpy.ndarray
        ``(n, 2, 2)`` map of in-slice world offsets from the centroid onto the plane
        perpendicular to the cord (:func:`~regiontag.atlas.cord_planes.cross_section_planes`), turned onto the
        cord's own left-right axis (:func:`~regiontag.atlas.cord_planes.cord_roll`); the
        identity for an untilted, unturned cord.  ``axes_mm``, ``boundary`` and ``(u, v)`` are in that plane.
    """

    slices: np.ndarray
    centre_mm: np.ndarray
    axes_mm: np.ndarray
    boundary: np.ndarray
    s_mm: np.ndarray
    area_mm2: np.ndarray
    affine: np.ndarray
    planes: np.ndarray

    @property
    def angles(self) -> np.ndarray:
        """Angles (radians) at which ``boundary`` is sampled."""
        return _ANGLES

    def row_of(self, slice_index: int) -> int:
        """Row in the frame arrays for canonical slice ``slice_index`` (``KeyError`` if absent)."""
        rows = np.flatnonzero(self.slices == slice_index)
        if rows.size == 0:
            raise KeyError(f"slice {slice_index} has no cord")
        return int(rows[0])

    def boundary_at(self, row: int, phi: np.ndarray) -> np.ndarray:
        """Outline radius of frame ``row`` at angles ``phi`` (periodic linear interpolation)."""
        radii = self.boundary[row]
        return np.interp(phi, _ANGLES, radii, period=2 * np.pi)

    def to_cord(self, row: int, x_mm: np.ndarray, y_mm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Map world in-plane positions of slice ``row`` to cord coordinates ``(u, v)``, clipped to the unit disk."""
        half_width, half_depth = self.axes_mm[row]
        dx = np.asarray(x_mm, dtype=float) - self.centre_mm[row, 0]
        dy = np.asarray(y_mm, dtype=float) - self.centre_mm[row, 1]
        plane = self.planes[row]
        xn = (plane[0, 0] * dx + plane[0, 1] * dy) / half_width
        yn = (plane[1, 0] * dx + plane[1, 1] * dy) / half_depth
        phi = np.arctan2(yn, xn)
        rho = np.hypot(xn, yn) / self.boundary_at(row, phi)
        scale = np.where(rho > 1.0, 1.0 / np.maximum(rho, 1e-12), 1.0)
        return rho * np.cos(phi) * scale, rho * np.sin(phi) * scale

    def to_world(self, row: int, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Inverse of :meth:`to_cord`: cord coordinates of slice ``row`` -> world ``(x, y)`` mm."""
        u = np.asarray(u, dtype=float)
        v = np.asarray(v, dtype=float)
        phi = np.arctan2(v, u)
        radius = np.hypot(u, v) * self.boundary_at(row, phi)
        half_width, half_depth = self.axes_mm[row]
        across, depth = radius * np.cos(phi) * half_width, radius * np.sin(phi) * half_depth
        back = np.linalg.inv(self.planes[row])
        x_mm = self.centre_mm[row, 0] + back[0, 0] * across + back[0, 1] * depth
        y_mm = self.centre_mm[row, 1] + back[1, 0] * across + back[1, 1] * depth
        return x_mm, y_mm

    def table(self) -> pd.DataFrame:
        """One row per cord slice: slice, x_mm, y_mm, z_mm, s_mm, half_width_mm, half_depth_mm, area_mm2."""
        return pd.DataFrame(
            {
                "slice": self.slices.astype(int),
                "x_mm": self.centre_mm[:, 0],
                "y_mm": self.centre_mm[:, 1],
                "z_mm": self.centre_mm[:, 2],
                "s_mm": self.s_mm,
                "half_width_mm": self.axes_mm[:, 0],
                "half_depth_mm": self.axes_mm[:, 1],
                "area_mm2": self.area_mm2,
            }
        )


def load_mask(img: str | Path | nib.Nifti1Image) -> nib.Nifti1Image:
    """A 3-D image from a path or an image (trailing singleton dimensions dropped)."""
    img = nib.load(str(img)) if isinstance(img, (str, Path)) else img
    if len(img.shape) > 3:
        img = nib.funcs.squeeze_image(img)
    if len(img.shape) != 3:
        raise ValueError(f"cord mask must be a 3-D image, got shape {img.shape}")
    return img


def _centres_from_centerline(centerline: pd.DataFrame, slices: np.ndarray) -> np.ndarray | None:
    """Centroid x, y (mm) per slice from a centreline table with ``slice``, ``x_mm``, ``y_mm`` columns."""
    needed = {"slice", "x_mm", "y_mm"}
    if not needed.issubset(centerline.columns):
        raise ValueError(
            f"centerline table needs columns {sorted(needed)} (canonical slice index, world mm); "
            f"got {list(centerline.columns)}"
        )
    table = centerline.dropna(subset=["x_mm", "y_mm"]).sort_values("slice")
    if table.empty:
        return None
    x_mm = np.interp(slices, table["slice"].to_numpy(float), table["x_mm"].to_numpy(float))
    y_mm = np.interp(slices, table["slice"].to_numpy(float), table["y_mm"].to_numpy(float))
    return np.column_stack([x_mm, y_mm])


def _smooth_runs(values: np.ndarray, slices: np.ndarray, sigma_slices: float) -> np.ndarray:
    """Gaussian smoothing along z within each run of consecutive cord slices."""
    if sigma_slices <= 0:
        return values
    out = values.copy()
    breaks = np.flatnonzero(np.diff(slices) > 1) + 1
    for run in np.split(np.arange(len(slices)), breaks):
        if run.size > 1:
            out[run] = ndimage.gaussian_filter1d(values[run], sigma_slices, axis=0, mode="nearest")
    return out


def _outline_radii(
    mask_slice: np.ndarray, affine: np.ndarray, k: int, centre: np.ndarray, axes: np.ndarray, plane: np.ndarray
) -> np.ndarray:
    """Outline radius (ellipse-normalised, in the cross-section ``plane``) per angle: last 0.5 crossing of the mask."""
    in_plane = affine[:2, :2]
    offset = affine[:2, 2] * k + affine[:2, 3]
    steps = np.arange(0.0, _RAY_MAX + _RAY_STEP, _RAY_STEP)
    across = np.outer(np.cos(_ANGLES), steps) * axes[0]
    depth = np.outer(np.sin(_ANGLES), steps) * axes[1]
    back = np.linalg.inv(plane)
    dx = back[0, 0] * across + back[0, 1] * depth
    dy = back[1, 0] * across + back[1, 1] * depth
    world = np.stack([centre[0] + dx, centre[1] + dy]) - offset[:, None, None]
    ij = (np.linalg.inv(in_plane) @ world.reshape(2, -1)).reshape(world.shape)
    values = ndimage.map_coordinates(mask_slice.astype(np.float32), ij, order=1, mode="constant", cval=0.0)
    inside = values >= 0.5
    any_inside = inside.any(axis=1)
    last = steps.size - 1 - np.argmax(inside[:, ::-1], axis=1)
    following = np.minimum(last + 1, steps.size - 1)
    rows = np.arange(N_ANGLES)
    v0, v1 = values[rows, last], values[rows, following]
    frac = np.where((following > last) & (v0 > v1), (v0 - 0.5) / np.maximum(v0 - v1, 1e-12), 0.0)
    radii = np.where(any_inside, steps[last] + np.clip(frac, 0.0, 1.0) * _RAY_STEP, _RAY_STEP)
    return np.maximum(radii, _RAY_STEP)


def cord_frames(
    mask: np.ndarray,
    affine: np.ndarray,
    centerline: pd.DataFrame | None = None,
    smooth_mm: float = 1.0,
    *,
    min_tilt_deg: float = MIN_TILT_DEG,
    follow_roll: bool = True,
) -> CordFrames:
    """Per-slice frames of a canonical cord mask.

    Parameters
    ----------
    mask : numpy.ndarray
        3-D boolean cord mask in canonical RAS+ orientation (z = inferior -> superior).
    affine : numpy.ndarray
        4x4 voxel -> world affine of ``mask``.
    centerline : pandas.DataFrame, optional
        Table with ``slice`` (canonical z index), ``x_mm``, ``y_mm`` (world) giving the
        cord centre per slice; by default the centroid of the mask in each slice.
    smooth_mm : float
        Gaussian sigma (mm along z) applied to the centroids; 0 disables.
    min_tilt_deg : float
        Where the centroid curve (smoothed over ``TANGENT_SMOOTHING_MM``) is tilted by
        this much or more from the slice normal, the frame is taken in the plane
        perpendicular to it (:func:`cross_section_planes`); elsewhere in the slice.
    follow_roll : bool
        Turn each frame about the cord's axis onto the cord's own left-right axis
        (:func:`cord_roll`); ``False`` keeps the scanner's x axis.

    Returns
    -------
    CordFrames

    Examples
    --------
    >>> import numpy as np
    >>> ii, jj, kk = np.meshgrid(np.arange(40), np.arange(40), np.arange(20), indexing="ij")
    >>> # a round cord of radius 5 mm tilted 45 degrees to the right: its axial sections are 7.1 x 5 mm ellipses
    >>> tube = 0.5 * (ii - 10 - kk) ** 2 + (jj - 20) ** 2 <= 25
    >>> frames = cord_frames(tube, np.eye(4), smooth_mm=0)
    >>> row = frames.row_of(10)
    >>> np.round(frames.axes_mm[row] / frames.axes_mm[row].max(), 1).tolist()  # round across the cord
    [1.0, 1.0]
    """
    mask = np.asarray(mask) > 0
    if mask.ndim != 3:
        raise ValueError(f"cord mask must be 3-D, got shape {mask.shape}")
    slices = np.flatnonzero(mask.any(axis=(0, 1)))
    if slices.size == 0:
        raise ValueError("cord mask is empty")
    affine = np.asarray(affine, dtype=float)
    voxel_area = abs(np.linalg.det(affine[:2, :2]))
    centres = np.zeros((slices.size, 2))
    areas = np.zeros(slices.size)
    coords_per_slice = []
    for row, k in enumerate(slices):
        ii, jj = np.nonzero(mask[:, :, k])
        x_mm = affine[0, 0] * ii + affine[0, 1] * jj + affine[0, 2] * k + affine[0, 3]
        y_mm = affine[1, 0] * ii + affine[1, 1] * jj + affine[1, 2] * k + affine[1, 3]
        coords_per_slice.append((x_mm, y_mm))
        centres[row] = x_mm.mean(), y_mm.mean()
        areas[row] = ii.size * voxel_area
    if centerline is not None:
        given = _centres_from_centerline(centerline, slices)
        if given is not None:
            centres = given
    dz = float(np.linalg.norm(affine[:3, 2]))
    centres = _smooth_runs(centres, slices, smooth_mm / dz if dz > 0 else 0.0)
    # world z of each centre, the tangent of the centre curve, and the cross-section plane per slice
    in_plane_offset = affine[:2, 2][None] * slices[:, None] + affine[:2, 3][None]
    ij_centre = (centres - in_plane_offset) @ np.linalg.inv(affine[:2, :2]).T
    z_mm = affine[2, 0] * ij_centre[:, 0] + affine[2, 1] * ij_centre[:, 1] + affine[2, 2] * slices + affine[2, 3]
    centre_3d = np.column_stack([centres, z_mm])
    planes = cross_section_planes(centreline_tangents(centre_3d), min_tilt_deg=min_tilt_deg)
    offsets = [planes[row] @ np.stack([x_mm - centres[row, 0], y_mm - centres[row, 1]])
               for row, (x_mm, y_mm) in enumerate(coords_per_slice)]
    if follow_roll:
        turns = rotation(cord_roll(offsets, z_mm))
        planes = turns @ planes
        offsets = [turn @ offset for turn, offset in zip(turns, offsets)]
    axes = np.zeros((slices.size, 2))
    boundary = np.zeros((slices.size, N_ANGLES))
    # smallest sensible half-axis: half an in-plane voxel
    min_axis = 0.5 * min(np.linalg.norm(affine[:3, 0]), np.linalg.norm(affine[:3, 1]))
    for row, k in enumerate(slices):
        across, depth = offsets[row]
        axes[row] = (
            max(2.0 * np.sqrt(np.mean(across**2)), min_axis),
            max(2.0 * np.sqrt(np.mean(depth**2)), min_axis),
        )
        boundary[row] = _outline_radii(mask[:, :, k], affine, int(k), centres[row], axes[row], planes[row])
    # arc length from the most superior slice
    step = np.linalg.norm(np.diff(centre_3d, axis=0), axis=1)
    from_bottom = np.concatenate([[0.0], np.cumsum(step)])
    s_mm = from_bottom[-1] - from_bottom
    return CordFrames(slices, centre_3d, axes, boundary, s_mm, areas, affine, planes)


def canonical_with_inverse(img: nib.Nifti1Image) -> tuple[nib.Nifti1Image, np.ndarray]:
    """Canonical image and the orientation transform back to the input's axes."""
    canonical = nib.as_closest_canonical(img)
    back = nib.orientations.ornt_transform(
        nib.orientations.io_orientation(canonical.affine), nib.orientations.io_orientation(img.affine)
    )
    return canonical, back


def to_input_space(data: np.ndarray, back: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(nib.orientations.apply_orientation(data, back))


def coordinates_per_voxel(mask: np.ndarray, frames: CordFrames) -> dict[str, np.ndarray]:
    """u, v, s per voxel of a canonical mask (NaN outside)."""
    u = np.full(mask.shape, np.nan, dtype=np.float32)
    v = np.full(mask.shape, np.nan, dtype=np.float32)
    s = np.full(mask.shape, np.nan, dtype=np.float32)
    affine = frames.affine
    for row, k in enumerate(frames.slices):
        ii, jj = np.nonzero(mask[:, :, k])
        x_mm = affine[0, 0] * ii + affine[0, 1] * jj + affine[0, 2] * k + affine[0, 3]
        y_mm = affine[1, 0] * ii + affine[1, 1] * jj + affine[1, 2] * k + affine[1, 3]
        u[ii, jj, k], v[ii, jj, k] = frames.to_cord(row, x_mm, y_mm)
        s[ii, jj, k] = frames.s_mm[row]
    return {"u": u, "v": v, "s": s}


def levels_per_slice(levels, n_slices: int) -> np.ndarray:
    """Level numbers per canonical slice from numbers or names (NaN unknown), length-checked."""
    numbers = level_numbers(levels)
    if numbers.shape[0] != n_slices:
        raise ValueError(f"levels has {numbers.shape[0]} entries; the canonical mask has {n_slices} slices")
    return numbers


def cord_coordinates(
    cord_mask_img: str | Path | nib.Nifti1Image,
    centerline: pd.DataFrame | None = None,
    smooth_mm: float = 1.0,
    levels: np.ndarray | None = None,
    *,
    follow_roll: bool = True,
) -> dict[str, object]:
    """Normalised cord coordinates of every voxel of a cord mask.

    Parameters
    ----------
    cord_mask_img : str, Path or nibabel.Nifti1Image
        Binary cord mask in any orientation.
    centerline : pandas.DataFrame, optional
        Cord centre per canonical slice (columns ``slice``, ``x_mm``, ``y_mm``); by
        default the per-slice centroid of the mask.
    smooth_mm : float
        Gaussian smoothing (mm) of the centroids along z.
    levels : array-like, optional
        Vertebral level per canonical z slice (numbers or names, see
        :func:`cord_labels_in_subject`); adds a per-voxel ``level`` array.
    follow_roll : bool
        Turn the frames onto the cord's own left-right axis (see :func:`cord_frames`).

    Returns
    -------
    dict
        ``u``, ``v``, ``s``: float32 arrays in the input's voxel grid (NaN outside the
        cord); ``u`` in [-1, 1] (+1 = subject right), ``v`` in [-1, 1] (+1 = anterior),
        ``s`` mm along the cord from its most superior slice; ``level`` (only with
        ``levels``): level number per voxel (1 = C1, 8 = T1; NaN unknown).  ``frames``:
        the :class:`CordFrames` (canonical space, reusable by
        :func:`cord_labels_in_subject`); ``table``: ``frames.table()``.
    """
    img = load_mask(cord_mask_img)
    canonical, back = canonical_with_inverse(img)
    mask = np.asarray(canonical.dataobj) > 0
    frames = cord_frames(mask, canonical.affine, centerline=centerline, smooth_mm=smooth_mm, follow_roll=follow_roll)
    values = coordinates_per_voxel(mask, frames)
    if levels is not None:
        slice_levels = levels_per_slice(levels, mask.shape[2])
        values["level"] = np.where(mask, slice_levels[None, None, :], np.nan).astype(np.float32)
    result: dict[str, object] = {name: to_input_space(array, back) for name, array in values.items()}
    result["frames"] = frames
    result["table"] = frames.table()
    return result
