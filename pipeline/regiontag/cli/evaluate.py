"""``regiontag evaluate TRUTH_DIR RESULTS_DIR``: pipeline results against phantom truth.

Writes ``evaluation.csv`` (one row per session: lesion Dice, 95th-percentile
Hausdorff distance, absolute volume difference, lesion-wise recall and F1,
registration Dice of the warped atlas, region-flag accuracy, pattern rank)
and ``evaluation_summary.json`` (means, pattern top-1/top-3 accuracy, healthy
false-match rate) into RESULTS_DIR, or ``--out``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from regiontag.cli import plain_help


def _format(value: object) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def run_evaluate(args: argparse.Namespace) -> int:
    """Evaluate and print the summary."""
    from regiontag.accuracy.metrics import EVALUATION_CSV, EVALUATION_SUMMARY_JSON, evaluate

    try:
        _, summary = evaluate(args.truth_dir, args.results_dir, out_dir=args.out)
    except FileNotFoundError as error:
        print(f"regiontag evaluate: {error}", file=sys.stderr)
        return 2
    for name, value in summary.items():
        if not isinstance(value, dict) and value is not None:
            print(f"{name}: {_format(value)}")
    target = Path(args.out or args.results_dir)
    print(f"per-session metrics: {target / EVALUATION_CSV}")
    print(f"summary: {target / EVALUATION_SUMMARY_JSON}")
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``regiontag evaluate``."""
    parser = subparsers.add_parser(
        "evaluate", help="compare results with phantom truth", description=plain_help(__doc__),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("truth_dir", metavar="TRUTH_DIR", help="phantom truth folder (or the phantom folder)")
    parser.add_argument("results_dir", metavar="RESULTS_DIR", help="regiontag run output folder")
    parser.add_argument("--out", help="write evaluation.csv and the summary here (default RESULTS_DIR)")
    parser.set_defaults(func=run_evaluate)
