"""Tag a spinal cord lesion mask that is already in PAM50 template space (``regiontag tag --space PAM50``).

The mask is brought onto the cropped canonical PAM50 grid (exactly when it is on the
template grid; nearest neighbour, with a warning, when it is on another grid in the
same physical space), intersected with the PAM50 cord, and tagged with our cord
regions drawn from PAM50's own tract maps (:mod:`regiontag.atlas.pam50.space`).  The
region table and the findings come from the same functions as the cord stage
(:func:`regiontag.atlas.involvement.region_table`, :func:`regiontag.cord.stage.fill_cord_columns`,
:func:`regiontag.cord.stage.cord_findings`) with PAM50's vertebral levels.  A mask says
nothing about cord size, signal or contrast: ``csa_ratio`` is empty and cord swelling,
enhancement and restricted diffusion are not assessable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd
from nibabel.processing import resample_from_to

from regiontag.atlas.pam50.space import Pam50Space, pam50_space
from regiontag.config import Config
from regiontag.cord.levels import lesion_table
from regiontag.cord.stage import cord_findings, fill_cord_columns
from regiontag.atlas.involvement import region_table
from regiontag.niimg import voxel_volume_ml

#: Warn when more than this share of the mask's lesion volume lies outside the PAM50 cord.
OUTSIDE_CORD_WARNING = 0.05
#: Features a template-space mask cannot tell (no cord size, no sequences).
NOT_ASSESSABLE = ("cord_swelling", "enhancement", "restricted_diffusion")


@dataclass
class Pam50Tagging:
    """What tagging a PAM50-space mask produced.

    Attributes
    ----------
    regions : pandas.DataFrame
        Region table (``outputs.REGION_COLUMNS`` without ``session``), cord columns filled.
    findings : dict
        Content of ``findings.json`` (``body_parts_imaged == ["cord"]``).
    warnings : list of str
        One-line warnings (grid resampled, lesion outside the cord, ...).
    qc : dict
        Numbers for provenance: grid check, volumes, per-lesion extent.
    atlas : dict
        Atlas provenance (name, space, sha256, PAM50 folder and commit).
    """

    regions: pd.DataFrame
    findings: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    qc: dict[str, Any] = field(default_factory=dict)
    atlas: dict[str, str] = field(default_factory=dict)


def _describe_grid(shape: tuple[int, ...], affine: np.ndarray) -> str:
    zooms = np.linalg.norm(affine[:3, :3], axis=0)
    return f"{'x'.join(str(int(n)) for n in shape[:3])} at {'x'.join(f'{z:g}' for z in zooms)} mm"


def _field_of_view(shape: tuple[int, ...], affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World bounding box (min, max corner) of a grid, half a voxel beyond the outer voxel centres."""
    corners = np.array([[i, j, k] for i in (-0.5, shape[0] - 0.5) for j in (-0.5, shape[1] - 0.5)
                        for k in (-0.5, shape[2] - 0.5)])
    world = nib.affines.apply_affine(affine, corners)
    return world.min(axis=0), world.max(axis=0)


def mask_on_pam50_grid(mask: nib.Nifti1Image, space: Pam50Space) -> tuple[np.ndarray, list[str], dict[str, Any]]:
    """A binary mask on the cropped canonical PAM50 grid of ``space``.

    Parameters
    ----------
    mask : nibabel.Nifti1Image
        Binary 3-D lesion mask (non-zero = lesion), on the PAM50 template grid or on
        another grid in PAM50's physical space.
    space : Pam50Space
        From :func:`regiontag.atlas.pam50.space.pam50_space`.

    Returns
    -------
    (lesions, warnings, qc)
        Boolean array on ``space.pam``'s grid (all lesion voxels, in the cord or not),
        warnings, and the grid check (``mask_lesion_volume_ml`` on the mask's own grid) for provenance.

    Raises
    ------
    ValueError
        When the mask is on another grid and none of its lesion voxels lies inside the
        PAM50 template's field of view (the mask is not in PAM50 space).
    """
    data = np.asarray(mask.dataobj).reshape(mask.shape[:3]) > 0
    on_grid = mask.shape[:3] == space.reference_shape and np.allclose(
        mask.affine, space.reference_affine, atol=1e-3
    )
    warnings: list[str] = []
    qc: dict[str, Any] = {
        "mask_grid": _describe_grid(mask.shape, mask.affine),
        "on_pam50_grid": bool(on_grid),
        "mask_lesion_volume_ml": float(data.sum() * voxel_volume_ml(mask)),
    }
    if not on_grid and data.any():
        low, high = _field_of_view(space.reference_shape, space.reference_affine)
        world = nib.affines.apply_affine(mask.affine, np.argwhere(data))
        inside = np.all((world >= low) & (world <= high), axis=1)
        qc["lesion_share_in_template_fov"] = float(inside.mean())
        if not inside.any():
            raise ValueError(
                f"mask ({qc['mask_grid']}) is not on the PAM50 template grid "
                f"({_describe_grid(space.reference_shape, space.reference_affine)}) and no lesion voxel lies "
                f"inside the template's field of view: is it in PAM50 space? (warp it to the template first, "
                f"e.g. sct_apply_transfo with warp_anat2template)"
            )
    if not on_grid:
        warnings.append(
            f"mask grid ({qc['mask_grid']}) differs from the PAM50 template grid "
            f"({_describe_grid(space.reference_shape, space.reference_affine)}): resampled nearest-neighbour onto it"
        )
    binary = nib.Nifti1Image(data.astype(np.uint8), mask.affine)
    resampled = resample_from_to(binary, (space.pam.cord.shape, space.pam.affine), order=0)
    lesions = np.asarray(resampled.dataobj) > 0
    return lesions, warnings, qc


