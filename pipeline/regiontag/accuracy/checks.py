"""Accuracy checks of a validation run: thresholds, per-pattern ranking, breakdowns by condition."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from regiontag.accuracy.metrics import HEALTHY
from regiontag.config import AccuracyConfig

EVALUATION_CSV = "evaluation.csv"
SUMMARY_JSON = "summary.json"
REPORT_MD = "validation_report.md"
REPORT_HTML = "index.html"
FINISHED = ("ok", "warning")


@dataclass(frozen=True)
class ThresholdCheck:
    """One pass/fail line of the validation.

    Attributes
    ----------
    name : str
        What is checked, e.g. ``"lesion Dice (SNR 20, 3 mm slices)"``.
    key : str
        Machine name (``summary.json``).
    value : float or None
        Measured value (None: not measurable on this suite, which fails).
    threshold : float
    comparison : {">=", "<="}
    n : int
        Sessions the value is computed from.
    """

    name: str
    key: str
    value: float | None
    threshold: float
    comparison: str
    n: int

    @property
    def passed(self) -> bool:
        """True when the value is measured and on the right side of the threshold."""
        if self.value is None or not np.isfinite(self.value):
            return False
        return self.value >= self.threshold if self.comparison == ">=" else self.value <= self.threshold

    def line(self) -> str:
        """``PASS name: value >= threshold (n sessions)``."""
        verdict = "PASS" if self.passed else "FAIL"
        shown = "not measured" if self.value is None or not np.isfinite(self.value) else f"{self.value:.3f}"
        return f"{verdict} {self.name}: {shown} {self.comparison} {self.threshold:g} (n={self.n})"

    def as_dict(self) -> dict[str, Any]:
        """JSON-able form (with ``passed``)."""
        value = None if self.value is None or not np.isfinite(self.value) else float(self.value)
        return {"name": self.name, "key": self.key, "value": value, "threshold": self.threshold,
                "comparison": self.comparison, "n": self.n, "passed": self.passed}



def _finished(table: pd.DataFrame) -> pd.DataFrame:
    return table[table["status"].isin(FINISHED)]


def reference_dice(table: pd.DataFrame, snr: float, slice_thickness_mm: float) -> tuple[float | None, int]:
    """Mean lesion Dice of finished sessions with true lesions acquired at this SNR and slice thickness.

    A finished session whose lesion mask is missing (Dice NaN) counts as Dice 0.
    Returns (mean or None when no such session, number of sessions).
    """
    done = _finished(table)
    snr_values = pd.to_numeric(done["snr"], errors="coerce")
    thickness = pd.to_numeric(done["slice_thickness_mm"], errors="coerce")
    lesions = pd.to_numeric(done["truth_lesion_ml"], errors="coerce").fillna(0) > 0
    selected = done[lesions & np.isclose(snr_values, snr) & np.isclose(thickness, slice_thickness_mm)]
    if selected.empty:
        return None, 0
    return float(pd.to_numeric(selected["dice"], errors="coerce").fillna(0.0).mean()), len(selected)


def check_thresholds(
    table: pd.DataFrame, summary: dict[str, Any], thresholds: AccuracyConfig
) -> list[ThresholdCheck]:
    """The pass/fail checks of a suite's evaluation.

    Parameters
    ----------
    table : pandas.DataFrame
        ``evaluation.csv`` rows (``EVALUATION_COLUMNS``).
    summary : dict
        :func:`regiontag.accuracy.metrics.summarise` of the same table.
    thresholds : AccuracyConfig

    Returns
    -------
    list of ThresholdCheck
        Lesion Dice at the reference acquisition, region-flag accuracy, pattern
        top-1, healthy false-match rate, the share of failed sessions and, for every
        pattern with enough phantoms under one condition, that pattern's own top-1
        there (:func:`per_pattern_top1`).
    """
    done = _finished(table)
    dice_value, dice_n = reference_dice(table, thresholds.dice_snr, thresholds.dice_slice_thickness_mm)
    region_rows = int(pd.to_numeric(done["n_region_rows"], errors="coerce").fillna(0).sum())
    n_top1 = int(done["top1"].notna().sum())
    n_healthy = int(done.loc[done["pattern"] == HEALTHY, "false_match"].notna().sum())
    n_sessions = len(table)
    failed = int((~table["status"].isin(FINISHED)).sum())
    return [
        ThresholdCheck(
            f"lesion Dice (SNR {thresholds.dice_snr:g}, {thresholds.dice_slice_thickness_mm:g} mm slices)",
            "lesion_dice_reference", dice_value, thresholds.min_lesion_dice, ">=", dice_n,
        ),
        ThresholdCheck("region-flag accuracy", "region_flag_accuracy", summary.get("region_flag_accuracy"),
                       thresholds.min_region_flag_accuracy, ">=", region_rows),
        ThresholdCheck("pattern top-1 accuracy", "pattern_top1_accuracy", summary.get("pattern_top1_accuracy"),
                       thresholds.min_pattern_top1, ">=", n_top1),
        ThresholdCheck("healthy false-match rate", "healthy_false_match_rate",
                       summary.get("healthy_false_match_rate"), thresholds.max_healthy_false_match_rate, "<=",
                       n_healthy),
        ThresholdCheck("failed or missing sessions (share)", "failed_fraction",
                       failed / n_sessions if n_sessions else None, thresholds.max_failed_fraction, "<=",
                       n_sessions),
    ] + [
        ThresholdCheck(f"pattern top-1 of {key}", f"pattern_top1/{key}", value,
                       thresholds.min_pattern_top1_each, ">=", n)
        for key, (value, n) in per_pattern_top1(table, thresholds.pattern_top1_min_phantoms).items()
    ]


def per_pattern_top1(table: pd.DataFrame, min_phantoms: int) -> dict[str, tuple[float, int]]:
    """Own-pattern top-1 of each pattern under each condition, over its finished phantoms.

    Parameters
    ----------
    table : pandas.DataFrame
        ``evaluation.csv`` rows.
    min_phantoms : int
        (Pattern, condition) groups with fewer finished lesion phantoms are left out
        (a rate over three phantoms says little).

    Returns
    -------
    dict
        ``"body_part/pattern at condition"`` -> (top-1 rate, number of phantoms), sorted by key.
    """
    done = _finished(table)
    lesioned = done[(done["pattern"] != HEALTHY) & done["top1"].notna()]
    rates = {}
    for (body_part, pattern, condition), group in sorted(lesioned.groupby(["body_part", "pattern", "condition"])):
        if len(group) >= min_phantoms:
            rates[f"{body_part}/{pattern} at {condition}"] = (float(group["top1"].astype(bool).mean()), len(group))
    return rates


def _mean_or_nan(values: pd.Series) -> float:
    values = pd.to_numeric(values, errors="coerce").dropna()
    return float(values.mean()) if len(values) else float("nan")


def _rate_or_nan(values: pd.Series) -> float:
    values = values.dropna()
    return float(values.astype(bool).mean()) if len(values) else float("nan")


#: Metric columns of the breakdowns (after the body part and the grouping column).
BREAKDOWN_METRICS = ["n", "n_failed", "dice", "hd95_mm", "lesion_f1", "registration_dice", "region_accuracy",
                     "top1", "top3", "healthy_false_match"]
#: Columns of the condition breakdown.
BREAKDOWN_COLUMNS = ["body_part", "condition", *BREAKDOWN_METRICS]


def condition_breakdown(table: pd.DataFrame, by: str = "condition") -> pd.DataFrame:
    """Metrics per (body part, ``by``): means over finished sessions where each applies.

    Parameters
    ----------
    table : pandas.DataFrame
        ``evaluation.csv`` rows.
    by : {"condition", "pattern"}
        Second grouping column: the acquisition condition (baseline first), or the
        true pattern (issue 4's own-pattern ranking per pattern, over all its conditions).
    """
    rows = []
    labelled = table.assign(**{by: table[by].fillna("").astype(str).replace("", "unlabelled")},
                            body_part=table["body_part"].fillna("").astype(str))
    for (body_part, key), group in labelled.groupby(["body_part", by], sort=True):
        done = _finished(group)
        healthy = done[done["pattern"] == HEALTHY]
        rows.append({
            "body_part": body_part, by: key, "n": len(group),
            "n_failed": int(len(group) - len(done)),
            "dice": _mean_or_nan(done["dice"]), "hd95_mm": _mean_or_nan(done["hd95_mm"]),
            "lesion_f1": _mean_or_nan(done["lesion_f1"]),
            "registration_dice": _mean_or_nan(done["registration_dice"]),
            "region_accuracy": _mean_or_nan(done["region_accuracy"]),
            "top1": _rate_or_nan(done["top1"]), "top3": _rate_or_nan(done["top3"]),
            "healthy_false_match": _rate_or_nan(healthy["false_match"]),
        })
    breakdown = pd.DataFrame(rows, columns=["body_part", by, *BREAKDOWN_METRICS])
    first = breakdown[by] != ("baseline" if by == "condition" else HEALTHY)
    return breakdown.assign(_order=first).sort_values(["body_part", "_order", by]).drop(
        columns="_order").reset_index(drop=True)
