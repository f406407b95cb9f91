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

import nibabel as nib
import numpy as np
import pandas as pd

from regiontag import outputs
from regiontag.accuracy.lesionwise import false_positive_by_region, lesion_metrics
from regiontag.accuracy.metrics import dice
from regiontag.accuracy.real_report import summarise_real, write_real_validation
from regiontag.config import AccuracyConfig, Config, load_config
from regiontag.cord.bodypart import assess_body_part
from regiontag.inputs.discovery import body_part_of, discover_sessions, is_nifti_name
from regiontag.niimg import resample_to, voxel_volume_ml
from regiontag.outputs.session_folder import SessionFolder
from regiontag.patterns.library import load_library
from regiontag.workflows.batch import run_batch
from regiontag.workflows.tag import tag_mask

TRUTH_JSON, TRUTH_LESIONS, TRUTH_CORD = "truth.json", "truth_lesions.nii.gz", "truth_cord.nii.gz"
INPUTS_DIR, RESULTS_DIR, VALIDATION_DIR = "inputs", "results", "validation"

#: Columns of real_evaluation.csv, in order.
REAL_COLUMNS = [
    "case", "kind", "status", "error", "seconds",
    "truth_body_part", "result_body_part", "body_part_right", "body_part_source",
    "diagnosis", "truth_pattern", "top_pattern", "top_disease", "top_pattern_matched", "top_pattern_right", "truth_pattern_rank",
    "truth_lesion_ml", "result_lesion_ml", "lesion_dice", "lesion_recall", "lesion_precision", "lesion_f1",
    "n_truth_lesions", "n_result_lesions", "abs_volume_difference_ml", "abs_volume_difference_percent",
    "false_positive_ml", "false_positive_by_region", "cord_dice", "truth_cord_ml", "result_cord_ml", "note",
]


@dataclass(frozen=True)
class RealCase:
    """One case folder of a real validation DIR."""

    name: str
    path: Path
    images: tuple[Path, ...]
    truth: dict[str, Any]
    lesions: Path | None = None
    cord: Path | None = None

    @property
    def kind(self) -> str:
        """``images`` (run as a session) or ``mask`` (a lesion mask tagged and scored)."""
        return "images" if self.images else "mask"


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


# --- evaluation ---------------------------------------------------------------------------------
def _mask_on(path: Path, reference: nib.Nifti1Image) -> np.ndarray:
    image = nib.load(str(path))
    if image.shape[:3] != reference.shape[:3] or not np.allclose(image.affine, reference.affine, atol=1e-3):
        image = resample_to(image, reference, order=0)
    return np.asarray(image.dataobj).reshape(reference.shape[:3])


def _result_body_parts(case: RealCase, folder: SessionFolder) -> tuple[list[str], str]:
    """Body parts the run decided for the case's scans (from provenance), else decided again here."""
    provenance = folder.read_provenance() or {}
    parts = sorted({record.get("body_part") for record in provenance.get("inputs", []) if record.get("body_part")})
    if parts:
        sources = "; ".join(str(record.get("body_part_source", "")) for record in provenance.get("inputs", []))
        return parts, sources
    decided, sources = set(), []
    for image in case.images:  # the session failed before provenance: the same rule, applied here
        named, source = body_part_of(image.name, Config().discovery)
        if named is None:
            decision = assess_body_part(image)
            named, source = decision.body_part, f"image: {decision.reason}"
        decided.add(named)
        sources.append(f"{source} (re-derived: no provenance)")
    return sorted(decided), "; ".join(sources)


def disease_ids(patterns_dir: str | Path | None = None) -> dict[str, str]:
    """Pattern id -> disease id (the pattern file's id) of a pattern library (default: the shipped one)."""
    return {pattern.id: pattern.disease_id for pattern in load_library(patterns_dir).patterns}


def _pattern_columns(scores_path: Path, truth_pattern: str, diseases: dict[str, str]) -> dict[str, Any]:
    """Top pattern, and whether it is the truth's pattern (a pattern id or a disease id, e.g. ``multiple-sclerosis``)."""
    if not scores_path.is_file():
        return {}
    scores = pd.read_csv(scores_path).sort_values("rank")
    if not len(scores):
        return {}
    top = scores.iloc[0]
    row: dict[str, Any] = {"top_pattern": str(top["pattern"]), "top_disease": str(top.get("disease", "")),
                           "top_pattern_matched": str(top.get("match", "")).strip().lower() in ("true", "1")}
    if truth_pattern:
        same = scores["pattern"].map(lambda pattern: truth_pattern in (pattern, diseases.get(pattern)))
        ranks = scores.loc[same, "rank"]
        row["truth_pattern_rank"] = int(ranks.min()) if len(ranks) else np.nan
        row["top_pattern_right"] = bool(same.iloc[0])
    return row


def _leaf_names(path: Path) -> dict[int, str]:
    if not path.is_file():
        return {}
    table = pd.read_csv(path, sep="\t")
    return {int(index): str(name) for index, name in zip(table["index"], table["name"])}


