"""Score a session against every lesion pattern: naive-Bayes log-likelihood ratios.

For a pattern ``D`` and the background ``B`` (scans without ``D``: healthy or another
disease), each observation ``x`` contributes ``log10 P(x | D) / P(x | B)``:

* each region the pattern lists: involved -> ``p / q``, not involved -> ``(1-p) / (1-q)``
  with ``p = p_involved`` and ``q = p_background`` (pattern file, else the config's base
  rate for that region).  A listed region whose listed sub-region is involved is implied
  by it (parents aggregate children), so it adds nothing: the lesion is counted once;
* for an involved paired region with an expected laterality: both sides involved or one;
* symmetry: median |laterality index| of the pattern's involved paired regions;
* extent descriptors and features from ``findings.json`` (``null`` = not assessable, 0);
* lesion-level conditions (``lesions:`` of a pattern: counts per location class, dissemination
  in space, sizes, orientation, asymmetry) from ``findings.json`` ``lesions`` (the summary of
  ``lesions.csv``): condition met -> ``p_present / p_background``, else the complements;
  without a lesion summary they are not assessed.

A region term reads the involvement kind its pattern names (``involvement: focal``,
``diffuse`` or ``any``, see :mod:`regiontag.atlas.involvement`).

``score`` = log10 prior odds + the sum, i.e. the log10 posterior odds of the pattern
(with the default prior of 0.5 the prior term is 0): comparable across patterns.
A pattern whose body part was not imaged is ``assessable=False`` with ``score`` NaN.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from regiontag.atlas.tree import PATH_SEPARATOR
from regiontag.config import ScoringConfig
from regiontag.outputs.contract import SCORE_COLUMNS
from regiontag.patterns.evidence import Evidence, PatternResult
from regiontag.patterns.explain import explain
from regiontag.patterns.observations import Observations, observe
from regiontag.patterns.schema import FeatureEvidence, Pattern, RegionEvidence, feature_label


def _log_lr(observed: bool, p_pattern: float, p_background: float) -> float:
    if observed:
        return math.log10(p_pattern / p_background)
    return math.log10((1.0 - p_pattern) / (1.0 - p_background))


def region_background(item: RegionEvidence, config: ScoringConfig) -> float:
    """``P(involved | not the pattern)`` of a pattern region (file, else config)."""
    if item.p_background is not None:
        return item.p_background
    return float(config.region_background.get(item.region, config.background_p_involved))


def feature_background(name: str, item: FeatureEvidence, config: ScoringConfig) -> float:
    """``P(present | not the pattern)`` of a feature (file, else config)."""
    if item.p_background is not None:
        return item.p_background
    return float(config.feature_background.get(name, config.background_p_feature))


def _assessability(pattern: Pattern, observations: Observations) -> str:
    """Empty string when assessable, else the reason."""
    part = pattern.body_part
    if part not in observations.body_parts_imaged:
        imaged = ", ".join(sorted(observations.body_parts_imaged)) or "nothing"
        return f"{part} not imaged (imaged: {imaged})"
    sequences = observations.sequences.get(part)
    if sequences and not set(sequences) & set(pattern.sequences):
        return (
            f"none of the pattern's sequences ({', '.join(pattern.sequences)}) was acquired "
            f"for the {part} (acquired: {', '.join(sequences)})"
        )
    if not any(
        item.region in observations.regions and observations.regions[item.region].involved is not None
        for item in pattern.regions
    ):
        return f"none of the pattern's regions is in the {part} region table"
    return ""


def _region_terms(pattern: Pattern, observations: Observations, config: ScoringConfig,
                  result: PatternResult) -> None:
    p_bilateral = {
        "bilateral": config.p_bilateral_if_bilateral,
        "unilateral": config.p_bilateral_if_unilateral,
    }

    def flags(item: RegionEvidence) -> tuple[bool | None, bool | None, bool | None]:
        observed = observations.regions.get(item.region)
        return observed.flags(item.involvement) if observed is not None else (None, None, None)

    involved_listed = [item.region for item in pattern.regions if flags(item)[0]]
    for item in pattern.regions:
        observed = observations.regions.get(item.region)
        involved, left, right = flags(item)
        if observed is None or involved is None:
            result.unassessed.append(item.region)
            continue
        if any(path.startswith(item.region + PATH_SEPARATOR) for path in involved_listed):
            # implied by an involved sub-region the pattern also lists: LR 1 (counted once, below)
            if item.role == "core":
                result.matched_core.append(item.region)
            continue
        q = region_background(item, config)
        log_lr = _log_lr(involved, item.p_involved, q)
        detail = ""
        if involved:
            paired = left is not None and right is not None
            detail = ("both sides" if left and right else "left only" if left else "right only" if right
                      else "") if paired else ""
            if item.laterality in p_bilateral and paired:
                bilateral = bool(left and right)
                log_lr += _log_lr(bilateral, p_bilateral[item.laterality], config.p_bilateral_background)
            if item.role == "core":
                result.matched_core.append(item.region)
            elif item.role == "atypical":
                result.atypical.append(item.region)
        elif item.role == "core":
            result.missing_core.append(item.region)
        kind = "" if item.involvement == "any" else f" ({item.involvement})"
        label = f"{observed.name} {'involved' if involved else 'not involved'}{kind}"
        result.evidence.append(Evidence("region", label, log_lr, detail, item.region))


def _lesion_terms(pattern: Pattern, observations: Observations, result: PatternResult) -> None:
    """Lesion-level conditions (counts per location, dissemination in space, sizes, shape, asymmetry)."""
    for item in pattern.lesions:
        value = observations.lesion_measure(item.measure, pattern.body_part)
        if value is None:
            result.unassessed.append(item.measure.replace("_", " "))
            continue
        present = item.holds(value)
        log_lr = _log_lr(present, item.p_present, item.p_background)
        if present and item.p_present < item.p_background:
            result.atypical.append(item.describe(True))
        shown = f"{value:.2g}" if value != int(value) else f"{int(value)}"
        result.evidence.append(Evidence("lesions", item.describe(present), log_lr, f"{item.measure} {shown}"))


def _symmetry_term(pattern: Pattern, observations: Observations, config: ScoringConfig,
                   result: PatternResult) -> None:
    expected = pattern.symmetry.expected
    if expected == "any":
        return
    indices, names = [], []
    for item in pattern.regions:
        observed = observations.regions.get(item.region)
        if (item.role != "atypical" and observed is not None and observed.involved
                and observed.paired and observed.laterality_index is not None):
            indices.append(abs(observed.laterality_index))
            names.append(observed.name)
    if not indices:
        return
    median = float(pd.Series(indices).median())
    symmetric = median <= config.symmetric_max_laterality
    p_pattern = pattern.symmetry.p_symmetric
    if p_pattern is None:
        p_pattern = (config.p_symmetric_if_symmetric if expected == "symmetric"
                     else config.p_symmetric_if_asymmetric)
    log_lr = _log_lr(symmetric, p_pattern, config.p_symmetric_background)
    shown = ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")
    label = "symmetric involvement" if symmetric else "asymmetric involvement"
    result.evidence.append(Evidence("symmetry", label, log_lr, f"median |LI| {median:.2f} over {shown}"))


def _feature_terms(pattern: Pattern, observations: Observations, config: ScoringConfig,
                   result: PatternResult) -> None:
    for kind, items in (("extent", pattern.extent), ("feature", pattern.features)):
        for name, item in items.items():
            value = observations.feature(name, pattern.body_part)
            if value is None:
                result.unassessed.append(name.replace("_", " "))
                continue
            q = feature_background(name, item, config)
            log_lr = _log_lr(value, item.p_present, q)
            label = feature_label(name, value)
            if value and item.p_present < q:
                result.atypical.append(label)
            result.evidence.append(Evidence(kind, label, log_lr))


def evaluate_pattern(pattern: Pattern, observations: Observations,
                     config: ScoringConfig = ScoringConfig()) -> PatternResult:
    """Score one pattern against one session's observations (rank and ties left unset)."""
    reason = _assessability(pattern, observations)
    result = PatternResult(pattern=pattern, assessable=not reason, reason=reason)
    if reason:
        return result
    prior = pattern.prior if pattern.prior is not None else config.default_prior
    prior_log_odds = math.log10(prior / (1.0 - prior))
    if prior_log_odds != 0.0:
        result.evidence.append(Evidence("prior", "prior odds", prior_log_odds, f"prior {prior:g}"))
    _region_terms(pattern, observations, config, result)
    _symmetry_term(pattern, observations, config, result)
    _feature_terms(pattern, observations, config, result)
    if pattern.lesions:
        _lesion_terms(pattern, observations, result)
        result.lesion_summary = observations.lesion_sentence(pattern.body_part)
    result.score = float(sum(term.log10_lr for term in result.evidence))
    has_core = bool(result.matched_core) or not config.require_core_for_match
    result.match = result.score >= config.match_threshold and has_core
    return result


