"""``regiontag tag MASK``: tag a lesion mask made elsewhere (LST-AI, SCT, manual tracing) by region.

``--space MNI152``: a brain mask in template space; the atlas labels are resampled
onto the mask's grid.  ``--image IMAGE``: a brain mask in the space of IMAGE (its
source scan); IMAGE is registered to MNI152 and the atlas brought into its space.
``--space PAM50``: a spinal cord mask in PAM50 template space (Spinal Cord Toolbox);
our cord regions are drawn on the PAM50 grid from PAM50's own tract maps and
vertebral levels (:mod:`pipeline.cord.template_space`).  PAM50 is not shipped: the
folder comes from ``--pam50 DIR``, else ``cord.atlas_path`` of the config, else
``$SCT_DIR/data/PAM50``.  Writes ``regions.csv``, ``findings.json``, ``scores.csv``
and ``provenance.json`` (last) into ``--output DIR``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Callable

import nibabel as nib
import numpy as np
import pandas as pd
from scipy import ndimage

from pipeline import outputs
from pipeline.config import Config, ConfigError

#: Brain template spaces accepted by ``--space`` (spaces of the brain atlas).
TEMPLATE_SPACES = ("MNI152", "MNI152NLin2009aSym", "MNI152NLin2009cAsym", "MNI152NLin6Asym")
#: ``--space`` of spinal cord masks in the Spinal Cord Toolbox template.
PAM50_SPACE = "PAM50"
#: A largest connected lesion of at least this volume counts as confluent (as in the brain stage).
CONFLUENT_CLUSTER_ML = 3.0


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``tag`` command."""
    parser = subparsers.add_parser(
        "tag",
        help="tag an external lesion mask (brain or spinal cord) by atlas region and score it",
        description="Tag a lesion mask produced by another tool or drawn by hand: a brain mask in "
        "MNI152 space (--space MNI152) or in the space of its source scan (--image IMAGE, registered "
        "to MNI152 with ANTs), or a spinal cord mask in PAM50 template space (--space PAM50; the "
        "PAM50 folder from --pam50 DIR, else cord.atlas_path in --config, else $SCT_DIR/data/PAM50; "
        "a mask on another grid in PAM50 space is resampled nearest-neighbour with a warning). "
        "Writes regions.csv, findings.json, scores.csv and provenance.json into --output DIR. "
        "Research use only, not a medical device.",
    )
    parser.add_argument("mask", type=Path, metavar="MASK", help="lesion mask NIfTI (non-zero or > --threshold = lesion)")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--image", type=Path, metavar="IMAGE", help="the scan MASK was drawn on (subject space)")
    where.add_argument("--space", choices=TEMPLATE_SPACES + (PAM50_SPACE,),
                       help="MASK is already in this template space (PAM50: spinal cord)")
    parser.add_argument("--pam50", type=Path, metavar="DIR",
                        help="PAM50 folder of the Spinal Cord Toolbox (with --space PAM50; "
                        "default: cord.atlas_path, else $SCT_DIR/data/PAM50)")
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


def _input_record(path: Path, role: str) -> dict[str, Any]:
    """Provenance entry of one input file (path, checksum, grid)."""
    from pipeline.validation import sha256_file

    image = nib.load(str(path))
    return {
        "path": str(Path(path).resolve()), "role": role, "sha256": sha256_file(path),
        "shape": [int(n) for n in image.shape],
        "zooms": [round(float(z), 4) for z in image.header.get_zooms()[:3]],
        "orientation": "".join(nib.aff2axcodes(image.affine)),
    }


def write_tag_provenance(output_dir: Path, *, session_id: str, inputs: list[dict[str, Any]], reference: dict[str, str],
                         config: Config, atlases: dict[str, dict[str, str]], timings: dict[str, float],
                         warnings: list[str], qc: dict[str, Any], started: str, patterns_dir: Path | None,
                         cord_atlas_path: Path | None = None) -> Path:
    """Write ``provenance.json`` of a tagged mask (last file: the folder is complete)."""
    from pipeline.provenance import build_provenance, session_fingerprint

    checksums = {Path(record["path"]).name: record["sha256"] for record in inputs}
    provenance = build_provenance(
        session_id=session_id, status="warning" if warnings else "ok", inputs=inputs, reference=reference,
        config=config, atlases=atlases, timings=timings, warnings=warnings, qc=qc, started=started,
        fingerprint=session_fingerprint(checksums, config, patterns_dir, cord_atlas_path),
    )
    return outputs.write_json(provenance, output_dir / outputs.PROVENANCE_JSON)


