"""Lesion-wise metrics (components, overlap) and false-positive volume by atlas region."""

from __future__ import annotations

import numpy as np
import pytest
from regiontag.accuracy.lesionwise import (
    false_positive_by_region,
    lesion_metrics,
    region_class,
)


def _masks():
    truth = np.zeros((30, 30, 30), bool)
    truth[2:6, 2:6, 2:6] = True  # 64 voxels, found exactly
    truth[10:14, 10:14, 10:14] = True  # 64 voxels, found by 8 voxels (1/8 of it)
    truth[20:23, 20:23, 20:23] = True  # 27 voxels, missed
    result = np.zeros_like(truth)
    result[2:6, 2:6, 2:6] = True
    result[10:12, 10:12, 10:12] = True
    result[25:28, 2:5, 2:5] = True  # 27 voxels, false positive
    result[2:4, 25:27, 25:27] = True  # 8 voxels, false positive
    return truth, result


def test_lesion_metrics_count_components_and_volumes():
    truth, result = _masks()
    metrics = lesion_metrics(truth, result, voxel_ml=0.001)
    assert (metrics.n_truth_lesions, metrics.n_result_lesions) == (3, 4)
    assert metrics.lesion_recall == pytest.approx(2 / 3)
    assert metrics.lesion_precision == pytest.approx(2 / 4)
    assert metrics.lesion_f1 == pytest.approx(2 * (2 / 3) * 0.5 / (2 / 3 + 0.5))
    assert metrics.dice == pytest.approx(2 * 72 / (155 + 107))
    assert metrics.truth_ml == pytest.approx(0.155) and metrics.result_ml == pytest.approx(0.107)
    assert metrics.abs_volume_difference_ml == pytest.approx(0.048)
    assert metrics.abs_volume_difference_percent == pytest.approx(100 * 48 / 155)
    assert metrics.false_positive_ml == pytest.approx(0.035)
    assert set(metrics.as_dict()) >= {"dice", "lesion_precision", "false_positive_ml"}


def test_min_overlap_makes_a_touch_not_a_detection():
    truth, result = _masks()
    strict = lesion_metrics(truth, result, voxel_ml=0.001, min_overlap=0.25)
    assert strict.lesion_recall == pytest.approx(1 / 3)  # the lesion found by 1/8 of its voxels no longer counts
    assert strict.lesion_precision == pytest.approx(2 / 4)  # that result component lies wholly inside truth


def test_empty_masks():
    empty = np.zeros((5, 5, 5), bool)
    metrics = lesion_metrics(empty, empty, 0.001)
    assert (metrics.lesion_recall, metrics.lesion_precision, metrics.lesion_f1) == (1.0, 1.0, 1.0)
    assert np.isnan(metrics.dice) and np.isnan(metrics.abs_volume_difference_percent)
    found = empty.copy()
    found[1, 1, 1] = True
    only_false = lesion_metrics(empty, found, 0.001)
    assert (only_false.lesion_recall, only_false.lesion_precision, only_false.lesion_f1) == (1.0, 0.0, 0.0)


def test_false_positive_by_region_groups_by_parent():
    truth, result = _masks()
    labels = np.zeros(truth.shape, np.int32)
    labels[20:30] = 41  # the 27-voxel false positive
    labels[:5, 20:] = 5  # the 8-voxel one
    names = {41: "cerebral_wm/periventricular/frontal [left]", 5: "fourth_ventricle [midline]"}
    by_region = false_positive_by_region(truth, result, labels, names, voxel_ml=0.001)
    assert by_region == {"cerebral_wm/periventricular": pytest.approx(0.027), "fourth_ventricle": pytest.approx(0.008)}
    assert list(by_region) == ["cerebral_wm/periventricular", "fourth_ventricle"]  # largest first
    labels[:5, 20:] = 99  # a label the table does not know
    assert "outside atlas" in false_positive_by_region(truth, result, labels, names, voxel_ml=0.001)
    assert region_class("thalamus/medial [right]") == "thalamus"
