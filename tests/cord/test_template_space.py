"""``regiontag tag MASK --space PAM50``: spinal cord masks in PAM50 template space.

Masks are painted from PAM50's own files (tract probability maps and vertebral
levels, read here with nibabel independently of the code under test) on the
template grid.  Tests that need PAM50 use the ``pam50_dir`` fixture and skip
without ``../shared``; the PAM50 folder search is tested in tests/atlas/pam50/test_space.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from nibabel.processing import resample_from_to

from regiontag import outputs
from regiontag.atlas.pam50.space import pam50_space
from regiontag.cli.main import main
from regiontag.cord.template_space import mask_on_pam50_grid

POSTERIOR = "Spinal cord > Spinal white matter > Posterior column"
LATERAL = "Spinal cord > Spinal white matter > Lateral column"
ANTERIOR = "Spinal cord > Spinal white matter > Anterior column"
GREY = "Spinal cord > Spinal grey matter"
SCD_PATTERNS = {"b12-subacute-combined-degeneration", "copper-deficiency-myelopathy"}
DORSAL_LEVELS = (4, 5, 6)  # C4-C6
LATERAL_LEVELS = (3, 4, 5)  # C3-C5


def _painted(pam50_dir: Path, tracts, levels) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(mask, affine, level image) of voxels whose summed tract probability > 0.5 at the given levels."""
    levels_img = nib.load(pam50_dir / "template" / "PAM50_levels.nii.gz")
    level_data = np.asarray(levels_img.dataobj)
    probability = sum(
        np.asarray(nib.load(pam50_dir / "atlas" / f"PAM50_atlas_{tract:02d}.nii.gz").dataobj) for tract in tracts
    )
    mask = (probability > 0.5) & np.isin(level_data, levels)
    return mask.astype(np.uint8), levels_img.affine, level_data


@pytest.fixture(scope="module")
def masks(pam50_dir, tmp_path_factory) -> dict[str, Path]:
    """Dorsal-column (C4-C6, both sides), left lateral-funiculus (C3-C5) and 1 mm dorsal masks."""
    folder = tmp_path_factory.mktemp("pam50_masks")
    dorsal, affine, level_data = _painted(pam50_dir, range(0, 4), DORSAL_LEVELS)
    left_lateral, _, _ = _painted(pam50_dir, range(4, 14, 2), LATERAL_LEVELS)  # even ids = left tracts
    paths = {"dorsal": folder / "dorsal_space-PAM50.nii.gz", "lateral": folder / "lateral_space-PAM50.nii.gz"}
    nib.save(nib.Nifti1Image(dorsal, affine), paths["dorsal"])
    nib.save(nib.Nifti1Image(left_lateral, affine), paths["lateral"])
    coarse_affine = affine.copy()
    coarse_affine[:3, :3] *= 2  # 1 mm grid over the same field of view, same physical space
    coarse = resample_from_to(nib.Nifti1Image(dorsal, affine), ((71, 71, 496), coarse_affine), order=0)
    paths["dorsal_1mm"] = folder / "dorsal_1mm.nii.gz"
    nib.save(coarse, paths["dorsal_1mm"])
    far_affine = coarse_affine.copy()
    far_affine[:3, 3] += 1000.0  # same array, 1 m away: not in PAM50 space
    paths["far"] = folder / "far.nii.gz"
    nib.save(nib.Nifti1Image(np.asarray(coarse.dataobj), far_affine), paths["far"])
    paths["dorsal_slices"] = int(np.isin(level_data, DORSAL_LEVELS).any(axis=(0, 1)).sum())
    return paths


def _tag(mask: Path, output: Path, *extra: str) -> int:
    return main(["tag", str(mask), "--space", "PAM50", "--output", str(output), *extra])


def _rows(output: Path) -> pd.DataFrame:
    table = pd.read_csv(output / outputs.REGIONS_CSV)
    assert list(table.columns) == outputs.REGION_COLUMNS
    return table.set_index(["region", "side"])


def _brain_pattern_ids() -> set[str]:
    from regiontag.config import load_config
    from regiontag.patterns.library import load_library

    library = load_library(load_config().scoring.patterns_dir)
    return {pattern.id for pattern in library.patterns if pattern.body_part == "brain"}


