"""Metrics of pipeline results against phantom truth (``regiontag evaluate TRUTH_DIR RESULTS_DIR``).

Truth layout (written by the phantom generators): ``TRUTH_DIR/<session>/``
``lesions.nii.gz``, ``regions.csv``, ``truth.json`` and optionally
``atlas_labels.nii.gz``.  ``TRUTH_DIR`` may also be the phantom folder
holding ``truth/``.  Results follow the output contract
(``RESULTS_DIR/<session>/lesions.nii.gz``, ``regions.csv``, ``scores.csv``,
``atlas_labels.nii.gz``, ``provenance.json``).

Lesion metrics follow the MICCAI 2017 WMH segmentation challenge: Dice,
95th-percentile Hausdorff distance between the lesion outlines (mm), absolute
volume difference (% of the true volume), and lesion-wise recall and F1 from
26-connected components (a true lesion is detected when any result voxel
touches it; a result component is correct when it touches any true lesion).
Lesion metrics are computed on sessions with true lesions only; healthy
sessions report the false-positive volume instead.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd
from scipy import ndimage

from regiontag.niimg import resample_to
from regiontag.outputs.contract import write_csv, write_json

EVALUATION_CSV = "evaluation.csv"
EVALUATION_SUMMARY_JSON = "evaluation_summary.json"
HEALTHY = "healthy"

#: Columns of evaluation.csv, in order.
EVALUATION_COLUMNS = [
    "session", "status", "pattern", "body_part", "condition",
    "truth_lesion_ml", "result_lesion_ml", "n_truth_lesions", "n_result_lesions",
    "dice", "hd95_mm", "avd_percent", "lesion_recall", "lesion_f1", "false_positive_ml",
    "registration_dice", "region_accuracy", "region_sensitivity", "region_specificity", "n_region_rows",
    "n_region_rows_missing",
    "pattern_rank", "top1", "top3", "pattern_matched", "false_match",
    "snr", "slice_thickness_mm", "rotation_deg", "lesion_size", "plane", "atrophy", "motion", "bias_strength",
    "note",
]
_CONDITION_PARAMS = ("snr", "slice_thickness_mm", "rotation_deg", "lesion_size", "plane", "atrophy", "motion",
                     "bias_strength")
_CONNECTIVITY = np.ones((3, 3, 3), dtype=bool)


# --- voxel metrics ------------------------------------------------------------------------------------------
def dice(truth: np.ndarray, result: np.ndarray) -> float:
    """Dice overlap of two boolean masks (NaN when both are empty)."""
    truth, result = np.asarray(truth, bool), np.asarray(result, bool)
    total = truth.sum() + result.sum()
    return float(2 * np.logical_and(truth, result).sum() / total) if total else float("nan")


def voxel_spacing(affine: np.ndarray) -> tuple[float, float, float]:
    """Voxel edge lengths (mm) from an affine."""
    return tuple(float(v) for v in np.sqrt((np.asarray(affine)[:3, :3] ** 2).sum(axis=0)))


def _outline(mask: np.ndarray) -> np.ndarray:
    return mask & ~ndimage.binary_erosion(mask, structure=ndimage.generate_binary_structure(3, 1))


def hausdorff95(truth: np.ndarray, result: np.ndarray, spacing: tuple[float, float, float]) -> float:
    """95th-percentile symmetric Hausdorff distance (mm) between the outlines of two masks.

    Outline voxels are mask voxels with a 6-neighbour outside the mask.  For
    each outline voxel of one mask the distance to the nearest outline voxel
    of the other comes from a Euclidean distance transform (with the voxel
    spacing); the result is the larger of the two directed 95th percentiles.
    NaN when either mask is empty.
    """
    truth, result = np.asarray(truth, bool), np.asarray(result, bool)
    if not truth.any() or not result.any():
        return float("nan")
    union = truth | result
    box = tuple(
        slice(int(np.flatnonzero(np.any(union, axis=tuple(a for a in range(3) if a != axis)))[0]),
              int(np.flatnonzero(np.any(union, axis=tuple(a for a in range(3) if a != axis)))[-1]) + 1)
        for axis in range(3)
    )
    # pad so outlines touching the box edge stay outlines
    truth_box = np.pad(truth[box], 1)
    result_box = np.pad(result[box], 1)
    truth_outline, result_outline = _outline(truth_box), _outline(result_box)
    to_result = ndimage.distance_transform_edt(~result_outline, sampling=spacing)[truth_outline]
    to_truth = ndimage.distance_transform_edt(~truth_outline, sampling=spacing)[result_outline]
    return float(max(np.percentile(to_result, 95), np.percentile(to_truth, 95)))


def volume_difference_percent(truth: np.ndarray, result: np.ndarray) -> float:
    """Absolute volume difference, % of the true volume (NaN without true lesions)."""
    true_voxels = int(np.count_nonzero(truth))
    if true_voxels == 0:
        return float("nan")
    return float(abs(int(np.count_nonzero(result)) - true_voxels) / true_voxels * 100)


def lesion_detection(truth: np.ndarray, result: np.ndarray) -> tuple[float, float, int, int]:
    """Lesion-wise recall and F1 (MICCAI WMH definitions, 26-connected components).

    Returns
    -------
    recall, f1 : float
        Recall = detected true lesions / true lesions (1 when there are none);
        precision = result components touching a true lesion / result components
        (1 when there are none); F1 their harmonic mean (0 when both are 0).
    n_truth, n_result : int
        Numbers of true and result components.
    """
    truth, result = np.asarray(truth, bool), np.asarray(result, bool)
    truth_components, n_truth = ndimage.label(truth, structure=_CONNECTIVITY)
    result_components, n_result = ndimage.label(result, structure=_CONNECTIVITY)
    detected = np.unique(truth_components[result & truth])
    recall = (detected[detected > 0].size / n_truth) if n_truth else 1.0
    correct = np.unique(result_components[truth & result])
    precision = (correct[correct > 0].size / n_result) if n_result else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return float(recall), float(f1), int(n_truth), int(n_result)


def label_dice(truth_labels: np.ndarray, result_labels: np.ndarray, min_voxels: int = 20) -> float:
    """Mean Dice over the atlas labels present in the truth with at least ``min_voxels`` voxels."""
    truth_labels = np.asarray(truth_labels).astype(np.int64)
    result_labels = np.asarray(result_labels).astype(np.int64)
    n_labels = int(max(truth_labels.max(), result_labels.max())) + 1
    truth_counts = np.bincount(truth_labels.ravel(), minlength=n_labels)
    result_counts = np.bincount(result_labels.ravel(), minlength=n_labels)
    agree = truth_labels == result_labels
    overlap = np.bincount(truth_labels[agree], minlength=n_labels)
    values = [
        2 * overlap[label] / (truth_counts[label] + result_counts[label])
        for label in range(1, n_labels)
        if truth_counts[label] >= min_voxels
    ]
    return float(np.mean(values)) if values else float("nan")


# --- tables -------------------------------------------------------------------------------------------------
def _as_bool(values: pd.Series) -> pd.Series:
    if values.dtype == bool:
        return values
    return values.astype(str).str.strip().str.lower().isin(["true", "1", "yes"])


def region_flag_agreement(truth_regions: pd.DataFrame, result_regions: pd.DataFrame) -> dict[str, float]:
    """Agreement of ``involved`` flags over the truth's (region, side) rows.

    A truth row missing from the results counts as "not involved" there; truth rows
    with an empty ``involved`` (not stated) are skipped.
    Returns accuracy, sensitivity (true involved rows flagged), specificity
    (uninvolved rows not flagged), the number of rows compared and how many
    of them the results lack.
    """
    truth_regions = truth_regions[truth_regions["involved"].notna()]  # None: truth does not say
    truth = truth_regions[["region", "side"]].copy()
    truth["truth_involved"] = _as_bool(truth_regions["involved"]).to_numpy()
    result = result_regions[["region", "side"]].copy()
    result["result_involved"] = _as_bool(result_regions["involved"]).to_numpy()
    merged = truth.merge(result.drop_duplicates(["region", "side"]), on=["region", "side"], how="left")
    missing = int(merged["result_involved"].isna().sum())
    merged["result_involved"] = merged["result_involved"].fillna(False).astype(bool)
    positive = merged["truth_involved"]
    agree = merged["truth_involved"] == merged["result_involved"]
    return {
        "region_accuracy": float(agree.mean()) if len(merged) else float("nan"),
        "region_sensitivity": float(agree[positive].mean()) if positive.any() else float("nan"),
        "region_specificity": float(agree[~positive].mean()) if (~positive).any() else float("nan"),
        "n_region_rows": int(len(merged)),
        "n_region_rows_missing": missing,
    }


def pattern_outcome(scores: pd.DataFrame, truth_pattern: str | None) -> dict[str, Any]:
    """Rank of the true pattern, top-1 / top-3 hits, whether it matched, and any match at all."""
    scores = scores.sort_values("rank")
    matched = _as_bool(scores["match"]) if "match" in scores else pd.Series(False, index=scores.index)
    outcome: dict[str, Any] = {"false_match": np.nan, "pattern_rank": np.nan, "top1": np.nan, "top3": np.nan,
                               "pattern_matched": np.nan}
    if truth_pattern == HEALTHY:
        outcome["false_match"] = bool(matched.any())
    elif truth_pattern:
        hits = scores.loc[scores["pattern"] == truth_pattern, "rank"]
        rank = int(hits.min()) if len(hits) else np.nan
        outcome.update(
            pattern_rank=rank,
            top1=bool(len(hits) and rank <= 1),
            top3=bool(len(hits) and rank <= 3),
            pattern_matched=bool(matched[scores["pattern"] == truth_pattern].any()),
        )
    return outcome


# --- sessions -----------------------------------------------------------------------------------------------
def _load_mask(path: Path, reference: nib.Nifti1Image | None = None) -> tuple[np.ndarray, nib.Nifti1Image]:
    image = nib.load(str(path))
    if reference is not None and (
        image.shape[:3] != reference.shape[:3] or not np.allclose(image.affine, reference.affine, atol=1e-3)
    ):
        image = resample_to(image, reference, order=0)
    return np.asarray(image.dataobj).reshape(image.shape[:3]), image


def _status_table(results_dir: Path) -> dict[str, tuple[str, str]]:
    path = results_dir / "sessions.csv"
    if not path.is_file():
        return {}
    table = pd.read_csv(path, dtype=str, keep_default_na=False)  # every column as text, empty cells as ""
    return {row.session: (str(row.status), str(row.error)) for row in table.itertuples()}


def evaluate_session(truth_dir: str | Path, result_dir: str | Path, status: str = "") -> dict[str, Any]:
    """One row of ``evaluation.csv``: compare ``truth/<session>`` with ``results/<session>``.

    Parameters
    ----------
    truth_dir, result_dir : str or Path
        The session's truth folder and result folder.
    status : str
        Status from the batch's ``sessions.csv`` (``failed`` sessions get no metrics).
    """
    truth_dir, result_dir = Path(truth_dir), Path(result_dir)
    truth_info = json.loads((truth_dir / "truth.json").read_text())
    params = truth_info.get("params", {})
    row: dict[str, Any] = {column: np.nan for column in EVALUATION_COLUMNS}
    row.update(
        session=truth_dir.name, pattern=truth_info.get("pattern") or "", body_part=truth_info.get("body_part", ""),
        condition=truth_info.get("condition", ""), note="",
        **{name: params.get(name, np.nan) for name in _CONDITION_PARAMS},
    )
    if not (result_dir / "provenance.json").is_file() or status == "failed":
        row["status"] = "failed" if status == "failed" else "missing"
        return row
    row["status"] = status if status in ("ok", "warning") else "ok"  # "skipped" = complete from an earlier run
    notes = []
    truth_mask, truth_image = _load_mask(truth_dir / "lesions.nii.gz")
    truth_mask = truth_mask > 0
    voxel_ml = abs(np.linalg.det(truth_image.affine[:3, :3])) / 1000
    row["truth_lesion_ml"] = float(truth_mask.sum() * voxel_ml)
    if (result_dir / "lesions.nii.gz").is_file():
        result_mask, _ = _load_mask(result_dir / "lesions.nii.gz", truth_image)
        result_mask = result_mask > 0
        recall, f1, n_truth, n_result = lesion_detection(truth_mask, result_mask)
        row.update(result_lesion_ml=float(result_mask.sum() * voxel_ml), n_truth_lesions=n_truth,
                   n_result_lesions=n_result)
        if truth_mask.any():
            row.update(
                dice=dice(truth_mask, result_mask),
                hd95_mm=hausdorff95(truth_mask, result_mask, voxel_spacing(truth_image.affine)),
                avd_percent=volume_difference_percent(truth_mask, result_mask),
                lesion_recall=recall, lesion_f1=f1,
            )
        else:
            row["false_positive_ml"] = row["result_lesion_ml"]
    else:
        notes.append("no lesions.nii.gz in results")
    if (truth_dir / "atlas_labels.nii.gz").is_file() and (result_dir / "atlas_labels.nii.gz").is_file():
        truth_labels, labels_image = _load_mask(truth_dir / "atlas_labels.nii.gz")
        result_labels, _ = _load_mask(result_dir / "atlas_labels.nii.gz", labels_image)
        row["registration_dice"] = label_dice(truth_labels, result_labels)
    if (truth_dir / "regions.csv").is_file() and (result_dir / "regions.csv").is_file():
        row.update(region_flag_agreement(pd.read_csv(truth_dir / "regions.csv"),
                                         pd.read_csv(result_dir / "regions.csv")))
        if row["n_region_rows_missing"]:
            notes.append(f"{row['n_region_rows_missing']} of {row['n_region_rows']} truth region rows "
                         "missing from the results (counted as not involved)")
    if (result_dir / "scores.csv").is_file():
        scores = pd.read_csv(result_dir / "scores.csv")
        if len(scores):
            row.update(pattern_outcome(scores, row["pattern"] or None))
    elif row["pattern"]:
        notes.append("no scores.csv in results")
    row["note"] = "; ".join(notes)
    return row


def find_truth_sessions(truth_dir: str | Path) -> list[Path]:
    """Session truth folders (holding ``truth.json``) under ``truth_dir`` or ``truth_dir/truth``."""
    truth_dir = Path(truth_dir)
    if not (truth_dir / "truth.json").is_file() and (truth_dir / "truth").is_dir():
        truth_dir = truth_dir / "truth"
    if (truth_dir / "truth.json").is_file():
        return [truth_dir]
    return sorted(path.parent for path in truth_dir.glob("*/truth.json"))


def _mean(values: pd.Series) -> float | None:
    values = pd.to_numeric(values, errors="coerce").dropna()
    return float(values.mean()) if len(values) else None


def _rate(values: pd.Series) -> float | None:
    values = values.dropna()
    return float(values.astype(bool).mean()) if len(values) else None


def summarise(table: pd.DataFrame) -> dict[str, Any]:
    """Summary metrics of an evaluation table (means over sessions where a metric applies)."""
    done = table[table["status"].isin(["ok", "warning"])]
    healthy = done[done["pattern"] == HEALTHY]
    summary: dict[str, Any] = {
        "n_sessions": int(len(table)),
        "n_evaluated": int(len(done)),
        "n_failed": int((table["status"] == "failed").sum()),
        "n_missing": int((table["status"] == "missing").sum()),
        "n_healthy": int(len(healthy)),
    }
    for column in ("dice", "hd95_mm", "avd_percent", "lesion_recall", "lesion_f1", "registration_dice",
                   "region_accuracy", "region_sensitivity", "region_specificity"):
        summary[f"mean_{column}"] = _mean(done[column])
    summary["median_dice"] = (
        float(pd.to_numeric(done["dice"]).dropna().median()) if done["dice"].notna().any() else None
    )
    rows = pd.to_numeric(done["n_region_rows"], errors="coerce").fillna(0)
    accuracy = pd.to_numeric(done["region_accuracy"], errors="coerce").fillna(0)
    summary["region_flag_accuracy"] = float((rows * accuracy).sum() / rows.sum()) if rows.sum() else None
    summary["pattern_top1_accuracy"] = _rate(done["top1"])
    summary["pattern_top3_accuracy"] = _rate(done["top3"])
    summary["healthy_false_match_rate"] = _rate(healthy["false_match"])
    summary["healthy_false_positive_ml"] = _mean(healthy["false_positive_ml"])
    for key, column in (("by_body_part", "body_part"), ("by_condition", "condition")):
        labelled = done[done[column].fillna("").astype(str) != ""]
        if len(labelled):
            summary[key] = {
                str(name): _group_summary(group) for name, group in labelled.groupby(labelled[column].astype(str))
            }
    return summary


def _group_summary(group: pd.DataFrame) -> dict[str, Any]:
    healthy = group[group["pattern"] == HEALTHY]
    return {
        "n": int(len(group)),
        "mean_dice": _mean(group["dice"]),
        "mean_lesion_f1": _mean(group["lesion_f1"]),
        "region_accuracy": _mean(group["region_accuracy"]),
        "top1": _rate(group["top1"]),
        "healthy_false_match_rate": _rate(healthy["false_match"]),
    }


def evaluate(
    truth_dir: str | Path, results_dir: str | Path, out_dir: str | Path | None = None, write: bool = True
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Evaluate every truth session against the results; write ``evaluation.csv`` and the summary.

    Parameters
    ----------
    truth_dir : str or Path
        Folder of session truth folders (or the phantom folder holding ``truth/``).
    results_dir : str or Path
        The pipeline's ``OUTPUT_DIR``.
    out_dir : str or Path, optional
        Where to write the two files (default ``results_dir``).
    write : bool
        Write the files.

    Returns
    -------
    per_session : pandas.DataFrame
        ``EVALUATION_COLUMNS``, one row per truth session.
    summary : dict
        See :func:`summarise`.

    Raises
    ------
    FileNotFoundError
        When ``truth_dir`` holds no ``truth.json``.
    """
    results_dir = Path(results_dir)
    sessions = find_truth_sessions(truth_dir)
    if not sessions:
        raise FileNotFoundError(f"{truth_dir}: no <session>/truth.json found (is it a phantom truth folder?)")
    statuses = _status_table(results_dir)
    rows = [
        evaluate_session(path, results_dir / path.name, statuses.get(path.name, ("", ""))[0]) for path in sessions
    ]
    table = pd.DataFrame(rows, columns=EVALUATION_COLUMNS)
    summary = summarise(table)
    if write:
        target = Path(out_dir) if out_dir is not None else results_dir
        write_csv(table, target / EVALUATION_CSV, EVALUATION_COLUMNS)
        write_json(summary, target / EVALUATION_SUMMARY_JSON)
    return table, summary
