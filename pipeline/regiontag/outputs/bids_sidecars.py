"""JSON sidecars of the BIDS derivatives: column descriptions of regiontag's tables, image metadata.

BIDS describes a TSV's columns in a JSON file of the same name (``LongName``,
``Description``, ``Units``, ``Levels``); regiontag's tables (regions, scores,
sessions, centreline) have no BIDS suffix, so they are listed in
``.bidsignore`` but still carry such a sidecar, as BIDS would want.
"""

from __future__ import annotations

from typing import Any

from regiontag.outputs.contract import REGION_COLUMNS, SCORE_COLUMNS, SESSION_COLUMNS

_SIDE_LEVELS = {
    "left": "left hemisphere / left half of the cord",
    "right": "right hemisphere / right half of the cord",
    "both": "the whole region (both sides together)",
}

#: Column -> BIDS column description (``Description`` always, ``Units`` / ``Levels`` when they apply).
COLUMN_DESCRIPTIONS: dict[str, dict[str, Any]] = {
    "session": {"Description": "Session: sub-<label>[_ses-<label>] for BIDS input"},
    "atlas": {"Description": "Atlas the region belongs to (brain: MNI152 region atlas, cord: PAM50-calibrated column atlas)"},
    "region": {"Description": "Region path in the region tree, e.g. 'Spinal cord > Spinal white matter > Posterior column'"},
    "name": {"Description": "Region name (last element of the path)"},
    "parent": {"Description": "Path of the parent region ('' for a root)"},
    "depth": {"Description": "Depth of the region in the tree (0 = root)"},
    "side": {"Description": "Side the row describes", "Levels": _SIDE_LEVELS},
    "region_volume_ml": {"Description": "Volume of the region in the subject's scan", "Units": "mL"},
    "lesion_voxels": {"Description": "Lesion voxels inside the region (reference scan grid)"},
    "lesion_volume_ml": {"Description": "Lesion volume inside the region", "Units": "mL"},
    "fraction_involved": {"Description": "Lesion volume / region volume", "Units": "arbitrary"},
    "n_clusters": {"Description": "Connected lesion clusters touching the region"},
    "mean_z": {"Description": "Mean hyperintensity z-score (robust, in units of normal-appearing white matter spread) in the region's lesion voxels"},
    "max_z": {"Description": "Maximum hyperintensity z-score in the region"},
    "involved": {"Description": "Region counted as involved: focally or diffusely (involved_focal or involved_diffuse)",
                 "Levels": {"True": "involved", "False": "not involved"}},
    "involved_focal": {"Description": "At least one lesion of involvement.focal_min_lesion_ml lies mostly "
                                      "(involvement.focal_min_share) in the region",
                       "Levels": {"True": "involved (focal)", "False": "not involved focally"}},
    "involved_diffuse": {"Description": "Lesion fraction and volume of the region above involvement.min_fraction "
                                        "and involvement.min_volume_ml",
                         "Levels": {"True": "involved (diffuse)", "False": "not involved diffusely"}},
    "laterality_index": {"Description": "(left - right) / (left + right) lesion volume; empty for unpaired regions"},
    "lesion_length_mm": {"Description": "Cord only: cranio-caudal extent of the lesion in the region", "Units": "mm"},
    "longitudinally_extensive": {"Description": "Cord only: lesion spans three or more vertebral segments",
                                 "Levels": {"True": "yes", "False": "no"}},
    "vertebral_levels": {"Description": "Cord only: vertebral levels the lesion spans, e.g. 'C3-C5'"},
    "csa_ratio": {"Description": "Cord only: cross-sectional area at the lesion / expected area", "Units": "arbitrary"},
    "pattern": {"Description": "Lesion pattern id (configs/patterns/<id>.yaml)"},
    "disease": {"Description": "Disease or condition the pattern describes"},
    "score": {"Description": "Naive-Bayes log-likelihood ratio of the pattern against the reference population", "Units": "arbitrary"},
    "rank": {"Description": "Rank of the pattern among the assessable ones (1 = best)"},
    "assessable": {"Description": "Enough of the pattern's evidence is available in this session",
                   "Levels": {"True": "yes", "False": "no"}},
    "match": {"Description": "The pattern matches (score above its threshold, core regions involved)",
              "Levels": {"True": "yes", "False": "no"}},
    "matched_core_regions": {"Description": "Core regions of the pattern that are involved ('; '-separated)"},
    "missing_core_regions": {"Description": "Core regions of the pattern that are not involved ('; '-separated)"},
    "atypical_findings": {"Description": "Findings that speak against the pattern"},
    "explanation": {"Description": "Why the pattern got its score, in words"},
    "status": {"Description": "Outcome of the session",
               "Levels": {"ok": "finished", "warning": "finished with a sanity-check warning", "failed": "failed"}},
    "error": {"Description": "One-line reason for a failure or warning"},
    "seconds": {"Description": "Processing time of the session", "Units": "s"},
    "body_parts": {"Description": "Body parts imaged ('brain', 'cord'; ';'-separated)"},
    "attempts": {"Description": "How many attempts the session took (2 after a retry: its worker was lost)"},
    "top_pattern": {"Description": "Best-ranked matching lesion pattern"},
    "slice": {"Description": "Slice index along the cord (reference scan grid)"},
    "x_mm": {"Description": "Centreline position, scanner x (RAS+)", "Units": "mm"},
    "y_mm": {"Description": "Centreline position, scanner y (RAS+)", "Units": "mm"},
    "z_mm": {"Description": "Centreline position, scanner z (RAS+)", "Units": "mm"},
    "distance_mm": {"Description": "Distance along the centreline from its first slice", "Units": "mm"},
    "csa_mm2": {"Description": "Cord cross-sectional area on the slice", "Units": "mm^2"},
    "vertebral_level": {"Description": "Vertebral level of the slice (e.g. 'C3'; empty when unknown)"},
}

#: Table -> its columns, for the sidecars.
TABLE_COLUMNS = {"regions": REGION_COLUMNS, "scores": SCORE_COLUMNS, "sessions": SESSION_COLUMNS}
#: The suffixes regiontag gives its tables in the BIDS view (none of them is a BIDS suffix).
TABLE_SUFFIXES = ("regions", "scores", "sessions", "centerline")


def table_sidecar(columns: list[str]) -> dict[str, Any]:
    """Sidecar of a TSV: one entry per column (a generic one for columns regiontag does not describe).

    Examples
    --------
    >>> sidecar = table_sidecar(["session", "score"])
    >>> sidecar["score"]["Units"]
    'arbitrary'
    """
    generic = "{} (see the regiontag README)"
    return {column: dict(COLUMN_DESCRIPTIONS.get(column, {"Description": generic.format(column)})) for column in columns}


def image_sidecar(
    description: str,
    sources: list[str],
    *,
    spatial_reference: str | None = None,
    mask_type: str | None = None,
) -> dict[str, Any]:
    """Sidecar of a derived image: ``Description``, ``Sources`` (BIDS URIs), ``SpatialReference``, ``Type``.

    Examples
    --------
    >>> image_sidecar("lesions", ["bids:raw:sub-01/anat/sub-01_FLAIR.nii.gz"], mask_type="Lesion")["Type"]
    'Lesion'
    """
    sidecar: dict[str, Any] = {"Description": description, "Sources": list(sources)}
    if spatial_reference:
        sidecar["SpatialReference"] = spatial_reference
    if mask_type:
        sidecar["Type"] = mask_type
    return sidecar
