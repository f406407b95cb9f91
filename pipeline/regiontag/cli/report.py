"""``regiontag report OUTPUT_DIR``: (re)generate the session reports and the batch index."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from regiontag import outputs

LOGGER = logging.getLogger(__name__)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``report`` command."""
    parser = subparsers.add_parser(
        "report",
        help="regenerate the HTML reports of an output folder",
        description="Write OUTPUT_DIR/<session>/report.html for every session folder and OUTPUT_DIR/index.html, "
        "from the files already there (nothing is re-run). Research use only, not a medical device.",
    )
    parser.add_argument("output_dir", type=Path, metavar="OUTPUT_DIR", help="output folder of `regiontag run`")
    parser.add_argument("--sessions", nargs="+", metavar="SESSION", help="only these sessions (no batch index)")
    parser.add_argument("--no-index", action="store_true", help="do not write index.html")
    parser.add_argument("--jobs", type=int, default=1, metavar="N", help="session reports in N processes (default 1)")
    parser.set_defaults(func=run)
    return parser


def _is_session_dir(path: Path) -> bool:
    markers = (outputs.PROVENANCE_JSON, outputs.REGIONS_CSV, outputs.LOG_FILE)
    return path.is_dir() and any((path / marker).exists() for marker in markers)


def _write_one(folder: Path) -> tuple[str, str]:
    """Write one session report; (path, "") or ("", one-line error) - never raises."""
    from regiontag.report.session import write_session_report

    try:
        return str(write_session_report(folder)), ""
    except Exception as error:  # noqa: BLE001 - one broken session must not stop the others
        LOGGER.debug("report failed", exc_info=True)
        return "", f"{type(error).__name__}: {error}"


def run(args: argparse.Namespace) -> int:
    """Regenerate reports; exit status 0, 1 when a report failed, 2 for a missing folder."""
    from regiontag.report.batch import write_batch_report

    output_dir: Path = args.output_dir
    if not output_dir.is_dir():
        print(f"regiontag report: {output_dir}: no such output folder", file=sys.stderr)
        return 2
    if args.sessions:
        folders = [output_dir / name for name in args.sessions]
        unknown = [folder.name for folder in folders if not _is_session_dir(folder)]
        if unknown:
            print(f"regiontag report: not session folders in {output_dir}: {', '.join(unknown)}", file=sys.stderr)
            return 2
    else:
        folders = sorted(folder for folder in output_dir.iterdir() if _is_session_dir(folder))
    if args.jobs < 1:
        print("regiontag report: --jobs must be at least 1", file=sys.stderr)
        return 2
    status = 0
    started = time.perf_counter()
    if args.jobs > 1 and len(folders) > 1:
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            results = pool.map(_write_one, folders)
            outcomes = list(zip(folders, results, strict=True))
    else:
        outcomes = [(folder, _write_one(folder)) for folder in folders]
    for folder, (path, error) in outcomes:
        if error:
            print(f"regiontag report: {folder.name}: {error}", file=sys.stderr)
            status = 1
        else:
            print(f"wrote {path}")
    if not args.sessions and not args.no_index:
        print(f"wrote {write_batch_report(output_dir)}")
    print(f"{len(folders)} session report(s) in {time.perf_counter() - started:.1f} s")
    return status
