"""Scoring sessions against the pattern library (``regiontag.patterns.scoring``): ranking, assessability, ties."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
import yaml

from regiontag.config import ScoringConfig, load_config
from regiontag.outputs.contract import SCORE_COLUMNS
from regiontag.patterns.scoring import score_results, score_session
from regiontag.patterns.simulate import synthetic_region_table
from regiontag.resources import configs_dir
from tests.patterns.helpers import BOTH_PARTS, POSTERIOR, row, typical_session


def test_output_columns_and_order(library):
    table, findings = typical_session(library.get("ms-brain"))
    scores = score_session(table, findings, library)
    assert list(scores.columns) == [c for c in SCORE_COLUMNS if c != "session"]
    assert len(scores) == len(library.patterns)
    ranked = scores[scores["assessable"]]
    assert ranked["score"].is_monotonic_decreasing
    assert ranked["rank"].iloc[0] == 1


@pytest.mark.parametrize("pattern_id", [
    "b12-subacute-combined-degeneration", "b12-leukoencephalopathy", "ms-brain", "ms-cord",
    "nmosd-myelitis", "copper-deficiency-myelopathy", "small-vessel-disease", "toxic-leukoencephalopathy",
    "x-ald-parieto-occipital", "osmotic-demyelination", "wernicke-encephalopathy",
])
@pytest.mark.parametrize("with_features", [True, False])
def test_typical_table_ranks_own_pattern_first(library, pattern_id, with_features):
    pattern = library.get(pattern_id)
    table, findings = typical_session(pattern, BOTH_PARTS)
    if not with_features:
        findings["features"] = {}
    scores = score_session(table, findings, library)
    own = row(scores, pattern_id)
    assert own["rank"] == 1, scores[["pattern", "score", "rank"]]
    assert own["score"] > 0.5  # at least 3:1 for the pattern
    # nothing but the pattern and its declared mimics shares first place
    firsts = set(scores.loc[scores["rank"] == 1, "pattern"])
    assert firsts <= {pattern_id} | library.mimics_of(pattern_id)
    # every core region the table holds is reported matched
    core = {item.region for item in pattern.regions if item.role == "core"}
    assert set(own["matched_core_regions"].split("; ")) == core
    assert own["missing_core_regions"] == ""


def test_most_typical_presentations_match(library):
    matched = [row(score_session(*typical_session(p), library), p.id)["match"] for p in library.patterns]
    assert sum(matched) >= 7, matched


def test_scd_and_copper_myelopathy_tie(library):
    table, findings = typical_session(library.get("b12-subacute-combined-degeneration"))
    scores = score_session(table, findings, library)
    scd, copper = row(scores, "b12-subacute-combined-degeneration"), row(scores, "copper-deficiency-myelopathy")
    assert scd["rank"] == copper["rank"] == 1
    assert "indistinguishable from declared mimic(s) copper-deficiency-myelopathy" in scd["explanation"]
    assert int((scores["rank"] == 1).sum()) == 2


def test_healthy_session_matches_nothing(library):
    table = synthetic_region_table({}, BOTH_PARTS)
    findings = {"body_parts_imaged": list(BOTH_PARTS),
                "features": {"longitudinally_extensive": False, "cord_swelling": False, "confluent": False}}
    scores = score_session(table, findings, library)
    assert scores["assessable"].all()
    assert not scores["match"].any()
    assert (scores["score"] < 0).all()
    assert (scores["matched_core_regions"] == "").all()


def test_cord_only_session_brain_patterns_not_assessable(library):
    table, findings = typical_session(library.get("b12-subacute-combined-degeneration"), ("cord",))
    scores = score_session(table, findings, library)
    for pattern in library.patterns:
        result = row(scores, pattern.id)
        assert result["assessable"] == (pattern.body_part == "cord")
        if pattern.body_part == "brain":
            assert math.isnan(result["score"]) and pd.isna(result["rank"]) and not result["match"]
            assert result["explanation"] == "not assessable: brain not imaged (imaged: cord)"
    # not assessable patterns come after the ranked ones
    assert scores["assessable"].tolist() == sorted(scores["assessable"].tolist(), reverse=True)


def test_brain_only_session_cord_patterns_not_assessable(library):
    table, findings = typical_session(library.get("b12-leukoencephalopathy"), ("brain",))
    scores = score_session(table, findings, library)
    scd = row(scores, "b12-subacute-combined-degeneration")
    assert not scd["assessable"] and "cord not imaged" in scd["explanation"]
    leuko = row(scores, "b12-leukoencephalopathy")
    assert leuko["assessable"] and leuko["rank"] == 1 and leuko["match"]


def test_wrong_sequences_make_pattern_not_assessable(library):
    table, findings = typical_session(library.get("ms-brain"))
    findings["sequences"] = {"brain": ["T1w"]}
    scores = score_session(table, findings, library)
    assert not row(scores, "ms-brain")["assessable"]
    assert "none of the pattern's sequences" in row(scores, "ms-brain")["explanation"]


def test_unknown_features_contribute_nothing(library):
    pattern = library.get("nmosd-myelitis")
    table, findings = typical_session(pattern)
    unknown = dict(findings, features={name: None for name in findings["features"]})
    absent = dict(findings, features={})
    score_unknown = row(score_session(table, unknown, library), pattern.id)["score"]
    score_absent = row(score_session(table, absent, library), pattern.id)["score"]
    score_known = row(score_session(table, findings, library), pattern.id)["score"]
    assert score_unknown == pytest.approx(score_absent)
    assert score_known > score_unknown  # LETM, central, swelling, enhancement all speak for NMOSD


def test_score_is_sum_of_log_likelihood_ratios():
    """One-region pattern, exact arithmetic: involved both sides + symmetric + feature present."""
    config = ScoringConfig()
    content = {
        "id": "toy", "disease": "Toy", "references": ["x"],
        "patterns": [{
            "id": "toy-cord", "name": "Toy", "body_part": "cord", "sequences": ["T2w"],
            "regions": [{"region": POSTERIOR, "role": "core", "laterality": "bilateral",
                         "p_involved": 0.9, "p_background": 0.1}],
            "symmetry": {"expected": "symmetric", "p_symmetric": 0.8},
            "features": {"cord_swelling": {"p_present": 0.6, "p_background": 0.2}},
        }],
    }
    from regiontag.patterns.library import build_library, parse_disease

    library = build_library({"toy.yaml": parse_disease(content, "toy.yaml")})
    table = synthetic_region_table({POSTERIOR: "both"}, ("cord",))
    findings = {"body_parts_imaged": ["cord"], "features": {"cord_swelling": True}}
    score = score_session(table, findings, library, config)["score"].iloc[0]
    expected = (math.log10(0.9 / 0.1)
                + math.log10(config.p_bilateral_if_bilateral / config.p_bilateral_background)
                + math.log10(0.8 / config.p_symmetric_background)
                + math.log10(0.6 / 0.2))
    assert score == pytest.approx(expected)
    # and a prior shifts it by the log10 prior odds
    content["patterns"][0]["prior"] = 0.1
    library = build_library({"toy.yaml": parse_disease(content, "toy.yaml")})
    shifted = score_session(table, findings, library, config)["score"].iloc[0]
    assert shifted == pytest.approx(expected + math.log10(0.1 / 0.9))


def test_one_sided_involvement_lowers_bilateral_pattern(library):
    scd = library.get("b12-subacute-combined-degeneration")
    both = synthetic_region_table({POSTERIOR: "both"}, ("cord",))
    left = synthetic_region_table({POSTERIOR: "left"}, ("cord",))
    findings = {"body_parts_imaged": ["cord"]}
    score_both = row(score_session(both, findings, library), scd.id)["score"]
    score_left = row(score_session(left, findings, library), scd.id)["score"]
    assert score_both > score_left + 0.5
    ms_left = row(score_session(left, findings, library), "ms-cord")["score"]
    ms_both = row(score_session(both, findings, library), "ms-cord")["score"]
    assert ms_left > ms_both  # MS plaques are one-sided and asymmetric


def test_results_expose_evidence_terms(library):
    table, findings = typical_session(library.get("osmotic-demyelination"))
    results = score_results(table, findings, library)
    ods = next(r for r in results if r.pattern.id == "osmotic-demyelination")
    assert ods.score == pytest.approx(sum(term.log10_lr for term in ods.evidence))
    assert any(term.region == "Brainstem > Pons > Central pons" and term.log10_lr > 1 for term in ods.evidence)


def test_default_yaml_scoring_section_matches_model():
    raw = yaml.safe_load((configs_dir() / "default.yaml").read_text())["scoring"]
    assert ScoringConfig.model_validate(raw) == ScoringConfig()
    assert load_config().scoring == ScoringConfig()


def test_scoring_config_rejects_bad_probabilities(tmp_path):
    from regiontag.config import ConfigError

    user = tmp_path / "user.yaml"
    user.write_text("scoring:\n  region_background:\n    Putamen: 1.5\n")
    with pytest.raises(ConfigError, match="scoring.region_background"):
        load_config(user)


def _three_cord_patterns_a_mimics_c():
    """A library of cord patterns a, b, c with one core region each; c is a declared mimic of a."""
    from regiontag.patterns.library import build_library, parse_disease

    def disease(pattern_id, mimics=()):
        return parse_disease({
            "id": f"d-{pattern_id}", "disease": pattern_id, "references": ["x"],
            "patterns": [{"id": pattern_id, "name": pattern_id, "body_part": "cord", "sequences": ["T2w"],
                          "mimics": list(mimics),
                          "regions": [{"region": POSTERIOR, "role": "core", "p_involved": 0.9}]}],
        }, "x.yaml")

    return build_library({Path("a.yaml"): disease("a", ["c"]), Path("b.yaml"): disease("b"),
                          Path("c.yaml"): disease("c")})


def test_mimic_within_margin_shares_rank_even_with_pattern_between():
    """A declared mimic within the tie margin shares the best rank and is listed beside it."""
    from regiontag.patterns.scoring import PatternResult, rank_results

    library = _three_cord_patterns_a_mimics_c()
    scores = {"a": 3.0, "b": 2.8, "c": 2.5}
    results = [PatternResult(p, True, score=scores[p.id]) for p in library.patterns]
    ranked = rank_results(results, {p.id: library.mimics_of(p.id) for p in library.patterns},
                          ScoringConfig(mimic_tie_margin=1.0))
    assert [(r.pattern.id, r.rank) for r in ranked] == [("a", 1), ("c", 1), ("b", 3)]
    narrow = rank_results([PatternResult(p, True, score=scores[p.id]) for p in library.patterns],
                          {p.id: library.mimics_of(p.id) for p in library.patterns},
                          ScoringConfig(mimic_tie_margin=0.1))
    assert [(r.pattern.id, r.rank) for r in narrow] == [("a", 1), ("b", 2), ("c", 3)]


def test_a_narrow_lead_is_called_a_close_call_in_both_explanations() -> None:
    from regiontag.patterns.explain import explain
    from regiontag.patterns.scoring import PatternResult, rank_results

    library = _three_cord_patterns_a_mimics_c()
    mimics = {p.id: library.mimics_of(p.id) for p in library.patterns}

    def ranked(scores, margin):
        return {r.pattern.id: r for r in rank_results(
            [PatternResult(p, True, score=scores[p.id]) for p in library.patterns], mimics,
            ScoringConfig(close_call_margin=margin))}

    # a leads b by 0.4: both say so; c (declared mimic of a, tied at rank 1) is not the runner-up
    results = ranked({"a": 3.0, "b": 2.6, "c": 2.5}, 1.0)
    assert results["a"].close_to == [("b", pytest.approx(0.4))]
    assert results["b"].close_to == [("a", pytest.approx(-0.4))]
    assert results["c"].close_to == []
    assert "close call: ranked first by only 0.4 (LR x2.5) over b" in explain(results["a"])
    assert "close call: 0.4 (LR x2.5) below a, ranked first" in explain(results["b"])
    # a clear lead, or a margin of 0, is no close call
    assert not ranked({"a": 3.0, "b": 1.5, "c": 2.5}, 1.0)["a"].close_to
    assert not ranked({"a": 3.0, "b": 2.6, "c": 2.5}, 0.0)["a"].close_to
