"""Accuracy of the pipeline against acquisition and lesion factors (plots of ``regiontag validate``).

The suite changes one factor at a time from the baseline, so the curve of a
factor uses the baseline sessions plus the sessions of that factor's
conditions (brain only; the cord phantoms do not vary these factors).
Rotation is random up to a maximum per session, so its sessions are grouped
by their actual rotation in 5-degree bins.  Figures are drawn on a
matplotlib ``Figure`` with the Agg canvas (no pyplot state).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from regiontag.config import AccuracyConfig

FINISHED = ("ok", "warning")
#: factor column of evaluation.csv -> axis label.
FACTORS = {
    "snr": "SNR",
    "slice_thickness_mm": "slice thickness (mm)",
    "rotation_deg": "head rotation (degrees)",
    "lesion_size": "lesion size",
}
#: metric column -> (label, colour).
METRICS = {
    "dice": ("lesion Dice", "#e53e3e"),
    "region_accuracy": ("region-flag accuracy", "#2b6cb0"),
    "top1": ("pattern top-1", "#6b46c1"),
}
LESION_SIZE_ORDER = ("small", "medium", "large", "confluent")
ROTATION_BIN_DEG = 5.0
CURVE_COLUMNS = ["factor", "level", "x", "n", *METRICS]


def metric_thresholds(thresholds: AccuracyConfig) -> dict[str, float]:
    """The threshold drawn on each metric's curve."""
    return {"dice": thresholds.min_lesion_dice, "region_accuracy": thresholds.min_region_flag_accuracy,
            "top1": thresholds.min_pattern_top1}


def _factor_rows(table: pd.DataFrame, factor: str) -> pd.DataFrame:
    """Finished brain sessions of the baseline and of this factor's conditions."""
    done = table[table["status"].isin(FINISHED) & (table["body_part"].astype(str) == "brain")]
    condition = done["condition"].fillna("").astype(str)
    return done[(condition == "baseline") | condition.str.startswith(f"{factor}=")]


def _levels(rows: pd.DataFrame, factor: str) -> pd.DataFrame:
    """``level`` (label) and ``x`` (position) per row."""
    values = rows[factor]
    if factor == "lesion_size":  # healthy controls have no lesion size
        labels = values.fillna("").astype(str)
        keep = (labels != "") & (rows["pattern"].astype(str) != "healthy")
        rows, labels = rows[keep], labels[keep]
        rank = {name: index for index, name in enumerate(LESION_SIZE_ORDER)}
        present = sorted(set(labels), key=lambda name: (rank.get(name, len(rank)), name))
        position = {name: index for index, name in enumerate(present)}  # evenly spaced categories
        return rows.assign(level=labels, x=labels.map(position).astype(float))
    numeric = pd.to_numeric(values, errors="coerce")
    if factor == "rotation_deg":
        low = np.floor(numeric / ROTATION_BIN_DEG) * ROTATION_BIN_DEG
        labels = [f"{a:g}-{a + ROTATION_BIN_DEG:g}" if np.isfinite(a) else "" for a in low]
        return rows.assign(level=labels, x=low + ROTATION_BIN_DEG / 2).dropna(subset=["x"])
    return rows.assign(level=[f"{v:g}" if np.isfinite(v) else "" for v in numeric], x=numeric).dropna(
        subset=["x"])


def accuracy_curve(table: pd.DataFrame, factor: str) -> pd.DataFrame:
    """Mean metrics per level of one factor.

    Parameters
    ----------
    table : pandas.DataFrame
        ``evaluation.csv`` rows.
    factor : str
        One of ``FACTORS``.

    Returns
    -------
    pandas.DataFrame
        ``CURVE_COLUMNS``, one row per level in increasing order; ``n`` sessions,
        metric means over the sessions where the metric applies (NaN when none).
    """
    if factor not in FACTORS:
        raise ValueError(f"unknown factor {factor!r}; expected one of {', '.join(FACTORS)}")
    rows = _levels(_factor_rows(table, factor), factor)
    curve = []
    for (x, level), group in rows.groupby(["x", "level"], sort=True):
        entry = {"factor": factor, "level": level, "x": float(x), "n": len(group)}
        for metric in METRICS:
            values = group[metric]
            if metric == "top1":
                values = values.dropna().astype(float)
            entry[metric] = float(pd.to_numeric(values, errors="coerce").mean()) if values.notna().any() else np.nan
        curve.append(entry)
    return pd.DataFrame(curve, columns=CURVE_COLUMNS)


