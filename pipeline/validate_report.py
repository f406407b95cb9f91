"""Files of ``OUT/validation/``: evaluation table, summary, Markdown report, HTML page, plots.

``validation_report.md`` holds the metrics against the thresholds (the table
for the README), the other metrics, where accuracy breaks, the plots and the
condition breakdown.  ``index.html`` shows the same with the plots embedded as
data URIs (the batch report has no hook for extra figures) and links the
batch report of ``OUT/results``.
"""

from __future__ import annotations

import base64
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from pipeline.config import ValidationConfig
from pipeline.evaluate import EVALUATION_COLUMNS
from pipeline.outputs import write_csv, write_json, write_text
from pipeline.validate import (
    EVALUATION_CSV,
    REPORT_HTML,
    REPORT_MD,
    SUMMARY_JSON,
    ThresholdCheck,
    condition_breakdown,
)
from pipeline.validate_plots import FACTORS, breaking_points, write_accuracy_plots

if TYPE_CHECKING:  # pragma: no cover
    from collections.abc import Iterable

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
    "body_part": "body part", "condition": "condition", "n": "n", "n_failed": "failed", "dice": "Dice",
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
    curves: dict[str, pd.DataFrame], plots: dict[str, Path], thresholds: ValidationConfig,
) -> str:
    """The text of ``validation_report.md``."""
    verdict = "PASSED" if all(check.passed for check in checks) else "FAILED"
    timings = meta.get("timings", {})
    timing_text = ", ".join(f"{key.removesuffix('_s')} {value:.0f} s" for key, value in timings.items())
    breaks = breaking_points(curves, thresholds)
    headers, rows = breakdown_rows(condition_breakdown(table))
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
    ]
    if problems:
        parts += ["## Sessions to look at", "", markdown_table(["session", "condition", "why", "note"], problems),
                  ""]
    return "\n".join(parts)


def _data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def html_report(
    table: pd.DataFrame, summary: dict[str, Any], checks: list[ThresholdCheck], meta: dict[str, Any],
    curves: dict[str, pd.DataFrame], plots: dict[str, Path], thresholds: ValidationConfig,
    results_link: str | None = None,
) -> str:
    """The self-contained ``index.html`` of ``OUT/validation`` (plots embedded as data URIs)."""
    from pipeline.report import html as h

    def html_table(headers: list[str], rows: list[list[str]], table_id: str) -> str:
        body = ["<tr>" + "".join(f"<td>{h.esc(cell)}</td>" for cell in row) + "</tr>" for row in rows]
        return h.table([(header, "") for header in headers], body, table_id=table_id)

    passed = all(check.passed for check in checks)
    checks_html = html_table(["check", "measured", "required", "n", "result"], check_rows(checks), "thresholds")
    figures = "".join(
        h.figure(_data_uri(path), h.esc(f"Accuracy against {FACTORS[factor]}; dashed lines: thresholds."),
                 f"accuracy against {FACTORS[factor]}", "chart")
        for factor, path in plots.items()
    )
    breaks = "".join(f"<li>{h.esc(text)}</li>" for text in breaking_points(curves, thresholds))
    headers, rows = breakdown_rows(condition_breakdown(table))
    link = f'<p><a href="{h.esc(results_link)}">Batch report of the suite run</a></p>' if results_link else ""
    verdict = h.badge("passed" if passed else "failed", "ok" if passed else "failed")
    body = (
        f'<section class="card" id="result"><h2>Result: {verdict}</h2>'
        f"<p>{h.esc(meta.get('command', ''))}</p>{link}{checks_html}</section>"
        f'<section class="card" id="metrics"><h2>Other metrics</h2>'
        f"{html_table(['metric', 'value'], metric_rows(summary), 'metrics-table')}</section>"
        f'<section class="card" id="plots"><h2>Accuracy against conditions</h2>'
        f'<ul>{breaks or "<li>no factor level falls below a threshold</li>"}</ul>'
        f'<div class="grid2">{figures}</div></section>'
        f'<section class="card" id="conditions"><h2>By condition</h2>{html_table(headers, rows, "breakdown")}</section>'
    )
    meta_text = h.esc(f"profile {meta.get('profile')}, seed {meta.get('seed')}, {len(table)} sessions")
    toc = [("result", "Result"), ("metrics", "Metrics"), ("plots", "Plots"), ("conditions", "By condition")]
    return h.page("regiontag validation", meta_text, toc, body, "validation")


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
        :func:`pipeline.evaluate.summarise` of ``table``.
    checks : list of ThresholdCheck
    meta : dict
        ``profile``, ``seed``, ``command``, ``timings`` and ``thresholds`` (the ``validation`` section).
    results_dir : str or Path, optional
        The suite's run output folder, linked from the HTML page when it has a batch report.

    Returns
    -------
    dict of str to Path
        ``evaluation``, ``summary``, ``report``, ``html`` and ``plot_<factor>``.
    """
    validation_dir = Path(validation_dir)
    thresholds = ValidationConfig(**meta.get("thresholds", {}))
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
    link = None
    if results_dir is not None and (Path(results_dir) / "index.html").is_file():
        link = f"../{Path(results_dir).name}/index.html"
    files["html"] = write_text(html_report(table, summary, checks, meta, curves, plots, thresholds, link),
                               validation_dir / REPORT_HTML)
    return files


__all__ = ["console_summary", "html_report", "markdown_report", "write_validation"]
