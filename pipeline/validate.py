"""``regiontag validate OUT``: generate the standard phantom suite, run the pipeline on it, evaluate.

Layout of ``OUT``::

    OUT/suite/      inputs/<session>/, truth/<session>/, suite.csv   (pipeline.phantoms.suite)
    OUT/results/    the pipeline's output folder (regiontag run), index.html batch report
    OUT/validation/ evaluation.csv, summary.json, validation_report.md, index.html,
                    accuracy_vs_<factor>.png

Every step resumes: phantoms whose ``truth.json`` exists (with the planned seed)
are kept, sessions whose outputs are complete and current are skipped by the
batch, and the evaluation is always redone (it is cheap).  The suite is judged
against the thresholds of the ``validation`` config section.

Profiles are those of :func:`pipeline.phantoms.suite.suite_plan`: ``quick``
(CI: every pattern at baseline, healthy controls, a few hard conditions; about
20 sessions, minutes) and ``full`` (every pattern at every condition level with
repeats; a few hundred sessions, hours).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipeline.config import Config, ValidationConfig, load_config
from pipeline.evaluate import EVALUATION_COLUMNS, HEALTHY, evaluate_session, summarise
from pipeline.outputs import write_csv
from pipeline.phantoms.suite import (
    PROFILES,
    SUITE_COLUMNS,
    SUITE_CSV,
    SuiteSession,
    make_session,
)
from pipeline.phantoms.suite import suite_plan as validation_plan  # the plan of `regiontag validate`

SUITE_DIR, RESULTS_DIR, VALIDATION_DIR = "suite", "results", "validation"
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


@dataclass
class ValidationResult:
    """Outcome of :func:`run_validation`."""

    out_dir: Path
    table: pd.DataFrame
    summary: dict[str, Any]
    checks: list[ThresholdCheck]
    files: dict[str, Path] = field(default_factory=dict)
    batch_line: str = ""
    resumed: int = 0

    @property
    def passed(self) -> bool:
        """True when every threshold passes."""
        return all(check.passed for check in self.checks)

    @property
    def exit_code(self) -> int:
        """0 when every threshold passes, else 1."""
        return 0 if self.passed else 1


# --- plan -------------------------------------------------------------------------------------------------
def suite_table(plan: list[SuiteSession]) -> pd.DataFrame:
    """``suite.csv`` rows (``SUITE_COLUMNS``) of a plan."""
    rows = [
        {**{name: getattr(session, name) for name in SUITE_COLUMNS if name != "settings"},
         "settings": json.dumps(session.settings, sort_keys=True)}
        for session in plan
    ]
    return pd.DataFrame(rows, columns=SUITE_COLUMNS)


def _stale(truth_dir: Path, session: SuiteSession) -> bool:
    """True when an existing phantom was made with another seed (another ``--seed`` in the same OUT)."""
    path = truth_dir / session.session / "truth.json"
    if not path.is_file():
        return False
    try:
        return int(json.loads(path.read_text()).get("seed", -1)) != session.seed
    except (OSError, ValueError, TypeError):
        return True


def prepare_suite(
    suite_dir: str | Path, plan: list[SuiteSession], *, workers: int = 1, force: bool = False
) -> pd.DataFrame:
    """Generate the phantoms of ``plan`` that are missing (or stale) and write ``suite.csv``.

    Parameters
    ----------
    suite_dir : str or Path
        ``OUT/suite``.
    plan : list of SuiteSession
    workers : int
        Processes generating phantoms.
    force : bool
        Regenerate every phantom of the plan.

    Returns
    -------
    pandas.DataFrame
        The plan as ``suite.csv`` rows.
    """
    suite_dir = Path(suite_dir)
    for session in plan:
        if force or _stale(suite_dir / "truth", session):
            for part in ("inputs", "truth"):
                shutil.rmtree(suite_dir / part / session.session, ignore_errors=True)
    todo = [s for s in plan if not (suite_dir / "truth" / s.session / "truth.json").is_file()]
    if workers > 1 and len(todo) > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=min(workers, len(todo))) as pool:
            list(pool.map(make_session, todo, [suite_dir] * len(todo)))
    else:
        for session in todo:
            make_session(session, suite_dir)
    table = suite_table(plan)
    write_csv(table, suite_dir / SUITE_CSV, SUITE_COLUMNS)
    return table


# --- metrics ----------------------------------------------------------------------------------------------
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
    table: pd.DataFrame, summary: dict[str, Any], thresholds: ValidationConfig
) -> list[ThresholdCheck]:
    """The pass/fail checks of a suite's evaluation.

    Parameters
    ----------
    table : pandas.DataFrame
        ``evaluation.csv`` rows (``EVALUATION_COLUMNS``).
    summary : dict
        :func:`pipeline.evaluate.summarise` of the same table.
    thresholds : ValidationConfig

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


def _statuses(results_dir: Path) -> dict[str, str]:
    path = results_dir / "sessions.csv"
    if not path.is_file():
        return {}
    table = pd.read_csv(path, dtype={"session": str, "status": str})[["session", "status"]].fillna("")
    return dict(zip(table["session"], table["status"]))


def evaluate_suite(suite_dir: str | Path, results_dir: str | Path, plan: list[SuiteSession]) -> pd.DataFrame:
    """``evaluation.csv`` rows for the sessions of ``plan`` (not any other phantom in the folder)."""
    suite_dir, results_dir = Path(suite_dir), Path(results_dir)
    statuses = _statuses(results_dir)
    rows = []
    for session in plan:
        truth_dir = suite_dir / "truth" / session.session
        if (truth_dir / "truth.json").is_file():
            rows.append(evaluate_session(truth_dir, results_dir / session.session, statuses.get(session.session, "")))
        else:  # generation failed or the folder was edited: counted as missing, never dropped
            rows.append({"session": session.session, "status": "missing", "pattern": session.pattern,
                         "body_part": session.body_part, "condition": session.condition,
                         "note": "no phantom truth"})
    return pd.DataFrame(rows, columns=EVALUATION_COLUMNS)


