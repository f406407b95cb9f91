"""``regiontag tag MASK``: tag a lesion mask made elsewhere (LST-AI, manual tracing) by region.

``--space MNI152``: the mask is in template space; the atlas labels are resampled
onto the mask's grid.  ``--image IMAGE``: the mask is in the space of IMAGE (its
source scan); IMAGE is registered to MNI152 and the atlas brought into its space.
Writes ``regions.csv``, ``findings.json`` and ``scores.csv`` into ``--output DIR``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Callable

import nibabel as nib
import numpy as np
import pandas as pd
from scipy import ndimage

from pipeline import outputs
from pipeline.config import Config, ConfigError

#: Spaces accepted by ``--space`` (brain template spaces of the brain atlas).
TEMPLATE_SPACES = ("MNI152", "MNI152NLin2009aSym", "MNI152NLin2009cAsym", "MNI152NLin6Asym")
#: A largest connected lesion of at least this volume counts as confluent (as in the brain stage).
CONFLUENT_CLUSTER_ML = 3.0


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``tag`` command."""
    parser = subparsers.add_parser(
        "tag",
        help="tag an external lesion mask by atlas region and score it",
        description="Tag a lesion mask produced by another tool or drawn by hand: MASK is either in "
        "MNI152 space (--space MNI152) or in the space of its source scan (--image IMAGE, registered "
        "to MNI152 with ANTs). Writes regions.csv, findings.json and scores.csv into --output DIR. "
        "Research use only, not a medical device.",
    )
    parser.add_argument("mask", type=Path, metavar="MASK", help="lesion mask NIfTI (non-zero or > --threshold = lesion)")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--image", type=Path, metavar="IMAGE", help="the scan MASK was drawn on (subject space)")
    where.add_argument("--space", choices=TEMPLATE_SPACES, help="MASK is already in this template space")
    parser.add_argument("--output", type=Path, required=True, metavar="DIR")
    parser.add_argument("--sequence", default="FLAIR", choices=("FLAIR", "T2w", "T1w", "DWI"),
                        help="contrast of --image (template used for registration; default FLAIR)")
    parser.add_argument("--threshold", type=float, default=0.5,
                        help="voxels above this are lesion (probability masks); default 0.5")
    parser.add_argument("--session", metavar="NAME", help="session name in the tables (default: DIR's name)")
    parser.add_argument("--patterns", type=Path, metavar="DIR", help="pattern library folder")
    parser.add_argument("--config", type=Path, metavar="FILE", help="YAML overriding configs/default.yaml")
    parser.set_defaults(func=run)
    return parser


def binary_mask(mask: nib.Nifti1Image, threshold: float) -> nib.Nifti1Image:
    """A uint8 0/1 mask (values above ``threshold``) on the same grid."""
    data = np.asarray(mask.dataobj, dtype=np.float32)
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise ValueError(f"mask must be 3D, got shape {data.shape}")
    binary = (np.nan_to_num(data) > threshold).astype(np.uint8)
    return nib.Nifti1Image(binary, mask.affine)


def labels_for_mni_mask(mask: nib.Nifti1Image, atlas) -> nib.Nifti1Image:
    """The atlas leaf labels resampled (nearest neighbour) onto the mask's grid."""
    from pipeline.niimg import resample_to

    labels = resample_to(atlas.labels_img, mask, order=0)
    return nib.Nifti1Image(np.asarray(labels.dataobj).astype(np.int32), mask.affine)


def labels_for_subject_mask(mask: nib.Nifti1Image, image_path: Path, config: Config, workdir: Path,
                            sequence: str, labeller: Callable | None = None,
                            ) -> tuple[nib.Nifti1Image, nib.Nifti1Image, dict[str, Any]]:
    """Register IMAGE to MNI152, bring the labels into its space; the mask moved onto IMAGE's grid if needed.

    ``labeller(image, config, workdir, sequence=...) -> (labels, qc)`` defaults to
    :func:`pipeline.brain.atlas_labels_for_image` (ANTs registration).
    """
    from pipeline.niimg import check_niimg, resample_to

    if labeller is None:
        from pipeline.brain import atlas_labels_for_image as labeller
    image = check_niimg(image_path)
    labels, qc = labeller(image, config, workdir, sequence=sequence)
    if mask.shape[:3] != labels.shape[:3] or not np.allclose(mask.affine, labels.affine, atol=1e-3):
        mask = resample_to(mask, labels, order=0)
        mask = nib.Nifti1Image((np.asarray(mask.dataobj) > 0).astype(np.uint8), labels.affine)
    return labels, mask, qc


