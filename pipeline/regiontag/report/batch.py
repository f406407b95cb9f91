"""The batch report ``OUTPUT_DIR/index.html``: one row per session, cohort plots, QC ratings.

Reads ``sessions.csv`` and the batch ``regions.csv`` / ``scores.csv``; when
they are missing (a batch still running, sessions copied together by hand),
the same information is gathered from the session folders.

Other tools add their own sections with ``extra_sections`` (see
:class:`ExtraSection`): ``regiontag validate`` puts its thresholds and
accuracy plots above the batch table of the suite run, in the same page.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pandas as pd

from regiontag import outputs
from regiontag.outputs.batch_tables import session_row
from regiontag.outputs.session_folder import SessionFolder
from regiontag.report import html as h
from regiontag.report.charts import (
    MAX_REGIONS_PLOTTED,
    pattern_figure,
    region_figure,
    region_frequency,
    volume_figure,
)
from regiontag.report.data import read_table
from regiontag.report.extra import ExtraSection, as_extra_sections, sections_page
from regiontag.report.sections import as_bool

#: Fewest finished sessions for the cohort charts (with one, each chart repeats that session's report).
MIN_SESSIONS_FOR_CHARTS = 2


def _session_dirs(output_dir: Path) -> list[Path]:
    """Sub-folders that look like session outputs (provenance, region table or log)."""
    markers = (outputs.PROVENANCE_JSON, outputs.REGIONS_CSV, outputs.LOG_FILE)
    return sorted(p for p in output_dir.iterdir() if p.is_dir() and any((p / m).exists() for m in markers))


def _row_from_folder(session_dir: Path) -> dict[str, object]:
    """A ``sessions.csv`` row for a session folder the batch table lacks (the row the batch would list).

    The status record comes from :class:`SessionFolder` (``status.json``, else
    ``provenance.json``); a record rebuilt from provenance lacks the lesion volume
    and top pattern, which are then read from ``findings.json`` and ``scores.csv``.
    """
    folder = SessionFolder(session_dir)
    record = folder.read_status()
    if record is None:
        return {
            "session": session_dir.name, "status": "incomplete",
            "error": "no provenance.json (session did not complete)", "seconds": np.nan,
            "body_parts": "", "lesion_volume_ml": np.nan, "top_pattern": "",
        }
    row = session_row(session_dir.name, record)
    row["status"] = folder.status
    if folder.read_status(from_provenance=False) is None:
        findings: dict = {}
        try:
            findings = json.loads(folder.file(outputs.FINDINGS_JSON).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            pass
        volumes = findings.get("lesion_volume_ml") if isinstance(findings, dict) else None
        valid = [v for v in volumes.values() if isinstance(v, (int, float))] if isinstance(volumes, dict) else []
        row["lesion_volume_ml"] = float(sum(valid)) if valid else np.nan
        scores = read_table(folder.file(outputs.SCORES_CSV), outputs.SCORE_COLUMNS)
        matched = scores[scores["match"].map(lambda value: bool(as_bool(value)))] if not scores.empty else scores
        row["top_pattern"] = str(matched.sort_values("rank").iloc[0]["pattern"]) if len(matched) else ""
    return row


def load_sessions(output_dir: Path) -> pd.DataFrame:
    """``sessions.csv`` plus rows rebuilt for session folders it does not list."""
    table = read_table(output_dir / outputs.SESSIONS_CSV, outputs.SESSION_COLUMNS)
    listed = set(table["session"].astype(str))
    extra = [_row_from_folder(folder) for folder in _session_dirs(output_dir) if folder.name not in listed]
    if extra:
        table = pd.concat([table, pd.DataFrame(extra)], ignore_index=True) if len(table) else pd.DataFrame(extra)
    return table.reindex(columns=outputs.SESSION_COLUMNS)


def _batch_table(output_dir: Path, name: str, columns: list[str], sessions: list[str]) -> pd.DataFrame:
    table = read_table(output_dir / name, None)
    if not table.empty:
        return table
    parts = [
        read_table(output_dir / session / name, columns)
        for session in sessions
        if (output_dir / session / name).exists()
    ]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=columns)


def lesion_volumes(output_dir: Path, sessions: pd.DataFrame) -> pd.DataFrame:
    """Lesion volume per finished session and body part (``session``, ``body_part``, ``lesion_volume_ml``).

    Read from each session's ``findings.json`` (``lesion_volume_ml`` per body part): brain
    and cord millilitres are different quantities and are never added or pooled.  A
    session without ``findings.json`` keeps its ``sessions.csv`` total under its only body part.
    """
    rows = []
    for _, row in sessions.iterrows():
        if str(row["status"]) not in ("ok", "warning"):
            continue
        session = str(row["session"])
        try:
            findings = json.loads((output_dir / session / outputs.FINDINGS_JSON).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            findings = {}
        volumes = findings.get("lesion_volume_ml") if isinstance(findings, dict) else None
        if isinstance(volumes, dict) and volumes:
            for part, volume in volumes.items():
                if isinstance(volume, (int, float)) and np.isfinite(volume):
                    rows.append({"session": session, "body_part": str(part), "lesion_volume_ml": float(volume)})
            continue
        parts = str(row["body_parts"]).split(";") if isinstance(row["body_parts"], str) else []
        volume = pd.to_numeric(pd.Series([row["lesion_volume_ml"]]), errors="coerce").iloc[0]
        if len(parts) == 1 and pd.notna(volume):
            rows.append({"session": session, "body_part": parts[0], "lesion_volume_ml": float(volume)})
    return pd.DataFrame(rows, columns=["session", "body_part", "lesion_volume_ml"])


def _retried(output_dir: Path, session: str, row: pd.Series) -> str:
    """A "retried" badge (the reason as its tooltip) for a session that ran more than once."""
    attempts = pd.to_numeric(pd.Series([row.get("attempts")]), errors="coerce").iloc[0]
    if not (pd.notna(attempts) and attempts > 1):
        return ""
    reason = (SessionFolder(output_dir / session).read_status(from_provenance=False) or {}).get("retry") or ""
    return (f' <span class="badge warning" title="{h.esc(reason or f"{int(attempts)} attempts")}">'
            f"retried ({int(attempts)} attempts)</span>")


def _pattern_cell(row: pd.Series) -> str:
    """The top-pattern cell: the matched pattern, "no pattern matched" for a finished session, else empty."""
    top = row["top_pattern"] if isinstance(row["top_pattern"], str) else ""
    if top:
        return h.esc(top)
    if str(row["status"]) in ("ok", "warning"):
        return '<span class="help">no pattern matched</span>'
    return ""


def _session_link(output_dir: Path, session: str, link_base: str = "") -> str:
    folder = output_dir / session
    for name, label in ((outputs.REPORT_HTML, session), (outputs.LOG_FILE, f"{session} (log)")):
        if (folder / name).exists():
            return f'<a href="{h.esc(link_base + quote(session))}/{name}">{h.esc(label)}</a>'
    return h.esc(session)


def volume_caption(volumes: pd.DataFrame) -> str:
    """Caption of the lesion-volume histogram: what is counted, per body part."""
    if volumes.empty:
        return "Lesion volume per finished session and body part: no finished session."
    parts = []
    for part, part_volumes in volumes.groupby("body_part", sort=True)["lesion_volume_ml"]:
        zero = int((part_volumes <= 0).sum())
        parts.append(f"{part}: {len(part_volumes)} session{'s' if len(part_volumes) != 1 else ''}"
                     + (f", {zero} with no lesion (0 ml)" if zero else ""))
    return "Lesion volume per finished session, brain and cord counted apart (" + "; ".join(parts) + ")."


def sessions_table(output_dir: Path, sessions: pd.DataFrame, link_base: str = "") -> str:
    """The sortable session table: QC, session link, status, body parts, volume, top pattern, time, reason.

    ``link_base`` is prepended to the session links (pages written outside ``output_dir``).
    """
    rows = []
    for _, row in sessions.iterrows():
        session, status = str(row["session"]), str(row["status"]) if isinstance(row["status"], str) else "incomplete"
        error = row["error"] if isinstance(row["error"], str) else ""
        rows.append(
            f'<tr class="{h.esc(status)}">'
            f"<td>{h.qc_widget(session)}</td>"
            f'<td class="nowrap" data-sort="{h.esc(session)}">{_session_link(output_dir, session, link_base)}</td>'
            f'<td data-sort="{h.esc(status)}">{h.badge(status)}{_retried(output_dir, session, row)}</td>'
            f"<td>{h.esc(str(row['body_parts']).replace(';', ', ') if isinstance(row['body_parts'], str) else '')}</td>"
            f'<td class="num" data-sort="{h.sort_value(row["lesion_volume_ml"])}">{h.number(row["lesion_volume_ml"], 2)}</td>'
            f"<td>{_pattern_cell(row)}</td>"
            f'<td class="num" data-sort="{h.sort_value(row["seconds"])}">{h.number(row["seconds"], 0)}</td>'
            f'<td style="max-width:360px;word-break:break-word">{h.esc(error)}</td></tr>'
        )
    headers = [
        ("QC", ""),
        ("session", ""),
        ("status", ""),
        ("body parts", ""),
        ("lesion ml", "num"),
        ("top pattern", ""),
        ("seconds", "num"),
        ("reason", ""),
    ]
    return h.table(headers, rows, table_id="sessions")


def _cohort_charts(volumes: pd.DataFrame, sessions: pd.DataFrame, scores: pd.DataFrame,
                   regions: pd.DataFrame) -> str:
    """The cohort section's three charts (lesion volumes, pattern counts, region frequency) as HTML."""
    return (
        '<div class="grid2">'
        + h.figure(
            volume_figure(volumes),
            h.esc(volume_caption(volumes)),
            "lesion volume distribution",
            "chart",
        )
        + h.figure(
            pattern_figure(sessions, scores),
            "Per pattern: sessions where it is the top match, and sessions where it matches at any rank "
            "(sessions with no match are not counted).",
            "pattern counts",
            "chart",
        )
        + "</div>"
        + h.figure(
            region_figure(regions),
            f"Regions involved in the most sessions (top {MAX_REGIONS_PLOTTED}).",
            "region involvement frequency",
            "chart",
        )
    )


