"""``regiontag run INPUT_DIR OUTPUT_DIR [participant|group]``: process every session of a folder or BIDS dataset."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

EPILOG = """\
Sessions run in parallel on Dask: by default a local cluster with one worker
process per core; --scheduler ADDRESS runs them on an existing cluster
(started with `dask scheduler` and `dask worker ADDRESS --nthreads 1`, or
dask-jobqueue on SLURM), which must see INPUT_DIR and OUTPUT_DIR.

BIDS-Apps form: `regiontag run BIDS_DIR OUTPUT_DIR participant
[--participant-label 01 02] [--session-label 01]` processes those subjects
(OUTPUT_DIR becomes a BIDS-derivatives dataset), and `regiontag run BIDS_DIR
OUTPUT_DIR group` rebuilds the batch tables and index.html from what the
participant runs left, computing nothing. Without a level, both are done.

INPUT_DIR may also be one BIDS subject folder (sub-01/), or hold session
folders of DICOM files (.dcm), converted with dcm2niix (pip install
'regiontag[dicom]') and cached.

Re-running the same command resumes: sessions whose outputs are complete and
whose inputs, parameters and regiontag version are unchanged are skipped
(--force redoes them). Exit status: 0 when every session finished, 1 when any
failed, 2 for bad arguments or configuration.
"""


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``run`` command."""
    parser = subparsers.add_parser(
        "run",
        help="process all sessions of a folder or BIDS dataset (parallel, resumable)",
        description="Process every session of INPUT_DIR (a folder of NIfTI files / session "
        "folders, or a BIDS dataset) into OUTPUT_DIR.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("input_dir", type=Path, metavar="INPUT_DIR")
    parser.add_argument("output_dir", type=Path, metavar="OUTPUT_DIR")
    parser.add_argument(
        "analysis_level", nargs="?", choices=("participant", "group"), metavar="LEVEL",
        help="BIDS-Apps level: 'participant' (process sessions) or 'group' (rebuild batch tables and "
        "index.html); default: both",
    )
    parser.add_argument("--config", type=Path, metavar="FILE", help="YAML overriding configs/default.yaml")
    parser.add_argument("--workers", type=int, metavar="N", help="local worker processes (default: one per core)")
    parser.add_argument("--scheduler", metavar="ADDRESS", help="use an existing Dask cluster, e.g. tcp://head:8786")
    parser.add_argument(
        "--memory-limit", metavar="SIZE", help="memory limit per worker, e.g. 4GB (default: RAM / workers)"
    )
    parser.add_argument("--force", action="store_true", help="redo sessions that are already complete")
    parser.add_argument(
        "--participant-label", nargs="+", metavar="LABEL", dest="participant_labels",
        help="BIDS only: process these subjects (with or without 'sub-')",
    )
    parser.add_argument(
        "--session-label", nargs="+", metavar="LABEL", dest="session_labels",
        help="BIDS only: process these sessions (with or without 'ses-')",
    )
    parser.add_argument("--cord-atlas", type=Path, metavar="PATH", help="alternative cord atlas (e.g. PAM50 folder)")
    parser.add_argument("--patterns", type=Path, metavar="DIR", help="alternative lesion-pattern library")
    parser.add_argument("--no-report", action="store_true", help="do not write the batch report (index.html)")
    noise = parser.add_mutually_exclusive_group()
    noise.add_argument("--quiet", "-q", action="store_true", help="no progress bar, only the summary line")
    noise.add_argument("--verbose", "-v", action="store_true", help="one line per session, debug session logs")
    parser.set_defaults(func=run_command)
    return parser


def _terminate_on_sigterm() -> None:
    """Turn SIGTERM (e.g. a batch system's time limit) into a clean exit that closes the cluster."""

    def handler(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    try:
        signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        pass


def run_command(args: argparse.Namespace) -> int:
    """Run the batch; exit status 0 (all finished), 1 (a session failed) or 2 (unusable arguments)."""
    from regiontag.workflows.batch import BatchError, run_batch
    from regiontag.workflows.cluster import ClusterError, parse_memory_limit
    from regiontag.inputs.bids import BIDSError
    from regiontag.inputs.scan import InputError
    from regiontag.cli import load_config_or_report
    from regiontag.config import ConfigError

    config = load_config_or_report("run", args.config)
    if config is None:
        return 2
    problems = []
    if args.input_dir.is_file():
        problems.append(f"INPUT_DIR must be a folder, not a file: {args.input_dir} (give the folder that holds "
                        "it; `regiontag tag MASK --image IMAGE` tags a single mask)")
    elif not args.input_dir.is_dir():
        problems.append(f"input folder not found: {args.input_dir}")
    if args.workers is not None and args.workers < 1:
        problems.append(f"--workers must be at least 1, got {args.workers}")
    if args.scheduler and args.workers:
        problems.append("--workers applies to the local cluster; leave it out with --scheduler")
    try:
        parse_memory_limit(args.memory_limit)
    except ValueError as error:
        problems.append(f"--memory-limit: {error}")
    for option, path in (("--cord-atlas", args.cord_atlas), ("--patterns", args.patterns)):
        if path is not None and not path.exists():
            problems.append(f"{option}: not found: {path}")
    if problems:
        for problem in problems:
            print(f"regiontag run: {problem}", file=sys.stderr)
        return 2
    _terminate_on_sigterm()
    if args.analysis_level == "group":
        return _run_group(args)
    try:
        summary = run_batch(
            args.input_dir,
            args.output_dir,
            config,
            workers=args.workers,
            scheduler=args.scheduler,
            force=args.force,
            participant_labels=args.participant_labels,
            session_labels=args.session_labels,
            memory_limit=args.memory_limit,
            quiet=args.quiet,
            verbose=args.verbose,
            cord_atlas_path=args.cord_atlas,
            patterns_dir=args.patterns,
            report=not args.no_report and args.analysis_level != "participant",
        )
    except (BatchError, BIDSError, ClusterError, FileNotFoundError, NotADirectoryError, ConfigError, InputError) as error:
        print(f"regiontag run: {error}", file=sys.stderr)
        return 2
    if summary.n_sessions == 0:
        print(f"regiontag run: no sessions found in {args.input_dir}", file=sys.stderr)
        return 2
    if summary.report_error and not args.quiet:
        print(f"regiontag run: batch report not written: {summary.report_error}", file=sys.stderr)
    print(summary.line)
    return summary.exit_code


def _run_group(args: argparse.Namespace) -> int:
    """The BIDS-Apps group level: rebuild the batch tables and index.html from the session folders."""
    from regiontag.workflows.group import rebuild_group
    from regiontag.workflows.output_guard import BatchError

    try:
        tables_dir = rebuild_group(args.output_dir, report=not args.no_report)
    except BatchError as error:
        print(f"regiontag run: {error}", file=sys.stderr)
        return 2
    print(f"group level: batch tables rebuilt in {tables_dir}")
    return 0