def mask_findings(mask: nib.Nifti1Image, source: str) -> dict[str, Any]:
    """Findings of a brain lesion mask: volume, lesion count, confluence; other features unknown."""
    from pipeline.niimg import voxel_volume_ml

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
            "confluent": bool(largest_ml >= CONFLUENT_CLUSTER_ML),
            "restricted_diffusion": None,
            "enhancement": None,
        },
        "source": source,
    }


def tag_mask(mask_path: Path, output_dir: Path, config: Config, *, space: str | None = None,
             image: Path | None = None, sequence: str = "FLAIR", threshold: float = 0.5,
             session: str | None = None, patterns_dir: Path | None = None,
             atlas=None, labeller: Callable | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Region and score tables of an external mask, written into ``output_dir``.

    Parameters
    ----------
    mask_path : Path
        The lesion mask.
    output_dir : Path
        Where ``regions.csv``, ``findings.json`` and ``scores.csv`` go.
    config : Config
        Run configuration (involvement, scoring, registration sections).
    space : str, optional
        Template space of the mask (``MNI152``); or
    image : Path, optional
        The scan the mask is aligned with (registered to MNI152).
    atlas : Atlas, optional
        Brain atlas in template space (default: the built-in composite atlas); with
        ``image`` it must be the atlas ``labeller`` warps.
    labeller : callable, optional
        Subject-space labels of ``image`` (default: registration with
        :func:`pipeline.brain.atlas_labels_for_image`).

    Returns
    -------
    (regions, scores) : tuple of pandas.DataFrame
        With a ``session`` column, as written to ``regions.csv`` and ``scores.csv``.
    """
    from pipeline.involvement import region_table
    from pipeline.niimg import check_niimg
    from pipeline.patterns.library import load_library
    from pipeline.patterns.scoring import score_session

    library = load_library(patterns_dir or config.scoring.patterns_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    mask = binary_mask(check_niimg(mask_path), threshold)
    if atlas is None:
        from pipeline.brain import brain_atlas

        atlas = brain_atlas()
    if image is not None:
        labels, mask, _ = labels_for_subject_mask(mask, image, config, output_dir, sequence, labeller)
    else:
        labels = labels_for_mni_mask(mask, atlas)
    regions = region_table(mask, labels, atlas, None, config.involvement)
    findings = mask_findings(mask, f"regiontag tag {mask_path} ({'image ' + str(image) if image else space})")
    scores = score_session(regions, findings, library, config.scoring)
    session_id = session or output_dir.resolve().name
    regions.insert(0, "session", session_id)
    scores.insert(0, "session", session_id)
    outputs.write_csv(regions, output_dir / outputs.REGIONS_CSV, outputs.REGION_COLUMNS)
    outputs.write_json(findings, output_dir / outputs.FINDINGS_JSON)
    outputs.write_csv(scores, output_dir / outputs.SCORES_CSV, outputs.SCORE_COLUMNS)
    return regions, scores


def run(args: argparse.Namespace) -> int:
    """Tag the mask; exit 0, 1 when it cannot be read or tagged, 2 for a bad config or library."""
    from pipeline.config import load_config

    try:
        config = load_config(args.config)
    except ConfigError as error:
        print(f"regiontag tag: {error}", file=sys.stderr)
        return 2
    try:
        regions, scores = tag_mask(
            args.mask, args.output, config, space=args.space, image=args.image, sequence=args.sequence,
            threshold=args.threshold, session=args.session, patterns_dir=args.patterns,
        )
    except ConfigError as error:
        print(f"regiontag tag: {error}", file=sys.stderr)
        return 2
    except (OSError, ValueError, nib.filebasedimages.ImageFileError) as error:
        print(f"regiontag tag: {args.mask}: {error}", file=sys.stderr)
        return 1
    involved = regions[(regions["side"] == "both") & regions["involved"].astype(bool)]
    matched = scores[scores["match"].astype(bool)]["pattern"].tolist()
    print(f"{len(involved)} regions involved; matching patterns: {', '.join(matched) or 'none'}")
    print(f"wrote {args.output / outputs.REGIONS_CSV} and {args.output / outputs.SCORES_CSV}")
    return 0
