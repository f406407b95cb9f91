"""Cohort charts of the batch report (matplotlib on an Agg canvas, PNG data URIs).

matplotlib is imported lazily: the session report, which runs after every
session, never pays its import.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from regiontag.report.figures import png_data_uri
from regiontag.report.sections import as_bool

INK, MUTED, ACCENT, LESION = "#1f2933", "#5f6b7a", "#2b6cb0", "#e53e3e"
MAX_REGIONS_PLOTTED = 20


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


#: Bar colours of the lesion-volume histogram per body part.
BODY_PART_COLORS = {"brain": LESION, "cord": ACCENT}


def volume_figure(volumes: pd.DataFrame) -> str:
    """Histogram of lesion volume over the finished sessions, one colour per body part.

    ``volumes`` has ``lesion_volume_ml`` and, optionally, ``body_part`` (see
    ``regiontag.report.batch.lesion_volumes``); brain and cord are stacked in the same
    bins but never added into one volume.  Sessions with 0 ml (no lesion) are counted:
    on a logarithmic axis they get their own bar, labelled ``0 ml``.
    """
    table = volumes.assign(_ml=pd.to_numeric(volumes["lesion_volume_ml"], errors="coerce"))
    table = table[np.isfinite(table["_ml"].to_numpy(dtype=float))]
    if "body_part" not in table.columns:
        table = table.assign(body_part="all")
    figure = _new_figure(figsize=(4.6, 3.0), facecolor="white")
    axes = figure.add_subplot(1, 1, 1)
    _style(axes, "Lesion volume distribution")
    if table.empty:
        _empty(axes, "no finished session")
    else:
        parts = sorted(table["body_part"].astype(str).unique())
        groups = [table.loc[table["body_part"].astype(str) == part, "_ml"].to_numpy(dtype=float) for part in parts]
        colors = [BODY_PART_COLORS.get(part, MUTED) for part in parts]
        values = table["_ml"].to_numpy(dtype=float)
        positive = values[values > 0]
        if len(positive) and positive.max() / max(positive.min(), 1e-6) > 100:
            bins = np.logspace(np.log10(positive.min()), np.log10(positive.max()) + 1e-9, 20)
            axes.set_xscale("log")
            axes.hist([group[group > 0] for group in groups], bins=bins, stacked=True, color=colors,
                      alpha=0.85, edgecolor="white", label=parts)
            zeros = [int((group <= 0).sum()) for group in groups]
            if sum(zeros):  # 0 ml has no place on a log axis: its own bar left of the smallest volume
                left, right = positive.min() / 2.6, positive.min() / 1.6
                bottom = 0
                for count, color in zip(zeros, colors):
                    if count:
                        axes.bar(left, count, width=right - left, bottom=bottom, align="edge", color=color,
                                 alpha=0.85, edgecolor="white")
                        bottom += count
                axes.text(np.sqrt(left * right), bottom, "0 ml", ha="center", va="bottom", fontsize=7, color=MUTED)
        else:
            axes.hist(groups, bins=min(20, max(5, len(values))), stacked=True, color=colors, alpha=0.85,
                      edgecolor="white", label=parts)
        rug = values[values > 0] if axes.get_xscale() == "log" else values
        axes.plot(rug, np.zeros(len(rug)), "|", color=INK, markersize=10)
        axes.set_xlabel("lesion volume (ml)", fontsize=8, color=MUTED)
        axes.set_ylabel("sessions", fontsize=8, color=MUTED)
        axes.yaxis.get_major_locator().set_params(integer=True)
        if parts != ["all"]:
            axes.legend(frameon=False, fontsize=7.5)
    figure.tight_layout(rect=(0, 0, 1, 1 - 0.32 / figure.get_figheight()))
    return figure_to_data_uri(figure, dpi=100, colors="adaptive")


def region_frequency(regions: pd.DataFrame) -> pd.Series:
    """Share of sessions (with that atlas) in which each region is involved.

    A region is involved in a session when its ``both`` row or one of its ``left`` /
    ``right`` rows is (as the pattern scores and the session report read it).
    """
    if regions.empty or "involved" not in regions.columns:
        return pd.Series(dtype=float)
    table = regions.assign(_involved=regions["involved"].map(lambda value: bool(as_bool(value))))
    per_session = table.groupby(["atlas", "region", "session"])["_involved"].any().reset_index()
    sessions_per_atlas = per_session.groupby("atlas")["session"].nunique()
    counts = per_session[per_session["_involved"]].groupby(["atlas", "region"])["session"].nunique()
    if counts.empty:
        return pd.Series(dtype=float)
    shares = counts / sessions_per_atlas.reindex(counts.index.get_level_values(0)).to_numpy()
    shares.index = [region for _, region in counts.index]
    return shares.sort_values(ascending=False, kind="stable")


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
    """Per pattern: sessions where it is the top match (``sessions.csv`` ``top_pattern``), and where it matches."""
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
        scored = scores["session"].nunique() if not scores.empty and "session" in scores.columns else 0
        _empty(axes, f"{scored} scored session{'s' if scored != 1 else ''}: no pattern matched" if scored
               else "no scored session")
    else:
        positions = np.arange(len(patterns))[::-1]
        axes.barh(
            positions + 0.18,
            [top_counts.get(p, 0) for p in patterns],
            height=0.36,
            color="#6b46c1",
            label="top match",
        )
        axes.barh(
            positions - 0.18, [match_counts.get(p, 0) for p in patterns], height=0.36, color="#b794f4", label="match (any rank)"
        )
        axes.set_yticks(positions, [p if len(p) <= 42 else p[:40] + "..." for p in patterns], fontsize=7.5)
        axes.xaxis.get_major_locator().set_params(integer=True)
        axes.set_xlabel("sessions", fontsize=8, color=MUTED)
        figure.legend(loc="lower center", ncol=2, frameon=False, fontsize=7.5)
    bottom = 0.3 / figure.get_figheight() if patterns else 0.0
    figure.tight_layout(rect=(0, bottom, 1, 1 - 0.32 / figure.get_figheight()))
    return figure_to_data_uri(figure, dpi=100, colors="adaptive")


__all__ = ["figure_to_data_uri", "pattern_figure", "region_figure", "region_frequency", "volume_figure"]
