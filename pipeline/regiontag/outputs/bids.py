"""BIDS derivatives: the dataset description and BIDS-named copies (hard links) of each session's outputs."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from regiontag import __version__
from regiontag.inputs.bids import BIDS_VERSION, DATASET_DESCRIPTION, session_label
from regiontag.outputs.contract import write_json
from regiontag.types import Session


def derivatives_description(input_dir: str | Path) -> dict[str, Any]:
    """Content of ``dataset_description.json`` for regiontag outputs of a BIDS dataset."""
    input_dir = Path(input_dir).resolve()
    source: dict[str, Any] = {"URL": input_dir.as_uri()}
    try:
        raw = json.loads((input_dir / DATASET_DESCRIPTION).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raw = {}
    if isinstance(raw, dict):
        for key in ("DatasetDOI", "Name"):
            if raw.get(key):
                source["DOI" if key == "DatasetDOI" else "Name"] = raw[key]
    return {
        "Name": "regiontag: per-region lesion involvement and pattern scores",
        "BIDSVersion": BIDS_VERSION,
        "DatasetType": "derivative",
        "GeneratedBy": [
            {
                "Name": "regiontag",
                "Version": __version__,
                "Description": "Atlas-region tagging of T2/FLAIR hyperintensities in brain and "
                "spinal cord; research software, not a medical device.",
            }
        ],
        "SourceDatasets": [source],
    }


def write_derivatives_description(output_dir: str | Path, input_dir: str | Path) -> Path:
    """Write ``OUTPUT_DIR/dataset_description.json`` (BIDS derivatives, atomic)."""
    return write_json(derivatives_description(input_dir), Path(output_dir) / DATASET_DESCRIPTION)


#: Per-session output file -> BIDS-derivatives entities and suffix (``{prefix}_<this>``).
DERIVATIVE_NAMES = {
    "lesions.nii.gz": "desc-lesions_mask.nii.gz",
    "lesions_space-MNI152.nii.gz": "space-{template}_desc-lesions_mask.nii.gz",
    "hyperintensity_z.nii.gz": "stat-z_desc-hyperintensity_statmap.nii.gz",
    "atlas_labels.nii.gz": "desc-atlas_dseg.nii.gz",
    "brain_mask.nii.gz": "desc-brain_mask.nii.gz",
    "cord_lesions.nii.gz": "desc-cordlesions_mask.nii.gz",
    "cord_hyperintensity_z.nii.gz": "stat-z_desc-cordhyperintensity_statmap.nii.gz",
    "cord_mask.nii.gz": "desc-cord_mask.nii.gz",
    "cord_labels.nii.gz": "desc-cordatlas_dseg.nii.gz",
    "centerline.csv": "desc-centerline_table.csv",
    "regions.csv": "regions.csv",
    "scores.csv": "scores.csv",
    "findings.json": "findings.json",
    "report.html": "report.html",
}


def _link_or_copy(source: Path, destination: Path) -> None:
    """Hard link ``source`` at ``destination`` (copy across file systems), replacing atomically."""
    if destination.exists() and os.path.samefile(source, destination):
        return  # already linked (rename() between links of one file would do nothing)
    handle, temporary = tempfile.mkstemp(prefix=f".{destination.name}.", suffix=".tmp", dir=destination.parent)
    os.close(handle)
    os.unlink(temporary)
    try:
        os.link(source, temporary)
    except OSError:
        shutil.copy2(source, temporary)
    os.replace(temporary, destination)


def write_bids_derivatives(
    output_dir: str | Path, session: Session, template: str = "MNI152NLin2009aSym"
) -> list[Path]:
    """BIDS-derivatives view of a finished session: ``sub-X/[ses-Y/]anat/sub-X[_ses-Y]_<entities>_<suffix>``.

    The files are hard links to the session folder's outputs (no extra space;
    copies when linking is impossible), so the CSV summaries and session
    folders stay as they are.  Sessions without BIDS entities are ignored.

    Returns
    -------
    list of Path
        The derivative files written.
    """
    if not session.bids.get("subject"):
        return []
    output_dir = Path(output_dir)
    session_dir = output_dir / session.session_id
    subject, bids_session = session.bids["subject"], session.bids.get("session")
    folder = output_dir / f"sub-{subject}"
    if bids_session:
        folder = folder / f"ses-{bids_session}"
    folder = folder / "anat"
    prefix = session_label(subject, bids_session)
    written = []
    for source_name, pattern in DERIVATIVE_NAMES.items():
        source = session_dir / source_name
        if not source.is_file():
            continue
        folder.mkdir(parents=True, exist_ok=True)
        destination = folder / f"{prefix}_{pattern.format(template=template)}"
        _link_or_copy(source, destination)
        written.append(destination)
    return written
