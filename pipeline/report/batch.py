"""The batch report ``OUTPUT_DIR/index.html``: one row per session, cohort plots, QC ratings.

Reads ``sessions.csv`` and the batch ``regions.csv`` / ``scores.csv``; when
they are missing (a batch still running, sessions copied together by hand),
the same information is gathered from the session folders.
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pandas as pd

from pipeline import outputs
from pipeline.report import html as h
from pipeline.report.data import read_table
from pipeline.report.figures import png_data_uri
from pipeline.report.sections import as_bool

INK, MUTED, ACCENT, LESION = "#1f2933", "#5f6b7a", "#2b6cb0", "#e53e3e"
MAX_REGIONS_PLOTTED = 20


def _session_dirs(output_dir: Path) -> list[Path]:
    """Sub-folders that look like session outputs (provenance, region table or log)."""
    markers = (outputs.PROVENANCE_JSON, outputs.REGIONS_CSV, outputs.LOG_FILE)
    return sorted(p for p in output_dir.iterdir() if p.is_dir() and any((p / m).exists() for m in markers))


def _row_from_folder(session_dir: Path) -> dict[str, object]:
    """A ``sessions.csv`` row rebuilt from a session folder (for sessions the batch table lacks)."""
    provenance: dict = {}
    try:
        provenance = json.loads((session_dir / outputs.PROVENANCE_JSON).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        pass
    findings: dict = {}
    try:
        findings = json.loads((session_dir / outputs.FINDINGS_JSON).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        pass
    volumes = findings.get("lesion_volume_ml") if isinstance(findings, dict) else None
    scores = read_table(session_dir / outputs.SCORES_CSV, outputs.SCORE_COLUMNS)
    top = ""
    if not scores.empty:
        top = str(scores.sort_values("rank").iloc[0]["pattern"])
    timings = provenance.get("timings") or {}
    return {
        "session": session_dir.name,
        "status": provenance.get("status") or ("failed" if (session_dir / outputs.LOG_FILE).exists() else "incomplete"),
        "error": "" if provenance else "no provenance.json (session did not complete)",
        "seconds": float(sum(v for v in timings.values() if isinstance(v, (int, float)))) if timings else np.nan,
        "body_parts": ";".join(sorted((provenance.get("reference") or {}).keys())),
        "lesion_volume_ml": float(sum(volumes.values())) if isinstance(volumes, dict) and volumes else np.nan,
        "top_pattern": top,
    }


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


def _new_figure(**kwargs):
    """A matplotlib ``Figure`` (imported lazily: the session report never needs matplotlib)."""
    from matplotlib.figure import Figure as MatplotlibFigure

    return MatplotlibFigure(**kwargs)


def figure_to_data_uri(figure, dpi: int = 100, colors: str = "adaptive") -> str:
    """Render a matplotlib figure on an Agg canvas (no pyplot state, nothing on disk) to a PNG data URI."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    figure.set_dpi(dpi)
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return png_data_uri(np.asarray(canvas.buffer_rgba()), colors)


def _style(axes, title: str) -> None:
    axes.figure.text(0.02, 0.975, title, ha="left", va="top", fontsize=10, color=INK, fontweight="bold")
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    for side in ("left", "bottom"):
        axes.spines[side].set_color("#cbd5e0")
    axes.tick_params(colors=MUTED, labelsize=8)


def _empty(axes, text: str) -> None:
    axes.text(0.5, 0.5, text, ha="center", va="center", color=MUTED, fontsize=9, transform=axes.transAxes)
    axes.set_xticks([])
    axes.set_yticks([])


def volume_figure(sessions: pd.DataFrame) -> str:
    """Histogram of lesion volume over the sessions that finished."""
    volumes = pd.to_numeric(sessions["lesion_volume_ml"], errors="coerce").dropna()
    figure = _new_figure(figsize=(4.6, 3.0), facecolor="white")
    axes = figure.add_subplot(1, 1, 1)
    _style(axes, "Lesion volume distribution")
    if volumes.empty:
        _empty(axes, "no finished session")
    else:
        positive = volumes[volumes > 0]
        if len(positive) and positive.max() / max(positive.min(), 1e-6) > 100:
            bins = np.logspace(np.log10(positive.min()), np.log10(positive.max()) + 1e-9, 20)
            axes.set_xscale("log")
            axes.hist(positive, bins=bins, color=LESION, alpha=0.85, edgecolor="white")
        else:
            axes.hist(volumes, bins=min(20, max(5, len(volumes))), color=LESION, alpha=0.85, edgecolor="white")
        axes.plot(volumes, np.zeros(len(volumes)), "|", color=INK, markersize=10)
        axes.set_xlabel("lesion volume (ml)", fontsize=8, color=MUTED)
        axes.set_ylabel("sessions", fontsize=8, color=MUTED)
        axes.yaxis.get_major_locator().set_params(integer=True)
    figure.tight_layout(rect=(0, 0, 1, 1 - 0.32 / figure.get_figheight()))
    return figure_to_data_uri(figure, dpi=100, colors="adaptive")


