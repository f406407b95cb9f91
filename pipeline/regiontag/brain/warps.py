"""Template-space images onto a subject grid: trilinear interpolation and ANTs' label vote, in numpy.

The template positions of the subject voxels come from
:mod:`regiontag.brain.positions` (three ANTs warps per pair of grids).  Each
subject voxel's template cell (its lower corner and 8 trilinear weights) is
computed once per pair of grids (:class:`TemplateCells`, cached with the
positions), and every image of that template grid (atlas labels, brain mask,
tissue maps) is then 8 gathers and a weighted sum: ANTs' ``linear`` and
``genericLabel`` rules at those positions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import ants
import nibabel as nib
import numpy as np

from regiontag.brain.positions import positions_entry, SubjectTransforms, template_positions
from regiontag.brain.preprocess import from_ants, to_ants

#: The 8 corners of a voxel cell, as index offsets.
_CORNERS = [(dx, dy, dz) for dx in (0, 1) for dy in (0, 1) for dz in (0, 1)]


@dataclass(frozen=True)
class TemplateCells:
    """The template cell of each subject position: lower corner and trilinear weights.

    Attributes
    ----------
    where : ndarray of int64, shape (M,)
        The positions (columns of the index) with all 8 corners inside the template grid.
    corner : ndarray of int64, shape (M,)
        Flat template index of each cell's lower corner.
    weights : ndarray of float32, shape (8, M)
        Trilinear weight of each corner (``_CORNERS`` order); they sum to 1.
    offsets : ndarray of int64, shape (8,)
        Flat index offset of each corner from the lower one.
    """

    where: np.ndarray
    corner: np.ndarray
    weights: np.ndarray
    offsets: np.ndarray

    @classmethod
    def of(cls, index: np.ndarray, shape: tuple[int, ...]) -> "TemplateCells":
        """The cells of continuous voxel indices ``index`` (3, N) into a grid of ``shape``.

        Positions within 1e-3 of the grid count as inside (ANTs' label
        rule); their cell is clamped to the grid.

        Examples
        --------
        >>> cells = TemplateCells.of(np.array([[0.5, 5.0], [1.0, 1.0], [1.0, 1.0]]), (3, 3, 3))
        >>> cells.where.tolist(), cells.weights.sum(axis=0).tolist()
        ([0], [1.0])
        """
        size = np.asarray(shape[:3])[:, None]
        inside = np.all((index >= -1e-3) & (index <= size - 1 + 1e-3), axis=0)
        where = np.flatnonzero(inside)
        position = index[:, where].astype(np.float32, copy=False)
        base = np.clip(np.floor(position).astype(np.int64), 0, np.maximum(size - 2, 0))
        upper = np.clip(position - base, 0.0, 1.0).astype(np.float32)  # weight of the upper corner, per axis
        lower = 1.0 - upper
        weights = np.empty((8, where.size), dtype=np.float32)
        for number, (dx, dy, dz) in enumerate(_CORNERS):
            np.multiply(upper[0] if dx else lower[0], upper[1] if dy else lower[1], out=weights[number])
            weights[number] *= upper[2] if dz else lower[2]
        strides = np.array([shape[1] * shape[2], shape[2], 1], dtype=np.int64)
        offsets = np.array([dx * strides[0] + dy * strides[1] + dz * strides[2] for dx, dy, dz in _CORNERS])
        return cls(where, strides @ base, weights, offsets)

    def corner_values(self, data: np.ndarray) -> np.ndarray:
        """``data`` (on the template grid) at the 8 corners of every cell, shape (8, M)."""
        flat = np.ascontiguousarray(data).ravel()
        return np.stack([flat[self.corner + offset] for offset in self.offsets])

    def interpolate(self, data: np.ndarray, size: int) -> np.ndarray:
        """Trilinear interpolation of ``data`` at every position: float32 (size,), 0 outside the grid."""
        flat = np.ascontiguousarray(data, dtype=np.float32).ravel()
        total = np.zeros(self.where.size, dtype=np.float32)
        for weight, offset in zip(self.weights, self.offsets):
            total += weight * flat[self.corner + offset]
        values = np.zeros(size, dtype=np.float32)
        values[self.where] = total
        return values

    def vote(self, labels: np.ndarray, size: int) -> np.ndarray:
        """ANTs' ``genericLabel[linear]`` vote of integer ``labels`` at every position (0 outside the grid).

        Each label's indicator is linearly interpolated and the largest wins
        (ties: the smaller label): the summed trilinear weight of the corners
        holding that label.
        """
        corner_labels = self.corner_values(labels)
        result = np.zeros(size, dtype=labels.dtype)
        uniform = np.all(corner_labels == corner_labels[0], axis=0)
        result[self.where[uniform]] = corner_labels[0, uniform]
        mixed = np.flatnonzero(~uniform)
        if mixed.size:
            weights = self.weights[:, mixed].astype(np.float64)
            candidates = corner_labels[:, mixed]
            scores = np.stack([(weights * (candidates == candidate)).sum(axis=0) for candidate in candidates])
            scores -= candidates.astype(np.float64) * 1e-9  # equal weights: the smaller label, as ANTs
            result[self.where[mixed]] = candidates[np.argmax(scores, axis=0), np.arange(mixed.size)]
        return result


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
    return TemplateCells.of(index, labels.shape).vote(labels, index.shape[1])


def template_cells(registration: SubjectTransforms, subject: nib.Nifti1Image,
                   template_image: nib.Nifti1Image) -> tuple[TemplateCells, np.ndarray]:
    """The template cells of the subject voxels (:class:`TemplateCells`) and the subject affine, cached.

    Computed once per pair of grids and positions (:func:`template_positions`)
    and kept with them, so the atlas labels, the brain mask and the tissue
    maps share one set of cells.
    """
    index, affine, _, _, derived = positions_entry(registration, subject, template_image)
    if "cells" not in derived:
        derived["cells"] = TemplateCells.of(index, template_image.shape[:3])
    return derived["cells"], affine


def warp_labels_to_subject(
    template_labels: nib.Nifti1Image, subject: nib.Nifti1Image, registration: SubjectTransforms
) -> nib.Nifti1Image:
    """A template-space label image on the subject grid, by ANTs' ``genericLabel`` rule.

    ANTs' ``genericLabel`` interpolates every label's indicator separately (75
    atlas labels: 75 warps, the slowest step of a session).  Here the labels are
    voted (:meth:`TemplateCells.vote`) at the template positions of the subject
    voxels (:func:`template_positions`): the same rule and transforms, for
    three warps shared with every other image warped onto that grid.

    Examples
    --------
    >>> labels = warp_labels_to_subject(atlas.labels_img, flair, registration)  # doctest: +SKIP
    """
    cells, affine = template_cells(registration, subject, template_labels)
    labels = np.rint(np.asarray(template_labels.dataobj, dtype=np.float32)).astype(np.int32)
    values = cells.vote(labels, int(np.prod(subject.shape[:3]))).astype(np.float32)
    return nib.Nifti1Image(values.reshape(subject.shape[:3]), affine)


def warp_to_subject(
    template_image: nib.Nifti1Image, subject: nib.Nifti1Image, registration: SubjectTransforms, interpolator: str
) -> nib.Nifti1Image:
    """Bring a template-space image onto the subject grid (``genericLabel`` for labels, or ``linear``).

    Both go through the shared template cells (:func:`template_cells`):
    ``genericLabel`` by the label vote, ``linear`` by trilinear interpolation
    (0 outside the template, as ANTs).  Other interpolators are ANTs' own
    ``apply_transforms``.

    Examples
    --------
    >>> csf = warp_to_subject(maps.csf, flair, registration, "linear")  # doctest: +SKIP
    """
    if interpolator == "genericLabel":
        return warp_labels_to_subject(template_image, subject, registration)
    if interpolator == "linear" and len(template_image.shape) == 3:
        cells, affine = template_cells(registration, subject, template_image)
        data = np.asarray(template_image.dataobj, dtype=np.float32)
        values = cells.interpolate(data, int(np.prod(subject.shape[:3])))
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


def template_box_of_mask(
    mask: np.ndarray, subject_affine: np.ndarray, to_template: Callable[[np.ndarray], np.ndarray],
    template_image: nib.Nifti1Image, *, pad_mm: float,
) -> tuple[np.ndarray, np.ndarray] | None:
    """The template voxel box holding a subject mask's voxels mapped by ``to_template``, widened by ``pad_mm``.

    For warping a small mask (lesions) onto a large template grid
    (``registration.warp_to_template(..., box=...)``): template voxels farther
    than ``pad_mm`` from every mapped voxel centre cannot receive any of it.
    None when a voxel maps outside the template box (warp the whole grid).

    Examples
    --------
    >>> box = template_box_of_mask(lesion, flair.affine, to_template, atlas.labels_img, pad_mm=8.0)  # doctest: +SKIP
    """
    voxels = np.argwhere(mask)
    if voxels.size == 0:
        return None
    points_mm = voxels @ np.asarray(subject_affine[:3, :3], dtype=np.float64).T + subject_affine[:3, 3]
    template_mm = to_template(points_mm)
    if not np.all(np.isfinite(template_mm)):
        return None
    inverse = np.linalg.inv(np.asarray(template_image.affine, dtype=np.float64))
    template_voxels = template_mm @ inverse[:3, :3].T + inverse[:3, 3]
    pad = pad_mm / np.sqrt((np.asarray(template_image.affine)[:3, :3] ** 2).sum(axis=0))
    shape = np.asarray(template_image.shape[:3])
    first = np.clip(np.floor(template_voxels.min(axis=0) - pad), 0, shape - 1).astype(int)
    last = np.clip(np.ceil(template_voxels.max(axis=0) + pad), 0, shape - 1).astype(int)
    return first, last
