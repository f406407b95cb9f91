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


__all__ = ["figure_to_data_uri", "pattern_figure", "region_figure", "region_frequency", "volume_figure"]
