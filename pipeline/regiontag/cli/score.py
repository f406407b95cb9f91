"""``regiontag score OUTPUT_DIR``: re-score finished sessions against the (edited) pattern library.

Reads each session's ``regions.csv`` and ``findings.json`` (nothing is registered or
segmented again), rewrites ``<session>/scores.csv`` and the ``top_pattern`` of its
``status.json``, then rebuilds the batch ``scores.csv``, ``sessions.csv`` and ``index.html``,
all atomically and under the output folder's lock (never while a run writes there).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from regiontag import outputs
from regiontag.config import ConfigError


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``score`` command."""
    parser = subparsers.add_parser(
        "score",
        help="re-score finished sessions against the lesion-pattern library",
        description="Re-score every session folder of OUTPUT_DIR that holds a regions.csv against the "
        "pattern library, from regions.csv and findings.json (no registration is re-run); rewrites "
        "<session>/scores.csv and OUTPUT_DIR/scores.csv. Research use only, not a medical device.",
    )
    parser.add_argument("output_dir", type=Path, metavar="OUTPUT_DIR")
    parser.add_argument("--patterns", type=Path, metavar="DIR", help="pattern library folder (default: configs/patterns)")
    parser.add_argument("--config", type=Path, metavar="FILE", help="YAML overriding configs/default.yaml (scoring section)")
    parser.set_defaults(func=run)
    return parser


def session_dirs(output_dir: Path) -> list[Path]:
    """Session folders of an output folder: sub-folders holding a ``regions.csv``, sorted."""
    return sorted(p for p in output_dir.iterdir() if p.is_dir() and (p / outputs.REGIONS_CSV).is_file())


def read_findings(session_dir: Path) -> dict[str, Any]:
    """``findings.json`` of a session, or an empty dict when absent."""
    path = session_dir / outputs.FINDINGS_JSON
    if not path.is_file():
        return {}
    content = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(content, dict):
        raise ValueError(f"{path}: expected a JSON object")
    return content


def top_pattern(scores: pd.DataFrame) -> str:
    """The best matching pattern, chosen as ``run_session`` chooses it ("" when none matches)."""
    top = scores[scores["match"].astype(bool)].sort_values("rank") if len(scores) else scores
    return str(top["pattern"].iloc[0]) if len(top) else ""


def rescore_session(session_dir: Path, library, config) -> pd.DataFrame:
    """Score one session folder, write its ``scores.csv`` and the ``top_pattern`` of its ``status.json``.

    Returns the table (with ``session``).
    """
    from regiontag.outputs.session_folder import SessionFolder

    from regiontag.patterns.scoring import score_session

    regions = pd.read_csv(session_dir / outputs.REGIONS_CSV)
    findings = read_findings(session_dir)
    scores = score_session(regions, findings, library, config)
    session_id = session_dir.name
    if "session" in regions.columns and regions["session"].notna().any():
        session_id = str(regions["session"].dropna().iloc[0])
    scores.insert(0, "session", session_id)
    outputs.write_csv(scores, session_dir / outputs.SCORES_CSV, outputs.SCORE_COLUMNS)
    folder = SessionFolder(session_dir)
    record = folder.read_status(from_provenance=False)
    if record is not None and record.get("top_pattern", "") != top_pattern(scores):
        folder.write_status({**record, "top_pattern": top_pattern(scores)})
    return scores


def rebuild_batch_scores(output_dir: Path) -> Path:
    """Concatenate every session's ``scores.csv`` into ``OUTPUT_DIR/scores.csv`` (atomic)."""
    frames = []
    for folder in sorted(p for p in output_dir.iterdir() if p.is_dir()):
        path = folder / outputs.SCORES_CSV
        if path.is_file():
            try:
                table = pd.read_csv(path)
            except (OSError, ValueError, pd.errors.EmptyDataError):
                continue
            if "session" not in table.columns or table["session"].isna().all():
                table["session"] = folder.name
            frames.append(table.reindex(columns=outputs.SCORE_COLUMNS))
    batch = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=outputs.SCORE_COLUMNS)
    return outputs.write_csv(batch, output_dir / outputs.SCORES_CSV, outputs.SCORE_COLUMNS)


def run(args: argparse.Namespace) -> int:
    """Re-score; exit 0, 1 when a session could not be scored, 2 for a bad folder, config or library."""
    from regiontag.config import load_config
    from regiontag.patterns.library import load_library
    from regiontag.workflows.batch import BatchError, output_lock

    output_dir: Path = args.output_dir
    if not output_dir.is_dir():
        print(f"regiontag score: {output_dir}: no such output folder", file=sys.stderr)
        return 2
    try:
        config = load_config(args.config)
        library = load_library(args.patterns or config.scoring.patterns_dir)
    except ConfigError as error:
        print(f"regiontag score: {error}", file=sys.stderr)
        return 2
    try:
        with output_lock(output_dir):
            return _rescore_all(output_dir, library, config)
    except BatchError as error:
        print(f"regiontag score: {error}", file=sys.stderr)
        return 2


def _rescore_all(output_dir: Path, library, config) -> int:
    from regiontag.outputs.session_folder import SessionFolder
    from regiontag.workflows.group import refresh_batch_tables

    folders = session_dirs(output_dir)
    failed = 0
    for folder in folders:
        unsafe = SessionFolder(folder).unsafe_reason(output_dir)
        if unsafe:  # a symlinked session folder: never written through
            failed += 1
            print(f"regiontag score: {folder.name}: {unsafe}", file=sys.stderr)
            continue
        try:
            scores = rescore_session(folder, library, config.scoring)
        except (OSError, ValueError, pd.errors.EmptyDataError) as error:
            failed += 1
            print(f"regiontag score: {folder.name}: {error}", file=sys.stderr)
            continue
        matched = scores[scores["match"]].sort_values("rank")["pattern"].tolist()
        print(f"{folder.name}: {', '.join(matched) if matched else 'no pattern matched'}")
    batch = rebuild_batch_scores(output_dir)
    report_error = refresh_batch_tables(output_dir, config)
    if report_error:
        print(f"regiontag score: batch report not written: {report_error}", file=sys.stderr)
    print(f"re-scored {len(folders) - failed} of {len(folders)} sessions against "
          f"{len(library.patterns)} patterns; batch table {batch}")
    return 1 if failed else 0