def test_dorsal_column_mask_is_posterior_column_and_scores_scd(pam50_dir, masks, tmp_path, capsys):
    output = tmp_path / "dorsal"
    assert _tag(masks["dorsal"], output, "--pam50", str(pam50_dir), "--session", "sct-1") == 0
    assert "matching patterns" in capsys.readouterr().out
    rows = _rows(output)
    assert set(rows["session"]) == {"sct-1"}
    for side in ("left", "right", "both"):
        assert rows.at[(POSTERIOR, side), "involved"], side
        assert not rows.at[(LATERAL, side), "involved"] and not rows.at[(ANTERIOR, side), "involved"], side
        assert not rows.at[(GREY, side), "involved"], side
    posterior = rows.loc[(POSTERIOR, "both")]
    assert posterior["fraction_involved"] > 0.1 and abs(posterior["laterality_index"]) < 0.05
    assert posterior["vertebral_levels"] == "C4-C6"
    # straight template: the length is the height of C4-C6 in PAM50 (0.5 mm slices)
    assert posterior["lesion_length_mm"] == pytest.approx(0.5 * masks["dorsal_slices"], abs=1.0)
    assert bool(posterior["longitudinally_extensive"]) and np.isnan(posterior["csa_ratio"])
    # PAM50's dorsal columns are tracts 0-3: nearly all painted voxels land in the posterior column
    assert posterior["lesion_voxels"] >= 0.97 * rows.at[("Spinal cord", "both"), "lesion_voxels"]

    scores = pd.read_csv(output / outputs.SCORES_CSV)
    top = set(scores.loc[scores["rank"] == 1, "pattern"])
    assert top == SCD_PATTERNS
    assert scores.loc[scores["pattern"].isin(SCD_PATTERNS), "match"].all()
    brain = scores[scores["pattern"].isin(_brain_pattern_ids())]
    assert len(brain) >= 5 and not brain["assessable"].any() and brain["score"].isna().all()

    findings = json.loads((output / outputs.FINDINGS_JSON).read_text())
    assert findings["body_parts_imaged"] == ["cord"] and findings["n_lesions"]["cord"] == 1
    assert findings["features"]["cord_dorsal"] is True and findings["features"]["cord_swelling"] is None
    provenance = json.loads((output / outputs.PROVENANCE_JSON).read_text())
    assert provenance["status"] == "ok" and provenance["warnings"] == []
    assert provenance["atlases"]["cord"]["space"] == "PAM50"
    assert Path(provenance["atlases"]["cord"]["source"]) == pam50_dir.resolve()
    assert provenance["inputs"][0]["sha256"] and provenance["qc"]["cord"]["on_pam50_grid"] is True


def test_left_lateral_funiculus_mask_flags_left_lateral_column_only(pam50_dir, masks, tmp_path):
    output = tmp_path / "lateral"
    assert _tag(masks["lateral"], output, "--pam50", str(pam50_dir)) == 0
    rows = _rows(output)
    assert rows.at[(LATERAL, "left"), "involved"] and rows.at[(LATERAL, "both"), "involved"]
    assert not rows.at[(LATERAL, "right"), "involved"]
    assert rows.at[(LATERAL, "right"), "lesion_voxels"] == 0
    assert rows.at[(LATERAL, "both"), "laterality_index"] == pytest.approx(1.0)  # +1 = left only
    assert rows.at[(LATERAL, "both"), "vertebral_levels"] == "C3-C5"
    for region in (POSTERIOR, ANTERIOR, GREY):
        assert not rows.at[(region, "both"), "involved"], region
    scores = pd.read_csv(output / outputs.SCORES_CSV)
    assert not scores.loc[scores["pattern"].isin(SCD_PATTERNS), "match"].any()


