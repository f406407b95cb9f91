"""Where each subject voxel lands in a template's voxel grid, through a registration's inverse transforms.

ANTs' ``genericLabel`` warp interpolates every label's indicator separately
(75 atlas labels: 75 warps).  Here the template's own voxel indices are
warped once per pair of grids (three linear warps, only on the part of the
template grid that holds the image's non-zero voxels, on the subject grid
subsampled to about 2 mm), and every image of that template grid is then
interpolated or voted at those positions in numpy (:mod:`regiontag.brain.warps`).
"""

from __future__ import annotations

from typing import Protocol

import ants
import nibabel as nib
import numpy as np

from regiontag.brain.preprocess import from_ants, to_ants


class SubjectTransforms(Protocol):
    """What the warps need of a ``registration.Registration``: the template -> subject transforms and a cache."""

    #: template -> subject transform files (ANTs order; ``.mat`` files are inverted)
    inverse: list[str]
    #: positions per (subject grid, template grid), filled by ``template_positions``
    positions: dict


#: Added to the template voxel indices warped by ``template_positions``, so the outside (0) stands apart.
_INDEX_OFFSET = 1000.0


def _template_index_images(template_image: nib.Nifti1Image, box: tuple[np.ndarray, np.ndarray]) -> list[ants.ANTsImage]:
    """Three ANTs images on the ``box`` part of the template grid holding each voxel's index in the whole grid.

    ``box`` is the (first, last) voxel index along each axis; the values are
    the indices plus ``_INDEX_OFFSET`` (so that ANTs' 0 outside stands apart).
    """
    first, last = box
    axes = [np.arange(a, b + 1, dtype=np.float32) + np.float32(_INDEX_OFFSET) for a, b in zip(first, last)]
    shift = np.eye(4)
    shift[:3, 3] = first
    affine = np.asarray(template_image.affine, dtype=np.float64) @ shift
    return [to_ants(nib.Nifti1Image(grid, affine)) for grid in np.meshgrid(*axes, indexing="ij")]


#: Template voxels added around the non-zero box of the first image warped onto a subject grid (see
#: ``template_positions``): later images of the same template (brain mask, tissue maps) usually fit in it.
_BOX_MARGIN = 8
#: Template voxels the warped index images extend beyond the box (see ``template_positions``): more than a
#: subsampled subject cell spans in the template, so no interpolated position inside the box mixes with ANTs' 0.
_COARSE_MARGIN = 6
#: Spacing (mm) of the subject-grid samples ANTs warps in ``template_positions``; positions in between are
#: interpolated linearly (the registration's deformation is defined on a 2 mm grid).
POSITION_SPACING_MM = 2.0
#: A cached box serves an image whose non-zero box, widened by this, fits in it (linear interpolation
#: reads one voxel further, and ITK clamps within half a voxel of the box's edge).
_BOX_GUARD = 2


