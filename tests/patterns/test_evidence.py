"""Evidence terms and per-pattern results (``regiontag.patterns.evidence``)."""

from __future__ import annotations

import dataclasses
import math

import pytest

from regiontag.patterns.evidence import Evidence, PatternResult
from regiontag.patterns.library import parse_disease
from tests.patterns.helpers import minimal_disease


@pytest.mark.parametrize(("log10_lr", "ratio"), [(0.0, 1.0), (1.0, 10.0), (-2.0, 0.01), (0.5, math.sqrt(10))])
def test_likelihood_ratio_is_ten_to_the_log10_lr(log10_lr, ratio):
    assert Evidence("region", "x", log10_lr).likelihood_ratio == pytest.approx(ratio)


def test_evidence_defaults_and_is_frozen():
    term = Evidence("feature", "cord swelling", 0.3)
    assert (term.detail, term.region) == ("", None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        term.log10_lr = 1.0  # type: ignore[misc]


def test_pattern_result_defaults_are_fresh_per_result():
    pattern = parse_disease(minimal_disease(), "x.yaml").patterns[0]
    first, second = PatternResult(pattern, True), PatternResult(pattern, False)
    assert first.reason == "" and math.isnan(first.score)
    assert (first.match, first.rank) == (False, None)
    for name in ("evidence", "matched_core", "missing_core", "atypical", "unassessed", "tied_with"):
        assert getattr(first, name) == []
    first.evidence.append(Evidence("prior", "prior", -0.5))
    first.tied_with.append("other")
    assert second.evidence == [] and second.tied_with == []
