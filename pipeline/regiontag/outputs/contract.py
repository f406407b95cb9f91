"""The output contract: file names, CSV columns, and atomic writers.

Every file is written to a temporary name in the destination folder and
renamed into place, so a killed run never leaves a half-written file under
its final name.  ``provenance.json`` is written last and marks a session as
complete.
"""

from __future__ import annotations

import errno
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
    "involved_focal",
    "involved_diffuse",
    "laterality_index",
    "lesion_length_mm",
    "longitudinally_extensive",
    "vertebral_levels",
    "csa_ratio",
]

#: Columns of lesions.csv, in order: one row per connected lesion (26-neighbourhood), brain and cord
#: (``atlas.lesion_table``). Cord-only columns are empty for brain rows and vice versa.
LESIONS_CSV = "lesions.csv"
LESION_COLUMNS = [
    "session",
    "body_part",
    "lesion_id",
    "volume_ml",
    "n_voxels",
    "centroid_x_mm",
    "centroid_y_mm",
    "centroid_z_mm",
    "template_x_mm",
    "template_y_mm",
    "template_z_mm",
    "side",
    "share_left",
    "location",
    "ventricle_distance_mm",
    "cortex_distance_mm",
    "main_region",
    "regions",
    "elongation",
    "orientation",
    "orientation_angle_deg",
    "mean_z",
    "max_z",
    "length_mm",
    "vertebral_levels",
    "share_posterior_column",
    "share_lateral_column",
    "share_anterior_column",
    "share_grey_matter",
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
    format from them).  It is ``fsync``-ed before the rename and the folder after
    it, so after a crash or power cut the final name holds complete data.  On
    error the temporary file is removed and ``destination`` is untouched.
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
        _fsync_path(temporary_path)  # the data on disk before the name points at it
        os.replace(temporary_path, destination)
    except BaseException:
        temporary_path.unlink(missing_ok=True)
        raise
    _fsync_path(destination.parent, folder=True)  # and the rename itself


def _fsync_path(path: Path, *, folder: bool = False) -> None:
    """``fsync`` a file or a folder by path; file systems that cannot sync a folder are tolerated."""
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if folder else 0)
    try:
        descriptor = os.open(path, flags)
    except OSError:
        if folder:  # e.g. Windows cannot open a folder
            return
        raise
    try:
        os.fsync(descriptor)
    except OSError as error:
        if not folder or error.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF):
            raise
    finally:
        os.close(descriptor)


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