def nonzero_box(data: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """(first, last) voxel index of the non-zero voxels along each axis; None when all are 0.

    Examples
    --------
    >>> data = np.zeros((5, 6, 7)); data[1:3, 2, 4:6] = 1
    >>> [box.tolist() for box in nonzero_box(data)]
    [[1, 2, 4], [2, 2, 5]]
    """
    nonzero = np.asarray(data) != 0
    if not nonzero.any():
        return None
    spans = [np.flatnonzero(nonzero.any(axis=tuple(a for a in range(3) if a != axis))) for axis in range(3)]
    return np.array([span[0] for span in spans]), np.array([span[-1] for span in spans])


def _widened(box: tuple[np.ndarray, np.ndarray], margin: int, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    first, last = box
    return np.maximum(first - margin, 0), np.minimum(last + margin, np.asarray(shape[:3]) - 1)


def _contains(outer: tuple[np.ndarray, np.ndarray], inner: tuple[np.ndarray, np.ndarray]) -> bool:
    return bool(np.all(outer[0] <= inner[0]) and np.all(inner[1] <= outer[1]))


def _grid_key(image: nib.Nifti1Image) -> tuple:
    return tuple(image.shape[:3]), np.round(np.asarray(image.affine, dtype=np.float64), 6).tobytes()


def _position_steps(subject: nib.Nifti1Image) -> np.ndarray:
    """Subsampling step per subject axis for :func:`template_positions`: about :data:`POSITION_SPACING_MM` apart."""
    zooms = np.asarray(subject.header.get_zooms()[:3], dtype=float)
    return np.maximum(1, np.floor(POSITION_SPACING_MM / zooms + 1e-6)).astype(int)


def _upsampled(coarse: np.ndarray, steps: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Trilinear interpolation of a grid sampled every ``steps`` voxels onto the full ``shape`` (float32).

    Separable: one linear interpolation along each subsampled axis (coarse
    sample ``j`` is full voxel ``j * step``; the coarse grid reaches the last voxel).

    Examples
    --------
    >>> _upsampled(np.array([[[0.0]], [[2.0]], [[4.0]]]), np.array([2, 1, 1]), (5, 1, 1)).ravel().tolist()
    [0.0, 1.0, 2.0, 3.0, 4.0]
    """
    result = coarse.astype(np.float32, copy=False)
    for axis, (step, size) in enumerate(zip(steps, shape)):
        if step == 1:
            continue
        position = np.arange(size) / float(step)
        lower = np.minimum(np.floor(position).astype(np.intp), result.shape[axis] - 1)
        upper = np.minimum(lower + 1, result.shape[axis] - 1)
        weight = (position - lower).astype(np.float32).reshape([-1 if a == axis else 1 for a in range(3)])
        below, above = np.take(result, lower, axis=axis), np.take(result, upper, axis=axis)
        result = below + weight * (above - below)
    return result


def template_positions(
    registration: SubjectTransforms, subject: nib.Nifti1Image, template_image: nib.Nifti1Image
) -> tuple[np.ndarray, np.ndarray]:
    """Where each subject voxel lands in the template's voxel grid: ``(index, affine)`` of :func:`positions_entry`."""
    index, affine, _, _, _ = positions_entry(registration, subject, template_image)
    return index, affine


def positions_entry(
    registration: SubjectTransforms, subject: nib.Nifti1Image, template_image: nib.Nifti1Image
) -> tuple[np.ndarray, np.ndarray, tuple[int, ...], tuple[np.ndarray, np.ndarray], dict]:
    """Where each subject voxel lands in the template's voxel grid, through ``registration.inverse``.

    The template's own voxel indices are warped onto the subject grid (three
    linear warps; a linear warp of a linear function is exact), once per pair
    of grids: the result is kept in ``registration.positions``, so every later
    warp onto the same grid is an interpolation in numpy.  Only the part of
    the template grid around ``template_image``'s non-zero voxels is warped
    (its box widened by ``_BOX_MARGIN`` voxels): subject voxels landing
    elsewhere would get 0 from this image anyway.  A later image of the same
    grid whose non-zero voxels reach beyond that box has the positions
    recomputed on a box covering both.

    ANTs warps onto the subject grid subsampled to about
    :data:`POSITION_SPACING_MM` (every second voxel of a 0.7 mm grid), and the
    positions are interpolated linearly in between: exact for an affine
    transform; with the SyN field (defined on the 2 mm registration grid) the
    interpolated positions differ from ANTs' own by a few hundredths of a
    template voxel (the real clinical FLAIR of the development data: within
    0.027 voxel on 99% of the voxels, at most 0.21; 99.92% of the atlas labels
    identical; ``tests/brain/test_positions.py`` checks a nonlinear field
    against ANTs on every voxel).  The index images extend :data:`_COARSE_MARGIN`
    voxels beyond the box (indices beyond the template grid included), so
    interpolation never mixes a position with ANTs' 0 outside where it matters.

    Returns
    -------
    index : ndarray of float32, shape (3, N)
        Continuous template voxel indices of the N subject voxels where they
        fall inside the box (a superset of where ``template_image`` is not 0
        after interpolation), -10 elsewhere.
    affine : ndarray
        The subject grid's affine (as ANTs writes it back).
    shape : tuple
        The subject grid's shape.
    box : tuple of ndarray
        (first, last) template voxel index of the warped part of the grid.
    derived : dict
        A cache for what is computed from these positions (the template cells of
        :mod:`regiontag.brain.warps`); dropped with them when the box grows.
    """
    key = (_grid_key(subject), _grid_key(template_image))
    grid_shape = tuple(template_image.shape[:3])
    needed = nonzero_box(np.asarray(template_image.dataobj))
    whole = (np.zeros(3, dtype=int), np.asarray(grid_shape) - 1)
    cached = registration.positions.get(key)
    if cached is None or (needed is not None and not _contains(cached[3], _widened(needed, _BOX_GUARD, grid_shape))):
        box = whole if needed is None else _widened(needed, _BOX_MARGIN, grid_shape)
        if cached is not None:
            box = (np.minimum(box[0], cached[3][0]), np.maximum(box[1], cached[3][1]))
        index, affine = _warped_indices(registration, subject, template_image, box)
        registration.positions[key] = (index, affine, tuple(subject.shape[:3]), box, {})
    return registration.positions[key]


def _warped_indices(registration: SubjectTransforms, subject: nib.Nifti1Image, template_image: nib.Nifti1Image,
                    box: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Template indices of every subject voxel (-10 outside ``box``) and the subject affine (``positions_entry``)."""
    steps = _position_steps(subject)
    shape = tuple(subject.shape[:3])
    coarse_shape = tuple(int(np.ceil((n - 1) / step)) + 1 for n, step in zip(shape, steps))
    coarse_affine = np.asarray(subject.affine, dtype=np.float64) @ np.diag([*steps, 1.0])
    fixed = to_ants(nib.Nifti1Image(np.zeros(coarse_shape, np.float32), coarse_affine))
    inverse_flags = [path.endswith(".mat") for path in registration.inverse]
    extended = (box[0] - _COARSE_MARGIN, box[1] + _COARSE_MARGIN)
    # three scalar warps: a vector image would be reoriented by the transform (it is not a vector field)
    channels = [
        ants.apply_transforms(fixed=fixed, moving=coordinate, transformlist=registration.inverse,
                              whichtoinvert=inverse_flags, interpolator="linear")
        for coordinate in _template_index_images(template_image, extended)
    ]
    coarse = [channel.numpy() for channel in channels]
    missing = (coarse[0] < 0.5).astype(np.float32)  # ANTs' 0: outside the extended index images
    index = np.stack([_upsampled(channel - np.float32(_INDEX_OFFSET), steps, shape).ravel() for channel in coarse])
    # ITK's rule on the box's images: within half a voxel of the edge the edge value, beyond it 0
    first, last = np.asarray(box[0], np.float32)[:, None], np.asarray(box[1], np.float32)[:, None]
    outside = np.any((index < first - 0.5) | (index > last + 0.5), axis=0)
    outside |= _upsampled(missing, steps, shape).ravel() > 0  # a sample of this cell fell outside the images
    np.clip(index, first, last, out=index)
    index[:, outside] = -10.0
    affine = from_ants(channels[0]).affine @ np.diag([*(1.0 / steps), 1.0])
    return index.astype(np.float32, copy=False), affine
