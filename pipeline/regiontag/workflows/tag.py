"""Tag a lesion mask made elsewhere (LST-AI, SCT, manual tracing) by atlas region and score it.

The workflow behind ``regiontag tag MASK``: :func:`tag_mask` takes a brain mask in a
template space (atlas labels resampled onto its grid), a brain mask on its source scan
(the scan registered to MNI152, the atlas brought into its space) or a spinal cord mask
in PAM50 space (:mod:`regiontag.cord.template_space`; PAM50 is not shipped).  It writes
``regions.csv``, ``lesions.csv``, ``findings.json``, ``scores.csv`` and ``provenance.json`` (last) and
returns the same tables in memory as a :class:`TagResult`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import nibabel as nib
import numpy as np
import pandas as pd
from scipy import ndimage

from regiontag import outputs
from regiontag.atlas.involvement import region_table
from regiontag.atlas.lesion_table import lesion_table, summarise_lesions
from regiontag.atlas.pam50.space import find_pam50_dir, pam50_space
from regiontag.brain.stage import atlas_labels_for_image, brain_atlas
from regiontag.config import Config
from regiontag.cord.template_space import mask_on_pam50_grid, tag_pam50_lesions
from regiontag.inputs.scan import sha256_file
from regiontag.niimg import check_niimg, resample_to, voxel_volume_ml
from regiontag.outputs.provenance import build_provenance, input_record, session_fingerprint, utc_now
from regiontag.patterns.library import load_library
from regiontag.patterns.scoring import score_session

if TYPE_CHECKING:
    from regiontag.atlas.tree import Atlas

#: Brain template spaces accepted as ``space`` (spaces of the brain atlas).
TEMPLATE_SPACES = ("MNI152", "MNI152NLin2009aSym", "MNI152NLin2009cAsym", "MNI152NLin6Asym")
#: ``space`` of spinal cord masks in the Spinal Cord Toolbox template.
PAM50_SPACE = "PAM50"

#: ``labeller(image, config, workdir, sequence=...) -> (labels, qc)``: atlas leaf labels on IMAGE's grid.
Labeller = Callable[..., tuple[nib.Nifti1Image, dict[str, Any]]]


@dataclass
class TagResult:
    """What :func:`tag_mask` wrote, and the same tables in memory.

    Attributes
    ----------
    output_dir : Path
        Folder holding ``regions.csv``, ``findings.json``, ``scores.csv`` and ``provenance.json``.
    session_id : str
        Value of the ``session`` column.
    body_part : str
        ``"brain"`` or ``"cord"``.
    region_table : pandas.DataFrame
        One row per region and side, columns ``outputs.REGION_COLUMNS`` (as in ``regions.csv``).
    scores : pandas.DataFrame
        One row per pattern, columns ``outputs.SCORE_COLUMNS`` (as in ``scores.csv``).
    findings : dict
        Contents of ``findings.json``.
    warnings : list of str
        One-line warnings (also in ``provenance.json``).
    """

    output_dir: Path
    session_id: str
    body_part: str
    region_table: pd.DataFrame
    scores: pd.DataFrame
    findings: dict[str, Any]
    warnings: list[str] = field(default_factory=list)
    #: One row per lesion, columns ``outputs.LESION_COLUMNS`` (as in ``lesions.csv``).
    lesions: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=outputs.LESION_COLUMNS))

    @property
    def involved_regions(self) -> list[str]:
        """Regions involved on either side (``side == "both"`` rows flagged ``involved``)."""
        table = self.region_table
        return table.loc[(table["side"] == "both") & table["involved"].astype(bool), "region"].tolist()

    @property
    def matched_patterns(self) -> list[str]:
        """Patterns whose score reaches the match threshold, best first."""
        return self.scores.loc[self.scores["match"].astype(bool), "pattern"].tolist()


def binary_mask(mask: nib.Nifti1Image, threshold: float) -> nib.Nifti1Image:
    """A uint8 0/1 mask (values above ``threshold``) on the same grid.

    Parameters
    ----------
    mask : nibabel.Nifti1Image
        3D mask or probability map (a 4D image with one volume is accepted).
    threshold : float
        Voxels strictly above it are lesion; NaN counts as 0.

    Returns
    -------
    nibabel.Nifti1Image

    Raises
    ------
    ValueError
        When the image is not 3D.

    Examples
    --------
    >>> image = nib.Nifti1Image(np.array([[[0.2, 0.7]]], np.float32), np.eye(4))
    >>> binary_mask(image, 0.5).get_fdata().ravel().tolist()
    [0.0, 1.0]
    """
    data = np.asarray(mask.dataobj, dtype=np.float32)
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise ValueError(f"mask must be 3D, got shape {data.shape}")
    binary = (np.nan_to_num(data) > threshold).astype(np.uint8)
    return nib.Nifti1Image(binary, mask.affine)


def labels_for_mni_mask(mask: nib.Nifti1Image, atlas: Atlas) -> nib.Nifti1Image:
    """The atlas leaf labels resampled (nearest neighbour) onto the mask's grid.

    Parameters
    ----------
    mask : nibabel.Nifti1Image
        Mask in the atlas' template space, on any grid.
    atlas : Atlas
        Brain atlas in template space.

    Returns
    -------
    nibabel.Nifti1Image
        int32 leaf labels with the mask's shape and affine.

    Examples
    --------
    >>> labels = labels_for_mni_mask(mask, brain_atlas())  # doctest: +SKIP
    """
    labels = resample_to(atlas.labels_img, mask, order=0)
    return nib.Nifti1Image(np.asarray(labels.dataobj).astype(np.int32), mask.affine)


def labels_for_subject_mask(
    mask: nib.Nifti1Image, image_path: Path, config: Config, workdir: Path, *,
    sequence: str = "FLAIR", labeller: Labeller | None = None,
) -> tuple[nib.Nifti1Image, nib.Nifti1Image, dict[str, Any]]:
    """Register IMAGE to MNI152, bring the labels into its space; the mask moved onto IMAGE's grid if needed.

    Parameters
    ----------
    mask : nibabel.Nifti1Image
        Binary mask drawn on IMAGE (possibly on another grid).
    image_path : Path
        The scan the mask was drawn on.
    config : Config
        ``registration`` section.
    workdir : Path
        Folder for registration intermediates.
    sequence : str
        Contrast of IMAGE (chooses the template).
    labeller : callable, optional
        ``labeller(image, config, workdir, sequence=...) -> (labels, qc)``; default
        :func:`regiontag.brain.stage.atlas_labels_for_image` (ANTs registration).

    Returns
    -------
    (labels, mask, qc) : tuple
        Leaf labels on IMAGE's grid, the mask on the same grid, registration QC.

    Examples
    --------
    >>> labels, mask, qc = labels_for_subject_mask(mask, Path("flair.nii.gz"), config, workdir)  # doctest: +SKIP
    """
    labeller = labeller or atlas_labels_for_image
    image = check_niimg(image_path)
    labels, qc = labeller(image, config, workdir, sequence=sequence)
    if mask.shape[:3] != labels.shape[:3] or not np.allclose(mask.affine, labels.affine, atol=1e-3):
        mask = resample_to(mask, labels, order=0)
        mask = nib.Nifti1Image((np.asarray(mask.dataobj) > 0).astype(np.uint8), labels.affine)
    return labels, mask, qc


def mask_findings(mask: nib.Nifti1Image, source: str, *, confluent_min_ml: float) -> dict[str, Any]:
    """Findings of a brain lesion mask: volume, lesion count, confluence; other features unknown.

    Parameters
    ----------
    mask : nibabel.Nifti1Image
        Binary lesion mask.
    source : str
        Free text recorded as ``source``.
    confluent_min_ml : float
        Confluent when the largest connected lesion reaches this volume
        (``config.involvement.confluent_min_ml``, as in the brain stage).

    Returns
    -------
    dict
        The contents of ``findings.json``.

    Examples
    --------
    >>> data = np.zeros((20, 20, 20), np.uint8); data[2:18, 2:18, 2:18] = 1
    >>> findings = mask_findings(nib.Nifti1Image(data, np.eye(4)), "test", confluent_min_ml=3.0)
    >>> findings["n_lesions"], findings["features"]["confluent"]
    ({'brain': 1}, True)
    """
    data = np.asarray(mask.dataobj) > 0
    components, count = ndimage.label(data)
    voxel_ml = voxel_volume_ml(mask)
    largest_ml = float(np.bincount(components.ravel())[1:].max() * voxel_ml) if count else 0.0
    return {
        "body_parts_imaged": ["brain"],
        "sequences": {},
        "lesion_volume_ml": {"brain": float(data.sum() * voxel_ml)},
        "n_lesions": {"brain": int(count)},
        "features": {
            "confluent": bool(largest_ml >= confluent_min_ml),
            "restricted_diffusion": None,
            "enhancement": None,
        },
        "source": source,
    }


def _input_of(path: Path, role: str) -> dict[str, Any]:
    return input_record(path, nib.load(str(path)), sha256_file(path), role=role)


def write_tag_provenance(
    output_dir: Path, *, session_id: str, inputs: list[dict[str, Any]], reference: dict[str, str],
    config: Config, atlases: dict[str, dict[str, str]], timings: dict[str, float], warnings: list[str],
    qc: dict[str, Any], started: str, patterns_dir: Path | None, cord_atlas_path: Path | None = None,
) -> Path:
    """Write ``provenance.json`` of a tagged mask (last file: the folder is complete).

    Returns
    -------
    Path
        The written file.

    Examples
    --------
    >>> write_tag_provenance(out, session_id="ext-1", inputs=[], reference={}, config=config, atlases={},
    ...                      timings={}, warnings=[], qc={}, started=utc_now(), patterns_dir=None)  # doctest: +SKIP
    """
    checksums = {Path(record["path"]).name: record["sha256"] for record in inputs}
    provenance = build_provenance(
        session_id=session_id, status="warning" if warnings else "ok", inputs=inputs, reference=reference,
        config=config, atlases=atlases, timings=timings, warnings=warnings, qc=qc, started=started,
        fingerprint=session_fingerprint(checksums, config, patterns_dir, cord_atlas_path),
    )
    return outputs.write_json(provenance, output_dir / outputs.PROVENANCE_JSON)


def _tag_brain(
    mask: nib.Nifti1Image, config: Config, output_dir: Path, source: str, *, image: Path | None,
    sequence: str, atlas: Atlas | None, labeller: Labeller | None,
) -> tuple[pd.DataFrame, dict[str, Any], dict[str, Any], dict[str, dict[str, str]], pd.DataFrame]:
    """Regions, findings, qc, atlas record and lesion table of a brain mask."""
    if atlas is None:
        atlas = brain_atlas()
    qc: dict[str, Any] = {}
    if image is not None:
        labels, mask, qc = labels_for_subject_mask(mask, image, config, output_dir, sequence=sequence,
                                                   labeller=labeller)
    else:
        labels = labels_for_mni_mask(mask, atlas)
    regions = region_table(mask, labels, atlas, None, config.involvement)
    findings = mask_findings(mask, source, confluent_min_ml=config.involvement.confluent_min_ml)
    # template mm of the centroids: the mask's own mm in template space; unknown for a subject mask
    lesions = lesion_table(mask, labels, atlas, template_space=image is None, config=config.involvement)
    findings["lesions"] = {"brain": summarise_lesions(lesions, min_lesion_ml=config.involvement.focal_min_lesion_ml)}
    return regions, findings, {"brain": qc}, {"brain": {"name": atlas.name, "space": atlas.space,
                                                        "sha256": atlas.sha256}}, lesions


def _pam50_lesions(mask: nib.Nifti1Image, pam50_folder: Path, config: Config, extent: list[dict]) -> pd.DataFrame:
    """Lesion table of a PAM50 cord mask, on the PAM50 grid the regions were computed on."""
    space = pam50_space(pam50_folder)
    lesions = mask_on_pam50_grid(mask, space)[0] & space.pam.cord
    return lesion_table(nib.Nifti1Image(lesions.astype(np.uint8), space.pam.affine), space.atlas.labels_img,
                        space.atlas, template_space=True, cord_extent=pd.DataFrame(extent), config=config.involvement)


def tag_mask(
    mask_path: str | Path, output_dir: str | Path, config: Config, *, space: str | None = None,
    image: str | Path | None = None, sequence: str = "FLAIR", threshold: float = 0.5, session: str | None = None,
    patterns_dir: str | Path | None = None, atlas: Atlas | None = None, labeller: Labeller | None = None,
    pam50_dir: str | Path | None = None,
) -> TagResult:
    """Region and score tables of an external mask, written into ``output_dir`` and returned.

    Parameters
    ----------
    mask_path : Path
        The lesion mask (non-zero or > ``threshold`` = lesion).
    output_dir : Path
        Where ``regions.csv``, ``findings.json``, ``scores.csv`` and ``provenance.json`` go.
    config : Config
        Run configuration (involvement, scoring, registration, cord sections).
    space : str, optional
        Template space of the mask: a brain space (:data:`TEMPLATE_SPACES`) or ``PAM50``
        (spinal cord); or, for a brain mask in subject space,
    image : Path, optional
        The scan a brain mask is aligned with (registered to MNI152).
    sequence : str
        Contrast of ``image`` (default FLAIR).
    threshold : float
        Voxels above it are lesion (probability masks); default 0.5.
    session : str, optional
        Value of the ``session`` column (default: the name of ``output_dir``).
    patterns_dir : Path, optional
        Pattern library folder (default: ``scoring.patterns_dir``, else the shipped one).
    atlas : Atlas, optional
        Brain atlas in template space (default: the built-in composite atlas); with
        ``image`` it must be the atlas ``labeller`` warps.
    labeller : callable, optional
        Subject-space labels of ``image`` (default: registration with
        :func:`regiontag.brain.stage.atlas_labels_for_image`).
    pam50_dir : Path, optional
        PAM50 folder for ``space="PAM50"`` (default: ``cord.atlas_path``, else
        ``$SCT_DIR/data/PAM50``; see :func:`regiontag.atlas.pam50.space.find_pam50_dir`).

    Returns
    -------
    TagResult
        The region table, scores, findings and warnings, as written.

    Raises
    ------
    ConfigError
        Bad pattern library or configuration; ``Pam50NotFoundError`` when no PAM50 folder is found.
    ValueError, OSError
        The mask (or image) cannot be read or is not 3D.

    Examples
    --------
    >>> from regiontag import load_config
    >>> result = tag_mask(Path("lesion_space-MNI152.nii.gz"), Path("tagged"), load_config(),
    ...                   space="MNI152")  # doctest: +SKIP
    >>> result.involved_regions, result.matched_patterns  # doctest: +SKIP
    """
    mask_path, output_dir = Path(mask_path), Path(output_dir)
    image = Path(image) if image is not None else None
    started, clock = utc_now(), time.perf_counter()
    warnings: list[str] = []
    library = load_library(patterns_dir or config.scoring.patterns_dir)
    pam50_folder = None
    if space == PAM50_SPACE:
        pam50_folder = find_pam50_dir(pam50_dir, config.cord.atlas_path)
    output_dir.mkdir(parents=True, exist_ok=True)
    mask = binary_mask(check_niimg(mask_path), threshold)
    inputs = [_input_of(mask_path, "mask")] + ([_input_of(image, "image")] if image is not None else [])
    source = f"regiontag tag {mask_path} ({'image ' + str(image) if image else space})"
    if pam50_folder is not None:
        tagging = tag_pam50_lesions(mask, pam50_folder, config)
        regions, findings, qc = tagging.regions, {**tagging.findings, "source": source}, {"cord": tagging.qc}
        warnings.extend(tagging.warnings)
        atlases, body_part = {"cord": tagging.atlas}, "cord"
        lesions = _pam50_lesions(mask, pam50_folder, config, tagging.qc.get("lesions", []))
        findings["lesions"] = {"cord": summarise_lesions(lesions, min_lesion_ml=config.involvement.focal_min_lesion_ml)}
    else:
        regions, findings, qc, atlases, lesions = _tag_brain(mask, config, output_dir, source, image=image,
                                                             sequence=sequence, atlas=atlas, labeller=labeller)
        body_part = "brain"
    timings = {"tagging": time.perf_counter() - clock}
    clock = time.perf_counter()
    scores = score_session(regions, findings, library, config.scoring)
    timings["scoring"] = time.perf_counter() - clock
    session_id = session or output_dir.resolve().name
    regions.insert(0, "session", session_id)
    scores.insert(0, "session", session_id)
    lesions.insert(0, "session", session_id)
    regions = regions.reindex(columns=outputs.REGION_COLUMNS)
    scores = scores.reindex(columns=outputs.SCORE_COLUMNS)
    lesions = lesions.reindex(columns=outputs.LESION_COLUMNS)
    outputs.write_csv(regions, output_dir / outputs.REGIONS_CSV, outputs.REGION_COLUMNS)
    outputs.write_csv(lesions, output_dir / outputs.LESIONS_CSV, outputs.LESION_COLUMNS)
    outputs.write_json(findings, output_dir / outputs.FINDINGS_JSON)
    outputs.write_csv(scores, output_dir / outputs.SCORES_CSV, outputs.SCORE_COLUMNS)
    write_tag_provenance(
        output_dir, session_id=session_id, inputs=inputs, reference={body_part: str(Path(mask_path).resolve())},
        config=config, atlases=atlases, timings=timings, warnings=warnings, qc=qc, started=started,
        patterns_dir=patterns_dir, cord_atlas_path=pam50_folder,
    )
    return TagResult(output_dir=output_dir, session_id=session_id, body_part=body_part, region_table=regions,
                     scores=scores, findings=findings, warnings=warnings, lesions=lesions)
