"""Region tables drawn from a pattern's probabilities (``regiontag.patterns.simulate``)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from regiontag.outputs.contract import REGION_COLUMNS
from regiontag.patterns.library import parse_disease
from regiontag.patterns.regions import known_region_paths
from regiontag.patterns.observations import observe
from regiontag.patterns.simulate import (
    sample_lesion_summary,
    sample_pattern_session,
    self_consistency,
    synthetic_region_table,
)
from tests.patterns.helpers import LATERAL, POSTERIOR, library_of, minimal_disease

CENTRAL_CANAL = "Spinal cord > Spinal grey matter > Central canal region"
WHITE_MATTER = "Spinal cord > Spinal white matter"


def by_side(table: pd.DataFrame) -> pd.DataFrame:
    return table.set_index(["region", "side"])


def test_left_lesion_rows_and_parents_aggregate():
    table = synthetic_region_table({POSTERIOR: "left"}, ("cord",))
    assert list(table.columns) == [c for c in REGION_COLUMNS if c != "session"]
    cord = {path for path, part in known_region_paths().items() if part == "cord"}
    assert set(table["region"]) == cord and set(table["atlas"]) == {"cord"}
    rows = by_side(table)
    for path in (POSTERIOR, WHITE_MATTER, "Spinal cord"):
        assert rows.loc[(path, "left"), "fraction_involved"] == 0.2
        assert rows.loc[(path, "right"), "fraction_involved"] == 0.0
        assert rows.loc[(path, "both"), "fraction_involved"] == pytest.approx(0.1)
        assert rows.loc[(path, "left"), "involved"] and not rows.loc[(path, "right"), "involved"]
        assert rows.loc[(path, "both"), "laterality_index"] == 1.0
    # children and siblings are not involved
    involved = set(table.loc[table["involved"], "region"])
    assert involved == {POSTERIOR, WHITE_MATTER, "Spinal cord"}
    assert np.isnan(rows.loc[(LATERAL, "both"), "laterality_index"])
    posterior = rows.loc[(POSTERIOR, "both")]
    assert (posterior["name"], posterior["parent"], posterior["depth"]) == ("Posterior column", WHITE_MATTER, 2)


def test_midline_region_has_only_a_both_row_and_fraction_is_settable():
    table = synthetic_region_table({CENTRAL_CANAL: "both"}, ("cord",), fraction=0.5)
    canal = table[table["region"] == CENTRAL_CANAL]
    assert canal["side"].tolist() == ["both"]
    assert canal["fraction_involved"].tolist() == [0.5]  # the whole midline region
    assert np.isnan(canal["laterality_index"].iloc[0])
    assert by_side(table).loc[(POSTERIOR, "left"), "fraction_involved"] == 0.0


def test_body_parts_not_imaged_have_no_rows_and_unknown_region_is_an_error():
    assert set(synthetic_region_table({}, ("brain",))["atlas"]) == {"brain"}
    assert not synthetic_region_table({}, ("brain", "cord"))["involved"].any()
    with pytest.raises(KeyError, match="unknown region 'Spinal cord > Nowhere'"):
        synthetic_region_table({"Spinal cord > Nowhere": "both"})


def test_sampled_session_is_reproducible_and_stays_in_the_pattern_without_noise():
    pattern = parse_disease(minimal_disease(
        regions=[{"region": POSTERIOR, "role": "core", "laterality": "bilateral", "p_involved": 0.5}],
        features={"cord_swelling": {"p_present": 0.5}},
    ), "x.yaml").patterns[0]
    draws = [sample_pattern_session(pattern, np.random.default_rng(3), noise=0.0) for _ in range(2)]
    pd.testing.assert_frame_equal(draws[0][0], draws[1][0])
    assert draws[0][1] == draws[1][1]
    table, findings = draws[0]
    assert findings["body_parts_imaged"] == ["cord"]
    assert findings["sequences"] == {"cord": ["T2w"]}
    assert set(findings["features"]) == {"cord_swelling"}
    involved = set(table.loc[table["involved"], "region"])
    assert involved <= {POSTERIOR, WHITE_MATTER, "Spinal cord"}
    rng = np.random.default_rng(0)
    sides = []
    for _ in range(40):
        sample, _ = sample_pattern_session(pattern, rng, noise=0.0)
        rows = by_side(sample)
        sides.append((bool(rows.loc[(POSTERIOR, "left"), "involved"]), bool(rows.loc[(POSTERIOR, "right"), "involved"])))
    # bilateral pattern: both sides or neither, and p_involved 0.5 gives both outcomes in 40 draws
    assert set(sides) == {(True, True), (False, False)}


def test_self_consistency_table_of_a_small_library():
    dorsal = minimal_disease()
    lateral = minimal_disease(id="lateral-pattern", regions=[
        {"region": LATERAL, "role": "core", "laterality": "bilateral", "p_involved": 0.9}])
    lateral["id"] = "lateral-disease"
    table = self_consistency(library_of(dorsal, lateral), n_per_pattern=5, seed=1, noise=0.0)
    assert list(table.columns) == ["pattern", "n", "top1", "match", "most_confused_with"]
    assert table["pattern"].tolist() == ["test-pattern", "lateral-pattern"]
    assert table["n"].tolist() == [5, 5]
    assert table["top1"].between(0, 1).all() and table["match"].between(0, 1).all()
    # fractions of 5 draws
    assert ((table["top1"] * 5).round(9) % 1 == 0).all()


def test_self_sampled_tables_rank_own_pattern_first(library):
    """Tables drawn from each pattern's own probabilities, with 2% false-positive regions."""
    table = self_consistency(library, n_per_pattern=20, seed=7, noise=0.02)
    assert (table["top1"] >= 0.8).all(), table
    assert table["top1"].mean() >= 0.9, table


def test_lesion_conditions_are_drawn_with_their_probabilities(library):
    """MS draws carry a lesion summary: each condition holds about p_present of the time, at its threshold."""
    ms = next(p for p in library.patterns if p.id == "ms-brain")
    rng = np.random.default_rng(11)
    draws = [sample_lesion_summary(ms, rng) for _ in range(400)]
    for item in ms.lesions:
        held = np.mean([item.holds(len(d[item.measure]) if item.measure == "dis_areas" else d[item.measure])
                        for d in draws])
        assert abs(held - item.p_present) < 0.07, (item.measure, held, item.p_present)
    assert "median_lesion_ml" not in draws[0]  # not named by the MS pattern: other patterns leave it unassessed
    _, findings = sample_pattern_session(ms, np.random.default_rng(2), noise=0.0)
    observations = observe(synthetic_region_table({}, ("brain",)), findings)
    assert observations.lesion_measure("dis_areas", "brain") in (1.0, 2.0)
    assert observations.lesion_measure("median_lesion_ml", "brain") is None
