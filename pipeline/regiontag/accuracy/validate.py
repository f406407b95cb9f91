"""``regiontag validate OUT``: generate the standard phantom suite, run the pipeline on it, evaluate.

Layout of ``OUT``::

    OUT/suite/      inputs/<session>/, truth/<session>/, suite.csv   (regiontag.accuracy.suite)
    OUT/results/    the pipeline's output folder (regiontag run), index.html batch report
    OUT/validation/ evaluation.csv, summary.json, validation_report.md, index.html,
                    accuracy_vs_<factor>.png

Every step resumes: phantoms whose ``truth.json`` exists (with the planned seed)
are kept, sessions whose outputs are complete and current are skipped by the
batch, and the evaluation is always redone (it is cheap).  The suite is judged
against the thresholds of the ``validation`` config section.

Profiles are those of :func:`regiontag.accuracy.suite.suite_plan`: ``quick``
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

import pandas as pd

from regiontag.accuracy.checks import check_thresholds, ThresholdCheck
from regiontag.accuracy.metrics import evaluate_session, EVALUATION_COLUMNS, summarise
from regiontag.accuracy.report import write_validation
from regiontag.accuracy.suite import (
    make_session,
    PROFILES,
    SUITE_COLUMNS,
    SUITE_CSV,
    suite_plan as validation_plan,
    SuiteSession,
)
from regiontag.config import AccuracyConfig, Config, load_config
from regiontag.inputs.discovery import discover_sessions
from regiontag.outputs.contract import write_csv
from regiontag.workflows.batch import run_batch
from regiontag.workflows.progress import PhaseProgress

SUITE_DIR, RESULTS_DIR, VALIDATION_DIR = "suite", "results", "validation"
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
    suite_dir: str | Path, plan: list[SuiteSession], *, workers: int = 1, force: bool = False,
    phases: PhaseProgress | None = None,
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
    phases : PhaseProgress, optional
        Shows the generation's progress (nothing by default).

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
    phases = phases or PhaseProgress(quiet=True)
    with phases.phase("validate: generate phantoms", len(todo)) as phase:
        if workers > 1 and len(todo) > 1:
            from concurrent.futures import ProcessPoolExecutor

            with ProcessPoolExecutor(max_workers=min(workers, len(todo))) as pool:
                for session, _ in zip(todo, pool.map(make_session, todo, [suite_dir] * len(todo))):
                    phase.done(session.session)
        else:
            for session in todo:
                phase.start(session.session)
                make_session(session, suite_dir)
                phase.done(session.session)
    table = suite_table(plan)
    write_csv(table, suite_dir / SUITE_CSV, SUITE_COLUMNS)
    return table


# --- metrics ----------------------------------------------------------------------------------------------
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

    # thresholds are not run parameters: keep them out of the run so changing one reruns nothing
    run_config = config.model_copy(update={"accuracy": AccuracyConfig()})
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
        Passed to :func:`regiontag.workflows.batch.run_batch` (an existing Dask cluster; an alternative runner for tests).
    evaluate_only : bool
        Generate and run nothing: evaluate the sessions an earlier (perhaps stopped) run
        finished; the others count as missing, which fails the completeness check.

    Returns
    -------
    ValidationResult
    """

    out_dir = Path(out_dir)
    if not isinstance(config, Config):
        config = load_config(config)
    plan = validation_plan(profile, seed, patterns)
    suite_dir, results_dir = out_dir / SUITE_DIR, out_dir / RESULTS_DIR
    timings: dict[str, float] = {}
    batch_line, resumed = "", 0
    phases = PhaseProgress(quiet=quiet)  # generation, evaluation and report; the batch shows its own bar
    if not evaluate_only:
        started = time.monotonic()
        prepare_suite(suite_dir, plan, workers=workers or os.cpu_count() or 1, force=force, phases=phases)
        timings["suite_s"] = time.monotonic() - started
        started = time.monotonic()
        batch = _run_pipeline(suite_dir, results_dir, plan, config, workers=workers, force=force, quiet=quiet,
                              scheduler=scheduler, session_runner=session_runner)
        timings["pipeline_s"] = time.monotonic() - started
        batch_line, resumed = batch.line, batch.resumed
    elif not (suite_dir / SUITE_CSV).is_file():
        raise FileNotFoundError(f"{suite_dir / SUITE_CSV}: no suite to evaluate (run without --evaluate-only first)")
    started = time.monotonic()
    with phases.phase("validate: evaluate", 1) as phase:
        phase.start(f"{len(plan)} sessions against their truth")
        table = evaluate_suite(suite_dir, results_dir, plan)
        summary = summarise(table)
        checks = check_thresholds(table, summary, config.accuracy)
        phase.done()
    timings["evaluation_s"] = time.monotonic() - started
    meta = {"profile": profile, "seed": seed, "n_planned": len(plan), "timings": timings,
            "command": f"regiontag validate {out_dir} --profile {profile} --seed {seed}"
                       + (f" --workers {workers}" if workers else "") + (" --evaluate-only" if evaluate_only else ""),
            "thresholds": config.accuracy.model_dump()}
    with phases.phase("validate: report", 1) as phase:
        phase.start(str(out_dir / VALIDATION_DIR))
        files = write_validation(out_dir / VALIDATION_DIR, table, summary, checks, meta, results_dir=results_dir)
        phase.done()
    return ValidationResult(out_dir, table, summary, checks, files, batch_line, resumed)


__all__ = [
    "PROFILES",
    "ValidationResult",
    "evaluate_suite",
    "prepare_suite",
    "run_validation",
    "validation_plan",
]
