"""Is a scan of the brain or of the spinal cord, when its file name does not say? From the image.

File names are read by :func:`regiontag.inputs.discovery.body_part_from_name`.

Image rules, in order (each decision carries a human-readable reason):

1. Field of view narrower than a head left-right (< ``MAX_CORD_FOV_LR_MM``) -> cord
   (sagittal spine scans are a few cm wide; cropped cord volumes too).
2. Body cross-section: a head is >= ``MIN_HEAD_WIDTH_MM`` wide and
   >= ``MIN_HEAD_DEPTH_MM`` deep in many axial slices; a neck (shallow), shoulders
   (wide but shallow) or a cropped spine field of view are not.
3. A thin bright CSF column with a dark cord inside (ring detector tracked along
   z, :mod:`regiontag.cord.csf_column`) over most slices -> cord.
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from regiontag.cord.csf_column import normalise_slices, track_column
from regiontag.niimg import check_niimg, to_canonical

MAX_CORD_FOV_LR_MM = 110.0
MIN_HEAD_WIDTH_MM = 120.0
MIN_HEAD_DEPTH_MM = 150.0
MIN_HEAD_FRACTION = 0.3
MIN_RING_FRACTION = 0.5
RING_SCORE = 0.15

def _head_slice_fraction(volume: np.ndarray, zooms: np.ndarray) -> tuple[float, float, float]:
    """Share of axial slices with a head-sized body, and the median body width and depth (mm).

    A head slice is at least ``MIN_HEAD_WIDTH_MM`` wide and ``MIN_HEAD_DEPTH_MM``
    deep; a neck is about as wide but much shallower, shoulders are wide but shallow.
    """
    threshold = 0.1 * np.percentile(volume, 99)
    foreground = ndimage.binary_opening(volume > threshold, iterations=1)
    widths, depths = [], []
    for index in range(volume.shape[2]):
        plane = foreground[:, :, index]
        columns = np.nonzero(plane.any(axis=1))[0]
        rows = np.nonzero(plane.any(axis=0))[0]
        widths.append((columns[-1] - columns[0] + 1) * zooms[0] if columns.size else 0.0)
        depths.append((rows[-1] - rows[0] + 1) * zooms[1] if rows.size else 0.0)
    widths, depths = np.asarray(widths), np.asarray(depths)
    head = (widths >= MIN_HEAD_WIDTH_MM) & (depths >= MIN_HEAD_DEPTH_MM)
    return float(np.mean(head)), float(np.median(widths)), float(np.median(depths))


def detect_body_part(image: nib.Nifti1Image | str | Path) -> tuple[str, str]:
    """Decide ``brain`` or ``cord`` from the image alone.

    Parameters
    ----------
    image : Nifti1Image or path
        Any T2-like scan.

    Returns
    -------
    body_part : str
        ``"brain"`` or ``"cord"``.
    reason : str
        How it was decided (for ``provenance.json``).
    """
    canonical = to_canonical(check_niimg(image))
    zooms = np.sqrt((canonical.affine[:3, :3] ** 2).sum(axis=0))
    extent = np.asarray(canonical.shape[:3]) * zooms
    fov = f"field of view {extent[0]:.0f} x {extent[1]:.0f} x {extent[2]:.0f} mm (LR x AP x SI)"
    if extent[0] < MAX_CORD_FOV_LR_MM:
        return "cord", f"{fov}: narrower than a head ({MAX_CORD_FOV_LR_MM:.0f} mm) left-right"
    data = np.nan_to_num(np.asarray(canonical.dataobj, dtype=np.float32).reshape(canonical.shape[:3]))
    step = np.maximum(1, np.floor(1.5 / zooms[:2])).astype(int)  # ~1.5 mm in-plane is enough here
    data = data[:: step[0], :: step[1], :]
    coarse_zooms = zooms * np.array([step[0], step[1], 1])
    head_fraction, width, depth = _head_slice_fraction(data, coarse_zooms)
    if head_fraction >= MIN_HEAD_FRACTION:
        return "brain", (
            f"{fov}; body >= {MIN_HEAD_WIDTH_MM:.0f} mm wide and >= {MIN_HEAD_DEPTH_MM:.0f} mm deep "
            f"in {head_fraction:.0%} of axial slices (head-sized)"
        )
    track = track_column(normalise_slices(data), tuple(coarse_zooms), step_mm=max(2.0, zooms[2]))
    ring_fraction = float(np.mean(track.scores >= RING_SCORE))
    if ring_fraction >= MIN_RING_FRACTION:
        return "cord", (
            f"{fov}; bright CSF column with a dark cord inside found in {ring_fraction:.0%} of axial slices"
        )
    return "brain", (
        f"{fov}; no continuous CSF column with a dark cord ({ring_fraction:.0%} of slices), "
        f"body {width:.0f} x {depth:.0f} mm"
    )
