"""BIDS derivatives: the dataset description, ``.bidsignore`` and the BIDS view of each finished session.

For BIDS input OUTPUT_DIR is a BIDS-derivatives dataset that ``bids-validator``
accepts without errors::

    OUTPUT_DIR/
      dataset_description.json        DatasetType derivative, GeneratedBy, SourceDatasets, DatasetLinks
      .bidsignore                     what BIDS has no name for (below)
      sub-01/[ses-01/]anat/
        sub-01_[acq-..._]label-lesion_mask.nii.gz (+ .json: Sources, SpatialReference, Type)
        sub-01_space-MNI152NLin2009aSym_label-lesion_mask.nii.gz
        sub-01_desc-brainatlas_dseg.nii.gz + _dseg.tsv, sub-01_desc-brain_mask.nii.gz
        sub-01_label-lesion_desc-cord_mask.nii.gz, sub-01_desc-cordatlas_dseg.nii.gz + .tsv, ...
        sub-01_from-FLAIR_to-MNI152NLin2009aSym_mode-image_desc-affine_xfm.mat   (fMRIPrep-style names)
        sub-01_regions.tsv + .json, sub-01_scores.tsv + .json, sub-01_findings.json
      sub-01.html                     the session report (as fMRIPrep names its reports)
      regiontag/                      regiontag's own layout: session folders (status, log, provenance:
                                      the resume state), sessions.csv / regions.csv / scores.csv, index.html

Images are hard links to the session folder's files (no extra space; copies
across file systems); tables are rewritten as TSV.  The derived files keep
the entities of their reference scan (``acq``, ``ce``, ``rec``, ``run``) so
that brain and cord derivatives of one session do not collide.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from regiontag import __version__
from regiontag.inputs.bids import BIDS_VERSION, DATASET_DESCRIPTION, session_label
from regiontag.outputs import contract
from regiontag.outputs.bids_sidecars import TABLE_SUFFIXES, image_sidecar, table_sidecar
from regiontag.outputs.contract import write_csv, write_json, write_text
from regiontag.types import Session

#: Folder of OUTPUT_DIR holding regiontag's own layout (session folders, batch tables) for BIDS input.
WORK_DIR = "regiontag"
#: Name under which the input dataset is linked (``bids:raw:sub-01/anat/...`` URIs).
RAW_LINK = "raw"
#: Entities of the reference scan kept in derivative names, in BIDS order.
KEPT_ENTITIES = ("acq", "ce", "rec", "run")

BIDSIGNORE = f"""\
# regiontag: files that BIDS has no name for (see the README, "BIDS output")
*.html
*_xfm.*
{chr(10).join(f"*_{suffix}.tsv{chr(10)}*_{suffix}.json" for suffix in TABLE_SUFFIXES)}
*_findings.json
/{WORK_DIR}
"""

_ENTITY = re.compile(r"(?:^|_)([a-zA-Z]+)-([a-zA-Z0-9]+)")
_TRANSFORM_ENDINGS = {  # ANTs file ending -> (direction, desc, extension)
    "0GenericAffine.mat": ("forward", "affine", ".mat"),
    "1Warp.nii.gz": ("forward", "warp", ".nii.gz"),
    "1InverseWarp.nii.gz": ("inverse", "warp", ".nii.gz"),
}


def derivatives_description(input_dir: str | Path) -> dict[str, Any]:
    """Content of ``dataset_description.json`` for regiontag outputs of a BIDS dataset.

    Examples
    --------
    >>> derivatives_description("/data/ds")["DatasetType"]
    'derivative'
    """
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
        "DatasetLinks": {RAW_LINK: input_dir.as_uri()},
    }


README_TEXT = """\
# regiontag derivatives

