"""The output contract: file names, CSV columns, and atomic writers.

Every file is written to a temporary name in the destination folder and
renamed into place, so a killed run never leaves a half-written file under
its final name.  ``provenance.json`` is written last and marks a session as
complete.
"""

from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import nibabel as nib
import numpy as np
import pandas as pd

# --- per-session files (OUTPUT_DIR/<session>/...) ---------------------------
REGIONS_CSV = "regions.csv"
SCORES_CSV = "scores.csv"
FINDINGS_JSON = "findings.json"
PROVENANCE_JSON = "provenance.json"
LESIONS_NII = "lesions.nii.gz"
LESIONS_MNI_NII = "lesions_space-MNI152.nii.gz"
ZMAP_NII = "hyperintensity_z.nii.gz"
ATLAS_LABELS_NII = "atlas_labels.nii.gz"
ATLAS_LABELS_TSV = "atlas_labels.tsv"
CORD_LABELS_TSV = "cord_labels.tsv"
BRAIN_MASK_NII = "brain_mask.nii.gz"
CORD_LESIONS_NII = "cord_lesions.nii.gz"
CORD_ZMAP_NII = "cord_hyperintensity_z.nii.gz"
CORD_MASK_NII = "cord_mask.nii.gz"
CORD_LABELS_NII = "cord_labels.nii.gz"
CENTERLINE_CSV = "centerline.csv"
TRANSFORMS_DIR = "transforms"
REPORT_HTML = "report.html"
LOG_FILE = "log.txt"
#: Written for every finished attempt (ok, warning or failed): status, error, seconds.
STATUS_JSON = "status.json"
#: Written when an attempt starts (number, start time, process): a retry after a lost worker is counted.
ATTEMPT_JSON = "attempt.json"

# --- batch files (OUTPUT_DIR/...) --------------------------------------------
SESSIONS_CSV = "sessions.csv"
INDEX_HTML = "index.html"

def label_table(leaf_names: dict[int, str]) -> pd.DataFrame:
    """BIDS-style look-up table (``index``, ``name``) of an atlas' leaf labels."""
    return pd.DataFrame({"index": list(leaf_names), "name": list(leaf_names.values())})


#: Columns of regions.csv, in order. Cord-only columns are empty for brain rows.
REGION_COLUMNS = [
    "session",
    "atlas",
    "region",
    "name",
    "parent",
    "depth",
    "side",
    "region_volume_ml",
    "lesion_voxels",
    "lesion_volume_ml",
    "fraction_involved",
    "n_clusters",
    "mean_z",
    "max_z",
    "involved",
    "laterality_index",
    "lesion_length_mm",
    "longitudinally_extensive",
    "vertebral_levels",
    "csa_ratio",
]

SESSION_COLUMNS = [
    "session",
    "status",
    "error",
    "seconds",
    "body_parts",
    "lesion_volume_ml",
    "top_pattern",
    "attempts",
]

SCORE_COLUMNS = [
    "session",
    "pattern",
    "disease",
    "score",
    "rank",
    "assessable",
    "match",
    "matched_core_regions",
    "missing_core_regions",
    "atypical_findings",
    "explanation",
]


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def parse_flag(value: Any) -> bool | None:
    """A CSV truth value: ``True`` / ``False`` from bools, 0/1 and ``"true"``/``"false"`` strings; None when unknown."""
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("true", "1", "yes"):
            return True
        if text in ("false", "0", "no"):
            return False
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if np.isnan(number):
        return None
    return bool(number)


@contextmanager
def atomic_path(destination: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``destination``; rename it into place on success.

    The temporary file keeps the destination's suffixes (nibabel picks the
    format from them).  On error the temporary file is removed and
    ``destination`` is untouched.
    """
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    suffix = "".join(destination.suffixes)
    handle, temporary = tempfile.mkstemp(
        prefix=f".{destination.name}.", suffix=f".tmp{suffix}", dir=destination.parent
    )
    os.close(handle)
    temporary_path = Path(temporary)
    try:
        yield temporary_path
        os.chmod(temporary_path, 0o666 & ~_umask())  # mkstemp makes 0600; outputs are shared with the lab
        os.replace(temporary_path, destination)
    except BaseException:
        temporary_path.unlink(missing_ok=True)
        raise


def write_nifti(image: nib.Nifti1Image, destination: str | Path) -> Path:
    """Write a NIfTI image atomically."""
    with atomic_path(destination) as temporary:
        nib.save(image, str(temporary))
    return Path(destination)


def write_csv(table: pd.DataFrame, destination: str | Path, columns: list[str] | None = None) -> Path:
    """Write a table atomically (columns reordered to ``columns`` when given; ``.tsv`` is tab-separated)."""
    if columns is not None:
        table = table.reindex(columns=columns)
    separator = "\t" if str(destination).endswith(".tsv") else ","
    with atomic_path(destination) as temporary:
        table.to_csv(temporary, index=False, float_format="%.6g", sep=separator)
    return Path(destination)


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return None if not np.isfinite(value) else float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _finite_or_none(value: Any) -> Any:
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _finite_or_none(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_none(item) for item in value]
    return value


def write_json(content: dict[str, Any], destination: str | Path) -> Path:
    """Write JSON atomically (sorted keys, NaN and infinities written as null)."""
    text = json.dumps(
        _finite_or_none(content), indent=2, sort_keys=True, default=_json_default, allow_nan=False
    )
    with atomic_path(destination) as temporary:
        temporary.write_text(text + "\n", encoding="utf-8")
    return Path(destination)


def write_text(text: str, destination: str | Path) -> Path:
    """Write a text file atomically."""
    with atomic_path(destination) as temporary:
        temporary.write_text(text, encoding="utf-8")
    return Path(destination)
