"""The cord atlas YAML: level names, validation, region tree and grid (direct tests of cord_spec)."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from regiontag.atlas.cord_geometry import CENTRAL_CANAL, GRACILIS, LATERAL
from regiontag.atlas.cord_spec import (
    cord_region_paths,
    default_cord_yaml,
    disk_grid,
    geometry_by_level,
    grid_affine,
    kinds_to_labels,
    leaf_label_table,
    level_name,
    level_number,
    level_numbers,
    load_cord_spec,
    regions_from_spec,
)
from regiontag.config import ConfigError


def test_bad_yaml_unknown_region_is_named(tmp_path):
    raw = yaml.safe_load(default_cord_yaml().read_text())
    raw["leaves"][0]["region"] = "Spinal cord > Spinal white matter > Nowhere"
    bad = tmp_path / "bad_cord.yaml"
    bad.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError, match="Nowhere"):
        cord_region_paths(bad)


def test_invalid_yaml_is_one_line_with_its_position(tmp_path):
    bad = tmp_path / "bad_cord.yaml"
    bad.write_text("name: cord\nleaves: [\n")
    with pytest.raises(ConfigError) as error:
        load_cord_spec(bad)
    message = str(error.value)
    assert message.startswith(f"{bad.resolve()}: not valid YAML: line 3, column 1: ") and "\n" not in message


def test_shipped_yaml_records_the_pam50_calibration(shared_dir):
    spec = load_cord_spec()
    commit_file = shared_dir / "data" / "pam50" / "SOURCE_COMMIT"
    if not commit_file.is_file():
        pytest.skip("PAM50 SOURCE_COMMIT not available")
    assert spec.calibration is not None
    assert spec.calibration.source_commit == commit_file.read_text().strip()
    assert set(spec.geometry) == set(spec.levels)
    for name in ("C2", "C4", "C6"):
        assert min(spec.calibration.dice[name].values()) >= 0.7


def test_level_numbers_and_names_round_trip():
    assert [level_number(name) for name in ("C1", "C7", "T1", "T12", "L1", "S1", "S5")] == [1, 7, 8, 19, 20, 25, 29]
    assert [level_name(n) for n in range(1, 30)] == (
        [f"C{i}" for i in range(1, 8)] + [f"T{i}" for i in range(1, 13)]
        + [f"L{i}" for i in range(1, 6)] + [f"S{i}" for i in range(1, 6)]
    )
    for bad in ("C8", "T13", "X1", "c3", ""):
        with pytest.raises(ValueError, match="not a vertebral level name"):
            level_number(bad)
    with pytest.raises(ValueError, match="out of range 1-29"):
        level_name(30)
    np.testing.assert_array_equal(level_numbers(["C4", " T1 ", 3, 0, None, "", float("nan")]),
                                  [4, 8, 3, np.nan, np.nan, np.nan, np.nan])


def test_regions_from_spec_parents_hold_their_leaves():
    spec = load_cord_spec()
    regions, leaf_names = regions_from_spec(spec)
    assert [r.path for r in regions] == cord_region_paths()
    root = regions[0]
    assert set(root.label_values()) == {leaf.label for leaf in spec.leaves} == set(leaf_names)
    canal = next(r for r in regions if r.name == "Central canal region")
    assert canal.labels.keys() == {"midline"} and not canal.paired


def test_geometry_interpolates_between_given_levels(tmp_path):
    raw = yaml.safe_load(default_cord_yaml().read_text())
    given = sorted(raw["geometry"], key=level_number)
    first, last = given[0], given[-1]
    keep = {first: raw["geometry"][first], last: raw["geometry"][last]}
    raw["geometry"] = keep
    raw["default_level"] = first
    path = tmp_path / "two_levels.yaml"
    path.write_text(yaml.safe_dump(raw))
    spec = load_cord_spec(path)
    geometry = geometry_by_level(spec)
    assert set(geometry) == set(spec.levels)
    a, b = level_number(first), level_number(last)
    for name in spec.levels:
        w = (level_number(name) - a) / (b - a)
        expected = (1 - w) * keep[first]["body_v"] + w * keep[last]["body_v"]
        assert geometry[name]["body_v"] == pytest.approx(expected)
        assert geometry[name]["canal_r"] == spec.fixed["canal_r"]


def test_grid_and_labels_of_kinds():
    spec = load_cord_spec()
    affine = grid_affine(spec)
    assert affine[0, 0] == pytest.approx(2.0 / (spec.grid_size - 1)) and affine[2, 2] == 1.0
    grid_u, grid_v, inside = disk_grid(5, margin_steps=0.0)
    assert grid_u[0, 0] == -1 and grid_v[0, -1] == 1
    assert inside.sum() == 13  # 5 x 5 points of [-1, 1]^2 within the unit circle
    table = leaf_label_table(spec)
    kinds = np.array([GRACILIS, GRACILIS, LATERAL, CENTRAL_CANAL], dtype=np.int8)
    u = np.array([-0.2, 0.2, 0.0, 0.5])
    labels = kinds_to_labels(kinds, u, spec)
    assert labels.tolist() == [
        table[("Fasciculus gracilis", "left")], table[("Fasciculus gracilis", "right")],
        table[("Lateral column", "left")],  # u == 0 counts as left
        table[("Central canal region", "midline")],
    ]
