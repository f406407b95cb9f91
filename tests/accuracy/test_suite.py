"""The validation suite plan: coverage of patterns and conditions, stable seeds."""

from __future__ import annotations

import pytest
from regiontag.accuracy.suite import BRAIN_FACTORS, suite_plan

PATTERNS = [("ms-brain", "brain"), ("b12-leukoencephalopathy", "brain"), ("b12-subacute-combined-degeneration", "cord")]


def test_quick_plan_covers_every_pattern_and_healthy_controls():
    plan = suite_plan("quick", seed=0, patterns=PATTERNS)
    brain = [s for s in plan if s.body_part == "brain"]
    assert {s.pattern for s in brain} == {"ms-brain", "b12-leukoencephalopathy", "healthy"}
    assert sum(s.pattern == "healthy" and s.condition == "baseline" for s in brain) == 2
    assert {s.condition for s in brain} >= {"baseline", "snr=10", "slice_thickness_mm=5", "lesion_size=small"}
    assert len({s.session for s in plan}) == len(plan) and len({s.seed for s in plan}) == len(plan)
    assert len(plan) < 25


def test_full_plan_has_every_factor_level_and_stable_seeds():
    full = suite_plan("full", seed=0, patterns=PATTERNS)
    conditions = {s.condition for s in full if s.pattern == "ms-brain"}
    for factor, levels in BRAIN_FACTORS.items():
        assert {f"{factor}={level}" for level in levels} <= conditions
    assert not any(s.pattern == "healthy" and s.factor == "lesion_size" for s in full)
    fewer = {s.session: s.seed for s in suite_plan("full", seed=0, patterns=PATTERNS[:1])}
    assert all(fewer[s.session] == s.seed for s in full if s.session in fewer)
    assert {s.seed for s in suite_plan("full", seed=1, patterns=PATTERNS)}.isdisjoint({s.seed for s in full})
    with pytest.raises(ValueError, match="profile"):
        suite_plan("medium")


def test_patterns_plan_has_20_phantoms_per_pattern_and_healthy_body_part():
    plan = suite_plan("patterns", seed=0, patterns=PATTERNS)
    counts: dict[tuple[str, str, str], int] = {}
    for session in plan:
        key = (session.body_part, session.pattern, session.condition)
        counts[key] = counts.get(key, 0) + 1
    flair = "acquisition=flair"
    assert counts == {("brain", "ms-brain", flair): 20, ("brain", "b12-leukoencephalopathy", flair): 20,
                      ("brain", "healthy", flair): 20, ("cord", "b12-subacute-combined-degeneration", "baseline"): 20,
                      ("cord", "healthy", "baseline"): 20}
    assert all(s.settings == {"sequences": ("FLAIR",)} for s in plan if s.body_part == "brain")
    assert len({s.seed for s in plan}) == len(plan)
    # the cord baselines it shares with the full profile are the same phantoms (same name, same seed)
    full = {s.session: s.seed for s in suite_plan("full", seed=0, patterns=PATTERNS)}
    shared = [s for s in plan if s.session in full]
    assert len(shared) == 2 * 10 and all(full[s.session] == s.seed for s in shared)
