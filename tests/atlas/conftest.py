"""Fixtures of the atlas tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from regiontag.atlas.brain import brain_yaml_path


@pytest.fixture()
def broken_brain_yaml(tmp_path: Path) -> Callable[[Callable[[dict], None]], Path]:
    """``broken_brain_yaml(edit)``: a copy of the shipped brain.yaml changed by ``edit(content)``."""

    def write(edit: Callable[[dict], None]) -> Path:
        content = yaml.safe_load(brain_yaml_path().read_text())
        edit(content)
        path = tmp_path / "broken_brain.yaml"
        path.write_text(yaml.safe_dump(content, sort_keys=False))
        return path

    return write


# ---- a toy brain whose lesions are known one by one (lesion table and location tests) ----------------------
import nibabel as nib  # noqa: E402
import numpy as np  # noqa: E402

from regiontag.atlas.tree import Atlas, Region  # noqa: E402

#: Lesion name -> (voxel box, expected location, expected side); 1 mm voxels, x_mm = i - 30 (i < 30 left).
TOY_LESIONS = {
    "periventricular": (np.s_[17:20, 18:21, 18:21], "periventricular", "left"),
    "juxtacortical": (np.s_[53:56, 5:8, 30:33], "juxtacortical", "right"),
    "cortical": (np.s_[0:3, 30:33, 30:33], "cortical", "left"),
    "infratentorial": (np.s_[28:31, 18:21, 2:5], "infratentorial", "midline"),
    "deep grey": (np.s_[45:48, 31:34, 21:24], "deep grey matter", "right"),
    "deep white": (np.s_[8:12, 5:9, 34:38], "deep white matter", "left"),
    "perpendicular rod": (np.s_[41:49, 19:21, 19:21], "periventricular", "right"),
    "parallel rod": (np.s_[21:23, 15:25, 27:29], "periventricular", "left"),
}


@pytest.fixture(scope="session")
def toy_brain() -> Atlas:
    """Lateral ventricles, cortex slabs at the lateral edges, cerebral WM, a midline brainstem, putamina."""
    labels = np.zeros((60, 40, 40), dtype=np.int16)
    labels[:, :, 10:] = 5
    labels[30:, :, 10:] = 6  # right cerebral WM
    labels[0:4, :, 10:] = 3
    labels[56:60, :, 10:] = 4  # cortex
    labels[20:28, 15:25, 15:25] = 1
    labels[32:40, 15:25, 15:25] = 2  # lateral ventricles
    labels[25:35, 15:25, 0:10] = 7  # brainstem
    labels[12:16, 30:34, 20:24] = 8
    labels[44:48, 30:35, 20:25] = 9  # putamina
    affine = np.eye(4)
    affine[:3, 3] = (-30.0, -20.0, -20.0)
    regions = (
        Region("Cerebrum", {"left": (3, 5), "right": (4, 6)}, paired=True),
        Region("Cerebrum > Cerebral white matter", {"left": (5,), "right": (6,)}, paired=True),
        Region("Cerebrum > Cerebral cortex", {"left": (3,), "right": (4,)}, paired=True),
        Region("Brainstem", {"midline": (7,)}, paired=False),
        Region("Putamen", {"left": (8,), "right": (9,)}, paired=True),
        Region("Ventricles", {"left": (1,), "right": (2,)}, paired=True),
        Region("Ventricles > Lateral ventricle", {"left": (1,), "right": (2,)}, paired=True),
    )
    return Atlas("brain", "toy", nib.Nifti1Image(labels, affine), regions)


@pytest.fixture(scope="session")
def toy_lesion_mask(toy_brain: Atlas) -> nib.Nifti1Image:
    mask = np.zeros(toy_brain.labels_img.shape, dtype=np.uint8)
    for box, _, _ in TOY_LESIONS.values():
        mask[box] = 1
    return nib.Nifti1Image(mask, toy_brain.labels_img.affine)
