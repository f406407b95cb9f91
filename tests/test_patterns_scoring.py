"""Scoring sessions against the pattern library: ranking, assessability, ties, explanations."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest
import yaml

from pipeline.config import ScoringConfig, load_config
from pipeline.outputs import SCORE_COLUMNS
from pipeline.patterns import load_library, score_results, score_session
from pipeline.patterns.explain import format_ratio
from pipeline.patterns.simulate import self_consistency, synthetic_region_table
from pipeline.resources import configs_dir, patterns_dir

POSTERIOR = "Spinal cord > Spinal white matter > Posterior column"
LATERAL = "Spinal cord > Spinal white matter > Lateral column"
BOTH_PARTS = ("brain", "cord")


@pytest.fixture(scope="module")
def library():
    return load_library(patterns_dir())


def typical_session(pattern, body_parts=None):
    """Core regions plus the usual supportive ones (p >= 0.5), sides as the pattern expects;
    features at their more likely value."""
    lesioned = {
        item.region: ("left" if item.laterality == "unilateral" else "both")
        for item in pattern.regions
        if item.role == "core" or (item.role == "supportive" and item.p_involved >= 0.5)
    }
    body_parts = body_parts or (pattern.body_part,)
    features = {name: item.p_present >= 0.5 for name, item in {**pattern.extent, **pattern.features}.items()}
    findings = {"body_parts_imaged": list(body_parts), "features": features,
                "sequences": {part: ["FLAIR", "T2w"] for part in body_parts}}
    return synthetic_region_table(lesioned, body_parts), findings


def row(scores, pattern_id):
    return scores.set_index("pattern").loc[pattern_id]


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


def test_self_sampled_tables_rank_own_pattern_first(library):
    """Tables drawn from each pattern's own probabilities, with 2% false-positive regions."""
    table = self_consistency(library, n_per_pattern=20, seed=7, noise=0.02)
    assert (table["top1"] >= 0.8).all(), table
    assert table["top1"].mean() >= 0.9, table


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


def test_body_parts_inferred_from_table_without_findings(library):
    table, _ = typical_session(library.get("wernicke-encephalopathy"), ("brain",))
    scores = score_session(table, None, library)
    assert not row(scores, "nmosd-myelitis")["assessable"]
    assert row(scores, "wernicke-encephalopathy")["rank"] == 1


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
    from pipeline.patterns.library import build_library, parse_disease

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


def test_explanation_wording_for_scd(library):
    """The explanation names table regions with their likelihood ratios, strongest first."""
    config = ScoringConfig()
    scd = library.get("b12-subacute-combined-degeneration")
    table = synthetic_region_table({POSTERIOR: "both"}, ("cord",))
    findings = {"body_parts_imaged": ["cord"], "features": {"longitudinally_extensive": True}}
    explanation = row(score_session(table, findings, library, config), scd.id)["explanation"]
    item = next(i for i in scd.regions if i.region == POSTERIOR)
    ratio = (item.p_involved / 0.08) * (config.p_bilateral_if_bilateral / config.p_bilateral_background)
    assert config.region_background.get(POSTERIOR, config.background_p_involved) == 0.08
    assert f"raised by: Posterior column involved (both sides, LR {format_ratio(ratio)})" in explanation
    assert format_ratio(ratio) == "x21"
    assert "longitudinally extensive (LR x7.5)" in explanation
    assert "; lowered by: Lateral column not involved (LR x0.6)" in explanation
    assert explanation.startswith("score ") and ", match;" in explanation


def test_every_explanation_names_a_region_of_the_table(library):
    for pattern in library.patterns:
        table, findings = typical_session(pattern, BOTH_PARTS)
        names = set(table["name"])
        scores = score_session(table, findings, library)
        for explanation in scores["explanation"]:
            assert any(name in explanation for name in names), explanation


def test_genu_named_unambiguously(library):
    table = synthetic_region_table({"Corpus callosum > Genu": "both"}, ("brain",))
    explanation = row(score_session(table, {"body_parts_imaged": ["brain"]}, library),
                      "toxic-leukoencephalopathy")["explanation"]
    assert "Corpus callosum > Genu involved" in explanation


def test_scores_identical_from_csv_round_trip(library, tmp_path):
    table, findings = typical_session(library.get("toxic-leukoencephalopathy"), BOTH_PARTS)
    table.to_csv(tmp_path / "regions.csv", index=False)
    reread = pd.read_csv(tmp_path / "regions.csv")
    direct = score_session(table, findings, library)
    from_csv = score_session(reread, findings, library)
    pd.testing.assert_frame_equal(direct, from_csv)


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
    from pipeline.config import ConfigError

    user = tmp_path / "user.yaml"
    user.write_text("scoring:\n  region_background:\n    Putamen: 1.5\n")
    with pytest.raises(ConfigError, match="scoring.region_background"):
        load_config(user)


def test_mimic_within_margin_shares_rank_even_with_pattern_between():
    """A declared mimic within the tie margin shares the best rank and is listed beside it."""
    from pipeline.patterns.library import build_library, parse_disease
    from pipeline.patterns.scoring import PatternResult, rank_results

    def disease(pattern_id, mimics=()):
        return parse_disease({
            "id": f"d-{pattern_id}", "disease": pattern_id, "references": ["x"],
            "patterns": [{"id": pattern_id, "name": pattern_id, "body_part": "cord", "sequences": ["T2w"],
                          "mimics": list(mimics),
                          "regions": [{"region": POSTERIOR, "role": "core", "p_involved": 0.9}]}],
        }, "x.yaml")

    library = build_library({Path("a.yaml"): disease("a", ["c"]), Path("b.yaml"): disease("b"),
                             Path("c.yaml"): disease("c")})
    scores = {"a": 3.0, "b": 2.8, "c": 2.5}
    results = [PatternResult(p, True, score=scores[p.id]) for p in library.patterns]
    ranked = rank_results(results, {p.id: library.mimics_of(p.id) for p in library.patterns},
                          ScoringConfig(mimic_tie_margin=1.0))
    assert [(r.pattern.id, r.rank) for r in ranked] == [("a", 1), ("c", 1), ("b", 3)]
    narrow = rank_results([PatternResult(p, True, score=scores[p.id]) for p in library.patterns],
                          {p.id: library.mimics_of(p.id) for p in library.patterns},
                          ScoringConfig(mimic_tie_margin=0.1))
    assert [(r.pattern.id, r.rank) for r in narrow] == [("a", 1), ("b", 2), ("c", 3)]


def test_explanation_names_a_region_even_when_features_dominate():
    from pipeline.patterns.library import build_library, parse_disease

    features = ["cord_swelling", "cord_central", "cord_dorsal", "enhancement"]
    content = {
        "id": "toy", "disease": "Toy", "references": ["x"],
        "patterns": [{
            "id": "toy-cord", "name": "Toy", "body_part": "cord", "sequences": ["T2w"],
            "regions": [{"region": POSTERIOR, "role": "core", "p_involved": 0.09, "p_background": 0.08}],
            "features": {name: {"p_present": 0.9, "p_background": 0.1} for name in features},
            "extent": {"longitudinally_extensive": {"p_present": 0.9, "p_background": 0.1}},
        }],
    }
    library = build_library({"toy.yaml": parse_disease(content, "toy.yaml")})
    findings = {"body_parts_imaged": ["cord"], "features": {name: True for name in features + ["longitudinally_extensive"]}}
    explanation = score_session(synthetic_region_table({}, ("cord",)), findings, library)["explanation"].iloc[0]
    assert "and 1 more" in explanation
    assert "regions: Posterior column not involved (LR x0.99)" in explanation
