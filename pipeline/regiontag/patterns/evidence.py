"""What a pattern score is made of: its evidence terms and the per-pattern result."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from regiontag.patterns.schema import Pattern


@dataclass(frozen=True)
class Evidence:
    """One term of a pattern's score.

    Attributes
    ----------
    kind : str
        ``prior``, ``region``, ``symmetry``, ``extent``, ``feature`` or ``lesions``.
    label : str
        What was observed, e.g. ``"Posterior column involved"``.
    detail : str
        Qualifier shown in brackets, e.g. ``"both sides"``.
    log10_lr : float
        Contribution to the score.
    region : str or None
        Region path for region terms.
    """

    kind: str
    label: str
    log10_lr: float
    detail: str = ""
    region: str | None = None

    @property
    def likelihood_ratio(self) -> float:
        """The term as a likelihood ratio."""
        return 10.0**self.log10_lr


@dataclass
class PatternResult:
    """The score of one pattern for one session."""

    pattern: Pattern
    assessable: bool
    reason: str = ""
    score: float = math.nan
    evidence: list[Evidence] = field(default_factory=list)
    matched_core: list[str] = field(default_factory=list)
    missing_core: list[str] = field(default_factory=list)
    atypical: list[str] = field(default_factory=list)
    unassessed: list[str] = field(default_factory=list)
    match: bool = False
    rank: int | None = None
    tied_with: list[str] = field(default_factory=list)
    #: One sentence on the session's lesions (patterns with lesion evidence), e.g.
    #: ``"23 lesions; periventricular 9, juxtacortical 6, infratentorial 2: dissemination in space"``.
    lesion_summary: str = ""
    #: Close calls: ``(other pattern id, score difference)`` when this result and the other are ranked
    #: first and second (not tied) less than ``scoring.close_call_margin`` apart.
    close_to: list[tuple[str, float]] = field(default_factory=list)
