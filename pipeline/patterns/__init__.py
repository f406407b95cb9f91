"""Lesion patterns: schema, library, Bayesian scoring and explanations.

Public API::

    from pipeline.patterns import load_library, score_session
    library = load_library()                      # configs/patterns/*.yaml
    scores = score_session(region_table, findings, library, config.scoring)
"""

from pipeline.patterns.library import Library, PatternError, load_disease_file, load_library
from pipeline.patterns.regions import known_region_paths
from pipeline.patterns.schema import Disease, Pattern, RegionEvidence
from pipeline.patterns.scoring import score_results, score_session

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
