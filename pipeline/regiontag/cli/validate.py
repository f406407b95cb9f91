"""``regiontag validate OUT``: accuracy of the pipeline on the standard phantom suite.

Generates the seeded suite into OUT/suite, runs the pipeline on it into
OUT/results (resumable: re-running skips finished sessions), evaluates the
results against the phantom truth and writes OUT/validation: evaluation.csv,
summary.json, validation_report.md, index.html and plots of accuracy against
SNR, slice thickness, rotation and lesion size.

Profiles: quick (every pattern at baseline, healthy controls and a few hard
conditions; about 20 sessions, minutes) and full (every pattern at every
condition level with repeats, at least 20 phantoms per pattern; 280 sessions, hours
on a small machine) and patterns (20 phantoms of every pattern and 20 healthy
controls per body part at a good acquisition, brain FLAIR-only; each pattern's
own top-1 is checked). A stopped run resumes; --evaluate-only reports on what finished.
Thresholds come from the `accuracy` section of the configuration.
Exit status: 0 when every threshold passes, 1 when one fails, 2 for bad
arguments or configuration.

--profile real DIR runs real scans with expert truth instead of phantoms: DIR holds
one sub-folder per case (images named by sequence, truth_lesions.nii.gz and/or
truth_cord.nii.gz, optional truth.json with body_part, diagnosis, pattern, space;
mask-only cases are tagged and scored). Results go to --output (default
DIR_validation): validation/real_evaluation.csv, real_summary.json, real_report.md.
There are no thresholds: exit status 1 when a case failed or got the wrong body part.
Build DIR from ../shared/data/real with: python -m regiontag.accuracy.real_cases REAL DIR
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from regiontag.config import Config

from regiontag.cli import plain_help

#: Suite profiles (``regiontag.accuracy.validate.PROFILES``; repeated here so ``regiontag --help`` stays light).
PROFILES = ("quick", "full", "patterns")
#: The real-scan profile (``regiontag.accuracy.suite.REAL_PROFILE``).
REAL_PROFILE = "real"


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``validate`` command."""
    parser = subparsers.add_parser(
        "validate", help="measure accuracy on the standard phantom suite (pass/fail against thresholds)",
        description=plain_help(__doc__), formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("out_dir", type=Path, metavar="OUT",
                        help="working and report folder (resumed when present); with --profile real: DIR of cases")
    parser.add_argument("--profile", choices=(*PROFILES, REAL_PROFILE), default="quick",
                        help="suite size, or real for real scans with truth (default: quick)")
    parser.add_argument("--output", type=Path, metavar="OUT",
                        help="--profile real only: working and report folder (default: DIR_validation)")
    parser.add_argument("--seed", type=int, default=0, help="base seed of the suite (default: 0)")
    parser.add_argument("--workers", type=int, metavar="N", help="worker processes (default: one per core)")
    parser.add_argument("--config", type=Path, metavar="FILE", help="YAML overriding configs/default.yaml")
    parser.add_argument("--force", action="store_true", help="regenerate the phantoms and rerun every session")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    parser.add_argument("--evaluate-only", action="store_true",
                        help="run nothing: evaluate and report the sessions a stopped run finished "
                        "(the rest count as missing)")
    parser.set_defaults(func=run_validate)
    return parser


def run_validate(args: argparse.Namespace) -> int:
    """Run the validation; print the metrics and one PASS/FAIL line per threshold."""
    from regiontag.workflows.batch import BatchError
    from regiontag.cli import load_config_or_report
    from regiontag.accuracy.validate import run_validation
    from regiontag.accuracy.report import console_summary

    if args.workers is not None and args.workers < 1:
        print(f"regiontag validate: --workers must be at least 1, got {args.workers}", file=sys.stderr)
        return 2
    if args.seed < 0:
        print(f"regiontag validate: --seed must not be negative, got {args.seed}", file=sys.stderr)
        return 2
    config = load_config_or_report("validate", args.config)
    if config is None:
        return 2
    if args.profile == REAL_PROFILE:
        return _run_real(args, config)
    if args.output is not None:
        print("regiontag validate: --output is for --profile real only", file=sys.stderr)
        return 2
    try:
        result = run_validation(args.out_dir, args.profile, args.seed, workers=args.workers, config=config,
                                force=args.force, quiet=args.quiet, evaluate_only=args.evaluate_only)
    except (BatchError, FileNotFoundError, ValueError) as error:
        print(f"regiontag validate: {error}", file=sys.stderr)
        return 2
    if result.batch_line:
        print(result.batch_line)
    print(console_summary(result.summary, result.checks))
    print(f"report: {result.files['report']}")
    print(f"html:   {result.files['html']}")
    return result.exit_code


def _run_real(args: argparse.Namespace, config: Config) -> int:
    """``--profile real DIR``: the real cases run, evaluated, reported (no thresholds)."""
    from regiontag.accuracy.real import run_real_validation
    from regiontag.accuracy.real_report import real_console_summary
    from regiontag.workflows.batch import BatchError

    try:
        result = run_real_validation(args.out_dir, args.output, config=config, workers=args.workers,
                                     force=args.force, quiet=args.quiet, evaluate_only=args.evaluate_only)
    except (BatchError, FileNotFoundError, ValueError) as error:
        print(f"regiontag validate: {error}", file=sys.stderr)
        return 2
    if result.batch_line:
        print(result.batch_line)
    print(real_console_summary(result.table, result.summary))
    print(f"report: {result.files['report']}")
    return result.exit_code
