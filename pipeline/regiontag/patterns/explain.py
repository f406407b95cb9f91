"""Plain-language explanations of pattern scores.

Example (SCD pattern on a dorsal-column session)::

    score 4.1 (log10 odds): raised by: Posterior column involved (both sides, LR x19),
    longitudinally extensive (LR x8); lowered by: Lateral column not involved (LR x0.44)
"""

from __future__ import annotations

from regiontag.config import ScoringConfig
from regiontag.patterns.evidence import Evidence, PatternResult

#: Terms closer to LR 1 than this (x0.95 .. x1.05) are left out of explanations.
NEGLIGIBLE_LOG10_LR = 0.02


def format_ratio(ratio: float) -> str:
    """A likelihood ratio for people: ``x12``, ``x1.5``, ``x0.44``, ``x0.003``, ``x2300``."""
    if ratio >= 99.5:  # two significant digits would round these up to "1e+02"
        return f"x{ratio:.0f}"
    if ratio >= 1:
        return f"x{ratio:.2g}"
    return f"x{ratio:.2g}" if ratio >= 1e-4 else f"x{ratio:.1e}"


def describe(term: Evidence) -> str:
    """``Posterior column involved (both sides, LR x12)``."""
    inside = ", ".join(part for part in (term.detail, f"LR {format_ratio(term.likelihood_ratio)}") if part)
    return f"{term.label} ({inside})"


def explain(result: PatternResult, config: ScoringConfig = ScoringConfig()) -> str:
    """One paragraph: what raised and what lowered the pattern's score.

    Terms are listed by strength (at most ``config.explain_max_items`` per direction);
    region terms name the region as the region table does.  Patterns that cannot be
    assessed say why.
    """
    if not result.assessable:
        return f"not assessable: {result.reason}"
    raised = sorted((t for t in result.evidence if t.log10_lr >= NEGLIGIBLE_LOG10_LR),
                    key=lambda t: -t.log10_lr)
    lowered = sorted((t for t in result.evidence if t.log10_lr <= -NEGLIGIBLE_LOG10_LR),
                     key=lambda t: t.log10_lr)
    limit = config.explain_max_items
    parts = [f"score {result.score:.1f} (log10 odds)"]
    if result.match:
        parts[0] += ", match"
    if result.lesion_summary:
        parts.append(result.lesion_summary)
    for word, terms in (("raised by", raised), ("lowered by", lowered)):
        if terms:
            text = ", ".join(describe(term) for term in terms[:limit])
            if len(terms) > limit:
                text += f" and {len(terms) - limit} more"
            parts.append(f"{word}: {text}")
    shown = raised[:limit] + lowered[:limit]
    region_terms = [t for t in result.evidence if t.kind == "region"]
    if region_terms and not any(t.kind == "region" for t in shown):
        strongest = max(region_terms, key=lambda t: abs(t.log10_lr))
        parts.append(f"regions: {describe(strongest)}")  # always name a region of the table
    for other, lead in result.close_to:
        if lead >= 0:
            parts.append(f"close call: ranked first by only {lead:.1f} (LR {format_ratio(10 ** lead)}) over {other}")
        else:
            parts.append(f"close call: {-lead:.1f} (LR {format_ratio(10 ** -lead)}) below {other}, ranked first")
    if result.tied_with:
        parts.append(f"indistinguishable from declared mimic(s) {', '.join(sorted(set(result.tied_with)))}")
    if result.unassessed:
        parts.append(f"not assessed: {', '.join(result.unassessed[:limit])}"
                     + (" ..." if len(result.unassessed) > limit else ""))
    return "; ".join(parts)
