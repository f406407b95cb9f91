"""Lesion-level pattern evidence: schema, observations, scoring terms, explanations, involvement kinds."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from regiontag.config import ConfigError
from regiontag.patterns.explain import explain
from regiontag.patterns.library import parse_disease
from regiontag.patterns.observations import observe
from regiontag.patterns.scoring import evaluate_pattern, score_results
from regiontag.patterns.simulate import synthetic_region_table

from tests.patterns.helpers import library_of, minimal_disease

PERIVENTRICULAR = "Cerebrum > Cerebral white matter > Periventricular white matter"
MS_LIKE_SUMMARY = {
    "n_lesions": 23, "by_location": {"periventricular": 9, "juxtacortical": 4, "cortical": 2, "infratentorial": 2,
                                     "deep white matter": 6},
    "dis_areas": ["periventricular", "cortical/juxtacortical", "infratentorial"], "fraction_small": 0.8,
    "volume_asymmetry": 0.4, "n_callosal": 1,
}


def _brain_pattern(**changes) -> dict:
    settings = {"body_part": "brain", "sequences": ["FLAIR"],
                "regions": [{"region": PERIVENTRICULAR, "role": "core", "p_involved": 0.9}], **changes}
    return minimal_disease(**settings)


def test_lesion_entries_are_validated_with_the_field_and_closest_measure() -> None:
    bad = _brain_pattern(lesions=[{"measure": "dis_area", "at_least": 2, "p_present": 0.8, "p_background": 0.3}])
    with pytest.raises(ConfigError, match="dis_area.*closest: 'dis_areas'"):
        parse_disease(bad, "bad.yaml")
    both = _brain_pattern(lesions=[{"measure": "n_lesions", "at_least": 2, "at_most": 5, "p_present": 0.8,
                                    "p_background": 0.3}])
    with pytest.raises(ConfigError, match="exactly one of at_least / at_most"):
        parse_disease(both, "both.yaml")
    missing = _brain_pattern(lesions=[{"measure": "n_lesions", "at_least": 2, "p_present": 0.8}])
    with pytest.raises(ConfigError, match="p_background"):
        parse_disease(missing, "missing.yaml")
    kind = _brain_pattern(regions=[{"region": PERIVENTRICULAR, "role": "core", "p_involved": 0.9,
                                    "involvement": "patchy"}])
    with pytest.raises(ConfigError, match="involvement"):
        parse_disease(kind, "kind.yaml")


def test_observations_read_the_lesion_summary() -> None:
    observations = observe(pd.DataFrame(), {"lesions": {"brain": MS_LIKE_SUMMARY}})
    assert observations.lesion_measure("n_juxtacortical", "brain") == 6  # juxtacortical + cortical
    assert observations.lesion_measure("n_periventricular", "brain") == 9
    assert observations.lesion_measure("dis_areas", "brain") == 3
    assert observations.lesion_measure("n_lesions", "cord") is None  # no cord lesion table
    assert observations.lesion_sentence("brain") == (
        "23 lesions; periventricular 9, juxtacortical 6, infratentorial 2, deep white matter 6: "
        "dissemination in space")
    with_cord = observe(pd.DataFrame(), {"lesions": {"brain": {"n_lesions": 3, "by_location": {"periventricular": 3},
                                                               "dis_areas": ["periventricular"]},
                                                     "cord": {"n_lesions": 1, "dis_areas": ["spinal cord"]}}})
    assert with_cord.lesion_measure("dis_areas", "brain") == 2  # a cord lesion adds the spinal cord area
    assert with_cord.lesion_measure("n_cord", "brain") == 1


def test_lesion_terms_are_log_likelihood_ratios_and_named_in_the_explanation() -> None:
    disease = _brain_pattern(lesions=[
        {"measure": "dis_areas", "at_least": 2, "p_present": 0.8, "p_background": 0.2, "label": "dissemination in space"},
        {"measure": "volume_asymmetry", "at_most": 0.2, "p_present": 0.9, "p_background": 0.5},
    ])
    library = library_of(disease)
    table = synthetic_region_table({PERIVENTRICULAR: "both"}, ("brain",))
    findings = {"body_parts_imaged": ["brain"], "lesions": {"brain": MS_LIKE_SUMMARY}}
    result = score_results(table, findings, library)[0]
    lesion_terms = [term for term in result.evidence if term.kind == "lesions"]
    assert [term.label for term in lesion_terms] == ["dissemination in space", "not volume asymmetry <= 0.2"]
    assert lesion_terms[0].log10_lr == pytest.approx(math.log10(0.8 / 0.2))
    assert lesion_terms[1].log10_lr == pytest.approx(math.log10(0.1 / 0.5))
    text = explain(result)
    assert "23 lesions; periventricular 9, juxtacortical 6, infratentorial 2" in text
    assert "dissemination in space (dis_areas 3, LR x4)" in text
    # without a lesion summary the terms are not assessed (LR 1), not guessed
    bare = score_results(table, {"body_parts_imaged": ["brain"]}, library)[0]
    assert not [term for term in bare.evidence if term.kind == "lesions"]
    assert "dis areas" in bare.unassessed


def test_region_terms_read_the_involvement_kind_they_name() -> None:
    focal_only = synthetic_region_table({PERIVENTRICULAR: "both"}, ("brain",))
    focal_only["involved_focal"] = focal_only["involved"]
    focal_only["involved_diffuse"] = False
    diffuse = minimal_disease(body_part="brain", sequences=["FLAIR"], regions=[
        {"region": PERIVENTRICULAR, "role": "core", "p_involved": 0.9, "involvement": "diffuse"}])
    any_kind = minimal_disease(body_part="brain", sequences=["FLAIR"], regions=[
        {"region": PERIVENTRICULAR, "role": "core", "p_involved": 0.9}])
    observations = observe(focal_only, {"body_parts_imaged": ["brain"]})
    diffuse_pattern = library_of(diffuse).patterns[0]
    any_pattern = library_of(any_kind).patterns[0]
    diffuse_result = evaluate_pattern(diffuse_pattern, observations)
    any_result = evaluate_pattern(any_pattern, observations)
    assert diffuse_result.missing_core == [PERIVENTRICULAR]
    assert diffuse_result.evidence[0].label == "Periventricular white matter not involved (diffuse)"
    assert any_result.matched_core == [PERIVENTRICULAR]
    # an older table without the kind columns: the kinds fall back to `involved`
    older = synthetic_region_table({PERIVENTRICULAR: "both"}, ("brain",)).drop(
        columns=["involved_focal", "involved_diffuse"], errors="ignore")
    assert evaluate_pattern(diffuse_pattern, observe(older, {})).matched_core == [PERIVENTRICULAR]


def test_shipped_ms_pattern_prefers_disseminated_lesions(library) -> None:
    ms = library.get("ms-brain")
    table = synthetic_region_table({PERIVENTRICULAR: "both"}, ("brain",))
    disseminated = evaluate_pattern(ms, observe(table, {"lesions": {"brain": MS_LIKE_SUMMARY}}))
    confined = {**MS_LIKE_SUMMARY, "by_location": {"periventricular": 9, "deep white matter": 14},
                "dis_areas": ["periventricular"], "n_callosal": 0}
    one_area = evaluate_pattern(ms, observe(table, {"lesions": {"brain": confined}}))
    assert disseminated.score - one_area.score > 1.0
    assert all(ref for ref in ms.references)  # lesion evidence comes with its sources


def test_shipped_ms_explanation_opens_with_the_lesion_evidence(library) -> None:
    import re

    from regiontag.patterns.scoring import score_session

    table = synthetic_region_table({PERIVENTRICULAR: "both"}, ("brain",))
    findings = {"body_parts_imaged": ["brain"], "lesions": {"brain": MS_LIKE_SUMMARY}}
    scores = score_session(table, findings, library).set_index("pattern")
    text = scores.loc["ms-brain", "explanation"]
    assert re.match(r"score -?\d+\.\d \(log10 odds\)(, match)?; 23 lesions; periventricular 9, juxtacortical 6, "
                    r"infratentorial 2, deep white matter 6: dissemination in space; raised by: ", text), text
    raised = text.split("raised by: ")[1].split("; lowered by")[0]
    assert "dissemination in space (dis_areas 3, LR x2.8)" in raised  # log10(0.85 / 0.3)
    assert scores.loc["ms-brain", "rank"] == 1


def test_small_vessel_disease_reads_a_peripheral_pontine_lesion_against_it(library) -> None:
    # Geraldes 2020: peripheral pontine lesions in 0 of 43 vascular-risk non-MS patients, 31% of MS;
    # central pontine lesions are the small-vessel ones
    svd = library.get("small-vessel-disease")
    base = {PERIVENTRICULAR: "both", "Cerebrum > Cerebral white matter > Deep white matter": "both"}

    def score(extra):
        table = synthetic_region_table({**base, **extra}, ("brain",))
        return evaluate_pattern(svd, observe(table, {"body_parts_imaged": ["brain"]})).score

    no_pons = score({})
    peripheral = score({"Brainstem > Pons": "left"})
    central = score({"Brainstem > Pons > Central pons": "both"})
    assert peripheral < no_pons - 0.5 < central - 0.5
