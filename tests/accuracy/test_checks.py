"""``regiontag.accuracy.checks``: thresholds, per-pattern ranking and breakdowns on fabricated evaluation tables."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from regiontag.accuracy.checks import (
    condition_breakdown,
    per_pattern_top1,
    reference_dice,
)
from regiontag.accuracy.metrics import EVALUATION_COLUMNS

from tests.accuracy.fabricate import _checks, _row, passing_table


def test_reference_dice_uses_finished_lesion_sessions_at_snr20_3mm():
    table = pd.DataFrame([
        _row("a", dice=0.9), _row("b", dice=0.7),
        _row("c", "snr=10", snr=10.0, dice=0.1),  # other SNR
        _row("d", "slice_thickness_mm=5", thickness=5.0, dice=0.1),  # other slices
        _row("e", pattern="healthy", false_match=False),  # no lesion
        _row("f", status="failed"),  # not finished (counted by the failed-sessions check)
        _row("g", pattern="ms-cord", body_part="cord", snr=np.nan, thickness=np.nan, dice=0.1),
    ], columns=EVALUATION_COLUMNS)
    assert reference_dice(table, 20.0, 3.0) == (pytest.approx(0.8), 2)
    table.loc[table["session"] == "b", "dice"] = np.nan  # finished but no lesion mask: Dice 0
    assert reference_dice(table, 20.0, 3.0) == (pytest.approx(0.45), 2)
    assert reference_dice(table, 40.0, 3.0) == (None, 0)


def test_thresholds_pass_on_a_good_suite_and_each_fails_alone():
    table = passing_table()
    checks = _checks(table)
    assert set(checks) == {"lesion_dice_reference", "region_flag_accuracy", "pattern_top1_accuracy",
                           "healthy_false_match_rate", "failed_fraction"}
    assert all(check.passed for check in checks.values()), [c.line() for c in checks.values()]
    # reference Dice: SNR 20 and 3 mm, including the small-lesion and rotation sessions
    assert checks["lesion_dice_reference"].value == pytest.approx(np.mean([0.82, 0.78, 0.79, 0.5, 0.9]))
    assert checks["lesion_dice_reference"].n == 5
    assert checks["pattern_top1_accuracy"].value == pytest.approx(9 / 10)
    assert checks["healthy_false_match_rate"].value == 0.0 and checks["healthy_false_match_rate"].n == 4

    low_dice = passing_table()
    low_dice.loc[low_dice["session"] == "b-ms-base", "dice"] = 0.2
    assert not _checks(low_dice)["lesion_dice_reference"].passed

    regions = passing_table()
    regions.loc[regions["session"] == "b-ms-base", "region_accuracy"] = 0.0
    failing = _checks(regions)
    assert not failing["region_flag_accuracy"].passed
    assert failing["lesion_dice_reference"].passed and failing["pattern_top1_accuracy"].passed

    top1 = passing_table()
    top1.loc[top1["session"] == "b-svd-base", "top1"] = False
    assert _checks(top1)["pattern_top1_accuracy"].value == pytest.approx(8 / 10)
    assert not _checks(top1)["pattern_top1_accuracy"].passed

    false_match = passing_table()
    false_match.loc[false_match["session"] == "c-h", "false_match"] = True
    check = _checks(false_match)["healthy_false_match_rate"]
    assert check.value == pytest.approx(0.25) and not check.passed
    assert check.line() == "FAIL healthy false-match rate: 0.250 <= 0.05 (n=4)"

    failed = pd.concat([passing_table(), pd.DataFrame([_row("x", status="failed")])], ignore_index=True)
    assert not _checks(failed)["failed_fraction"].passed


def test_each_pattern_with_enough_phantoms_of_a_condition_is_checked_on_its_own():
    rows = [_row(f"ms-{i}", top1=i != 0) for i in range(12)]  # 11/12 = 0.917
    rows += [_row(f"svd-{i}", pattern="small-vessel-disease", top1=i > 1) for i in range(10)]  # 8/10
    rows += [_row(f"x-{i}", pattern="x-ald-parieto-occipital", top1=False) for i in range(3)]  # too few
    rows += [_row(f"ms-snr-{i}", "snr=5", snr=5.0, top1=False) for i in range(5)]  # too few at SNR 5
    rows += [_row(f"h-{i}", pattern="healthy", false_match=False) for i in range(12)]
    table = pd.DataFrame(rows, columns=EVALUATION_COLUMNS)
    checks = _checks(table)
    each = {key: check for key, check in checks.items() if key.startswith("pattern_top1/")}
    assert set(each) == {"pattern_top1/brain/ms-brain at baseline", "pattern_top1/brain/small-vessel-disease at baseline"}
    ms = each["pattern_top1/brain/ms-brain at baseline"]
    assert ms.passed and ms.n == 12
    svd = each["pattern_top1/brain/small-vessel-disease at baseline"]
    assert not svd.passed
    assert svd.line() == "FAIL pattern top-1 of brain/small-vessel-disease at baseline: 0.800 >= 0.9 (n=10)"
    loose = per_pattern_top1(table, 3)
    assert loose["brain/x-ald-parieto-occipital at baseline"] == (0.0, 3)
    assert loose["brain/ms-brain at snr=5"] == (0.0, 5)


def test_unmeasurable_threshold_fails():
    table = pd.DataFrame([_row("a", pattern="healthy", false_match=False)], columns=EVALUATION_COLUMNS)
    checks = _checks(table)
    assert checks["lesion_dice_reference"].value is None
    assert not checks["lesion_dice_reference"].passed
    assert "not measured" in checks["lesion_dice_reference"].line()
    assert checks["lesion_dice_reference"].as_dict()["passed"] is False
    assert not checks["pattern_top1_accuracy"].passed


def test_condition_breakdown_means_per_condition():
    breakdown = condition_breakdown(passing_table())
    assert list(breakdown.columns[:4]) == ["body_part", "condition", "n", "n_failed"]
    brain = breakdown[breakdown["body_part"] == "brain"]
    assert brain.iloc[0]["condition"] == "baseline"  # baseline first
    baseline = brain[brain["condition"] == "baseline"].iloc[0]
    assert baseline["n"] == 5
    assert baseline["dice"] == pytest.approx(np.mean([0.82, 0.78, 0.9]))
    assert baseline["top1"] == 1.0 and baseline["healthy_false_match"] == 0.0
    snr10 = brain[brain["condition"] == "snr=10"].iloc[0]
    assert snr10["n"] == 2 and snr10["dice"] == pytest.approx(0.70)
    assert set(breakdown["body_part"]) == {"brain", "cord"}


def test_pattern_breakdown_counts_every_phantom_of_a_pattern():
    breakdown = condition_breakdown(passing_table(), by="pattern")
    assert list(breakdown.columns[:3]) == ["body_part", "pattern", "n"]
    brain = breakdown[breakdown["body_part"] == "brain"].set_index("pattern")
    assert brain.index[0] == "healthy"  # controls first
    assert brain.loc["ms-brain", "n"] == 7  # every condition of the pattern
    assert brain.loc["ms-brain", "top1"] == pytest.approx(6 / 7)  # the SNR 5 phantom missed
    assert brain.loc["healthy", "healthy_false_match"] == 0.0 and np.isnan(brain.loc["healthy", "top1"])
