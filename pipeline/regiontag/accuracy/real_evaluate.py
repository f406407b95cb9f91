"""Metrics of one real case against its truth: one row of ``real_evaluation.csv``.

:func:`evaluate_case` reads a case's output folder (a session folder of ``regiontag run`` or a
tagged-mask folder of ``regiontag tag``) through the output contract: the body part the run
decided (``provenance.json``), lesion and cord masks, atlas labels, scores and findings.
Used by :func:`regiontag.accuracy.real.run_real_validation`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd

from regiontag import outputs
from regiontag.accuracy.lesionwise import false_positive_by_region, lesion_metrics
from regiontag.accuracy.metrics import dice
from regiontag.config import Config
from regiontag.cord.bodypart import assess_body_part
from regiontag.inputs.discovery import body_part_of
from regiontag.niimg import resample_to, voxel_volume_ml
from regiontag.outputs.session_folder import SessionFolder
from regiontag.patterns.library import load_library

#: Columns of real_evaluation.csv, in order.
REAL_COLUMNS = [
    "case", "kind", "status", "error", "seconds",
    "truth_body_part", "result_body_part", "body_part_right", "body_part_source",
    "diagnosis", "truth_pattern", "top_pattern", "top_disease", "top_pattern_matched", "top_pattern_right",
    "truth_pattern_rank",
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


__all__ = ["REAL_COLUMNS", "RealCase", "disease_ids", "evaluate_case"]
