"""``regiontag demo OUT``: the main job on built-in phantom data.

Generates a small set of synthetic sessions with known ground truth (a B12
leukoencephalopathy brain, a healthy brain, a subacute combined degeneration
cord), runs the batch on them and evaluates the result against the truth.
"""

from __future__ import annotations

import argparse
from pathlib import Path

#: (session id, body part, pattern or lesion type, seed)
DEMO_SESSIONS = (
    ("demo-b12-leukoencephalopathy", "brain", "b12-leukoencephalopathy", 1),
    ("demo-healthy-brain", "brain", "healthy", 2),
    ("demo-b12-scd-cord", "cord", "dorsal", 3),
)


def make_demo_inputs(phantom_dir: Path) -> None:
    """Write the demo phantoms (inputs/ and truth/) under ``phantom_dir``."""
    from regiontag.phantoms.brain import make_brain_phantom, write_phantom
    from regiontag.phantoms.cord import make_cord_phantom, write_cord_phantom

    for session_id, body_part, pattern, seed in DEMO_SESSIONS:
        if (phantom_dir / "truth" / session_id).is_dir():
            continue
        if body_part == "brain":
            write_phantom(make_brain_phantom(pattern, seed), phantom_dir, session_id)
        else:
            write_cord_phantom(make_cord_phantom(pattern, seed), phantom_dir, session_id)


def run_demo(args: argparse.Namespace) -> int:
    """Generate phantoms, run the batch, evaluate, and print where the results are."""
    from regiontag.accuracy.metrics import evaluate
    from regiontag.cli import load_config_or_report
    from regiontag.workflows.batch import run_batch

    config = load_config_or_report("demo", args.config)  # a bad --config fails before any phantom is made
    if config is None:
        return 2
    out = Path(args.output_dir)
    phantom_dir, results_dir = out / "phantoms", out / "results"
    print(f"regiontag demo: writing {len(DEMO_SESSIONS)} phantom sessions to {phantom_dir}")
    make_demo_inputs(phantom_dir)
    summary = run_batch(phantom_dir / "inputs", results_dir, config, workers=args.workers,
                        force=args.force, quiet=args.quiet)
    _, metrics = evaluate(phantom_dir / "truth", results_dir)
    print("evaluation against phantom truth: " + ", ".join(
        f"{name}={value:.3f}" for name, value in metrics.items() if isinstance(value, float)))
    print(f"region report: {results_dir / 'regions.csv'}")
    print(f"pattern scores: {results_dir / 'scores.csv'}")
    print(f"batch report: {results_dir / 'index.html'}")
    return 0 if summary.failed == 0 else 1


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register ``regiontag demo``."""
    parser = subparsers.add_parser("demo", help="run the pipeline on built-in phantom data",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("output_dir", metavar="OUT", help="folder for phantoms and results")
    parser.add_argument("--config", help="YAML file overriding configs/default.yaml")
    parser.add_argument("--workers", type=int, default=None, help="Dask worker processes (default: cores)")
    parser.add_argument("--force", action="store_true", help="recompute finished sessions")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run_demo)
