"""Template-space images onto a subject grid: where each subject voxel lands in the template, label vote.

ANTs' ``genericLabel`` warp interpolates every label's indicator separately
(75 atlas labels: 75 warps).  Here the template's own voxel indices are
warped once per pair of grids (three linear warps, only on the part of the
template grid that holds the image's non-zero voxels), and every image of
that template grid is then interpolated or voted at those positions in numpy:
the same rule and transforms as ANTs, for three warps in all.
"""

from __future__ import annotations

from typing import Callable, Protocol

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


#: Added to the template voxel indices warped by ``warp_labels_to_subject``, so the outside (0) stands apart.
_INDEX_OFFSET = 1000.0
#: The 8 corners of a voxel cell, as index offsets.
_CORNERS = [(dx, dy, dz) for dx in (0, 1) for dy in (0, 1) for dz in (0, 1)]


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


def vote_labels(labels: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Labels at continuous voxel positions by ANTs' ``genericLabel[linear]`` rule.

    Each label's indicator is linearly interpolated at the position and the
    largest wins (ties: the smaller label), which is the trilinear weight of
    the corners holding that label.  Positions whose 8 corners are not all
    inside the grid get 0 (the atlas border is background).

    Parameters
    ----------
    labels : ndarray of int, shape (X, Y, Z)
    index : ndarray of float, shape (3, N)
        Continuous voxel indices into ``labels``.

    Returns
    -------
    ndarray of int, shape (N,)

    Examples
    --------
    >>> labels = np.zeros((3, 3, 3), np.int16); labels[1:, :, :] = 5
    >>> vote_labels(labels, np.array([[0.4, 0.6], [1.0, 1.0], [1.0, 1.0]])).tolist()
    [0, 5]
    """
    shape = np.asarray(labels.shape)[:, None]
    inside = np.all((index >= -1e-3) & (index <= shape - 1 + 1e-3), axis=0)
    result = np.zeros(index.shape[1], dtype=labels.dtype)
    where = np.flatnonzero(inside)
    position = index[:, where]
    base = np.clip(np.floor(position).astype(np.int64), 0, np.maximum(shape - 2, 0))
    fraction = np.clip(position - base, 0.0, 1.0)
    corner_labels = np.stack([labels[base[0] + dx, base[1] + dy, base[2] + dz] for dx, dy, dz in _CORNERS])
    uniform = np.all(corner_labels == corner_labels[0], axis=0)
    result[where[uniform]] = corner_labels[0, uniform]
    mixed = ~uniform
    if mixed.any():
        part = fraction[:, mixed].astype(np.float64)
        weights = np.stack([
            (part[0] if dx else 1 - part[0]) * (part[1] if dy else 1 - part[1]) * (part[2] if dz else 1 - part[2])
            for dx, dy, dz in _CORNERS])
        candidates = corner_labels[:, mixed]
        scores = np.stack([(weights * (candidates == candidate)).sum(axis=0) for candidate in candidates])
        scores -= candidates.astype(np.float64) * 1e-9  # equal weights: the smaller label, as ANTs
        result[where[mixed]] = candidates[np.argmax(scores, axis=0), np.arange(candidates.shape[1])]
    return result


def _grid_key(image: nib.Nifti1Image) -> tuple:
    return tuple(image.shape[:3]), np.round(np.asarray(image.affine, dtype=np.float64), 6).tobytes()


def template_positions(
    registration: SubjectTransforms, subject: nib.Nifti1Image, template_image: nib.Nifti1Image
) -> tuple[np.ndarray, np.ndarray]:
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

    Returns
    -------
    index : ndarray of float32, shape (3, N)
        Continuous template voxel indices of the N subject voxels: exact where
        they fall inside the box (a superset of where ``template_image`` is not
        0 after interpolation), -10 elsewhere.
    affine : ndarray
        The subject grid's affine (as ANTs writes it back).
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
        fixed = to_ants(subject)
        inverse_flags = [path.endswith(".mat") for path in registration.inverse]
        # three scalar warps: a vector image would be reoriented by the transform (it is not a vector field)
        channels = [
            ants.apply_transforms(fixed=fixed, moving=coordinate, transformlist=registration.inverse,
                                  whichtoinvert=inverse_flags, interpolator="linear")
            for coordinate in _template_index_images(template_image, box)
        ]
        index = np.stack([channel.numpy().ravel() for channel in channels]) - np.float32(_INDEX_OFFSET)
        size = np.asarray(grid_shape, dtype=np.float32)[:, None]
        outside = np.any((index < -1e-3) | (index > size - 1 + 1e-3), axis=0)  # mixed with the 0 outside
        index[:, outside] = -10.0
        registration.positions[key] = (index.astype(np.float32), from_ants(channels[0]).affine,
                                       tuple(channels[0].shape), box)
    index, affine, _, _ = registration.positions[key]
    return index, affine


def _may_be_nonzero(data: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Positions (columns of ``index``) whose interpolation cell touches the bounding box of ``data``'s non-zeros.

    Everywhere else all 8 corners are 0, so linear interpolation and the
    label vote give 0 there: skipping them changes no value (the template's
    brain fills about half of its grid; a subject's field of view is mostly
    head and air).

    Examples
    --------
    >>> data = np.zeros((10, 10, 10)); data[4:6, 4:6, 4:6] = 1
    >>> _may_be_nonzero(data, np.array([[0.5, 3.2, 5.9, 6.1], [5.0, 5.0, 5.0, 5.0], [5.0, 5.0, 5.0, 5.0]])).tolist()
    [1, 2]
    """
    box = nonzero_box(data)
    if box is None:
        return np.zeros(0, dtype=np.int64)
    inside = np.ones(index.shape[1], dtype=bool)
    for axis in range(3):
        inside &= (index[axis] > box[0][axis] - 1) & (index[axis] < box[1][axis] + 1)
    return np.flatnonzero(inside)


def warp_labels_to_subject(
    template_labels: nib.Nifti1Image, subject: nib.Nifti1Image, registration: SubjectTransforms
) -> nib.Nifti1Image:
    """A template-space label image on the subject grid, by ANTs' ``genericLabel`` rule.

    ANTs' ``genericLabel`` interpolates every label's indicator separately (75
    atlas labels: 75 warps, the slowest step of a session).  Here the labels are
    voted (:func:`vote_labels`) at the template positions of the subject voxels
    (:func:`template_positions`): the same rule and transforms, for three warps
    shared with every other image warped onto that grid.

    Examples
    --------
    >>> labels = warp_labels_to_subject(atlas.labels_img, flair, registration)  # doctest: +SKIP
    """
    index, affine = template_positions(registration, subject, template_labels)
    labels = np.rint(np.asarray(template_labels.dataobj, dtype=np.float32)).astype(np.int32)
    values = np.zeros(index.shape[1], dtype=np.float32)
    where = _may_be_nonzero(labels, index)
    values[where] = vote_labels(labels, index[:, where].astype(np.float64))
    return nib.Nifti1Image(values.reshape(subject.shape[:3]), affine)


def warp_to_subject(
    template_image: nib.Nifti1Image, subject: nib.Nifti1Image, registration: SubjectTransforms, interpolator: str
) -> nib.Nifti1Image:
    """Bring a template-space image onto the subject grid (``genericLabel`` for labels, or ``linear``).

    Both go through :func:`template_positions` (computed once per grid pair):
    ``genericLabel`` by :func:`vote_labels`, ``linear`` by trilinear
    interpolation at those positions (0 outside the template, as ANTs).  Other
    interpolators are ANTs' own ``apply_transforms``.

    Examples
    --------
    >>> csf = warp_to_subject(maps.csf, flair, registration, "linear")  # doctest: +SKIP
    """
    if interpolator == "genericLabel":
        return warp_labels_to_subject(template_image, subject, registration)
    if interpolator == "linear" and len(template_image.shape) == 3:
        from scipy.ndimage import map_coordinates

        index, affine = template_positions(registration, subject, template_image)
        data = np.asarray(template_image.dataobj, dtype=np.float32)
        values = np.zeros(index.shape[1], dtype=np.float32)
        where = _may_be_nonzero(data, index)
        values[where] = map_coordinates(data, index[:, where], order=1, mode="constant", cval=0.0, prefilter=False)
        return nib.Nifti1Image(values.reshape(subject.shape[:3]), affine)
    inverse_flags = [path.endswith(".mat") for path in registration.inverse]
    warped = ants.apply_transforms(
        fixed=to_ants(subject),
        moving=to_ants(template_image),
        transformlist=registration.inverse,
        whichtoinvert=inverse_flags,
        interpolator=interpolator,
    )
    return from_ants(warped)


def template_point_mapper(
    registration: SubjectTransforms, subject: nib.Nifti1Image, template_image: nib.Nifti1Image
) -> Callable[[np.ndarray], np.ndarray]:
    """Subject mm -> template mm of points, through the subject voxels' template positions.

    The positions of :func:`template_positions` (the nonlinear registration,
    sampled on the subject grid) are interpolated trilinearly at each point and
    turned into template mm with ``template_image``'s affine. Points outside the
    subject grid, or landing outside the template box, give NaN. Used for the
    template centroids of ``lesions.csv`` (``template_x_mm`` ...).

    Examples
    --------
    >>> to_template = template_point_mapper(registration, flair, atlas.labels_img)  # doctest: +SKIP
    >>> centroid_mni_mm = to_template(np.array([[10.0, -20.0, 35.0]]))[0]  # doctest: +SKIP
    """
    from scipy.ndimage import map_coordinates

    index, affine = template_positions(registration, subject, template_image)
    field = index.reshape((3, *subject.shape[:3]))
    inverse_affine = np.linalg.inv(np.asarray(affine, dtype=np.float64))
    template_affine = np.asarray(template_image.affine, dtype=np.float64)
    shape = np.asarray(subject.shape[:3])

    def to_template(points_mm: np.ndarray) -> np.ndarray:
        points = np.atleast_2d(np.asarray(points_mm, dtype=np.float64))
        voxels = (inverse_affine[:3, :3] @ points.T + inverse_affine[:3, 3:4])
        inside = np.all((voxels >= 0) & (voxels <= (shape - 1)[:, None]), axis=0)
        template_index = np.stack([map_coordinates(channel, voxels, order=1, mode="nearest", prefilter=False)
                                   for channel in field])
        valid = inside & np.all(template_index > -1, axis=0)  # -10: outside the template box
        template_mm = (template_affine[:3, :3] @ template_index + template_affine[:3, 3:4]).T
        template_mm[~valid] = np.nan
        return template_mm

    return to_template