Per-region lesion involvement and lesion-pattern scores made by regiontag from the dataset linked as `raw`
in dataset_description.json. Lesion masks, atlas labels (`_dseg` with `_dseg.tsv`) and transforms are in
`sub-*/[ses-*/]anat/`; the tables (`*_regions.tsv`, `*_scores.tsv`, `group_*.tsv`) have JSON sidecars
describing their columns; `regiontag/` holds regiontag's own layout (session folders, batch report).
Research software, not a medical device.
"""


def write_derivatives_description(output_dir: str | Path, input_dir: str | Path) -> Path:
    """Write ``dataset_description.json``, ``.bidsignore`` and ``README.md`` of OUTPUT_DIR (atomic)."""
    write_text(BIDSIGNORE, Path(output_dir) / ".bidsignore")
    write_text(README_TEXT, Path(output_dir) / "README.md")
    return write_json(derivatives_description(input_dir), Path(output_dir) / DATASET_DESCRIPTION)


def source_entities(file_name: str) -> tuple[str, str]:
    """Entities of a scan kept in its derivatives (``_acq-cspine``...) and its suffix (``T2w``).

    Examples
    --------
    >>> source_entities("sub-01_ses-02_acq-cspine_run-2_T2w.nii.gz")
    ('_acq-cspine_run-2', 'T2w')
    """
    stem = Path(file_name).name.split(".")[0]
    entities = dict(_ENTITY.findall(stem))
    kept = "".join(f"_{key}-{entities[key]}" for key in KEPT_ENTITIES if key in entities)
    return kept, stem.rsplit("_", 1)[-1]


def _link_or_copy(source: Path, destination: Path) -> None:
    """Hard link ``source`` at ``destination`` (copy across file systems), replacing atomically."""
    destination.parent.mkdir(parents=True, exist_ok=True)
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


def _bids_uri(path: str | Path, input_dir: Path) -> str:
    """``bids:raw:sub-01/anat/sub-01_FLAIR.nii.gz`` for a file of the input dataset (else its absolute URI)."""
    resolved = Path(os.path.realpath(path))
    try:
        return f"bids:{RAW_LINK}:{resolved.relative_to(Path(os.path.realpath(input_dir))).as_posix()}"
    except ValueError:
        return resolved.as_uri()


def _images(body_part: str, prefix: str, suffix: str, template: str, cord_only: bool) -> list[tuple[str, str, dict]]:
    """(session-folder file, BIDS name, sidecar options) of one body part's images."""
    if body_part == "brain":
        return [
            (contract.LESIONS_NII, f"{prefix}_label-lesion_mask.nii.gz",
             {"description": "Brain lesion mask (hyperintensities)", "mask_type": "Lesion", "native": True}),
            (contract.LESIONS_MNI_NII, f"{prefix}_space-{template}_label-lesion_mask.nii.gz",
             {"description": f"Brain lesion mask resampled to {template}", "mask_type": "Lesion", "native": False}),
            (contract.ZMAP_NII, f"{prefix}_desc-hyperintensityz_{suffix}.nii.gz",
             {"description": "Hyperintensity map: robust z-score in units of the normal-appearing white matter "
                             "spread, combined over sequences (zero outside the brain mask)", "native": True,
              "extra": {"SkullStripped": True}}),
            (contract.ATLAS_LABELS_NII, f"{prefix}_desc-brainatlas_dseg.nii.gz",
             {"description": f"Brain atlas leaf labels ({template} atlas warped to the scan)", "native": True}),
            (contract.BRAIN_MASK_NII, f"{prefix}_desc-brain_mask.nii.gz",
             {"description": "Brain mask", "mask_type": "Brain", "native": True}),
        ]
    lesions = contract.LESIONS_NII if cord_only else contract.CORD_LESIONS_NII
    zmap = contract.ZMAP_NII if cord_only else contract.CORD_ZMAP_NII
    return [
        (lesions, f"{prefix}_label-lesion_desc-cord_mask.nii.gz",
         {"description": "Spinal cord lesion mask (hyperintensities)", "mask_type": "Lesion", "native": True}),
        (zmap, f"{prefix}_desc-cordhyperintensityz_{suffix}.nii.gz",
         {"description": "Cord hyperintensity map: robust z-score against the cord's own intensity", "native": True,
          "extra": {"SkullStripped": False}}),
        (contract.CORD_MASK_NII, f"{prefix}_desc-cord_mask.nii.gz",
         {"description": "Spinal cord segmentation", "mask_type": "ROI", "native": True}),
        (contract.CORD_LABELS_NII, f"{prefix}_desc-cordatlas_dseg.nii.gz",
         {"description": "Cord atlas labels (PAM50-calibrated column atlas) in the scan", "native": True}),
    ]


def _write_image(session_dir: Path, folder: Path, name: str, bids_name: str, options: dict, *,
                 sources: list[str], reference: str, template: str) -> list[Path]:
    source = session_dir / name
    if not source.is_file():
        return []
    destination = folder / bids_name
    _link_or_copy(source, destination)
    sidecar = image_sidecar(options["description"], sources,
                            spatial_reference=reference if options["native"] else template,
                            mask_type=options.get("mask_type")) | options.get("extra", {})
    written = [destination, write_json(sidecar, folder / bids_name.replace(".nii.gz", ".json"))]
    if bids_name.endswith("_dseg.nii.gz"):
        table = {contract.ATLAS_LABELS_NII: contract.ATLAS_LABELS_TSV,
                 contract.CORD_LABELS_NII: contract.CORD_LABELS_TSV}.get(name)
        if table and (session_dir / table).is_file():
            destination = folder / bids_name.replace(".nii.gz", ".tsv")
            _link_or_copy(session_dir / table, destination)
            written.append(destination)
    return written


def _write_transforms(session_dir: Path, folder: Path, prefix: str, suffix: str, template: str) -> list[Path]:
    """ANTs transforms under fMRIPrep-style names: ``from-FLAIR_to-<template>_mode-image_desc-affine_xfm.mat``."""
    transforms = session_dir / contract.TRANSFORMS_DIR
    written = []
    for path in sorted(transforms.glob("*")) if transforms.is_dir() else []:
        for ending, (direction, desc, extension) in _TRANSFORM_ENDINGS.items():
            if path.name.endswith(ending):
                source, target = (suffix, template) if direction == "forward" else (template, suffix)
                destination = folder / f"{prefix}_from-{source}_to-{target}_mode-image_desc-{desc}_xfm{extension}"
                _link_or_copy(path, destination)
                written.append(destination)
    return written