def _lesion_columns(case: RealCase, result_dir: Path, notes: list[str]) -> dict[str, Any]:
    truth_image = nib.load(str(case.lesions))
    truth = np.asarray(truth_image.dataobj).reshape(truth_image.shape[:3]) > 0
    voxel_ml = voxel_volume_ml(truth_image)
    names = ([outputs.CORD_LESIONS_NII, outputs.LESIONS_NII] if case.truth.get("body_part") == "cord"
             else [outputs.LESIONS_NII])
    found = next((result_dir / name for name in names if (result_dir / name).is_file()), None)
    if found is None:
        notes.append("no lesion mask in the results")
        return {"truth_lesion_ml": float(truth.sum() * voxel_ml)}
    result = _mask_on(found, truth_image) > 0
    metrics = lesion_metrics(truth, result, voxel_ml)
    row = {"truth_lesion_ml": metrics.truth_ml, "result_lesion_ml": metrics.result_ml,
           "lesion_dice": metrics.dice if truth.any() else np.nan, "lesion_recall": metrics.lesion_recall,
           "lesion_precision": metrics.lesion_precision, "lesion_f1": metrics.lesion_f1,
           "n_truth_lesions": metrics.n_truth_lesions, "n_result_lesions": metrics.n_result_lesions,
           "abs_volume_difference_ml": metrics.abs_volume_difference_ml,
           "abs_volume_difference_percent": metrics.abs_volume_difference_percent,
           "false_positive_ml": metrics.false_positive_ml}
    labels_path = result_dir / outputs.ATLAS_LABELS_NII
    if labels_path.is_file():
        labels = _mask_on(labels_path, truth_image)
        by_region = false_positive_by_region(truth, result, labels, _leaf_names(result_dir / outputs.ATLAS_LABELS_TSV),
                                             voxel_ml)
        row["false_positive_by_region"] = "; ".join(f"{name} {ml:.2f}" for name, ml in by_region.items())
    return row


def _cord_columns(case: RealCase, result_dir: Path, notes: list[str]) -> dict[str, Any]:
    truth_image = nib.load(str(case.cord))
    truth = np.asarray(truth_image.dataobj).reshape(truth_image.shape[:3]) > 0
    voxel_ml = voxel_volume_ml(truth_image)
    row: dict[str, Any] = {"truth_cord_ml": float(truth.sum() * voxel_ml)}
    path = result_dir / outputs.CORD_MASK_NII
    if not path.is_file():
        notes.append("no cord mask in the results")
        return row
    result = _mask_on(path, truth_image) > 0
    row.update(cord_dice=dice(truth, result), result_cord_ml=float(result.sum() * voxel_ml))
    return row


def _findings_lesion_ml(result_dir: Path) -> float:
    path = result_dir / outputs.FINDINGS_JSON
    if not path.is_file():
        return np.nan
    volumes = (json.loads(path.read_text()).get("lesion_volume_ml") or {}).values()
    values = [float(value) for value in volumes if value is not None]
    return float(sum(values)) if values else np.nan


def evaluate_case(case: RealCase, result_dir: str | Path, status: dict[str, Any] | None = None, *,
                  diseases: dict[str, str] | None = None) -> dict[str, Any]:
    """One row of ``real_evaluation.csv`` (``REAL_COLUMNS``).

    Parameters
    ----------
    case : RealCase
    result_dir : str or Path
        The case's output folder (a session folder or a tagged-mask folder).
    status : dict, optional
        ``status``, ``error``, ``seconds`` of the run (default: read from ``status.json``).
    diseases : dict, optional
        Pattern id -> disease id (:func:`disease_ids`; default: the shipped library), so that a
        truth ``pattern`` may name a disease (``multiple-sclerosis``: ``ms-brain`` or ``ms-cord``).
    """
    diseases = disease_ids() if diseases is None else diseases
    result_dir = Path(result_dir)
    folder = SessionFolder(result_dir)
    status = status or folder.read_status() or {}
    truth = case.truth
    row: dict[str, Any] = {column: np.nan for column in REAL_COLUMNS}
    row.update(case=case.name, kind=case.kind, status=str(status.get("status") or "missing"),
               error=str(status.get("error") or ""), seconds=status.get("seconds", np.nan),
               truth_body_part=truth.get("body_part", ""), diagnosis=truth.get("diagnosis", ""),
               truth_pattern=truth.get("pattern", ""), note="")
    notes: list[str] = []
    if case.kind == "images":
        parts, source = _result_body_parts(case, folder)
        row["result_body_part"], row["body_part_source"] = "+".join(parts), source
    else:
        part = status.get("body_part") or "+".join(status.get("body_parts") or [])
        row["result_body_part"], row["body_part_source"] = part, f"mask space {case.truth.get('space', '')}"
    if row["truth_body_part"]:
        row["body_part_right"] = row["result_body_part"] == row["truth_body_part"]
    if row["status"] in ("ok", "warning"):
        row.update(_pattern_columns(result_dir / outputs.SCORES_CSV, row["truth_pattern"], diseases))
        row["result_lesion_ml"] = _findings_lesion_ml(result_dir)
        if case.lesions is not None and case.kind == "images":
            row.update(_lesion_columns(case, result_dir, notes))
        if case.cord is not None:
            row.update(_cord_columns(case, result_dir, notes))
    row["note"] = "; ".join(notes)
    return row


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
