"""Helpers for the BIDS-derivatives tests: run bids-validator-deno, fake a finished session folder."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from regiontag import outputs


def validator_errors(dataset: Path) -> list[tuple[str, str]]:
    """(code, location) of every error ``bids-validator-deno`` reports on ``dataset``; skips without it."""
    executable = shutil.which("bids-validator-deno")
    if executable is None:
        pytest.skip("bids-validator-deno not installed (pip install bids-validator-deno)")
    try:
        completed = subprocess.run([executable, "--format", "json", str(dataset)], capture_output=True, text=True,
                                   timeout=180)
        report = json.loads(completed.stdout)
    except (OSError, subprocess.TimeoutExpired, ValueError) as error:
        pytest.skip(f"bids-validator-deno could not run: {error}")
    return [(issue["code"], issue.get("location", "")) for issue in report["issues"]["issues"]
            if issue["severity"] == "error"]


def _nifti(path: Path, data: np.ndarray, zooms=(1.0, 1.0, 2.0)) -> None:
    image = nib.Nifti1Image(data, np.diag([*zooms, 1.0]))
    image.header.set_xyzt_units("mm", "sec")
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(image, str(path))


def fake_session_folder(session_dir: Path, references: dict[str, Path]) -> None:
    """The files a finished brain + cord session leaves in its regiontag folder (small volumes)."""
    rng = np.random.default_rng(0)
    shape = (8, 8, 6)
    labels = rng.integers(0, 3, shape).astype(np.int16)
    for name in (outputs.LESIONS_NII, outputs.LESIONS_MNI_NII, outputs.BRAIN_MASK_NII, outputs.CORD_LESIONS_NII,
                 outputs.CORD_MASK_NII):
        _nifti(session_dir / name, (rng.random(shape) > 0.7).astype(np.uint8))
    for name in (outputs.ZMAP_NII, outputs.CORD_ZMAP_NII):
        _nifti(session_dir / name, rng.normal(size=shape).astype(np.float32))
    for name, table in ((outputs.ATLAS_LABELS_NII, outputs.ATLAS_LABELS_TSV),
                        (outputs.CORD_LABELS_NII, outputs.CORD_LABELS_TSV)):
        _nifti(session_dir / name, labels)
        outputs.write_csv(outputs.label_table({1: "Region > A [left]", 2: "Region > B"}), session_dir / table)
    transforms = session_dir / outputs.TRANSFORMS_DIR
    transforms.mkdir()
    (transforms / "tmpab12_0GenericAffine.mat").write_bytes(b"\x00" * 16)
    _nifti(transforms / "tmpab12_1Warp.nii.gz", np.zeros((4, 4, 4, 1, 3), np.float32))
    _nifti(transforms / "tmpab12_1InverseWarp.nii.gz", np.zeros((4, 4, 4, 1, 3), np.float32))
    row = {column: "" for column in outputs.REGION_COLUMNS} | {"session": session_dir.name, "region": "Brain",
                                                                "side": "both", "lesion_volume_ml": 0.5}
    outputs.write_csv(pd.DataFrame([row]), session_dir / outputs.REGIONS_CSV, outputs.REGION_COLUMNS)
    score = {column: "" for column in outputs.SCORE_COLUMNS} | {"session": session_dir.name, "pattern": "x", "score": 1.0}
    outputs.write_csv(pd.DataFrame([score]), session_dir / outputs.SCORES_CSV, outputs.SCORE_COLUMNS)
    outputs.write_csv(pd.DataFrame({"slice": [1, 2], "csa_mm2": [70.0, 71.0]}), session_dir / outputs.CENTERLINE_CSV)
    outputs.write_json({"body_parts_imaged": sorted(references)}, session_dir / outputs.FINDINGS_JSON)
    (session_dir / outputs.REPORT_HTML).write_text("<html></html>")
    (session_dir / outputs.LOG_FILE).write_text("log\n")
    inputs = [{"path": str(path), "body_part": body_part} for body_part, path in references.items()]
    outputs.write_json({"reference": {bp: str(path) for bp, path in references.items()}, "inputs": inputs},
                       session_dir / outputs.PROVENANCE_JSON)