def tag_mask(mask_path: Path, output_dir: Path, config: Config, *, space: str | None = None,
             image: Path | None = None, sequence: str = "FLAIR", threshold: float = 0.5,
             session: str | None = None, patterns_dir: Path | None = None,
             atlas=None, labeller: Callable | None = None, pam50_dir: Path | None = None,
             warnings: list[str] | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Region and score tables of an external mask, written into ``output_dir``.

    Parameters
    ----------
    mask_path : Path
        The lesion mask.
    output_dir : Path
        Where ``regions.csv``, ``findings.json``, ``scores.csv`` and ``provenance.json`` go.
    config : Config
        Run configuration (involvement, scoring, registration, cord sections).
    space : str, optional
        Template space of the mask: a brain space (``MNI152``) or ``PAM50`` (spinal cord); or
    image : Path, optional
        The scan a brain mask is aligned with (registered to MNI152).
    atlas : Atlas, optional
        Brain atlas in template space (default: the built-in composite atlas); with
        ``image`` it must be the atlas ``labeller`` warps.
    labeller : callable, optional
        Subject-space labels of ``image`` (default: registration with
        :func:`pipeline.brain.atlas_labels_for_image`).
    pam50_dir : Path, optional
        PAM50 folder for ``space="PAM50"`` (default: ``cord.atlas_path``, else
        ``$SCT_DIR/data/PAM50``; see :func:`pipeline.atlas.pam50_space.find_pam50_dir`).
    warnings : list of str, optional
        Receives one-line warnings (also written to ``provenance.json``).

    Returns
    -------
    (regions, scores) : tuple of pandas.DataFrame
        With a ``session`` column, as written to ``regions.csv`` and ``scores.csv``.

    Raises
    ------
    ConfigError
        Bad pattern library or configuration; ``Pam50NotFoundError`` when no PAM50 folder is found.
    """
    from pipeline.involvement import region_table
    from pipeline.niimg import check_niimg
    from pipeline.patterns.library import load_library
    from pipeline.patterns.scoring import score_session
    from pipeline.provenance import utc_now

    started, clock = utc_now(), time.perf_counter()
    warnings = [] if warnings is None else warnings
    library = load_library(patterns_dir or config.scoring.patterns_dir)
    pam50_folder = None
    if space == PAM50_SPACE:
        from pipeline.atlas.pam50_space import find_pam50_dir

        pam50_folder = find_pam50_dir(pam50_dir, config.cord.atlas_path)
    output_dir.mkdir(parents=True, exist_ok=True)
    mask = binary_mask(check_niimg(mask_path), threshold)
    inputs = [_input_record(mask_path, "mask")] + ([_input_record(image, "image")] if image is not None else [])
    source = f"regiontag tag {mask_path} ({'image ' + str(image) if image else space})"
    if pam50_folder is not None:
        from pipeline.cord.template_space import tag_pam50_lesions

        tagging = tag_pam50_lesions(mask, pam50_folder, config)
        regions, findings, qc = tagging.regions, {**tagging.findings, "source": source}, {"cord": tagging.qc}
        warnings.extend(tagging.warnings)
        atlases, body_part = {"cord": tagging.atlas}, "cord"
    else:
        if atlas is None:
            from pipeline.brain import brain_atlas

            atlas = brain_atlas()
        qc = {}
        if image is not None:
            labels, mask, qc = labels_for_subject_mask(mask, image, config, output_dir, sequence, labeller)
        else:
            labels = labels_for_mni_mask(mask, atlas)
        regions = region_table(mask, labels, atlas, None, config.involvement)
        findings = mask_findings(mask, source)
        qc = {"brain": qc}
        atlases, body_part = {"brain": {"name": atlas.name, "space": atlas.space, "sha256": atlas.sha256}}, "brain"
    timings = {"tagging": time.perf_counter() - clock}
    clock = time.perf_counter()
    scores = score_session(regions, findings, library, config.scoring)
    timings["scoring"] = time.perf_counter() - clock
    session_id = session or output_dir.resolve().name
    regions.insert(0, "session", session_id)
    scores.insert(0, "session", session_id)
    outputs.write_csv(regions, output_dir / outputs.REGIONS_CSV, outputs.REGION_COLUMNS)
    outputs.write_json(findings, output_dir / outputs.FINDINGS_JSON)
    outputs.write_csv(scores, output_dir / outputs.SCORES_CSV, outputs.SCORE_COLUMNS)
    write_tag_provenance(
        output_dir, session_id=session_id, inputs=inputs, reference={body_part: str(Path(mask_path).resolve())},
        config=config, atlases=atlases, timings=timings, warnings=warnings, qc=qc, started=started,
        patterns_dir=patterns_dir, cord_atlas_path=pam50_folder,
    )
    return regions, scores


def run(args: argparse.Namespace) -> int:
    """Tag the mask; exit 0, 1 when it cannot be read or tagged, 2 for a bad config, library or PAM50 folder."""
    from pipeline.commands import load_config_or_report

    if args.pam50 is not None and args.space != PAM50_SPACE:
        print("regiontag tag: --pam50 only applies to --space PAM50", file=sys.stderr)
        return 2
    config = load_config_or_report("tag", args.config)
    if config is None:
        return 2
    warnings: list[str] = []
    try:
        regions, scores = tag_mask(
            args.mask, args.output, config, space=args.space, image=args.image, sequence=args.sequence,
            threshold=args.threshold, session=args.session, patterns_dir=args.patterns, pam50_dir=args.pam50,
            warnings=warnings,
        )
    except ConfigError as error:
        print(f"regiontag tag: {error}", file=sys.stderr)
        return 2
    except (OSError, ValueError, nib.filebasedimages.ImageFileError) as error:
        print(f"regiontag tag: {args.mask}: {error}", file=sys.stderr)
        return 1
    for warning in warnings:
        print(f"regiontag tag: warning: {warning}", file=sys.stderr)
    involved = regions[(regions["side"] == "both") & regions["involved"].astype(bool)]
    matched = scores[scores["match"].astype(bool)]["pattern"].tolist()
    print(f"{len(involved)} regions involved; matching patterns: {', '.join(matched) or 'none'}")
    print(f"wrote {args.output / outputs.REGIONS_CSV} and {args.output / outputs.SCORES_CSV}")
    return 0