def rank_results(results: list[PatternResult], mimics: dict[str, set[str]],
                 config: ScoringConfig = ScoringConfig()) -> list[PatternResult]:
    """Set competition ranks (1, 1, 3, ...) of assessable results; order best first.

    Equal scores share a rank, and so do declared mimics whose scores differ by at
    most ``config.mimic_tie_margin``: the scorer does not pretend to separate them.
    Results that are not assessable come last, unranked.
    """
    assessable = sorted((r for r in results if r.assessable), key=lambda r: (-r.score, r.pattern.id))
    # the score a result is ranked by: its own, or that of a better declared mimic within the margin
    ranking_score = {}
    for position, result in enumerate(assessable):
        ranking_score[result.pattern.id] = result.score
        for earlier in assessable[:position]:
            if (earlier.pattern.id in mimics.get(result.pattern.id, set())
                    and earlier.score - result.score <= config.mimic_tie_margin):
                ranking_score[result.pattern.id] = max(ranking_score[result.pattern.id],
                                                       ranking_score[earlier.pattern.id])
                result.tied_with.append(earlier.pattern.id)
                earlier.tied_with.append(result.pattern.id)
    values = list(ranking_score.values())
    for result in assessable:
        mine = ranking_score[result.pattern.id]
        result.rank = 1 + sum(1 for value in values if value > mine + 1e-9)
    assessable.sort(key=lambda r: (r.rank, -r.score, r.pattern.id))
    _mark_close_calls(assessable, config)
    rest = sorted((r for r in results if not r.assessable), key=lambda r: r.pattern.id)
    return assessable + rest