def test_mask_on_another_grid_in_pam50_space_is_resampled_with_a_warning(pam50_dir, masks, tmp_path, capsys):
    output = tmp_path / "coarse"
    assert _tag(masks["dorsal_1mm"], output, "--pam50", str(pam50_dir)) == 0
    assert "resampled nearest-neighbour" in capsys.readouterr().err
    rows = _rows(output)
    assert rows.at[(POSTERIOR, "left"), "involved"] and rows.at[(POSTERIOR, "right"), "involved"]
    assert not rows.at[(LATERAL, "both"), "involved"] and not rows.at[(ANTERIOR, "both"), "involved"]
    scores = pd.read_csv(output / outputs.SCORES_CSV)
    assert set(scores.loc[scores["rank"] == 1, "pattern"]) == SCD_PATTERNS
    provenance = json.loads((output / outputs.PROVENANCE_JSON).read_text())
    assert provenance["status"] == "warning"
    assert any("differs from the PAM50 template grid" in warning for warning in provenance["warnings"])


def test_mask_outside_pam50_space_is_refused(pam50_dir, masks, tmp_path, capsys):
    assert _tag(masks["far"], tmp_path / "far", "--pam50", str(pam50_dir)) == 1
    error = capsys.readouterr().err
    assert "is it in PAM50 space?" in error and "Traceback" not in error
    assert len(error.strip().splitlines()) == 1
    assert not (tmp_path / "far" / outputs.REGIONS_CSV).exists()


def test_empty_mask_on_the_template_grid_matches_no_pattern(pam50_dir, tmp_path):
    reference = nib.load(pam50_dir / "template" / "PAM50_cord.nii.gz")
    mask = tmp_path / "empty_space-PAM50.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros(reference.shape, np.uint8), reference.affine), mask)
    assert _tag(mask, tmp_path / "empty", "--pam50", str(pam50_dir)) == 0
    rows = _rows(tmp_path / "empty")
    assert not rows["involved"].any() and (rows["lesion_voxels"] == 0).all()
    scores = pd.read_csv(tmp_path / "empty" / outputs.SCORES_CSV)
    assert not scores["match"].any()
    assert scores.loc[scores["pattern"].isin(SCD_PATTERNS), "assessable"].all()


def test_sct_dir_is_used_when_no_folder_is_given(pam50_dir, masks, tmp_path, monkeypatch):
    sct = tmp_path / "sct"
    (sct / "data").mkdir(parents=True)
    (sct / "data" / "PAM50").symlink_to(pam50_dir.resolve(), target_is_directory=True)
    monkeypatch.setenv("SCT_DIR", str(sct))
    assert _tag(masks["lateral"], tmp_path / "via_sct") == 0
    provenance = json.loads((tmp_path / "via_sct" / outputs.PROVENANCE_JSON).read_text())
    assert Path(provenance["atlases"]["cord"]["source"]) == pam50_dir.resolve()


# --- finding the PAM50 folder (fake folders, no PAM50 data needed) -------------------------------


def test_missing_pam50_folder_is_a_clear_one_line_error(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("SCT_DIR", raising=False)
    mask = tmp_path / "mask.nii.gz"
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 4), np.uint8), np.eye(4)), mask)
    assert _tag(mask, tmp_path / "out") == 2
    error = capsys.readouterr().err
    assert "Traceback" not in error and len(error.strip().splitlines()) == 1
    assert "--pam50 DIR" in error and "cord.atlas_path" in error and "SCT_DIR" in error
    assert _tag(mask, tmp_path / "out", "--pam50", str(tmp_path / "nowhere")) == 2
    assert "not a PAM50 folder" in capsys.readouterr().err
    assert main(["tag", str(mask), "--space", "MNI152", "--pam50", str(tmp_path), "--output", str(tmp_path)]) == 2
    assert "--pam50 only applies to --space PAM50" in capsys.readouterr().err
    assert not (tmp_path / "out" / outputs.REGIONS_CSV).exists()


def test_mask_on_the_template_grid_keeps_its_voxels(pam50_dir, masks):
    space = pam50_space(pam50_dir)
    mask = nib.load(masks["dorsal"])
    lesions, warnings, qc = mask_on_pam50_grid(mask, space)
    assert warnings == [] and qc["on_pam50_grid"] is True
    assert lesions.shape == space.pam.cord.shape
    assert lesions.sum() == int((np.asarray(mask.dataobj) > 0).sum())  # cropping keeps every cord-level voxel


def test_mask_elsewhere_is_refused_with_the_reason(pam50_dir, masks):
    with pytest.raises(ValueError, match="is it in PAM50 space"):
        mask_on_pam50_grid(nib.load(masks["far"]), pam50_space(pam50_dir))