def _write_tables(session_dir: Path, folder: Path, prefix: str) -> list[Path]:
    """regions / scores / centreline as TSV with column sidecars, findings.json renamed."""
    written = []
    for csv_name, suffix in ((contract.REGIONS_CSV, "regions"), (contract.SCORES_CSV, "scores"),
                             (contract.CENTERLINE_CSV, "centerline")):
        if not (session_dir / csv_name).is_file():
            continue
        table = pd.read_csv(session_dir / csv_name, keep_default_na=False, dtype=str)
        written.append(write_csv(table.replace("", "n/a"), folder / f"{prefix}_{suffix}.tsv"))
        written.append(write_json(table_sidecar(list(table.columns)), folder / f"{prefix}_{suffix}.json"))
    if (session_dir / contract.FINDINGS_JSON).is_file():
        destination = folder / f"{prefix}_findings.json"
        _link_or_copy(session_dir / contract.FINDINGS_JSON, destination)
        written.append(destination)
    return written


def write_bids_derivatives(
    output_dir: str | Path,
    session: Session,
    *,
    session_dir: str | Path,
    input_dir: str | Path,
    template: str = "MNI152NLin2009aSym",
) -> list[Path]:
    """BIDS-derivatives view of a finished session: ``sub-X/[ses-Y/]anat/sub-X[_ses-Y]_<entities>_<suffix>``.

    Parameters
    ----------
    output_dir : str or Path
        Root of the derivatives dataset.
    session : Session
        A session with BIDS entities (others are ignored).
    session_dir : str or Path
        The session's regiontag folder (``OUTPUT_DIR/regiontag/<session>``): its
        ``provenance.json`` names the reference scan of each body part.
    input_dir : str or Path
        Root of the input BIDS dataset (for the ``Sources`` / ``SpatialReference`` URIs).
    template : str
        Template name of the brain registration (``space-`` label).

    Returns
    -------
    list of Path
        The derivative files written.

    Examples
    --------
    >>> write_bids_derivatives("out", Session("plain", ()), session_dir="out/plain", input_dir="in")
    []
    """
    if not session.bids.get("subject"):
        return []
    output_dir, session_dir, input_dir = Path(output_dir), Path(session_dir), Path(input_dir)
    provenance = json.loads((session_dir / contract.PROVENANCE_JSON).read_text(encoding="utf-8"))
    subject, bids_session = session.bids["subject"], session.bids.get("session")
    label = session_label(subject, bids_session)
    folder = output_dir / f"sub-{subject}" / (f"ses-{bids_session}" if bids_session else "") / "anat"
    references = provenance.get("reference", {})
    written: list[Path] = []
    for body_part, reference_path in sorted(references.items()):
        entities, suffix = source_entities(Path(reference_path).name)
        prefix = label + entities
        sources = [_bids_uri(item["path"], input_dir) for item in provenance.get("inputs", [])
                   if item.get("body_part") == body_part and item.get("path")]
        reference = _bids_uri(reference_path, input_dir)
        for name, bids_name, options in _images(body_part, prefix, suffix, template, "brain" not in references):
            written += _write_image(session_dir, folder, name, bids_name, options,
                                    sources=sources, reference=reference, template=template)
        if body_part == "brain":
            written += _write_transforms(session_dir, folder, prefix, suffix, template)
    written += _write_tables(session_dir, folder, label)
    if (session_dir / contract.REPORT_HTML).is_file():
        destination = output_dir / f"{label}.html"
        _link_or_copy(session_dir / contract.REPORT_HTML, destination)
        written.append(destination)
    return written


def write_group_tables(output_dir: str | Path, work_dir: str | Path) -> list[Path]:
    """Batch tables of the BIDS view: ``OUTPUT_DIR/{sessions,regions,scores}.tsv`` with column sidecars.

    Rewritten from regiontag's own batch tables in ``work_dir`` (``OUTPUT_DIR/regiontag``).
    """
    output_dir, work_dir = Path(output_dir), Path(work_dir)
    written = []
    for csv_name, suffix in ((contract.SESSIONS_CSV, "sessions"), (contract.REGIONS_CSV, "regions"),
                             (contract.SCORES_CSV, "scores")):
        if not (work_dir / csv_name).is_file():
            continue
        table = pd.read_csv(work_dir / csv_name, keep_default_na=False, dtype=str)
        written.append(write_csv(table.replace("", "n/a"), output_dir / f"group_{suffix}.tsv"))
        written.append(write_json(table_sidecar(list(table.columns)), output_dir / f"group_{suffix}.json"))
    return written