# --- the command ------------------------------------------------------------------------------------------
def interleaved(plan: list[SuiteSession]) -> list[SuiteSession]:
    """The plan in run order: cord (quick) first, then round-robin over patterns.

    Each pattern's sessions keep their plan order (baseline first), so a run
    stopped early has covered every pattern at its first conditions rather than
    a few patterns at every condition.
    """
    position: dict[str, int] = {}
    keyed = []
    for index, session in enumerate(plan):
        pattern_key = f"{session.body_part}/{session.pattern}"
        position[pattern_key] = position.get(pattern_key, -1) + 1
        keyed.append(((session.body_part != "cord", position[pattern_key], index), session))
    return [session for _, session in sorted(keyed, key=lambda item: item[0])]


def _run_pipeline(
    suite_dir: Path, results_dir: Path, plan: list[SuiteSession], config: Config, *, workers: int | None,
    force: bool, quiet: bool, scheduler: Any = None, session_runner: Any = None,
) -> Any:
    from pipeline.batch import run_batch
    from pipeline.discovery import discover_sessions

    # thresholds are not run parameters: keep them out of the run so changing one reruns nothing
    run_config = config.model_copy(update={"validation": ValidationConfig()})
    found = {s.session_id: s for s in discover_sessions(suite_dir / "inputs", run_config)}
    sessions = [found[planned.session] for planned in interleaved(plan) if planned.session in found]
    return run_batch(
        suite_dir / "inputs", results_dir, run_config, workers=workers, scheduler=scheduler, force=force,
        quiet=quiet, sessions=sessions, session_runner=session_runner,
    )


def run_validation(
    out_dir: str | Path,
    profile: str = "quick",
    seed: int = 0,
    *,
    workers: int | None = None,
    config: Config | str | Path | None = None,
    force: bool = False,
    quiet: bool = False,
    patterns: list[tuple[str, str]] | None = None,
    scheduler: Any = None,
    session_runner: Any = None,
    evaluate_only: bool = False,
) -> ValidationResult:
    """Generate the suite, run the pipeline, evaluate and write ``OUT/validation/``.

    Parameters
    ----------
    out_dir : str or Path
        ``OUT``; created when missing, resumed when it holds an earlier run.
    profile : {"quick", "full", "patterns"}
    seed : int
        Base seed of the suite.
    workers : int, optional
        Worker processes for phantom generation and the batch (default: one per core).
    config : Config, str or Path, optional
        Run configuration (or a YAML file overriding ``configs/default.yaml``); its
        ``validation`` section holds the thresholds.
    force : bool
        Regenerate the phantoms and rerun every session.
    quiet : bool
        No batch progress bar.
    patterns : list of (pattern id, body part), optional
        Restrict the suite to these patterns.
    scheduler, session_runner
        Passed to :func:`pipeline.batch.run_batch` (an existing Dask cluster; an alternative runner for tests).
    evaluate_only : bool
        Generate and run nothing: evaluate the sessions an earlier (perhaps stopped) run
        finished; the others count as missing, which fails the completeness check.

    Returns
    -------
    ValidationResult
    """
    from pipeline.validate_report import write_validation

    out_dir = Path(out_dir)
    if not isinstance(config, Config):
        config = load_config(config)
    plan = validation_plan(profile, seed, patterns)
    suite_dir, results_dir = out_dir / SUITE_DIR, out_dir / RESULTS_DIR
    timings: dict[str, float] = {}
    batch_line, resumed = "", 0
    if not evaluate_only:
        started = time.monotonic()
        prepare_suite(suite_dir, plan, workers=workers or os.cpu_count() or 1, force=force)
        timings["suite_s"] = time.monotonic() - started
        started = time.monotonic()
        batch = _run_pipeline(suite_dir, results_dir, plan, config, workers=workers, force=force, quiet=quiet,
                              scheduler=scheduler, session_runner=session_runner)
        timings["pipeline_s"] = time.monotonic() - started
        batch_line, resumed = batch.line, batch.resumed
    elif not (suite_dir / SUITE_CSV).is_file():
        raise FileNotFoundError(f"{suite_dir / SUITE_CSV}: no suite to evaluate (run without --evaluate-only first)")
    started = time.monotonic()
    table = evaluate_suite(suite_dir, results_dir, plan)
    summary = summarise(table)
    checks = check_thresholds(table, summary, config.validation)
    timings["evaluation_s"] = time.monotonic() - started
    meta = {"profile": profile, "seed": seed, "n_planned": len(plan), "timings": timings,
            "command": f"regiontag validate {out_dir} --profile {profile} --seed {seed}"
                       + (f" --workers {workers}" if workers else "") + (" --evaluate-only" if evaluate_only else ""),
            "thresholds": config.validation.model_dump()}
    files = write_validation(out_dir / VALIDATION_DIR, table, summary, checks, meta, results_dir=results_dir)
    return ValidationResult(out_dir, table, summary, checks, files, batch_line, resumed)


__all__ = [
    "PROFILES",
    "ThresholdCheck",
    "ValidationResult",
    "check_thresholds",
    "condition_breakdown",
    "evaluate_suite",
    "per_pattern_top1",
    "prepare_suite",
    "reference_dice",
    "run_validation",
    "validation_plan",
]
