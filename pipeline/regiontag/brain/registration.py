"""Registration with ANTs: subject -> template (rigid + affine + SyN), co-registration, warping.

Warps of template images onto the subject grid are in :mod:`regiontag.brain.warps`.

The subject is registered at the template's working resolution (default
2 mm), which is where the speed comes from; transforms are physical, so
they apply to full-resolution images and labels unchanged.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import ants
import nibabel as nib
import numpy as np

from regiontag.config import RegistrationConfig
from regiontag.brain.preprocess import from_ants, to_ants

LOGGER = logging.getLogger("regiontag.brain")


@dataclass
class Registration:
    """Transforms between a subject image and a template.

    ``forward`` maps subject -> template (ANTs order, for ``apply_transforms``
    with the template as fixed image); ``inverse`` maps template -> subject.
    """

    forward: list[str]
    inverse: list[str]
    quality: float
    files: dict[str, Path] = field(default_factory=dict)
    #: Wall seconds of each registration stage (``affine``, ``syn``...), for the timing record.
    seconds: dict[str, float] = field(default_factory=dict)
    #: Template voxel positions of subject voxels, per (subject grid, template grid) (``template_positions``).
    positions: dict = field(default_factory=dict, repr=False, compare=False)


def set_itk_threads(config: RegistrationConfig) -> None:
    """Fix the ITK thread count and the ANTs sampling seed for reproducible results.

    N4 and ANTs registration results depend on the number of ITK threads
    (multithreaded sums), and with more than one thread ANTs registration is
    not even repeatable.  ITK reads ``ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS``
    once, at its first multithreaded call in a process, so this must run
    before any N4 or registration (``brain.prepare_reference`` calls it first);
    the value is ``config.threads`` whatever the environment says (a Dask
    worker's environment depends on the number of workers).
    """
    os.environ["ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"] = str(config.threads)
    # Seeds ANTs' random metric sampling (antsRegistration --random-seed).
    ants.config.set_ants_deterministic(on=False, seed_value=config.random_seed)


_threads = set_itk_threads


def downsample(image: "ants.ANTsImage", resolution_mm: float) -> "ants.ANTsImage":
    """``image`` resampled (linear) to ``resolution_mm`` along every axis finer than that; as is when none is.

    An axis within 10% of ``resolution_mm`` counts as coarse enough.
    """
    spacing = np.asarray(image.spacing)
    if np.all(spacing >= resolution_mm * 0.9):
        return image
    target = tuple(float(max(s, resolution_mm)) for s in spacing)
    return ants.resample_image(image, target, use_voxels=False, interp_type=0)


def working_grid(image: nib.Nifti1Image, config: RegistrationConfig) -> "ants.ANTsImage":
    """``image`` as an ANTs image at the registration's working resolution (``config.resolution_mm``)."""
    return downsample(to_ants(image), config.resolution_mm)


def similarity(a: "ants.ANTsImage", b: "ants.ANTsImage", mask: "ants.ANTsImage") -> float:
    """Pearson correlation of two images on the same grid inside a mask."""
    inside = mask.numpy() > 0
    x, y = a.numpy()[inside], b.numpy()[inside]
    if x.size < 10 or x.std() == 0 or y.std() == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


#: Linear stage of each ``type_of_transform`` (None: none); the deformable stage follows for the SyN types.
LINEAR_STAGE = {"Rigid": "Rigid", "Affine": "Affine", "SyN": "Affine", "SyNRA": "Affine", "SyNOnly": None}


def _linear_schedule(iterations: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
    """``ants.registration`` keywords of a linear stage: shrink 8-4-2-1 and smoothing 3-2-1-0 (voxels), finest last."""
    levels = len(iterations)
    return {
        "aff_iterations": tuple(iterations),
        "aff_shrink_factors": (8, 4, 2, 1)[-levels:],
        "aff_smoothing_sigmas": (3, 2, 1, 0)[-levels:],
    }


def register_to_template(
    image: nib.Nifti1Image,
    template: nib.Nifti1Image,
    template_mask: nib.Nifti1Image,
    config: RegistrationConfig,
    transforms_dir: Path,
    *,
    image_working: "ants.ANTsImage | None" = None,
) -> Registration:
    """Register a (bias-corrected, brain-masked) subject image to a template.

    Two ANTs calls with the schedule of ``config`` (``ants.registration``'s
    ``"SyN"`` type hard-codes its affine schedule, 2100x1200x1200 iterations at
    shrink 4-2-2, whatever ``aff_iterations`` says): a linear stage
    (``affine_iterations``, shrink 8-4-2-1 on the working grid, ANTs' default
    convergence test: stop when the metric changes by less than 1e-6 over 10
    iterations), then, for the SyN types, SyN (``syn_iterations``, shrink 4-2-1)
    started from it.  Both run on the subject downsampled to
    ``config.resolution_mm`` against a template on that grid.

    Parameters
    ----------
    image : Nifti1Image
        Subject reference image, brain only.
    template, template_mask : Nifti1Image
        Contrast-matched template at the working resolution and its brain mask.
    config : RegistrationConfig
    transforms_dir : Path
        Where the transform files are stored (``sub-to-template_*``).
    image_working : ANTsImage, optional
        ``image`` already at ``config.resolution_mm`` (:func:`working_grid`), when the
        session also co-registers other sequences to it.

    Returns
    -------
    Registration
        Transform file lists, a quality metric (correlation of the warped
        subject with the template inside the template brain mask) and the
        seconds of each stage.

    Examples
    --------
    >>> registration = register_to_template(flair, template, mask, Config().registration,
    ...                                     Path("out/transforms"))  # doctest: +SKIP
    >>> registration.forward  # doctest: +SKIP
    ['out/transforms/sub-to-template_1Warp.nii.gz', 'out/transforms/sub-to-template_0GenericAffine.mat']
    """
    _threads(config)
    fixed = to_ants(template)
    moving = image_working if image_working is not None else working_grid(image, config)
    transforms_dir.mkdir(parents=True, exist_ok=True)
    linear = LINEAR_STAGE[config.type_of_transform]
    deformable = config.type_of_transform.startswith("SyN")
    seconds: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="regiontag-reg-") as scratch:
        prefix = str(Path(scratch) / "sub-to-template_")
        stage_prefix = str(Path(scratch) / "stage-")  # not under ``prefix``: ANTs globs ``prefix*`` for its outputs
        initial = None
        if linear:
            clock = time.perf_counter()
            if config.type_of_transform == "SyNRA":
                rigid = ants.registration(fixed=fixed, moving=moving, type_of_transform="Rigid", aff_metric="mattes",
                                          outprefix=stage_prefix + "rigid_", **_linear_schedule(config.affine_iterations))
                initial = rigid["fwdtransforms"][0]
            result = ants.registration(
                fixed=fixed, moving=moving, type_of_transform=linear, aff_metric="mattes",
                initial_transform=initial, outprefix=prefix if not deformable else stage_prefix + "linear_",
                **_linear_schedule(config.affine_iterations),
            )
            initial = result["fwdtransforms"][0]
            seconds[linear.lower()] = time.perf_counter() - clock
        if deformable:
            clock = time.perf_counter()
            result = ants.registration(
                fixed=fixed, moving=moving, type_of_transform="SyNOnly", initial_transform=initial,
                reg_iterations=tuple(config.syn_iterations), syn_metric=config.syn_metric, outprefix=prefix,
            )
            seconds["syn"] = time.perf_counter() - clock
        final = [Path(path).name for path in (*result["fwdtransforms"], *result["invtransforms"])]
        files = {}
        for name in set(final):
            destination = transforms_dir / name
            shutil.move(str(Path(scratch) / name), destination)
            files[destination.name] = destination
    remap = lambda paths: [str(transforms_dir / Path(p).name) for p in paths]  # noqa: E731
    quality = similarity(result["warpedmovout"], fixed, to_ants(template_mask))
    LOGGER.info("registration to the template: %s", ", ".join(f"{k} {v:.1f} s" for k, v in seconds.items()))
    return Registration(remap(result["fwdtransforms"]), remap(result["invtransforms"]), quality, files, seconds)


def warp_to_template(
    subject_image: nib.Nifti1Image,
    template: nib.Nifti1Image,
    registration: Registration,
    interpolator: str,
    *,
    box: tuple[np.ndarray, np.ndarray] | None = None,
) -> nib.Nifti1Image:
    """Bring a subject-space image onto a template grid.

    Parameters
    ----------
    subject_image, template : Nifti1Image
    registration : Registration
    interpolator : str
        ANTs interpolator (``"linear"``, ``"nearestNeighbor"``, ``"genericLabel"`` ...).
    box : tuple of ndarray, optional
        (first, last) template voxel index: only that part of the template grid
        is computed, the rest is 0 (each template voxel is computed on its
        own, so the values inside are ANTs' values on the whole grid).

    Examples
    --------
    >>> lesions_mni = warp_to_template(lesion_mask, atlas.labels_img, registration, "linear")  # doctest: +SKIP
    """
    fixed = template
    if box is not None:
        first, last = (np.asarray(corner, dtype=int) for corner in box)
        shift = np.eye(4)
        shift[:3, 3] = first
        fixed = nib.Nifti1Image(np.zeros(tuple(last - first + 1), np.float32), template.affine @ shift)
    warped = ants.apply_transforms(
        fixed=to_ants(fixed), moving=to_ants(subject_image), transformlist=registration.forward,
        interpolator=interpolator,
    )
    if box is None:
        return from_ants(warped)
    data = np.zeros(template.shape[:3], dtype=np.float32)
    data[tuple(slice(a, b + 1) for a, b in zip(first, last))] = warped.numpy()
    return nib.Nifti1Image(data, np.asarray(template.affine, dtype=np.float64))


def coregister(moving: nib.Nifti1Image, fixed: nib.Nifti1Image, config: RegistrationConfig, *,
               fixed_working: "ants.ANTsImage | None" = None) -> nib.Nifti1Image:
    """Rigidly co-register another sequence of the session onto the reference grid (mutual information).

    Both images are taken to ``config.resolution_mm``; the rigid fit uses
    ``config.coregistration_iterations`` (shrink 8-4-2-1 from the coarsest
    level, ANTs' 1e-6 / 10-iteration convergence test), then the full-resolution
    image is resampled onto the reference grid.  ``fixed_working`` is the
    reference already at that resolution (:func:`working_grid`), when several
    sequences are co-registered to it.

    Examples
    --------
    >>> t2_on_flair = coregister(t2, flair, Config().registration)  # doctest: +SKIP
    """
    _threads(config)
    fixed_ants, moving_ants = to_ants(fixed), to_ants(moving)
    with tempfile.TemporaryDirectory(prefix="regiontag-coreg-") as scratch:
        result = ants.registration(
            fixed=fixed_working if fixed_working is not None else downsample(fixed_ants, config.resolution_mm),
            moving=downsample(moving_ants, config.resolution_mm),
            type_of_transform="Rigid",
            aff_metric="mattes",
            outprefix=str(Path(scratch) / "coreg_"),
            **_linear_schedule(config.coregistration_iterations),
        )
        warped = ants.apply_transforms(fixed=fixed_ants, moving=moving_ants, transformlist=result["fwdtransforms"],
                                       interpolator="linear")
    return from_ants(warped)
