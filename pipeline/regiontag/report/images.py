"""The images of one body part of a session, on the grid of its reference scan.

Reads the NIfTIs of the output contract (mask, atlas labels, lesion mask,
hyperintensity map) and the input scans named in ``provenance.json``, all as
canonical RAS+ arrays on one grid, for the session report's figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

from regiontag import outputs
from regiontag.report.data import SessionData, load_image, resolve_input_path, same_grid

#: Per body part: (mask file, atlas label file).
BODY_PART_FILES = {
    "brain": (outputs.BRAIN_MASK_NII, outputs.ATLAS_LABELS_NII),
    "cord": (outputs.CORD_MASK_NII, outputs.CORD_LABELS_NII),
}
#: Per body part: lesion masks and hyperintensity maps to try, first on the body part's grid wins
#: (a session with brain and cord has ``lesions.nii.gz`` for the brain and ``cord_lesions.nii.gz``).
LESION_FILES = {
    "brain": (outputs.LESIONS_NII,),
    "cord": (outputs.CORD_LESIONS_NII, outputs.LESIONS_NII),
}
ZMAP_FILES = {
    "brain": (outputs.ZMAP_NII,),
    "cord": (outputs.CORD_ZMAP_NII, outputs.ZMAP_NII),
}
@dataclass
class BodyPartImages:
    """Canonical arrays of one body part on its reference scan's grid.

    ``background`` is the reference scan, or the hyperintensity map when the
    input cannot be found; ``sequences`` maps sequence name -> (input path as
    recorded, canonical image or None when the file is missing).
    """

    body_part: str
    grid: nib.Nifti1Image
    background: np.ndarray
    background_name: str
    mask: np.ndarray | None
    labels: np.ndarray | None
    lesion: np.ndarray | None
    sequences: dict[str, tuple[str, nib.Nifti1Image | None]]

    @property
    def zooms(self) -> tuple[float, ...]:
        return tuple(float(z) for z in self.grid.header.get_zooms()[:3])

    @cached_property
    def crop_mask(self) -> np.ndarray:
        """Voxels the montages show (their bounding box): the brain, the canal around the cord, else the head."""
        if self.mask is not None and np.any(self.mask):
            if self.body_part == "cord":  # show the canal and CSF around the cord
                return ndimage.binary_dilation(self.mask > 0, iterations=int(round(7 / min(self.zooms))))
            return self.mask
        return self.background > np.percentile(self.background, 20)

    @property
    def window_mask(self) -> np.ndarray | None:
        """Voxels that set the grey window: the brain, or the canal around the cord (cord mid-grey, CSF bright)."""
        return self.crop_mask if self.body_part == "cord" else self.mask


def _on_grid(image: nib.Nifti1Image | None, grid: nib.Nifti1Image) -> np.ndarray | None:
    return np.asarray(image.dataobj) if image is not None and same_grid(image, grid) else None


def sample_planes(image: nib.Nifti1Image, grid: nib.Nifti1Image, cuts: dict[int, list[int]]) -> np.ndarray:
    """Resample a canonical image onto ``grid``, only on the planes a montage shows (NaN elsewhere).

    Resampling whole clinical volumes costs seconds; the montage needs a few
    planes, so only those are interpolated (linear, world coordinates).
    """
    data = np.asarray(image.dataobj, dtype=np.float32)
    if data.ndim > 3:
        data = data[..., 0]
    if same_grid(image, grid):
        return data
    shape = grid.shape[:3]
    sampled = np.full(shape, np.nan, dtype=np.float32)
    matrix = np.linalg.inv(image.affine) @ grid.affine
    for axis, indices in cuts.items():
        for index in indices:
            ranges = [np.arange(size, dtype=np.float32) for size in shape]
            ranges[axis] = np.array([index], dtype=np.float32)
            voxels = np.stack(np.meshgrid(*ranges, indexing="ij")).reshape(3, -1)
            source = matrix[:3, :3] @ voxels + matrix[:3, 3:4]
            values = ndimage.map_coordinates(data, source, order=1, mode="constant", cval=0.0)
            plane = [slice(None)] * 3
            plane[axis] = slice(index, index + 1)
            sampled[tuple(plane)] = values.reshape([len(r) for r in ranges])
    return sampled


def load_body_part(data: SessionData, body_part: str) -> BodyPartImages | None:
    """Collect the images of one body part on one grid; None when nothing image-like exists."""
    mask_name, labels_name = BODY_PART_FILES[body_part]
    mask_img = load_image(data.file(mask_name))
    labels_img = load_image(data.file(labels_name))
    reference_path = data.reference_path(body_part)
    reference_img = load_image(reference_path) if reference_path else None
    grid = next((image for image in (mask_img, labels_img, reference_img) if image is not None), None)
    if grid is None:
        return None
    lesion = None
    for name in LESION_FILES[body_part]:
        lesion = _on_grid(load_image(data.file(name)), grid)
        if lesion is not None:
            break
    background_name = "reference scan"
    background = _on_grid(reference_img, grid)
    if background is None:
        for name in ZMAP_FILES[body_part]:
            background = _on_grid(load_image(data.file(name)), grid)
            if background is not None:
                break
        background_name = "hyperintensity z-map (input scan not found)"
    if background is None:
        background = np.asarray(grid.dataobj, dtype=np.float32)
        background_name = "mask (input scan not found)"
    sequences: dict[str, tuple[str, nib.Nifti1Image | None]] = {}
    for scan in data.inputs_of(body_part):
        sequence = str(scan.get("sequence") or Path(str(scan.get("path"))).name)
        path = resolve_input_path(scan.get("path"), data.session_dir)
        if path is not None and reference_path is not None and path.resolve() == reference_path.resolve():
            image = reference_img  # already loaded: decompressing a clinical volume twice costs 50-100 ms
        else:
            image = load_image(path) if path else None
        sequences[sequence] = (str(scan.get("path")), image)
    return BodyPartImages(
        body_part,
        grid,
        np.asarray(background, dtype=np.float32),
        background_name,
        _on_grid(mask_img, grid),
        _on_grid(labels_img, grid),
        lesion,
        sequences,
    )
