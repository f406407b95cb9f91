"""Registration with ANTs: subject -> template (rigid + affine + SyN), co-registration, warping.

The subject is registered at the template's working resolution (default
2 mm), which is where the speed comes from; transforms are physical, so
they apply to full-resolution images and labels unchanged.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import ants
import nibabel as nib
import numpy as np

from regiontag.config import RegistrationConfig
from regiontag.brain.preprocess import from_ants, to_ants


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


def _downsample(image: "ants.ANTsImage", resolution_mm: float) -> "ants.ANTsImage":
    spacing = np.asarray(image.spacing)
    if np.all(spacing >= resolution_mm * 0.9):
        return image
    target = tuple(float(max(s, resolution_mm)) for s in spacing)
    return ants.resample_image(image, target, use_voxels=False, interp_type=0)


def similarity(a: "ants.ANTsImage", b: "ants.ANTsImage", mask: "ants.ANTsImage") -> float:
    """Pearson correlation of two images on the same grid inside a mask."""
    inside = mask.numpy() > 0
    x, y = a.numpy()[inside], b.numpy()[inside]
    if x.size < 10 or x.std() == 0 or y.std() == 0:
        return float("nan")
    return float(np.corrcoef(x, y)[0, 1])


def register_to_template(
    image: nib.Nifti1Image,
    template: nib.Nifti1Image,
    template_mask: nib.Nifti1Image,
    config: RegistrationConfig,
    transforms_dir: Path,
) -> Registration:
    """Register a (bias-corrected, brain-masked) subject image to a template.

    Parameters
    ----------
    image : Nifti1Image
        Subject reference image, brain only.
    template, template_mask : Nifti1Image
        Contrast-matched template at the working resolution and its brain mask.
    config : RegistrationConfig
    transforms_dir : Path
        Where the transform files are stored (``sub-to-template_*``).

    Returns
    -------
    Registration
        Transform file lists and a quality metric (correlation of the warped
        subject with the template inside the template brain mask).
    """
    _threads(config)
    fixed = to_ants(template)
    moving = _downsample(to_ants(image), config.resolution_mm)
    transforms_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="regiontag-reg-") as scratch:
        result = ants.registration(
            fixed=fixed,
            moving=moving,
            type_of_transform=config.type_of_transform,
            reg_iterations=tuple(config.syn_iterations),
            aff_iterations=tuple(config.affine_iterations),
            aff_shrink_factors=(8, 4, 2, 1)[-len(config.affine_iterations):],
            aff_smoothing_sigmas=(3, 2, 1, 0)[-len(config.affine_iterations):],
            syn_metric=config.syn_metric,
            aff_metric="mattes",
            outprefix=str(Path(scratch) / "sub-to-template_"),
        )
        files = {}
        for path in set(result["fwdtransforms"]) | set(result["invtransforms"]):
            destination = transforms_dir / Path(path).name
            shutil.move(path, destination)
            files[destination.name] = destination
    remap = lambda paths: [str(transforms_dir / Path(p).name) for p in paths]  # noqa: E731
    quality = similarity(result["warpedmovout"], fixed, to_ants(template_mask))
    return Registration(remap(result["fwdtransforms"]), remap(result["invtransforms"]), quality, files)


def warp_to_subject(
    template_image: nib.Nifti1Image, subject: nib.Nifti1Image, registration: Registration, interpolator: str
) -> nib.Nifti1Image:
    """Bring a template-space image onto the subject grid (``genericLabel`` for labels)."""
    inverse_flags = [path.endswith(".mat") for path in registration.inverse]
    warped = ants.apply_transforms(
        fixed=to_ants(subject),
        moving=to_ants(template_image),
        transformlist=registration.inverse,
        whichtoinvert=inverse_flags,
        interpolator=interpolator,
    )
    return from_ants(warped)


def warp_to_template(
    subject_image: nib.Nifti1Image, template: nib.Nifti1Image, registration: Registration, interpolator: str
) -> nib.Nifti1Image:
    """Bring a subject-space image onto a template grid."""
    warped = ants.apply_transforms(
        fixed=to_ants(template), moving=to_ants(subject_image), transformlist=registration.forward,
        interpolator=interpolator,
    )
    return from_ants(warped)


def coregister(moving: nib.Nifti1Image, fixed: nib.Nifti1Image, config: RegistrationConfig) -> nib.Nifti1Image:
    """Rigidly co-register another sequence of the session onto the reference grid (mutual information)."""
    _threads(config)
    fixed_ants, moving_ants = to_ants(fixed), to_ants(moving)
    result = ants.registration(
        fixed=_downsample(fixed_ants, config.resolution_mm),
        moving=_downsample(moving_ants, config.resolution_mm),
        type_of_transform="Rigid",
        aff_metric="mattes",
    )
    warped = ants.apply_transforms(fixed=fixed_ants, moving=moving_ants, transformlist=result["fwdtransforms"],
                                   interpolator="linear")
    for path in result["fwdtransforms"]:
        Path(path).unlink(missing_ok=True)
    return from_ants(warped)
