"""Tests of regiontag.brain.detection_qc: silent detection failures become warnings."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest

from regiontag.brain.detection_qc import bright_tail_volume_ml, detection_warnings
from regiontag.config import DetectionConfig


def test_bright_tail_volume_counts_search_voxels_above_threshold() -> None:
    z = np.zeros((20, 10, 10), np.float32)
    z[:4] = 3.5
    z[4:6] = 2.9
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    search = np.ones(z.shape, bool)
    search[0] = False
    assert bright_tail_volume_ml(nib.Nifti1Image(z, affine), search, DetectionConfig()) == pytest.approx(
        300 * 8 / 1000)


def test_detection_warnings_skip_missing_numbers() -> None:
    assert detection_warnings({}, DetectionConfig()) == []
    qc = {"lesion_volume_ml": 0.2, "bright_white_matter_tail_ml": {"FLAIR": 30.0}}
    assert len(detection_warnings(qc, DetectionConfig(bright_tail_min_ml=50.0))) == 0
    assert len(detection_warnings(qc, DetectionConfig())) == 1
