"""Summary and files of the real-data profile: ``real_evaluation.csv``, ``real_summary.json``, ``real_report.md``.

Written like the phantom suite's files (:mod:`regiontag.accuracy.report`): atomic
writers of the output contract, a Markdown report with the overall figures first and
then one row per case, and a console summary.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from regiontag.accuracy.report import markdown_table, text_table
from regiontag.outputs.contract import write_csv, write_json, write_text

REAL_EVALUATION_CSV = "real_evaluation.csv"
REAL_SUMMARY_JSON = "real_summary.json"
REAL_REPORT_MD = "real_report.md"
#: Overall figures (summary key, label, digits), in report order.
OVERALL = (
    ("n_cases", "cases (images / mask-only)", 0),
    ("n_finished", "finished (ok or warning)", 0),
    ("n_warning", "of which warning", 0),
    ("body_part_accuracy", "body part right", 3),
    ("mean_lesion_dice", "mean lesion Dice (image cases with lesion truth)", 3),
    ("mean_lesion_recall", "mean lesion-wise recall", 3),
    ("mean_lesion_precision", "mean lesion-wise precision", 3),
    ("mean_lesion_f1", "mean lesion-wise F1", 3),
    ("mean_abs_volume_difference_ml", "mean absolute volume difference (ml)", 2),
    ("mean_false_positive_ml", "mean false-positive volume (ml)", 2),
    ("mean_cord_dice", "mean cord Dice (cases with a cord mask)", 3),
    ("top_pattern_accuracy", "top pattern = diagnosis (all cases with a pattern)", 3),
    ("top_pattern_accuracy_masks", "top pattern = diagnosis (mask-only cases)", 3),
)
#: Per-case report columns (column, label, digits).
CASE_TABLE = (
    ("case", "case", None), ("status", "status", None), ("truth_body_part", "truth", None),
    ("result_body_part", "found", None), ("lesion_dice", "Dice", 3), ("lesion_recall", "recall", 2),
    ("lesion_precision", "precision", 2), ("lesion_f1", "F1", 2), ("truth_lesion_ml", "truth ml", 1),
    ("result_lesion_ml", "found ml", 1), ("abs_volume_difference_ml", "AVD ml", 1), ("cord_dice", "cord Dice", 3),
    ("top_pattern", "best-ranked pattern", None), ("top_pattern_matched", "matched", None),
    ("top_pattern_right", "= diagnosis", None),
)


def _flag(value: Any) -> bool | None:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value == "":
        return None
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)


def _mean(values: pd.Series) -> float | None:
    values = pd.to_numeric(values, errors="coerce").dropna()
    return float(values.mean()) if len(values) else None


def _rate(values: pd.Series) -> float | None:
    flags = [flag for flag in map(_flag, values) if flag is not None]
    return float(sum(flags) / len(flags)) if flags else None


def summarise_real(table: pd.DataFrame) -> dict[str, Any]:
    """Overall figures of a real evaluation table (means over the cases where a metric applies).

    Examples
    --------
    >>> table = pd.DataFrame({"case": ["a", "b"], "kind": ["images", "mask"], "status": ["ok", "warning"],
    ...                       "body_part_right": [True, True], "lesion_dice": [0.5, None],
    ...                       "top_pattern_right": [False, True]})
    >>> summary = summarise_real(table)
    >>> summary["body_part_accuracy"], summary["mean_lesion_dice"], summary["top_pattern_accuracy"]
    (1.0, 0.5, 0.5)
    """
    table = table.reindex(columns=sorted(set(table.columns) | {c for c, _, _ in CASE_TABLE} | {
        "kind", "lesion_f1", "false_positive_ml", "body_part_right"}))
    done = table[table["status"].isin(["ok", "warning"])]
    masks = done[done["kind"] == "mask"]
    summary: dict[str, Any] = {
        "n_cases": len(table),
        "n_image_cases": int((table["kind"] == "images").sum()),
        "n_mask_cases": int((table["kind"] == "mask").sum()),
        "n_finished": len(done),
        "n_warning": int((table["status"] == "warning").sum()),
        "n_failed": int((~table["status"].isin(["ok", "warning"])).sum()),
        "body_part_accuracy": _rate(table["body_part_right"]),
        "top_pattern_accuracy": _rate(done["top_pattern_right"]),
        "top_pattern_accuracy_masks": _rate(masks["top_pattern_right"]),
    }
    for column in ("lesion_dice", "lesion_recall", "lesion_precision", "lesion_f1", "abs_volume_difference_ml",
                   "false_positive_ml", "cord_dice"):
        summary[f"mean_{column}"] = _mean(done[column])
    summary["failed_cases"] = sorted(table.loc[~table["status"].isin(["ok", "warning"]), "case"].astype(str))
    summary["wrong_body_part"] = sorted(table.loc[table["body_part_right"].map(_flag) == False, "case"]
                                        .astype(str))
    return summary


def _fmt(value: Any, digits: int | None) -> str:
    flag = value if isinstance(value, bool) else None
    if flag is not None:
        return "yes" if flag else "no"
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if digits is not None:
        number = pd.to_numeric(value, errors="coerce")
        return "-" if pd.isna(number) else f"{float(number):.{digits}f}"
    return str(value)


def overall_rows(summary: dict[str, Any]) -> list[list[str]]:
    """Rows ``[figure, value]`` of the overall table."""
    rows = []
    for key, label, digits in OVERALL:
        value = summary.get(key)
        if key == "n_cases":
            value = f"{summary.get('n_cases', 0)} ({summary.get('n_image_cases', 0)} / {summary.get('n_mask_cases', 0)})"
            rows.append([label, value])
            continue
        rows.append([label, _fmt(value, digits if digits else None)])
    return rows


def case_rows(table: pd.DataFrame) -> list[list[str]]:
    """Formatted per-case rows (``CASE_TABLE`` columns)."""
    return [[_fmt(row.get(column), digits) for column, _, digits in CASE_TABLE] for _, row in table.iterrows()]


def real_markdown(table: pd.DataFrame, summary: dict[str, Any], meta: dict[str, Any]) -> str:
    """The text of ``real_report.md``."""
    headers = [label for _, label, _ in CASE_TABLE]
    false_positives = [[str(row["case"]), str(row["false_positive_by_region"])] for _, row in table.iterrows()
                       if isinstance(row.get("false_positive_by_region"), str) and row["false_positive_by_region"]]
    problems = [[str(row["case"]), str(row["status"]), str(row.get("error") or ""), str(row.get("note") or "")]
                for _, row in table.iterrows() if row["status"] != "ok" or (row.get("note") or "")]
    timings = ", ".join(f"{key.removesuffix('_s')} {value:.0f} s" for key, value in meta.get("timings", {}).items())
    parts = [
        "# regiontag validation on real scans", "",
        f"Command: `{meta.get('command', '')}`  ",
        f"Cases from `{meta.get('cases_dir', '')}`" + (f"; time: {timings}" if timings else "") + ".", "",
        "Research software, not a medical device. Lesion metrics: Dice; lesion-wise recall / precision / F1 over",
        "26-connected components (a lesion counts as found when any voxel overlaps); AVD: absolute volume",
        "difference. Mask-only cases are tagged and scored, so only their pattern ranking is measured.", "",
        "## Overall", "", markdown_table(["figure", "value"], overall_rows(summary)), "",
        "## Per case", "", markdown_table(headers, case_rows(table)), "",
    ]
    if false_positives:
        parts += ["## False-positive volume by region (ml)", "",
                  markdown_table(["case", "regions"], false_positives), ""]
    if problems:
        parts += ["## Warnings, failures and notes", "", markdown_table(["case", "status", "reason", "note"], problems),
                  ""]
    return "\n".join(parts)


def real_console_summary(table: pd.DataFrame, summary: dict[str, Any]) -> str:
    """What ``regiontag validate --profile real`` prints: the overall table, then the per-case table."""
    headers = [label for _, label, _ in CASE_TABLE]
    return "\n".join([text_table(["figure", "value"], overall_rows(summary)), "",
                      text_table(headers, case_rows(table))])


def write_real_validation(validation_dir: str | Path, table: pd.DataFrame, summary: dict[str, Any],
                          meta: dict[str, Any], columns: list[str]) -> dict[str, Path]:
    """Write ``real_evaluation.csv``, ``real_summary.json`` and ``real_report.md``; their paths by key."""
    validation_dir = Path(validation_dir)
    return {
        "evaluation": write_csv(table, validation_dir / REAL_EVALUATION_CSV, columns),
        "summary": write_json({**meta, "metrics": summary}, validation_dir / REAL_SUMMARY_JSON),
        "report": write_text(real_markdown(table, summary, meta), validation_dir / REAL_REPORT_MD),
    }