def _lesions_by_extent(lesions: np.ndarray, space: Pam50Space, config: Config) -> pd.DataFrame:
    """:func:`regiontag.cord.levels.lesion_table` with PAM50's vertebral levels and segment counts."""
    table = lesion_table(lesions, space.centerline, config.cord)
    for index, row in table.iterrows():
        text, segments = space.span_segments(row["top_mm"], row["bottom_mm"])
        table.at[index, "vertebral_levels"] = text
        table.at[index, "segments"] = segments
        table.at[index, "longitudinally_extensive"] = space.span_levels(row["top_mm"], row["bottom_mm"])[1]
    return table


def tag_pam50_lesions(mask: nib.Nifti1Image, pam50_dir: str | Path, config: Config,
                      spec_path: str | Path | None = None) -> Pam50Tagging:
    """Region table and findings of a lesion mask in PAM50 space.

    Parameters
    ----------
    mask : nibabel.Nifti1Image
        Binary lesion mask in PAM50 space (see :func:`mask_on_pam50_grid`).
    pam50_dir : str or Path
        The PAM50 folder (:func:`regiontag.atlas.pam50.space.find_pam50_dir`).
    config : Config
        ``involvement`` (involved flags) and ``cord`` (axial share threshold) sections.
    spec_path : str or Path, optional
        Cord atlas YAML (default: the shipped ``atlases/cord.yaml``).

    Returns
    -------
    Pam50Tagging
    """
    space = pam50_space(pam50_dir, spec_path)
    all_lesions, warnings, qc = mask_on_pam50_grid(mask, space)
    cord = space.pam.cord
    lesions = all_lesions & cord
    voxel_ml = float(abs(np.linalg.det(space.pam.affine[:3, :3]))) / 1000.0
    mask_ml = qc["mask_lesion_volume_ml"]
    cord_ml = float(lesions.sum() * voxel_ml)
    outside_ml = max(mask_ml - cord_ml, 0.0)
    if mask_ml > 0 and outside_ml / mask_ml > OUTSIDE_CORD_WARNING:
        warnings.append(
            f"{outside_ml / mask_ml:.0%} of the mask ({outside_ml:.3f} of {mask_ml:.3f} ml) lies outside the "
            f"PAM50 cord and is not tagged"
        )
    labels = space.labels.astype(np.int64)
    lesion_img = nib.Nifti1Image(lesions.astype(np.uint8), space.pam.affine)
    table = region_table(lesion_img, space.atlas.labels_img, space.atlas, None, config.involvement)
    table = fill_cord_columns(table, lesions, labels, space.atlas, space.centerline, config,
                              span_levels=space.span_levels)
    table["csa_ratio"] = np.nan  # the template's cord, not the patient's: no swelling information
    by_extent = _lesions_by_extent(lesions, space, config)
    stage_findings = cord_findings(lesions, labels, space.radius, space.atlas, by_extent, space.centerline,
                                   voxel_ml, config, True)
    features = dict(stage_findings["features"])
    features.update({name: None for name in NOT_ASSESSABLE})
    findings = {
        "body_parts_imaged": ["cord"],
        "sequences": {},
        "lesion_volume_ml": {"cord": stage_findings["lesion_volume_ml"]},
        "n_lesions": {"cord": stage_findings["n_lesions"]},
        "features": features,
    }
    qc.update({
        "cord_lesion_volume_ml": cord_ml,
        "outside_cord_volume_ml": outside_ml,
        "vertebral_level_method": "PAM50 vertebral levels (template/PAM50_levels.nii.gz)",
        "lesions": by_extent.to_dict(orient="records"),
    })
    atlas = {
        "name": space.atlas.name,
        "space": space.atlas.space,
        "sha256": space.atlas.sha256,
        "source": str(space.pam.folder),
        "source_commit": space.pam.source_commit,
    }
    return Pam50Tagging(table, findings, warnings, qc, atlas)
