"""The tag workflow (``regiontag.workflows.tag``) called directly, on a tiny synthetic MNI atlas and mask."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest

from regiontag import outputs
from regiontag.config import load_config
from regiontag.workflows import tag as workflow
from regiontag.workflows.tag import TagResult, binary_mask, mask_findings, tag_mask

PV = "Cerebrum > Cerebral white matter > Periventricular white matter"
AFFINE = np.array([[1.0, 0, 0, -12], [0, 1.0, 0, -12], [0, 0, 1.0, -12], [0, 0, 0, 1]])


def tiny_atlas():
    """A 24 mm 'MNI' cube at 1 mm: periventricular WM right (label 1) / left (2), central pons (3)."""
    from regiontag.atlas.tree import Atlas, Region

    data = np.zeros((24, 24, 24), np.int16)
    data[4:10, 4:20, 8:16] = 1
    data[14:20, 4:20, 8:16] = 2
    data[10:14, 8:14, 0:6] = 3
    sides = {"right": (1,), "left": (2,)}
    regions = (
        Region("Cerebrum", sides, True),
        Region("Cerebrum > Cerebral white matter", sides, True),
        Region(PV, sides, True),
        Region("Brainstem", {"midline": (3,)}, False),
        Region("Brainstem > Pons", {"midline": (3,)}, False),
        Region("Brainstem > Pons > Central pons", {"midline": (3,)}, False),
    )
    return Atlas("brain", "MNI152NLin2009aSym", nib.Nifti1Image(data, AFFINE), regions)


def save_mask(path: Path, data: np.ndarray, affine: np.ndarray = AFFINE) -> Path:
    nib.save(nib.Nifti1Image(data, affine), path)
    return path


@pytest.fixture(scope="module")
def right_pv_result(tmp_path_factory) -> TagResult:
    """A 4x6x4 mm lesion inside the right periventricular white matter, tagged in MNI space."""
    folder = tmp_path_factory.mktemp("tag")
    data = np.zeros((24, 24, 24), np.float32)
    data[5:9, 6:12, 10:14] = 0.8  # 96 voxels of 1 mm3, all in label 1
    data[15:17, 6:8, 10:12] = 0.3  # below the threshold: not lesion
    mask = save_mask(folder / "lesion_space-MNI152.nii.gz", data)
    return tag_mask(mask, folder / "out", load_config(), space="MNI152", atlas=tiny_atlas(), session="ext-1")


def test_region_table_in_memory_has_the_contract_columns_and_one_row_per_region_side(right_pv_result):
    table = right_pv_result.region_table
    assert list(table.columns) == outputs.REGION_COLUMNS
    assert set(table["session"]) == {"ext-1"}
    paired = {"Cerebrum", "Cerebrum > Cerebral white matter", PV}
    pons = {"Brainstem", "Brainstem > Pons", "Brainstem > Pons > Central pons"}
    expected_rows = {(r, s) for r in paired for s in ("left", "right", "both")} | {(r, "both") for r in pons}
    assert set(zip(table["region"], table["side"])) == expected_rows and len(table) == len(expected_rows)


def test_region_rows_for_the_covered_regions(right_pv_result):
    table = right_pv_result.region_table.set_index(["region", "side"])
    for region in ("Cerebrum", "Cerebrum > Cerebral white matter", PV):
        assert table.at[(region, "right"), "lesion_voxels"] == 96
        assert table.at[(region, "right"), "lesion_volume_ml"] == pytest.approx(0.096)
        assert bool(table.at[(region, "right"), "involved"]) and bool(table.at[(region, "both"), "involved"])
        assert table.at[(region, "left"), "lesion_voxels"] == 0 and not bool(table.at[(region, "left"), "involved"])
        assert abs(table.at[(region, "both"), "laterality_index"]) == pytest.approx(1.0)
    assert table.at[(PV, "right"), "fraction_involved"] == pytest.approx(96 / (6 * 16 * 8))
    assert not table.loc[table.index.get_level_values("region").str.startswith("Brainstem"), "involved"].any()
    assert set(right_pv_result.involved_regions) == {"Cerebrum", "Cerebrum > Cerebral white matter", PV}


def test_files_written_match_the_result(right_pv_result):
    folder = right_pv_result.output_dir
    assert {p.name for p in folder.iterdir()} == {
        outputs.REGIONS_CSV, outputs.LESIONS_CSV, outputs.FINDINGS_JSON, outputs.SCORES_CSV, outputs.PROVENANCE_JSON,
    }
    lesions = pd.read_csv(folder / outputs.LESIONS_CSV)
    assert list(lesions.columns) == outputs.LESION_COLUMNS
    assert lesions["volume_ml"].tolist() == pytest.approx(right_pv_result.lesions["volume_ml"].tolist())
    assert set(lesions["session"]) == {right_pv_result.session_id}
    written = pd.read_csv(folder / outputs.REGIONS_CSV)
    assert list(written.columns) == outputs.REGION_COLUMNS
    pd.testing.assert_series_equal(written["lesion_voxels"], right_pv_result.region_table["lesion_voxels"],
                                   check_dtype=False)
    assert written["involved"].tolist() == right_pv_result.region_table["involved"].astype(bool).tolist()
    scores = pd.read_csv(folder / outputs.SCORES_CSV)
    assert list(right_pv_result.scores.columns) == outputs.SCORE_COLUMNS
    assert scores["pattern"].tolist() == right_pv_result.scores["pattern"].tolist()
    assert json.loads((folder / outputs.FINDINGS_JSON).read_text()) == right_pv_result.findings
    provenance = json.loads((folder / outputs.PROVENANCE_JSON).read_text())
    assert provenance["status"] == "ok" and right_pv_result.warnings == []
    assert [record["role"] for record in provenance["inputs"]] == ["mask"]


def test_findings_of_the_mask(right_pv_result):
    findings = right_pv_result.findings
    assert right_pv_result.body_part == "brain" and findings["body_parts_imaged"] == ["brain"]
    assert findings["n_lesions"] == {"brain": 1}
    assert findings["lesion_volume_ml"]["brain"] == pytest.approx(0.096)
    assert findings["features"]["confluent"] is False
    assert findings["source"].startswith("regiontag tag ") and findings["source"].endswith("(MNI152)")


def test_confluence_threshold_comes_from_the_config():
    data = np.zeros((20, 20, 20), np.uint8)
    data[2:18, 2:18, 2:18] = 1  # one 4.096 ml lesion
    mask = nib.Nifti1Image(data, np.eye(4))
    assert mask_findings(mask, "x", confluent_min_ml=4.0)["features"]["confluent"] is True
    assert mask_findings(mask, "x", confluent_min_ml=4.1)["features"]["confluent"] is False
    assert not hasattr(workflow, "CONFLUENT_CLUSTER_ML")


def test_tag_mask_reads_confluent_min_ml(tmp_path):
    data = np.zeros((24, 24, 24), np.uint8)
    data[4:10, 4:20, 8:16] = 1  # 0.768 ml: the whole right periventricular label
    mask = save_mask(tmp_path / "mask.nii.gz", data)
    config = load_config()
    low = config.model_copy(update={"involvement": config.involvement.model_copy(update={"confluent_min_ml": 0.5})})
    assert tag_mask(mask, tmp_path / "low", low, space="MNI152", atlas=tiny_atlas()).findings["features"]["confluent"]
    default = tag_mask(mask, tmp_path / "default", config, space="MNI152", atlas=tiny_atlas())
    assert default.findings["features"]["confluent"] is False
    assert default.session_id == "default"  # the output folder's name


def test_empty_mask_involves_nothing(tmp_path):
    mask = save_mask(tmp_path / "empty.nii.gz", np.zeros((12, 12, 12), np.uint8), np.diag([2.0, 2.0, 2.0, 1.0]))
    result = tag_mask(mask, tmp_path / "out", load_config(), space="MNI152", atlas=tiny_atlas())
    assert result.involved_regions == [] and result.matched_patterns == []
    assert result.findings["n_lesions"] == {"brain": 0} and result.findings["lesion_volume_ml"] == {"brain": 0.0}


def test_binary_mask_thresholds_and_rejects_non_3d():
    four_d = nib.Nifti1Image(np.array([[[[0.4], [0.6], [np.nan]]]], np.float32), np.eye(4))
    assert binary_mask(four_d, 0.5).get_fdata().ravel().tolist() == [0.0, 1.0, 0.0]
    with pytest.raises(ValueError, match="mask must be 3D"):
        binary_mask(nib.Nifti1Image(np.zeros((2, 2, 2, 2), np.float32), np.eye(4)), 0.5)


def test_cli_spaces_match_the_workflow():
    from regiontag.cli import tag as cli_tag

    assert cli_tag.TEMPLATE_SPACES == workflow.TEMPLATE_SPACES and cli_tag.PAM50_SPACE == workflow.PAM50_SPACE
