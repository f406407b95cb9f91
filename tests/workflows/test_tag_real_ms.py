"""Real multiple-sclerosis lesion masks in MNI space: MS ranks first from lesion-level evidence (slow).

The 15 development masks (``data/real/brain/ms_masks_mni``, expert consensus masks, every one MS):
``regiontag tag MASK --space MNI152`` must rank the MS pattern first on at least 12, never rank a
vitamin B12 pattern first, and its explanation must name the lesion evidence (count, location
classes, dissemination in space). Skipped when the shared data are absent.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from regiontag import outputs
from regiontag.config import load_config
from regiontag.workflows.tag import tag_mask

LESION_SENTENCE = re.compile(r"\d+ lesions?; periventricular \d+.*: (no )?dissemination in space")


@pytest.fixture(scope="module")
def ms_masks(real_brain_dir: Path) -> list[Path]:
    masks = sorted((real_brain_dir / "ms_masks_mni").glob("*_lesions_space-MNI152.nii.gz"))
    if not masks:
        pytest.skip("no MS masks in ms_masks_mni")
    return masks


@pytest.mark.slow
def test_ms_ranks_first_on_real_ms_masks_with_lesion_evidence(ms_masks: list[Path], tmp_path: Path) -> None:
    config = load_config()
    ms_first, b12_first, rows = 0, 0, []
    for mask in ms_masks:
        result = tag_mask(mask, tmp_path / mask.name.split("_")[0], config, space="MNI152")
        top = result.scores.iloc[0]
        ms = result.scores[result.scores["pattern"] == "ms-brain"].iloc[0]
        ms_first += int(ms["rank"] == 1)
        b12_first += int(str(top["pattern"]).startswith("b12"))
        rows.append((mask.name, top["pattern"], ms["rank"], ms["explanation"]))
        assert LESION_SENTENCE.search(ms["explanation"]), ms["explanation"]
        lesions = pd.read_csv(result.output_dir / outputs.LESIONS_CSV)
        assert list(lesions.columns) == outputs.LESION_COLUMNS and len(lesions) > 0
        assert set(lesions["location"]) <= {"periventricular", "juxtacortical", "cortical", "infratentorial",
                                            "deep white matter", "deep grey matter"}
    needed = -(-12 * len(ms_masks) // 15)  # >= 12 of 15
    assert ms_first >= needed, rows
    assert b12_first == 0, rows