def region_frequency(regions: pd.DataFrame) -> pd.Series:
    """Share of sessions (with that atlas) in which each region (side ``both``) is involved."""
    if regions.empty or "involved" not in regions.columns:
        return pd.Series(dtype=float)
    both = regions[regions["side"].astype(str) == "both"].copy()
    both["_involved"] = both["involved"].map(lambda value: bool(as_bool(value)))
    sessions_per_atlas = both.groupby("atlas")["session"].nunique()
    counts = both[both["_involved"]].groupby(["atlas", "region"])["session"].nunique()
    if counts.empty:
        return pd.Series(dtype=float)
    shares = counts / sessions_per_atlas.reindex(counts.index.get_level_values(0)).to_numpy()
    shares.index = [region for _, region in counts.index]
    return shares.sort_values(ascending=False)


def region_figure(regions: pd.DataFrame) -> str:
    """Horizontal bars: how often each region is involved across the cohort."""
    shares = region_frequency(regions).head(MAX_REGIONS_PLOTTED)
    figure = _new_figure(figsize=(5.6, max(2.4, 0.24 * len(shares) + 0.9)), facecolor="white")
    axes = figure.add_subplot(1, 1, 1)
    _style(axes, "How often each region is involved")
    if shares.empty:
        _empty(axes, "no involved region in any session")
    else:
        labels = [" > ".join(str(path).split(" > ")[-2:]) for path in shares.index]
        positions = np.arange(len(shares))[::-1]
        axes.barh(positions, shares.to_numpy() * 100, color=ACCENT, height=0.7)
        for position, share in zip(positions, shares.to_numpy()):
            axes.text(
                min(share * 100 + 1.5, 88),
                position,
                f"{share:.0%}",
                va="center",
                fontsize=7,
                color="white" if share > 0.9 else INK,
            )
        axes.set_yticks(positions, labels, fontsize=7.5)
        axes.set_xlim(0, 100)
        axes.set_xlabel("% of sessions with this atlas", fontsize=8, color=MUTED)
    figure.tight_layout(rect=(0, 0, 1, 1 - 0.32 / figure.get_figheight()))
    return figure_to_data_uri(figure, dpi=100, colors="adaptive")


def pattern_figure(sessions: pd.DataFrame, scores: pd.DataFrame) -> str:
    """Per pattern: sessions where it ranks first, and sessions where it is a match."""
    top = sessions["top_pattern"].dropna().astype(str)
    top_counts = top[top != ""].value_counts()
    match_counts = pd.Series(dtype=int)
    if not scores.empty and "match" in scores.columns:
        matched = scores[scores["match"].map(lambda value: bool(as_bool(value)))]
        match_counts = matched.groupby("pattern")["session"].nunique()
    patterns = sorted(
        set(top_counts.index) | set(match_counts.index),
        key=lambda name: (-top_counts.get(name, 0), -match_counts.get(name, 0), name),
    )
    figure = _new_figure(figsize=(5.6, max(2.4, 0.34 * len(patterns) + 1.0)), facecolor="white")
    axes = figure.add_subplot(1, 1, 1)
    _style(axes, "Pattern counts")
    if not patterns:
        _empty(axes, "no scored session")
    else:
        positions = np.arange(len(patterns))[::-1]
        axes.barh(
            positions + 0.18,
            [top_counts.get(p, 0) for p in patterns],
            height=0.36,
            color="#6b46c1",
            label="ranked first",
        )
        axes.barh(
            positions - 0.18, [match_counts.get(p, 0) for p in patterns], height=0.36, color="#b794f4", label="match"
        )
        axes.set_yticks(positions, [p if len(p) <= 42 else p[:40] + "..." for p in patterns], fontsize=7.5)
        axes.xaxis.get_major_locator().set_params(integer=True)
        axes.set_xlabel("sessions", fontsize=8, color=MUTED)
        figure.legend(loc="lower center", ncol=2, frameon=False, fontsize=7.5)
    bottom = 0.3 / figure.get_figheight() if patterns else 0.0
    figure.tight_layout(rect=(0, bottom, 1, 1 - 0.32 / figure.get_figheight()))
    return figure_to_data_uri(figure, dpi=100, colors="adaptive")