def render_batch_report(
    output_dir: Path,
    extra_sections: Sequence[ExtraSection | tuple[str, str]] | None = None,
    *,
    title: str = "regiontag batch report",
    link_base: str = "",
) -> str:
    """The batch report as an HTML string.

    Parameters
    ----------
    output_dir : Path
        The batch output folder.
    extra_sections : sequence of ExtraSection or (title, html), optional
        Sections added by other tools (see :class:`ExtraSection`).
    title : str
        Page title.
    link_base : str
        Prefix of the links to session reports, for a page written outside
        ``output_dir`` (e.g. ``"../results/"``).
    """
    output_dir = Path(output_dir)
    extras = as_extra_sections(extra_sections)
    sessions = load_sessions(output_dir)
    names = sessions["session"].astype(str).tolist()
    regions = _batch_table(output_dir, outputs.REGIONS_CSV, outputs.REGION_COLUMNS, names)
    scores = _batch_table(output_dir, outputs.SCORES_CSV, outputs.SCORE_COLUMNS, names)
    counts = sessions["status"].fillna("incomplete").value_counts()
    volumes = lesion_volumes(output_dir, sessions)
    stats = [(str(len(sessions)), "sessions")] + [
        (str(int(counts.get(status, 0))), status)
        for status in ("ok", "warning", "failed", "incomplete")
        if counts.get(status, 0) or status != "incomplete"
    ]
    for part, part_volumes in volumes.groupby("body_part", sort=True)["lesion_volume_ml"]:
        noun = "session" if len(part_volumes) == 1 else "sessions"
        stats.append((f"{part_volumes.median():.2f} ml", f"median {part} lesion volume ({len(part_volumes)} {noun})"))
    finished = sessions[sessions["status"].astype(str).isin(("ok", "warning"))]
    if len(finished):
        n_matched = int(finished["top_pattern"].map(lambda value: isinstance(value, str) and value != "").sum())
        stats.append((f"{n_matched} of {len(finished)}", "finished sessions with a pattern match"))
    cards = "".join(
        f'<div class="stat"><b>{h.esc(value)}</b><span>{h.esc(label)}</span></div>' for value, label in stats
    )
    failed = sessions[sessions["status"].astype(str) == "failed"]
    failed_list = "".join(
        f"<li><b>{h.esc(row['session'])}</b>: {h.esc(row['error'] if isinstance(row['error'], str) else 'no reason recorded')}</li>"
        for _, row in failed.iterrows()
    )
    summary = f'<div class="stats">{cards}</div>' + (
        f'<h3>Failed sessions</h3><ul class="warnings">{failed_list}</ul>' if failed_list else ""
    )
    if len(finished) < MIN_SESSIONS_FOR_CHARTS:
        plots = (f'<p class="help">Cohort charts appear when the batch has {MIN_SESSIONS_FOR_CHARTS} or more finished '
                 "sessions; the session's own report shows its volume, regions and patterns.</p>")
    else:
        plots = _cohort_charts(volumes, sessions, scores, regions)
    table_help = (
        '<p class="help">Click a column header to sort. Rate each session pass/fail with a note; ratings '
        "stay in this browser and export as CSV.</p>"
        '<div class="toolbar"><input class="filter" type="search" data-filter="sessions" '
        'placeholder="filter: session, status, pattern..." aria-label="filter sessions">'
        f'<span class="help" id="sessions-count">{len(sessions)} sessions</span></div>'
    )
    first = [section for section in extras if section.position == "start"]
    last = [section for section in extras if section.position == "end"]
    body = (
        "".join(section.render() for section in first)
        + f'<section class="card" id="overview"><h2>Overview</h2>{summary}</section>'
        f'<section class="card" id="sessions-section"><h2>Sessions</h2>{table_help}{h.qc_toolbar()}'
        f"{sessions_table(output_dir, sessions, link_base)}</section>"
        f'<section class="card" id="cohort"><h2>Cohort</h2>{plots}</section>'
        + "".join(section.render() for section in last)
    )
    meta = h.esc(f"{len(sessions)} sessions - {output_dir.resolve()}")
    toc = (
        [(section.element_id, section.title) for section in first]
        + [("overview", "Overview"), ("sessions-section", "Sessions"), ("cohort", "Cohort")]
        + [(section.element_id, section.title) for section in last]
    )
    return h.page(title, meta, toc, body, str(output_dir.resolve()))