def _mark_close_calls(ranked: list[PatternResult], config: ScoringConfig) -> None:
    """Record when the first-ranked pattern leads the next (not a declared tie) by less than the margin."""
    if not ranked:
        return
    first = ranked[0]  # declared mimics tied with it at rank 1 say so through `tied_with` instead
    runner_up = next((r for r in ranked[1:] if r.rank != 1), None)
    if runner_up is None:
        return
    lead = first.score - runner_up.score
    if lead < config.close_call_margin:
        first.close_to.append((runner_up.pattern.id, lead))
        runner_up.close_to.append((first.pattern.id, -lead))


def _library_mimics(library: Any) -> dict[str, set[str]]:
    if hasattr(library, "mimics_of"):
        return {pattern.id: library.mimics_of(pattern.id) for pattern in library.patterns}
    ids = {pattern.id for pattern in library.patterns}
    found: dict[str, set[str]] = {pattern_id: set() for pattern_id in ids}
    for pattern in library.patterns:
        for mimic in pattern.mimics:
            if mimic in ids:
                found[pattern.id].add(mimic)
                found[mimic].add(pattern.id)
    return found


def score_results(region_table: pd.DataFrame, findings: dict[str, Any] | None, library: Any,
                  config: ScoringConfig = ScoringConfig()) -> list[PatternResult]:
    """Like :func:`score_session` but returning the full :class:`PatternResult` objects."""
    observations = observe(region_table, findings)
    results = [evaluate_pattern(pattern, observations, config) for pattern in library.patterns]
    return rank_results(results, _library_mimics(library), config)


def results_table(results: list[PatternResult],
                  config: ScoringConfig = ScoringConfig()) -> pd.DataFrame:
    """The scores table (``outputs.SCORE_COLUMNS`` without ``session``) of ranked results."""
    rows = [
        {
            "pattern": result.pattern.id,
            "disease": result.pattern.disease_name,
            "score": result.score,
            "rank": result.rank,
            "assessable": result.assessable,
            "match": result.match,
            "matched_core_regions": "; ".join(result.matched_core),
            "missing_core_regions": "; ".join(result.missing_core),
            "atypical_findings": "; ".join(result.atypical),
            "explanation": explain(result, config),
        }
        for result in results
    ]
    columns = [column for column in SCORE_COLUMNS if column != "session"]
    table = pd.DataFrame(rows, columns=columns)
    table["rank"] = table["rank"].astype("Int64")
    table["score"] = table["score"].astype(float)
    table["assessable"] = table["assessable"].astype(bool)
    table["match"] = table["match"].astype(bool)
    return table


def score_session(region_table: pd.DataFrame, findings: dict[str, Any] | None, library: Any,
                  config: ScoringConfig = ScoringConfig()) -> pd.DataFrame:
    """Score a session's region table against every pattern of a library.

    Parameters
    ----------
    region_table : pandas.DataFrame
        Rows per region and side (``outputs.REGION_COLUMNS``, ``session`` optional).
    findings : dict or None
        Content of ``findings.json`` (``body_parts_imaged``, ``sequences``, ``features``).
    library : Library
        From :func:`regiontag.patterns.load_library`.
    config : ScoringConfig
        Background probabilities, thresholds.

    Returns
    -------
    pandas.DataFrame
        One row per pattern, best first, columns ``outputs.SCORE_COLUMNS`` without
        ``session``: ``score`` is the log10 posterior odds (NaN when not assessable),
        ``rank`` 1 = best (ties share a rank), ``match`` when the score reaches
        ``config.match_threshold`` and a core region is involved.
    """
    return results_table(score_results(region_table, findings, library, config), config=config)
