"""Files of ``OUT/validation/``: evaluation table, summary, Markdown report, HTML page, plots.

``validation_report.md`` holds the metrics against the thresholds (the table
for the README), the other metrics, where accuracy breaks, the plots and the
condition breakdown.  ``index.html`` is the batch report of the suite run
(``OUT/results``: sessions, links to their reports, cohort plots) with the
validation sections on top - thresholds, metrics, the accuracy plots embedded
as data URIs, the condition breakdown - added through the batch report's
``extra_sections`` hook; without a suite run it holds the validation sections
alone, in the same page style.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from regiontag.accuracy.checks import (
    condition_breakdown,
    EVALUATION_CSV,
    REPORT_HTML,
    REPORT_MD,
    SUMMARY_JSON,
    ThresholdCheck,
)
from regiontag.accuracy.metrics import EVALUATION_COLUMNS
from regiontag.accuracy.plots import breaking_points, FACTORS, write_accuracy_plots
from regiontag.config import AccuracyConfig
from regiontag.outputs.contract import write_csv, write_json, write_text
from regiontag.report import html as h
from regiontag.report.batch import load_sessions, render_batch_report, sections_page
from regiontag.report.extra import ExtraSection

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Iterable

    from regiontag.report.extra import ExtraSection

#: Informational metrics of the summary (key of ``summarise``, label, digits).
OTHER_METRICS = (
    ("mean_dice", "mean lesion Dice (all lesion sessions)", 3),
    ("median_dice", "median lesion Dice", 3),
    ("mean_hd95_mm", "mean HD95 (mm)", 2),
    ("mean_avd_percent", "mean absolute volume difference (%)", 1),
    ("mean_lesion_recall", "mean lesion-wise recall", 3),
    ("mean_lesion_f1", "mean lesion-wise F1", 3),
    ("mean_registration_dice", "mean registration Dice (atlas regions)", 3),
    ("mean_region_sensitivity", "region-flag sensitivity", 3),
    ("mean_region_specificity", "region-flag specificity", 3),
    ("pattern_top3_accuracy", "pattern top-3 accuracy", 3),
    ("healthy_false_positive_ml", "mean false-positive volume on healthy (ml)", 3),
)
BREAKDOWN_LABELS = {
    "body_part": "body part", "condition": "condition", "pattern": "pattern", "n": "n", "n_failed": "failed", "dice": "Dice",
    "hd95_mm": "HD95 mm", "lesion_f1": "lesion F1", "registration_dice": "reg. Dice",
    "region_accuracy": "region acc.", "top1": "top-1", "top3": "top-3", "healthy_false_match": "healthy FM",
}


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "-"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return "-" if not math.isfinite(float(value)) else (f"{value:.{digits}f}" if digits else f"{value:g}")
    return str(value)


def check_rows(checks: Iterable[ThresholdCheck]) -> list[list[str]]:
    """Rows ``[check, measured, threshold, n, result]`` of the threshold table."""
    return [[check.name, _fmt(check.value), f"{check.comparison} {check.threshold:g}", str(check.n),
             "PASS" if check.passed else "FAIL"] for check in checks]


def metric_rows(summary: dict[str, Any]) -> list[list[str]]:
    """Rows ``[metric, value]`` of the informational metrics."""
    counts = (f"{summary.get('n_sessions', 0)} ({summary.get('n_evaluated', 0)} / {summary.get('n_failed', 0)}"
              f" / {summary.get('n_missing', 0)})")
    rows = [["sessions (evaluated / failed / missing)", counts]]
    rows += [[label, _fmt(summary.get(key), digits)] for key, label, digits in OTHER_METRICS]
    return rows


def text_table(headers: list[str], rows: list[list[str]]) -> str:
    """A fixed-width text table (console)."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows)]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()
    return "\n".join([line(headers), line(["-" * w for w in widths]), *(line(row) for row in rows)])


