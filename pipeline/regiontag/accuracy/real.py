"""``regiontag validate --profile real DIR``: the pipeline on real scans with expert truth.

Layout of ``DIR`` (one sub-folder per case; :mod:`regiontag.accuracy.real_cases` builds one
from ``../shared/data/real``)::

    DIR/<case>/*.nii.gz              the images, named by sequence (``*_FLAIR``, ``*_T2w``, ``*_T1w`` ...);
                                     the body part is left to the image unless the names say it
    DIR/<case>/truth_lesions.nii.gz  lesion truth (optional), on any grid in the images' world space
    DIR/<case>/truth_cord.nii.gz     cord truth (optional)
    DIR/<case>/truth.json            optional: {"body_part": "brain" | "cord", "diagnosis": "...",
                                     "pattern": "<pattern id>", "space": "MNI152" | "subject" | ...}

A case with images is run as a session (``regiontag run``, resumable); a *mask-only* case
(``truth_lesions.nii.gz`` + ``truth.json`` with a template ``space``, no images) is tagged
and scored (:func:`regiontag.workflows.tag.tag_mask`): only its pattern ranking is measured.

Outputs under ``OUT`` (default ``DIR_validation`` beside ``DIR``)::

    OUT/inputs/<case>/      links to the images of each case (what the batch runs)
    OUT/results/            the pipeline's output folder (sessions, sessions.csv, tagged masks)
    OUT/validation/         real_evaluation.csv, real_summary.json, real_report.md

Per case: body part right, lesion Dice, lesion-wise recall / precision / F1, absolute volume
difference, false-positive volume by region, cord Dice, top pattern and whether it is the
truth's pattern (:func:`evaluate_case`). There are no pass/fail thresholds: the exit code
is 1 only when a case failed or its body part is wrong.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from regiontag.accuracy.real_evaluate import (
    REAL_COLUMNS,
    RealCase,
    disease_ids,
    evaluate_case,
)
from regiontag.accuracy.real_report import summarise_real, write_real_validation
from regiontag.config import AccuracyConfig, Config, load_config
from regiontag.inputs.discovery import discover_sessions, is_nifti_name
from regiontag.workflows.batch import run_batch
from regiontag.workflows.tag import tag_mask

TRUTH_JSON, TRUTH_LESIONS, TRUTH_CORD = "truth.json", "truth_lesions.nii.gz", "truth_cord.nii.gz"
INPUTS_DIR, RESULTS_DIR, VALIDATION_DIR = "inputs", "results", "validation"


@dataclass
class RealValidationResult:
    """Outcome of :func:`run_real_validation`."""

    out_dir: Path
    table: pd.DataFrame
    summary: dict[str, Any]
    files: dict[str, Path] = field(default_factory=dict)
    batch_line: str = ""

    @property
    def exit_code(self) -> int:
        """0 when every case finished with the right body part, else 1."""
        done = self.table["status"].isin(["ok", "warning"])
        right = self.table["body_part_right"].map(lambda value: value is True or value == "True")
        return 0 if bool(done.all() and right.all()) else 1


def find_real_cases(cases_dir: str | Path) -> list[RealCase]:
    """Case folders of ``cases_dir``: sub-folders holding a ``truth.json`` or a ``truth_*.nii.gz``.

    Examples
    --------
    >>> [case.name for case in find_real_cases("real_cases")]  # doctest: +SKIP
    ['cord-t2', 'mask-patient16', 'mni-patient19']
    """
    cases_dir = Path(cases_dir)
    if not cases_dir.is_dir():
        raise FileNotFoundError(f"{cases_dir}: no such folder")
    cases = []
    for folder in sorted(path for path in cases_dir.iterdir() if path.is_dir()):
        truth_files = {path.name for path in folder.iterdir() if path.name.startswith("truth")}
        if not truth_files:
            continue
        truth = json.loads((folder / TRUTH_JSON).read_text()) if TRUTH_JSON in truth_files else {}
        images = tuple(sorted(path for path in folder.iterdir()
                              if is_nifti_name(path) and not path.name.startswith("truth")))
        cases.append(RealCase(folder.name, folder, images, truth,
                              folder / TRUTH_LESIONS if TRUTH_LESIONS in truth_files else None,
                              folder / TRUTH_CORD if TRUTH_CORD in truth_files else None))
    if not cases:
        raise FileNotFoundError(f"{cases_dir}: no case folder with a truth.json or truth_*.nii.gz")
    return cases


def stage_inputs(cases: list[RealCase], inputs_dir: Path) -> Path:
    """``OUT/inputs/<case>/``: links to the images of the image cases only (no truth files)."""
    for case in cases:
        if not case.images:
            continue
        folder = inputs_dir / case.name
        folder.mkdir(parents=True, exist_ok=True)
        wanted = {image.name for image in case.images}
        for stale in folder.iterdir():
            if stale.name not in wanted:
                stale.unlink()
        for image in case.images:
            link = folder / image.name
            if link.is_symlink() and Path(os.readlink(link)) == image.resolve():
                continue
            if link.is_symlink() or link.exists():
                link.unlink()
            os.symlink(image.resolve(), link)
    return inputs_dir


# --- the run --------------------------------------------------------------------------------------
def _tag_masks(cases: list[RealCase], results_dir: Path, config: Config) -> dict[str, dict[str, Any]]:
    """Tag and score the mask-only cases; their status records (a failure is a row, never a crash)."""
    records = {}
    for case in cases:
        if case.kind != "mask":
            continue
        started = time.perf_counter()
        space = case.truth.get("space")
        if case.lesions is None or not space:
            records[case.name] = {"status": "failed", "error": "mask-only case needs truth_lesions.nii.gz and "
                                  "truth.json with a template space", "seconds": 0.0}
            continue
        try:
            tagged = tag_mask(case.lesions, results_dir / case.name, config, space=space, session=case.name)
            records[case.name] = {"status": "warning" if tagged.warnings else "ok",
                                  "error": "; ".join(tagged.warnings[:3]), "body_part": tagged.body_part}
        except Exception as error:  # noqa: BLE001 - one bad case never stops the profile
            records[case.name] = {"status": "failed", "error": f"{type(error).__name__}: {error}"}
        records[case.name]["seconds"] = time.perf_counter() - started
    return records


def _session_statuses(results_dir: Path) -> dict[str, dict[str, Any]]:
    path = results_dir / "sessions.csv"
    if not path.is_file():
        return {}
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    return {row["session"]: dict(row) for _, row in table.iterrows()}


def run_real_validation(
    cases_dir: str | Path, out_dir: str | Path | None = None, *, config: Config | str | Path | None = None,
    workers: int | None = None, force: bool = False, quiet: bool = False, scheduler: Any = None,
    session_runner: Any = None, evaluate_only: bool = False,
) -> RealValidationResult:
    """Run the pipeline on every case of ``cases_dir``, evaluate against the truth, write ``OUT/validation``.

    Parameters
    ----------
    cases_dir : str or Path
        DIR in the layout of this module.
    out_dir : str or Path, optional
        ``OUT`` (default: ``<DIR>_validation`` beside DIR); resumed when it holds an earlier run.
    config : Config, str or Path, optional
        Run configuration or a YAML file overriding ``configs/default.yaml``.
    workers, force, quiet, scheduler, session_runner
        Passed to :func:`regiontag.workflows.batch.run_batch`.
    evaluate_only : bool
        Run nothing: evaluate what an earlier run finished.

    Returns
    -------
    RealValidationResult

    Examples
    --------
    >>> result = run_real_validation("real_cases", "real_out", workers=1)  # doctest: +SKIP
    >>> result.summary["body_part_accuracy"]  # doctest: +SKIP
    1.0
    """
    cases_dir = Path(cases_dir)
    out_dir = Path(out_dir) if out_dir is not None else cases_dir.with_name(cases_dir.name + "_validation")
    if not isinstance(config, Config):
        config = load_config(config)
    run_config = config.model_copy(update={"accuracy": AccuracyConfig()})
    cases = find_real_cases(cases_dir)
    results_dir = out_dir / RESULTS_DIR
    timings: dict[str, float] = {}
    batch_line, mask_records = "", {}
    if not evaluate_only:
        started = time.monotonic()
        inputs_dir = stage_inputs(cases, out_dir / INPUTS_DIR)
        names = {case.name for case in cases if case.kind == "images"}
        sessions = [s for s in discover_sessions(inputs_dir, run_config) if s.session_id in names] if names else []
        if sessions:
            batch = run_batch(inputs_dir, results_dir, run_config, workers=workers, scheduler=scheduler, force=force,
                              quiet=quiet, sessions=sessions, session_runner=session_runner)
            batch_line = batch.line
        timings["sessions_s"] = time.monotonic() - started
        started = time.monotonic()
        mask_records = _tag_masks(cases, results_dir, run_config)
        timings["masks_s"] = time.monotonic() - started
    statuses = _session_statuses(results_dir)
    rows, diseases = [], disease_ids(run_config.scoring.patterns_dir)
    for case in cases:
        record = mask_records.get(case.name) if case.kind == "mask" else statuses.get(case.name)
        rows.append(evaluate_case(case, results_dir / case.name, record, diseases=diseases))
    table = pd.DataFrame(rows, columns=REAL_COLUMNS)
    summary = summarise_real(table)
    command = f"regiontag validate --profile real {cases_dir} --output {out_dir}"
    meta = {"profile": "real", "cases_dir": str(cases_dir), "timings": timings,
            "command": command + (f" --workers {workers}" if workers else "")
            + (" --evaluate-only" if evaluate_only else "")}
    files = write_real_validation(out_dir / VALIDATION_DIR, table, summary, meta, REAL_COLUMNS)
    return RealValidationResult(out_dir, table, summary, files, batch_line)


__all__ = ["REAL_COLUMNS", "RealCase", "RealValidationResult", "disease_ids", "evaluate_case", "find_real_cases",
           "run_real_validation", "stage_inputs"]
