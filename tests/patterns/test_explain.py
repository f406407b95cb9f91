"""Plain-language explanations of pattern scores (``regiontag.patterns.explain``)."""

from __future__ import annotations

import pytest

from regiontag.config import ScoringConfig
from regiontag.patterns.evidence import Evidence, PatternResult
from regiontag.patterns.explain import NEGLIGIBLE_LOG10_LR, describe, explain, format_ratio
from regiontag.patterns.library import build_library, parse_disease
from regiontag.patterns.scoring import score_session
from regiontag.patterns.simulate import synthetic_region_table
from tests.patterns.helpers import BOTH_PARTS, POSTERIOR, minimal_disease, row, typical_session


@pytest.fixture(scope="module")
def pattern():
    return parse_disease(minimal_disease(), "test-disease.yaml").patterns[0]


@pytest.mark.parametrize(("ratio", "text"), [
    (2300, "x2300"), (100, "x100"), (12, "x12"), (1.5, "x1.5"), (1, "x1"),
    (0.44, "x0.44"), (0.003, "x0.003"), (1e-4, "x0.0001"), (1e-5, "x1.0e-05"),
])
def test_format_ratio(ratio, text):
    assert format_ratio(ratio) == text


def test_format_ratio_just_below_100_is_not_scientific():
    assert format_ratio(99.6) == "x100"
    assert format_ratio(99.4) == "x99"


def test_describe_with_and_without_detail():
    assert describe(Evidence("region", "Posterior column involved", 1.0, detail="both sides")) == (
        "Posterior column involved (both sides, LR x10)")
    assert describe(Evidence("feature", "cord swelling", -1.0)) == "cord swelling (LR x0.1)"


def test_not_assessable_gives_the_reason(pattern):
    result = PatternResult(pattern, False, reason="cord not imaged (imaged: brain)")
    assert explain(result) == "not assessable: cord not imaged (imaged: brain)"


def test_raised_and_lowered_strongest_first_negligible_left_out(pattern):
    result = PatternResult(pattern, True, score=1.234, match=True, evidence=[
        Evidence("region", "A involved", 0.5),
        Evidence("region", "B involved", 1.0, detail="both sides"),
        Evidence("feature", "tiny", NEGLIGIBLE_LOG10_LR / 2),
        Evidence("feature", "tiny too", -NEGLIGIBLE_LOG10_LR / 2),
        Evidence("region", "C not involved", -0.3),
        Evidence("symmetry", "asymmetric", -1.0),
    ])
    assert explain(result) == (
        "score 1.2 (log10 odds), match; "
        "raised by: B involved (both sides, LR x10), A involved (LR x3.2); "
        "lowered by: asymmetric (LR x0.1), C not involved (LR x0.5)"
    )


def test_item_limit_counts_the_rest_and_always_names_a_region(pattern):
    config = ScoringConfig(explain_max_items=1)
    result = PatternResult(pattern, True, score=-0.5, evidence=[
        Evidence("feature", "f1", 2.0), Evidence("feature", "f2", 1.0), Evidence("feature", "f3", 0.5),
        Evidence("region", "R not involved", -0.1), Evidence("region", "S not involved", -0.05),
        Evidence("extent", "not extensive", -0.6),
    ])
    assert explain(result, config) == (
        "score -0.5 (log10 odds); raised by: f1 (LR x100) and 2 more; "
        "lowered by: not extensive (LR x0.25) and 2 more; regions: R not involved (LR x0.79)"
    )


def test_ties_and_unassessed_regions(pattern):
    config = ScoringConfig(explain_max_items=2)
    result = PatternResult(pattern, True, score=0.0, tied_with=["b", "a", "b"],
                           unassessed=["X", "Y", "Z"])
    assert explain(result, config) == (
        "score 0.0 (log10 odds); indistinguishable from declared mimic(s) a, b; not assessed: X, Y ..."
    )
    result.unassessed = ["X"]
    assert explain(result, config).endswith("not assessed: X")


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


def test_explanation_names_a_region_even_when_features_dominate():
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