def markdown_table(headers: list[str], rows: list[list[str]]) -> str:
    """A GitHub-flavoured Markdown table."""
    escape = lambda cell: str(cell).replace("|", "\\|")
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(" --- " for _ in headers) + "|"]
    lines += ["| " + " | ".join(escape(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def breakdown_rows(breakdown: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    """Headers and formatted rows of the condition breakdown."""
    headers = [BREAKDOWN_LABELS[column] for column in breakdown.columns]
    rows = [[_fmt(value, 0 if column in ("n", "n_failed") else 3) for column, value in row.items()]
            for _, row in breakdown.iterrows()]
    return headers, rows


def console_summary(summary: dict[str, Any], checks: list[ThresholdCheck]) -> str:
    """The summary printed by ``regiontag validate``: metric table, then one PASS/FAIL line per threshold."""
    verdict = "PASSED" if all(check.passed for check in checks) else "FAILED"
    return "\n".join([
        text_table(["metric", "value"], metric_rows(summary)), "",
        text_table(["threshold", "measured", "required", "n", "result"], check_rows(checks)), "",
        *(check.line() for check in checks), f"validation {verdict}",
    ])


def _flag(value: Any) -> bool | None:
    """A boolean cell as True / False, or None when missing (NaN, empty)."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value == "":
        return None
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


def _problem_sessions(table: pd.DataFrame, min_dice: float) -> list[list[str]]:
    """Sessions that failed, missed their pattern, matched a pattern while healthy, or (baseline) low Dice."""
    rows = []
    for row in table.itertuples():
        reasons = []
        if row.status not in ("ok", "warning"):
            reasons.append(f"status {row.status}")
        dice = pd.to_numeric(row.dice, errors="coerce")
        if row.condition == "baseline" and np.isfinite(dice) and dice < min_dice:
            reasons.append(f"baseline Dice {dice:.2f}")
        if _flag(row.top1) is False:
            reasons.append(f"true pattern ranked {_fmt(row.pattern_rank, 0)}")
        if _flag(row.false_match) is True:
            reasons.append("healthy but a pattern matched")
        if reasons:
            rows.append([row.session, row.condition, "; ".join(reasons), str(row.note or "")])
    return rows


def markdown_report(
    table: pd.DataFrame, summary: dict[str, Any], checks: list[ThresholdCheck], meta: dict[str, Any],
    curves: dict[str, pd.DataFrame], plots: dict[str, Path], thresholds: AccuracyConfig,
) -> str:
    """The text of ``validation_report.md``."""
    verdict = "PASSED" if all(check.passed for check in checks) else "FAILED"
    timings = meta.get("timings", {})
    timing_text = ", ".join(f"{key.removesuffix('_s')} {value:.0f} s" for key, value in timings.items())
    breaks = breaking_points(curves, thresholds)
    headers, rows = breakdown_rows(condition_breakdown(table))
    pattern_headers, pattern_rows = breakdown_rows(condition_breakdown(table, by="pattern"))
    problems = _problem_sessions(table, thresholds.min_lesion_dice)
    parts = [
        "# regiontag validation report", "",
        f"Command: `{meta.get('command', '')}`  ",
        f"Profile `{meta.get('profile')}`, seed {meta.get('seed')}, {len(table)} sessions"
        + (f"; time: {timing_text}" if timing_text else "") + ".", "",
        f"**Validation {verdict}.** Research software on synthetic phantoms, not a medical device.", "",
        "## Thresholds", "",
        markdown_table(["check", "measured", "required", "n", "result"], check_rows(checks)), "",
        "## Other metrics", "",
        markdown_table(["metric", "value"], metric_rows(summary)), "",
        "## Where accuracy breaks", "",
        *([f"- {sentence}" for sentence in breaks] or ["- no factor level falls below a threshold"]), "",
        *[f"![accuracy against {FACTORS[f]}]({p.name})" for f, p in plots.items()], "",
        "## By condition", "",
        "Means over finished sessions where each metric applies (`-`: not applicable).", "",
        markdown_table(headers, rows), "",
        "## By pattern", "",
        "Every phantom of a pattern, over all conditions (top-1: its own pattern ranked first, ties with the",
        "pattern's declared mimics allowed; healthy FM: a healthy control matched a pattern).", "",
        markdown_table(pattern_headers, pattern_rows), "",
    ]
    if problems:
        parts += ["## Sessions to look at", "", markdown_table(["session", "condition", "why", "note"], problems),
                  ""]
    return "\n".join(parts)


def validation_sections(
    table: pd.DataFrame, summary: dict[str, Any], checks: list[ThresholdCheck], meta: dict[str, Any],
    curves: dict[str, pd.DataFrame], plots: dict[str, Path], thresholds: AccuracyConfig,
    results_link: str | None = None,
) -> list[ExtraSection]:
    """The validation results as batch-report sections: result, metrics, accuracy plots, by condition."""

    def html_table(headers: list[str], rows: list[list[str]], table_id: str) -> str:
        body = ["<tr>" + "".join(f"<td>{h.esc(cell)}</td>" for cell in row) + "</tr>" for row in rows]
        return h.table([(header, "") for header in headers], body, table_id=table_id)

    passed = all(check.passed for check in checks)
    verdict = h.badge("passed" if passed else "failed", "ok" if passed else "failed")
    link = f'<p><a href="{h.esc(results_link)}">Batch report of the suite run</a></p>' if results_link else ""
    result = (
        f"<p>Validation {verdict} - research software on synthetic phantoms, not a medical device.</p>"
        f"<p><code>{h.esc(meta.get('command', ''))}</code></p>{link}"
        + html_table(["check", "measured", "required", "n", "result"], check_rows(checks), "thresholds")
    )
    breaks = "".join(f"<li>{h.esc(text)}</li>" for text in breaking_points(curves, thresholds))
    headers, rows = breakdown_rows(condition_breakdown(table))
    pattern_headers, pattern_rows = breakdown_rows(condition_breakdown(table, by="pattern"))
    figures = [(path, f"Accuracy against {FACTORS[factor]}; dashed lines: thresholds.") for factor, path in plots.items()]
    return [
        ExtraSection("Validation result", result, anchor="result", position="start"),
        ExtraSection("Other metrics", html_table(["metric", "value"], metric_rows(summary), "metrics-table"),
                     anchor="metrics", position="start"),
        ExtraSection("Accuracy against conditions",
                     f'<ul>{breaks or "<li>no factor level falls below a threshold</li>"}</ul>',
                     figures, anchor="plots", position="start"),
        ExtraSection("By condition", '<p class="help">Means over finished sessions where each metric applies '
                     "(-: not applicable).</p>" + html_table(headers, rows, "breakdown"),
                     anchor="conditions", position="start"),
        ExtraSection("By pattern", '<p class="help">Every phantom of a pattern over all conditions; top-1 allows '
                     "ties with the pattern's declared mimics.</p>"
                     + html_table(pattern_headers, pattern_rows, "pattern-breakdown"),
                     anchor="patterns", position="start"),
    ]


def _has_sessions(results_dir: Path | None) -> bool:
    """True when ``results_dir`` is a batch output folder with something to show."""
    if results_dir is None or not results_dir.is_dir():
        return False

    return len(load_sessions(results_dir)) > 0


def html_report(
    table: pd.DataFrame, summary: dict[str, Any], checks: list[ThresholdCheck], meta: dict[str, Any],
    curves: dict[str, pd.DataFrame], plots: dict[str, Path], thresholds: AccuracyConfig,
    results_link: str | None = None, results_dir: str | Path | None = None, link_base: str = "",
) -> str:
    """The self-contained ``index.html`` of ``OUT/validation`` (plots embedded as data URIs).

    Parameters
    ----------
    table, summary, checks, meta, curves, plots, thresholds
        As for :func:`markdown_report`.
    results_link : str, optional
        Link to the suite run's own batch report.
    results_dir : str or Path, optional
        The suite run's output folder: when it holds sessions, the page is its
        batch report (sessions, cohort plots) with the validation sections on top.
    link_base : str
        Path from the page to ``results_dir`` (e.g. ``"../results/"``) for the session links.
    """

    sections = validation_sections(table, summary, checks, meta, curves, plots, thresholds, results_link)
    title = "regiontag validation"
    results = Path(results_dir) if results_dir is not None else None
    if _has_sessions(results):
        return render_batch_report(results, sections, title=title, link_base=link_base)
    meta_text = f"profile {meta.get('profile')}, seed {meta.get('seed')}, {len(table)} sessions"
    return sections_page(title, meta_text, sections, "validation")


def write_validation(
    validation_dir: str | Path, table: pd.DataFrame, summary: dict[str, Any], checks: list[ThresholdCheck],
    meta: dict[str, Any], results_dir: str | Path | None = None,
) -> dict[str, Path]:
    """Write every file of ``OUT/validation``.

    Parameters
    ----------
    validation_dir : str or Path
    table : pandas.DataFrame
        ``evaluation.csv`` rows.
    summary : dict
        :func:`regiontag.accuracy.metrics.summarise` of ``table``.
    checks : list of ThresholdCheck
    meta : dict
        ``profile``, ``seed``, ``command``, ``timings`` and ``thresholds`` (the ``validation`` section).
    results_dir : str or Path, optional
        The suite's run output folder: ``index.html`` then shows its sessions and cohort plots
        below the validation sections (links relative to ``validation_dir``) and links its
        own batch report when that exists.

    Returns
    -------
    dict of str to Path
        ``evaluation``, ``summary``, ``report``, ``html`` and ``plot_<factor>``.
    """
    validation_dir = Path(validation_dir)
    thresholds = AccuracyConfig(**meta.get("thresholds", {}))
    files = {"evaluation": write_csv(table, validation_dir / EVALUATION_CSV, EVALUATION_COLUMNS)}
    curves, plots = write_accuracy_plots(table, thresholds, validation_dir)
    files.update({f"plot_{factor}": path for factor, path in plots.items()})
    content = {
        **{key: meta.get(key) for key in ("profile", "seed", "command", "timings", "thresholds")},
        "passed": all(check.passed for check in checks),
        "checks": [check.as_dict() for check in checks],
        "metrics": summary,
        "accuracy_by_factor": {factor: curve.to_dict(orient="records") for factor, curve in curves.items()},
        "breaking_points": breaking_points(curves, thresholds),
    }
    files["summary"] = write_json(content, validation_dir / SUMMARY_JSON)
    files["report"] = write_text(markdown_report(table, summary, checks, meta, curves, plots, thresholds),
                                 validation_dir / REPORT_MD)
    link, link_base = None, ""
    if results_dir is not None:
        link_base = Path(os.path.relpath(Path(results_dir).resolve(), validation_dir.resolve())).as_posix() + "/"
        if (Path(results_dir) / "index.html").is_file():
            link = f"{link_base}index.html"
    page = html_report(table, summary, checks, meta, curves, plots, thresholds, link, results_dir, link_base)
    files["html"] = write_text(page, validation_dir / REPORT_HTML)
    return files


__all__ = ["console_summary", "html_report", "markdown_report", "validation_sections", "write_validation"]