def _session_link(output_dir: Path, session: str) -> str:
    folder = output_dir / session
    for name, label in ((outputs.REPORT_HTML, session), (outputs.LOG_FILE, f"{session} (log)")):
        if (folder / name).exists():
            return f'<a href="{h.esc(quote(session))}/{name}">{h.esc(label)}</a>'
    return h.esc(session)


def sessions_table(output_dir: Path, sessions: pd.DataFrame) -> str:
    """The sortable session table: QC, session link, status, body parts, volume, top pattern, time, reason."""
    rows = []
    for _, row in sessions.iterrows():
        session, status = str(row["session"]), str(row["status"]) if isinstance(row["status"], str) else "incomplete"
        error = row["error"] if isinstance(row["error"], str) else ""
        rows.append(
            f'<tr class="{h.esc(status)}">'
            f"<td>{h.qc_widget(session)}</td>"
            f'<td class="nowrap" data-sort="{h.esc(session)}">{_session_link(output_dir, session)}</td>'
            f'<td data-sort="{h.esc(status)}">{h.badge(status)}</td>'
            f"<td>{h.esc(str(row['body_parts']).replace(';', ', ') if isinstance(row['body_parts'], str) else '')}</td>"
            f'<td class="num" data-sort="{h.sort_value(row["lesion_volume_ml"])}">{h.number(row["lesion_volume_ml"], 2)}</td>'
            f"<td>{h.esc(row['top_pattern'])}</td>"
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


def render_batch_report(output_dir: Path) -> str:
    """The batch report as an HTML string."""
    sessions = load_sessions(output_dir)
    names = sessions["session"].astype(str).tolist()
    regions = _batch_table(output_dir, outputs.REGIONS_CSV, outputs.REGION_COLUMNS, names)
    scores = _batch_table(output_dir, outputs.SCORES_CSV, outputs.SCORE_COLUMNS, names)
    counts = sessions["status"].fillna("incomplete").value_counts()
    volumes = pd.to_numeric(sessions["lesion_volume_ml"], errors="coerce").dropna()
    stats = [(str(len(sessions)), "sessions")] + [
        (str(int(counts.get(status, 0))), status)
        for status in ("ok", "warning", "failed", "incomplete")
        if counts.get(status, 0) or status != "incomplete"
    ]
    if len(volumes):
        stats.append((f"{volumes.median():.2f} ml", "median lesion volume"))
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
    plots = (
        '<div class="grid2">'
        + h.figure(
            volume_figure(sessions), "Total lesion volume per finished session.", "lesion volume distribution", "chart"
        )
        + h.figure(
            pattern_figure(sessions, scores),
            "Sessions where each pattern ranks first, and where it scores as a match.",
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
    table_help = (
        '<p class="help">Click a column header to sort. Rate each session pass/fail with a note; ratings '
        "stay in this browser and export as CSV.</p>"
        '<div class="toolbar"><input class="filter" type="search" data-filter="sessions" '
        'placeholder="filter: session, status, pattern..." aria-label="filter sessions">'
        f'<span class="help" id="sessions-count">{len(sessions)} sessions</span></div>'
    )
    body = (
        f'<section class="card" id="overview"><h2>Overview</h2>{summary}</section>'
        f'<section class="card" id="sessions-section"><h2>Sessions</h2>{table_help}{h.qc_toolbar()}'
        f"{sessions_table(output_dir, sessions)}</section>"
        f'<section class="card" id="cohort"><h2>Cohort</h2>{plots}</section>'
    )
    meta = h.esc(f"{len(sessions)} sessions - {output_dir.resolve()}")
    toc = [("overview", "Overview"), ("sessions-section", "Sessions"), ("cohort", "Cohort")]
    return h.page("regiontag batch report", meta, toc, body, str(output_dir.resolve()))


def write_batch_report(output_dir: str | Path) -> Path:
    """Write ``OUTPUT_DIR/index.html`` atomically and return its path.

    Parameters
    ----------
    output_dir : str or Path
        A batch output folder (``sessions.csv`` and/or session folders).

    Returns
    -------
    Path
        The written page.
    """
    output_dir = Path(output_dir)
    if not output_dir.is_dir():
        raise FileNotFoundError(f"{output_dir}: not an output folder")
    return outputs.write_text(render_batch_report(output_dir), output_dir / outputs.INDEX_HTML)


__all__ = ["write_batch_report", "render_batch_report", "load_sessions", "region_frequency"]