def breaking_points(curves: dict[str, pd.DataFrame], thresholds: AccuracyConfig) -> list[str]:
    """Sentences naming the levels where a metric falls below its threshold, e.g. for the README."""
    limits = metric_thresholds(thresholds)
    sentences = []
    for factor, curve in curves.items():
        for metric, (label, _) in METRICS.items():
            below = curve[curve[metric] < limits[metric]]
            if len(below):
                levels = ", ".join(f"{row.level} ({getattr(row, metric):.2f})" for row in below.itertuples())
                sentences.append(f"{label} below {limits[metric]:g} at {FACTORS[factor]} = {levels}")
    return sentences


def plot_accuracy(curve: pd.DataFrame, factor: str, thresholds: AccuracyConfig, path: str | Path) -> Path:
    """Draw one factor's curves (three metrics, dashed thresholds) and save a PNG.

    Parameters
    ----------
    curve : pandas.DataFrame
        :func:`accuracy_curve` of ``factor``.
    factor : str
    thresholds : AccuracyConfig
    path : str or Path
        PNG to write (its folder is created).

    Returns
    -------
    Path
    """
    from matplotlib.figure import Figure

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure = Figure(figsize=(5.4, 3.6), facecolor="white")
    axes = figure.add_subplot(1, 1, 1)
    limits = metric_thresholds(thresholds)
    if curve.empty:
        axes.text(0.5, 0.5, "no finished session for this factor", ha="center", va="center",
                  transform=axes.transAxes, color="#5f6b7a")
    for metric, (label, colour) in METRICS.items():
        axes.axhline(limits[metric], color=colour, linestyle="--", linewidth=0.8, alpha=0.6)
        points = curve.dropna(subset=[metric])
        if len(points):
            axes.plot(points["x"], points[metric], marker="o", color=colour, label=label)
    axes.set_ylim(-0.03, 1.05)
    axes.set_ylabel("mean over sessions", fontsize=8)
    axes.set_xlabel(FACTORS[factor] + "  (n = sessions per level)", fontsize=8)
    if len(curve):
        if factor == "snr":
            axes.set_xscale("log")
            axes.minorticks_off()
            axes.invert_xaxis()  # worse to the right, as for the other factors
        axes.set_xticks(curve["x"], [f"{row.level}\nn={row.n}" for row in curve.itertuples()], fontsize=7)
    axes.set_title(f"Accuracy against {FACTORS[factor]} (dashed: thresholds)", fontsize=9)
    for side in ("top", "right"):
        axes.spines[side].set_visible(False)
    axes.tick_params(labelsize=7)
    if len(curve):
        axes.legend(fontsize=7, frameon=False, loc="lower left")
    figure.tight_layout()
    figure.savefig(path, format="png", dpi=100)
    return path


def write_accuracy_plots(
    table: pd.DataFrame, thresholds: AccuracyConfig, out_dir: str | Path
) -> tuple[dict[str, pd.DataFrame], dict[str, Path]]:
    """Curves and ``accuracy_vs_<factor>.png`` for every factor of ``FACTORS``.

    Returns
    -------
    curves : dict of str to pandas.DataFrame
    paths : dict of str to Path
    """
    out_dir = Path(out_dir)
    curves = {factor: accuracy_curve(table, factor) for factor in FACTORS}
    paths = {
        factor: plot_accuracy(curve, factor, thresholds, out_dir / f"accuracy_vs_{factor}.png")
        for factor, curve in curves.items()
    }
    return curves, paths


__all__ = ["FACTORS", "METRICS", "accuracy_curve", "breaking_points", "plot_accuracy", "write_accuracy_plots"]
