"""Fitting the parametric cord cross-section and writing the calibration into the atlas YAML (moved from test_cord.py)."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from regiontag.atlas.cord_geometry import KIND_TO_COMBINED, leaf_kinds
from regiontag.atlas.cord_spec import default_cord_yaml, load_cord_spec
from regiontag.atlas.pam50.calibrate import (
    CLASS_NAMES,
    MARKER,
    Calibration,
    LevelSamples,
    calibration_yaml,
    fit_level,
    hard_dice,
    write_calibration,
)

CLASSES = ["dorsal columns", "lateral funiculi", "ventral funiculi", "grey matter"]


def test_fit_level_recovers_a_known_cross_section():
    """Samples drawn from the model with one level's geometry are fitted from another level's start."""


    spec = load_cord_spec()
    truth = {**spec.geometry["C5"], **spec.fixed}
    rng = np.random.default_rng(7)
    radius, angle = np.sqrt(rng.uniform(0, 1, 2500)), rng.uniform(-np.pi, np.pi, 2500)
    u, v = radius * np.cos(angle), radius * np.sin(angle)
    kinds = leaf_kinds(u, v, truth)
    samples = LevelSamples(u=u, v=v, combined=KIND_TO_COMBINED[kinds] + 1, tract=np.where(kinds == 1, 2, 0))
    start = spec.geometry["T8"]
    before = hard_dice({**start, **spec.fixed}, samples)
    fitted = fit_level(samples, start, spec.fixed, max_evaluations=1500)
    after = hard_dice(fitted, samples)
    rounded = lambda table: {k: round(x, 3) for k, x in table.items()}  # noqa: E731
    print("\nDice before", rounded(before), "after", rounded(after))
    assert min(after.values()) >= 0.9
    assert np.mean(list(after.values())) > np.mean(list(before.values()))


def test_calibration_yaml_round_trip(tmp_path):
    spec = load_cord_spec()
    geometry = {name: dict(params) for name, params in spec.geometry.items()}
    geometry["C3"]["ac_v0"] = 0.4321
    result = Calibration(
        geometry=geometry,
        dice={name: {c: 0.9 for c in CLASSES} for name in geometry},
        source_commit="0123abcd",
    )
    copy = tmp_path / "cord.yaml"
    copy.write_text(default_cord_yaml().read_text())
    write_calibration(copy, result)
    text = copy.read_text()
    assert text.count(MARKER) == 1
    reread = load_cord_spec(copy)
    assert reread.geometry["C3"]["ac_v0"] == pytest.approx(0.4321)
    assert reread.calibration is not None and reread.calibration.source_commit == "0123abcd"
    assert reread.regions == spec.regions and reread.leaves == spec.leaves


def test_hard_dice_is_one_on_the_models_own_labels_and_zero_when_shuffled():
    spec = load_cord_spec()
    geometry = {**spec.geometry["C5"], **spec.fixed}
    axis = np.linspace(-0.95, 0.95, 41)
    u, v = (a.ravel() for a in np.meshgrid(axis, axis, indexing="ij"))
    inside = np.hypot(u, v) < 1
    u, v = u[inside], v[inside]
    combined = KIND_TO_COMBINED[leaf_kinds(u, v, geometry)] + 1
    samples = LevelSamples(u=u, v=v, combined=combined, tract=np.zeros_like(combined))
    assert CLASS_NAMES == CLASSES
    assert hard_dice(geometry, samples) == {name: 1.0 for name in CLASSES}
    # every sample relabelled to the next class: no overlap at all
    shifted = LevelSamples(u=u, v=v, combined=combined % 4 + 1, tract=samples.tract)
    assert hard_dice(geometry, shifted) == {name: 0.0 for name in CLASSES}


def test_calibration_yaml_text():
    result = Calibration(
        geometry={"C3": {"body_v": 0.12345, "ac_v0": -0.5}},
        dice={"C3": {"grey matter": 0.91234}},
        source_commit="abc",
    )
    text = calibration_yaml(result)
    lines = text.splitlines()
    assert lines[:3] == [MARKER, "geometry:", "  C3: {body_v: 0.1235, ac_v0: -0.5000}"]
    assert lines[-2:] == ["  dice:", "    C3: {grey matter: 0.912}"]
    parsed = yaml.safe_load(text)
    assert parsed["calibration"]["source_commit"] == "abc"
    assert parsed["calibration"]["dice"] == {"C3": {"grey matter": 0.912}}

