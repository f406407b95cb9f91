"""``regiontag demo OUT``: the main job on built-in phantom data.

Generates a small set of synthetic sessions with known ground truth (a B12
leukoencephalopathy brain, a healthy brain, a subacute combined degeneration
cord), runs the batch on them and evaluates the result against the truth.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pandas is imported where it is used: `regiontag --help` stays fast
    import pandas as pd

#: (session id, body part, pattern or lesion type, seed)
DEMO_SESSIONS = (
    ("demo-b12-leukoencephalopathy", "brain", "b12-leukoencephalopathy", 1),
    ("demo-healthy-brain", "brain", "healthy", 2),
    ("demo-b12-scd-cord", "cord", "dorsal", 3),
)


def make_demo_inputs(phantom_dir: Path, report: Callable[[str], object] | None = None) -> None:
    """Write the demo phantoms (inputs/ and truth/) under ``phantom_dir``; ``report`` gets a line per phantom."""
    from regiontag.phantoms.brain import make_brain_phantom, write_phantom
    from regiontag.phantoms.cord import make_cord_phantom, write_cord_phantom

    for index, (session_id, body_part, pattern, seed) in enumerate(DEMO_SESSIONS, start=1):
        if (phantom_dir / "truth" / session_id).is_dir():
            continue
        started = time.perf_counter()
        if body_part == "brain":
            write_phantom(make_brain_phantom(pattern, seed), phantom_dir, session_id)
        else:
            write_cord_phantom(make_cord_phantom(pattern, seed), phantom_dir, session_id)
        if report is not None:
            report(f"  phantom {index}/{len(DEMO_SESSIONS)} {session_id} ({body_part}) written in "
                   f"{time.perf_counter() - started:.0f} s")


def _count(values: pd.Series) -> int:
    import pandas as pd

    return int(pd.to_numeric(values, errors="coerce").notna().sum())


def _flag_count(values: pd.Series) -> tuple[int, int]:
    """(true, known) counts of a column of booleans that may hold NaN / strings."""
    known = values.dropna()
    known = known[known.astype(str).str.lower().isin(("true", "false", "1", "0", "1.0", "0.0"))]
    true = int(known.astype(str).str.lower().isin(("true", "1", "1.0")).sum())
    return true, len(known)


def _sessions(n: int, what: str = "session") -> str:
    return f"{n} {what}{'' if n == 1 else 's'}"


def accuracy_lines(table: pd.DataFrame, metrics: dict, thresholds) -> list[str]:
    """The evaluation in a few aligned lines: value, the sessions behind it, what good is, and the verdict.

    ``thresholds`` is the ``accuracy`` section of the configuration (the pass marks
    of ``regiontag validate``).
    """
    import pandas as pd

    done = table[table["status"].isin(["ok", "warning"])]
    rows: list[tuple[str, str, str, str, bool]] = []
    dice, n_dice = metrics.get("mean_dice"), _count(done["dice"])
    if n_dice and dice is not None:
        rows.append(("lesion overlap (Dice)", f"{dice:.2f}", f"mean of {_sessions(n_dice)} with lesions",
                     f">= {thresholds.min_lesion_dice:.2f}", dice >= thresholds.min_lesion_dice))
    flags = metrics.get("region_flag_accuracy")
    n_flags = int((pd.to_numeric(done["n_region_rows"], errors="coerce").fillna(0) > 0).sum())
    if flags is not None:
        rows.append(("region flags right", f"{flags:.1%}", f"regions of {_sessions(n_flags)}",
                     f">= {thresholds.min_region_flag_accuracy:.0%}", flags >= thresholds.min_region_flag_accuracy))
    top1, n_top1 = _flag_count(done["top1"])
    if n_top1:
        rows.append(("true pattern ranked first", f"{top1} of {n_top1}",
                     _sessions(n_top1, "session") + " with a known pattern", f">= {thresholds.min_pattern_top1:.0%}",
                     top1 / n_top1 >= thresholds.min_pattern_top1))
    false, n_healthy = _flag_count(done.loc[done["pattern"] == "healthy", "false_match"])
    if n_healthy:
        rows.append(("healthy scan given a pattern", f"{false} of {n_healthy}", _sessions(n_healthy, "healthy session"),
                     f"<= {thresholds.max_healthy_false_match_rate:.0%}",
                     false / n_healthy <= thresholds.max_healthy_false_match_rate))
    if not rows:
        return ["  nothing to evaluate (no session finished)"]
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    lines = [
        f"  {label:<{widths[0]}}  {value:>{widths[1]}}  {basis:<{widths[2]}}  good {good:<{widths[3]}}  "
        f"{'ok' if passed else 'BELOW'}"
        for label, value, basis, good, passed in rows
    ]
    if min(n_dice or 99, n_flags or 99, n_top1 or 99, n_healthy or 99) < 5:
        lines.append("  (too few sessions to judge accuracy: `regiontag validate OUT` runs 100+ phantoms)")
    return lines


def session_lines(results_dir: Path) -> list[str]:
    """One line per session: status, the pattern result ("no pattern matched" included) and its report."""
    import pandas as pd

    from regiontag import outputs

    try:
        sessions = pd.read_csv(results_dir / outputs.SESSIONS_CSV, keep_default_na=False)
    except (OSError, ValueError):
        return []
    width = max((len(str(s)) for s in sessions["session"]), default=0)
    lines = []
    for row in sessions.to_dict("records"):
        top = str(row.get("top_pattern") or "")
        if row["status"] == "failed":
            result = f"failed: {row.get('error', '')}"
        else:
            result = f"top match: {top}" if top else "no pattern matched"
        lines.append(f"  {row['session']!s:<{width}}  {row['status']:<7}  {result}")
        report = results_dir / str(row["session"]) / outputs.REPORT_HTML
        if report.is_file():
            lines.append(f"  {'':<{width}}  report: {report}")
    return lines


def run_demo(args: argparse.Namespace) -> int:
    """Generate phantoms, run the batch, evaluate, and print what was found and where the results are."""
    from regiontag.accuracy.metrics import evaluate
    from regiontag.cli import load_config_or_report
    from regiontag.workflows.batch import run_batch

    config = load_config_or_report("demo", args.config)  # a bad --config fails before any phantom is made
    if config is None:
        return 2
    out = Path(args.output_dir)
    phantom_dir, results_dir = out / "phantoms", out / "results"
    print(f"regiontag demo: writing {len(DEMO_SESSIONS)} phantom sessions to {phantom_dir} "
          "(the first run also builds the atlases: a few minutes)", flush=True)
    make_demo_inputs(phantom_dir, report=print)
    print(f"running the {len(DEMO_SESSIONS)} sessions: a brain phantom takes a few minutes of one core, the cord "
          "one under a minute, longer on a busy machine (README: Timings) ...", flush=True)
    summary = run_batch(phantom_dir / "inputs", results_dir, config, workers=args.workers,
                        force=args.force, quiet=args.quiet)
    table, metrics = evaluate(phantom_dir / "truth", results_dir)
    print(summary.line)
    print("sessions:")
    print("\n".join(session_lines(results_dir)))
    print("against the phantoms' truth (pass marks of `regiontag validate`, configs/default.yaml `accuracy`):")
    print("\n".join(accuracy_lines(table, metrics, config.accuracy)))
    print(f"batch report: {results_dir / 'index.html'}")
    print(f"tables: {results_dir / 'regions.csv'}, scores.csv, sessions.csv; every metric: "
          f"{results_dir / 'evaluation_summary.json'}")
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
