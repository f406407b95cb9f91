"""Small real-profile cases and the session outputs a finished run leaves (for the accuracy tests)."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from regiontag import outputs
from regiontag.outputs.session_folder import SessionFolder

MNI_4MM = np.array([[4.0, 0, 0, -90], [0, 4.0, 0, -126], [0, 0, 4.0, -72], [0, 0, 0, 1]])


def save(data: np.ndarray, path: Path, affine=MNI_4MM) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(data.astype(np.float32), affine), str(path))
    return path


def lesions() -> np.ndarray:
    mask = np.zeros((46, 55, 46), np.uint8)
    mask[18:21, 28:31, 26:28] = 1  # left periventricular-ish (18 voxels)
    mask[26:28, 28:30, 26:28] = 1  # right (8 voxels)
    return mask


def image_case(root: Path) -> Path:
    case = root / "cases" / "c1"
    save(np.ones((46, 55, 46)), case / "scan_FLAIR.nii.gz")
    save(lesions(), case / "truth_lesions.nii.gz")
    cord = np.zeros((46, 55, 46), np.uint8)
    cord[20:24, 20:24, 5:15] = 1
    save(cord, case / "truth_cord.nii.gz")
    (case / "truth.json").write_text(json.dumps({"body_part": "brain", "pattern": "multiple-sclerosis",
                                                 "diagnosis": "multiple sclerosis"}))
    return case


def fake_results(result_dir: Path, case_dir: Path) -> None:
    """What a finished session leaves: provenance (body part), status, lesions, cord mask, labels, scores."""
    result = lesions()
    result[26:28, 28:30, 26:28] = 0  # the right lesion missed
    result[5:7, 5:7, 5:7] = 1  # 8 voxels false positive
    save(result, result_dir / outputs.LESIONS_NII)
    cord = np.zeros((46, 55, 46), np.uint8)
    cord[20:24, 20:24, 5:10] = 1  # half of the true cord
    save(cord, result_dir / outputs.CORD_MASK_NII)
    labels = np.zeros((46, 55, 46), np.int32)
    labels[:10] = 41
    save(labels, result_dir / outputs.ATLAS_LABELS_NII)
    pd.DataFrame({"index": [41], "name": ["cerebral_wm/juxtacortical/frontal [left]"]}).to_csv(
        result_dir / outputs.ATLAS_LABELS_TSV, sep="\t", index=False)
    pd.DataFrame({"pattern": ["small-vessel-disease", "ms-brain"], "disease": ["SVD", "MS"], "rank": [1, 2],
                  "match": [False, True]}).to_csv(result_dir / outputs.SCORES_CSV, index=False)
    outputs.write_json({"lesion_volume_ml": {"brain": 1.664}}, result_dir / outputs.FINDINGS_JSON)
    outputs.write_json({"inputs": [{"path": str(case_dir / "scan_FLAIR.nii.gz"), "body_part": "brain",
                                    "body_part_source": "image: a head"}]}, result_dir / outputs.PROVENANCE_JSON)
    SessionFolder(result_dir).write_status({"status": "warning", "error": "check", "seconds": 12.0})
