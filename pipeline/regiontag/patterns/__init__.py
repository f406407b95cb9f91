"""Lesion patterns: schema, library, Bayesian scoring and explanations.

Public API::

    from regiontag.patterns import load_library, score_session
    library = load_library()                      # configs/patterns/*.yaml
    scores = score_session(region_table, findings, library, config.scoring)
"""

from regiontag.patterns.library import Library, PatternError, load_disease_file, load_library
from regiontag.patterns.regions import known_region_paths
from regiontag.patterns.schema import Disease, Pattern, RegionEvidence
from regiontag.patterns.scoring import score_results, score_session

__all__ = [
    "Disease",
    "Library",
    "Pattern",
    "PatternError",
    "RegionEvidence",
    "known_region_paths",
    "load_disease_file",
    "load_library",
    "score_results",
    "score_session",
]