def write_batch_report(
    output_dir: str | Path,
    extra_sections: Sequence[ExtraSection | tuple[str, str]] | None = None,
    *,
    path: str | Path | None = None,
    title: str = "regiontag batch report",
) -> Path:
    """Write ``OUTPUT_DIR/index.html`` (or ``path``) atomically and return its path.

    Parameters
    ----------
    output_dir : str or Path
        A batch output folder (``sessions.csv`` and/or session folders).
    extra_sections : sequence of ExtraSection or (title, html), optional
        Extra sections: ``ExtraSection`` objects (HTML, PNG figures embedded as
        data URIs, placed before or after the batch sections) or
        ``(title, already_safe_html)`` pairs appended at the end.
    path : str or Path, optional
        Write the page here instead of ``OUTPUT_DIR/index.html``; links to the
        session reports are made relative to it.
    title : str
        Page title.

    Returns
    -------
    Path
        The written page.

    Examples
    --------
    >>> write_batch_report("out", [ExtraSection("Notes", "<p>rerun of 2024-05</p>", position="start")])
    ... # doctest: +SKIP
    """
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        raise FileNotFoundError(f"{output_dir}: not an output folder")
    target = Path(path) if path is not None else output_dir / outputs.INDEX_HTML
    link_base = ""
    if target.parent.resolve() != output_dir.resolve():
        link_base = Path(os.path.relpath(output_dir.resolve(), target.parent.resolve())).as_posix() + "/"
    document = render_batch_report(output_dir, extra_sections, title=title, link_base=link_base)
    return outputs.write_text(document, target)


__all__ = [
    "ExtraSection",
    "load_sessions",
    "region_frequency",
    "render_batch_report",
    "sections_page",
    "write_batch_report",
]
