"""Registration helpers that need no ANTs registration run: threads, similarity, the schedule, re-exports."""

from __future__ import annotations

import os

import ants
import numpy as np
import pytest

from regiontag.brain.registration import (
    LINEAR_STAGE,
    Registration,
    _linear_schedule,
    set_itk_threads,
    similarity,
)
from regiontag.config import Config


def test_similarity_is_pearson_correlation_inside_the_mask():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(6, 6, 6)).astype(np.float32)
    b = (2 * a + 1).astype(np.float32)
    b[0] = rng.normal(size=(6, 6)).astype(np.float32)  # outside the mask: ignored
    mask = np.ones(a.shape, np.float32)
    mask[0] = 0
    value = similarity(ants.from_numpy(a), ants.from_numpy(b), ants.from_numpy(mask))
    assert value == pytest.approx(1.0, abs=1e-6)
    value = similarity(ants.from_numpy(a), ants.from_numpy(-b), ants.from_numpy(mask))
    assert value == pytest.approx(-1.0, abs=1e-6)
    flat = np.ones(a.shape, np.float32)
    assert np.isnan(similarity(ants.from_numpy(a), ants.from_numpy(flat), ants.from_numpy(mask)))


def test_set_itk_threads_sets_the_environment(monkeypatch):
    monkeypatch.setenv("ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS", "7")
    config = Config().registration
    set_itk_threads(config)
    assert os.environ["ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"] == str(config.threads)


def test_registration_record():
    record = Registration(forward=["a.mat"], inverse=["a.mat"], quality=0.8)
    assert record.files == {} and record.quality == 0.8


def test_linear_schedule_levels():
    assert _linear_schedule((1000, 500, 250, 0)) == {
        "aff_iterations": (1000, 500, 250, 0), "aff_shrink_factors": (8, 4, 2, 1),
        "aff_smoothing_sigmas": (3, 2, 1, 0)}
    assert _linear_schedule((100, 50))["aff_shrink_factors"] == (2, 1)
    assert set(LINEAR_STAGE) == {"Rigid", "Affine", "SyN", "SyNRA", "SyNOnly"}

