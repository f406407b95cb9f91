"""Lesion-wise and volume metrics of a lesion mask against truth, and false positives by region.

Lesions are 26-connected components. A true lesion is *detected* when at least
``min_overlap`` of its voxels (default: any voxel) are in the result; a result
component is *correct* when it overlaps a true lesion the same way (the MICCAI
2016 / 2017 lesion-wise definitions used by LST-AI and the WMH challenge).
False-positive voxels (result outside the truth) are summed per atlas region,
coarsened to the parent of each leaf (``cerebral_wm/periventricular/frontal``
counts under ``cerebral_wm/periventricular``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy import ndimage

from regiontag.accuracy.metrics import dice

_CONNECTIVITY = np.ones((3, 3, 3), dtype=bool)
OUTSIDE_ATLAS = "outside atlas"


@dataclass(frozen=True)
class LesionMetrics:
    """Voxel-wise and lesion-wise agreement of one result mask with its truth."""

    dice: float
    truth_ml: float
    result_ml: float
    abs_volume_difference_ml: float
    abs_volume_difference_percent: float
    n_truth_lesions: int
    n_result_lesions: int
    lesion_recall: float
    lesion_precision: float
    lesion_f1: float
    false_positive_ml: float

    def as_dict(self) -> dict[str, float]:
        """The metrics as a flat dict (column name -> value)."""
        return asdict(self)


def _overlap_hits(labels: np.ndarray, count: int, other: np.ndarray, min_overlap: float) -> int:
    """Number of components of ``labels`` with >= ``min_overlap`` of their voxels (> 0: any voxel) in ``other``."""
    if count == 0:
        return 0
    sizes = np.bincount(labels.ravel(), minlength=count + 1)
    inside = np.bincount(labels[other].ravel(), minlength=count + 1)
    share = inside[1:] / np.maximum(sizes[1:], 1)
    return int(np.count_nonzero(share > 0 if min_overlap <= 0 else share >= min_overlap))


def lesion_metrics(truth: np.ndarray, result: np.ndarray, voxel_ml: float, *,
                   min_overlap: float = 0.0) -> LesionMetrics:
    """Dice, volumes, lesion-wise recall / precision / F1 and false-positive volume.

    Parameters
    ----------
    truth, result : ndarray
        Masks on the same grid (non-zero = lesion).
    voxel_ml : float
        Volume of one voxel (ml).
    min_overlap : float
        Share of a component that must overlap the other mask to count (0: any voxel).

    Returns
    -------
    LesionMetrics
        Recall is 1 without true lesions, precision 1 without result lesions; Dice NaN when
        both masks are empty; volume difference in % NaN without true lesions.

    Examples
    --------
    >>> truth = np.zeros((20, 20, 20), bool); truth[2:5, 2:5, 2:5] = True; truth[10:13, 10:13, 10:13] = True
    >>> result = np.zeros_like(truth); result[2:5, 2:5, 2:5] = True; result[16:18, 16:18, 16:18] = True
    >>> metrics = lesion_metrics(truth, result, 0.001)
    >>> metrics.lesion_recall, metrics.lesion_precision, metrics.lesion_f1
    (0.5, 0.5, 0.5)
    """
    truth, result = np.asarray(truth) > 0, np.asarray(result) > 0
    truth_labels, n_truth = ndimage.label(truth, structure=_CONNECTIVITY)
    result_labels, n_result = ndimage.label(result, structure=_CONNECTIVITY)
    recall = _overlap_hits(truth_labels, n_truth, result, min_overlap) / n_truth if n_truth else 1.0
    precision = _overlap_hits(result_labels, n_result, truth, min_overlap) / n_result if n_result else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    truth_ml, result_ml = float(truth.sum() * voxel_ml), float(result.sum() * voxel_ml)
    difference = abs(result_ml - truth_ml)
    return LesionMetrics(
        dice=dice(truth, result), truth_ml=truth_ml, result_ml=result_ml, abs_volume_difference_ml=difference,
        abs_volume_difference_percent=100 * difference / truth_ml if truth_ml else float("nan"),
        n_truth_lesions=int(n_truth), n_result_lesions=int(n_result), lesion_recall=float(recall),
        lesion_precision=float(precision), lesion_f1=float(f1),
        false_positive_ml=float(np.count_nonzero(result & ~truth) * voxel_ml),
    )


def region_class(leaf_name: str) -> str:
    """The coarse region a leaf label counts under: its parent path, without the side.

    Examples
    --------
    >>> region_class("cerebral_wm/periventricular/frontal [left]")
    'cerebral_wm/periventricular'
    >>> region_class("caudate [right]")
    'caudate'
    """
    base = leaf_name.split(" [", 1)[0].strip()
    parts = base.split("/")
    return "/".join(parts[:-1]) if len(parts) > 1 else base


def false_positive_by_region(truth: np.ndarray, result: np.ndarray, labels: np.ndarray,
                             leaf_names: dict[int, str], voxel_ml: float) -> dict[str, float]:
    """False-positive volume (ml, result outside truth) per coarse atlas region, largest first.

    Parameters
    ----------
    truth, result : ndarray
        Masks on the grid of ``labels``.
    labels : ndarray
        Atlas leaf labels (0: outside the atlas).
    leaf_names : dict of int to str
        Leaf label -> name (``atlas_labels.tsv``).
    voxel_ml : float

    Returns
    -------
    dict of str to float
        Only regions with false positives; label 0 and unknown labels under ``"outside atlas"``.

    Examples
    --------
    >>> labels = np.array([[[0, 1, 2, 2]]]); truth = np.zeros((1, 1, 4), bool); result = np.ones((1, 1, 4), bool)
    >>> false_positive_by_region(truth, result, labels, {1: "a/b [left]", 2: "c [right]"}, 1.0)
    {'c': 2.0, 'a': 1.0, 'outside atlas': 1.0}
    """
    false_positive = (np.asarray(result) > 0) & ~(np.asarray(truth) > 0)
    counts = np.bincount(np.asarray(labels)[false_positive].astype(np.int64).ravel())
    by_region: dict[str, float] = {}
    for label in np.flatnonzero(counts):
        name = region_class(leaf_names[int(label)]) if int(label) in leaf_names else OUTSIDE_ATLAS
        by_region[name] = by_region.get(name, 0.0) + float(counts[label] * voxel_ml)
    return dict(sorted(by_region.items(), key=lambda item: (-item[1], item[0])))
