"""``regiontag tag MASK``: tag a lesion mask made elsewhere (LST-AI, SCT, manual tracing) by region.

``--space MNI152``: a brain mask in template space; the atlas labels are resampled
onto the mask's grid.  ``--image IMAGE``: a brain mask in the space of IMAGE (its
source scan); IMAGE is registered to MNI152 and the atlas brought into its space.
``--space PAM50``: a spinal cord mask in PAM50 template space (Spinal Cord Toolbox).
PAM50 is not shipped: the folder comes from ``--pam50 DIR``, else ``cord.atlas_path``
of the config, else ``$SCT_DIR/data/PAM50``.  Writes ``regions.csv``, ``findings.json``,
``scores.csv`` and ``provenance.json`` (last) into ``--output DIR``.

Argument parsing only; the work is :func:`regiontag.workflows.tag.tag_mask`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

#: Brain template spaces accepted by ``--space`` (``regiontag.workflows.tag.TEMPLATE_SPACES``;
#: repeated here so ``regiontag --help`` does not import the workflow).
TEMPLATE_SPACES = ("MNI152", "MNI152NLin2009aSym", "MNI152NLin2009cAsym", "MNI152NLin6Asym")
#: ``--space`` of spinal cord masks in the Spinal Cord Toolbox template (``regiontag.workflows.tag.PAM50_SPACE``).
PAM50_SPACE = "PAM50"


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


def run(args: argparse.Namespace) -> int:
    """Tag the mask; exit 0, 1 when it cannot be read or tagged, 2 for a bad config, library or PAM50 folder."""
    import nibabel as nib

    from regiontag import outputs
    from regiontag.cli import load_config_or_report
    from regiontag.config import ConfigError
    from regiontag.workflows.tag import tag_mask

    if args.pam50 is not None and args.space != PAM50_SPACE:
        print("regiontag tag: --pam50 only applies to --space PAM50", file=sys.stderr)
        return 2
    config = load_config_or_report("tag", args.config)
    if config is None:
        return 2
    try:
        result = tag_mask(
            args.mask, args.output, config, space=args.space, image=args.image, sequence=args.sequence,
            threshold=args.threshold, session=args.session, patterns_dir=args.patterns, pam50_dir=args.pam50,
        )
    except ConfigError as error:
        print(f"regiontag tag: {error}", file=sys.stderr)
        return 2
    except (OSError, ValueError, nib.filebasedimages.ImageFileError) as error:
        message = " ".join(str(error).split())
        message = message.removeprefix(f"{Path(args.mask).name}: ")  # input errors name their file already
        print(f"regiontag tag: {args.mask}: {message}", file=sys.stderr)
        return 1
    for warning in result.warnings:
        print(f"regiontag tag: warning: {warning}", file=sys.stderr)
    print(f"{len(result.involved_regions)} regions involved; matching patterns: "
          f"{', '.join(result.matched_patterns) or 'none'}")
    print(f"wrote {args.output / outputs.REGIONS_CSV} and {args.output / outputs.SCORES_CSV}")
    return 0
