"""The cord stage end to end on phantoms and the real scan: outputs, region flags, findings."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from regiontag import outputs
from regiontag.atlas.cord import load_cord_atlas
from regiontag.config import load_config
from regiontag.cord.cross_section import perpendicular_csa
from regiontag.cord.segmentation import CENTERLINE_COLUMNS
from regiontag.cord.stage import process_cord
from regiontag.phantoms.cord import make_cord_phantom

COLUMNS = "Spinal cord > Spinal white matter > "
CENTRAL_OR_ANTERIOR = (
    COLUMNS + "Anterior column",
    "Spinal cord > Spinal grey matter > Ventral horn",
    "Spinal cord > Spinal grey matter > Central canal region",
)


@pytest.fixture(scope="module")
def atlas():
    return load_cord_atlas()


@pytest.fixture(scope="module")
def config():
    return load_config()


def _involved(table: pd.DataFrame, region: str, side: str = "both") -> bool:
    return bool(table.loc[(table.region == region) & (table.side == side), "involved"].iloc[0])


def _flag_accuracy(table: pd.DataFrame, truth: pd.DataFrame) -> tuple[int, int]:
    merged = table.merge(truth, on=["region", "side"], suffixes=("", "_truth"))
    merged = merged[merged["involved_truth"].notna()]
    correct = (merged["involved"].astype(bool) == merged["involved_truth"].astype(bool)).sum()
    return int(correct), len(merged)


@pytest.fixture(scope="module")
def dorsal_result(atlas, config, tmp_path_factory):
    phantom = make_cord_phantom("dorsal", 31, "axial", length_mm=100, supersample_mm=0.8)
    return phantom, process_cord(phantom.images, config, atlas, tmp_path_factory.mktemp("cord"))


def test_outputs_in_input_space_with_contract_names(dorsal_result):
    phantom, result = dorsal_result
    reference = phantom.images["T2w"]
    expected = {outputs.CORD_MASK_NII, outputs.CORD_LABELS_NII, outputs.LESIONS_NII, outputs.ZMAP_NII}
    assert set(result.images) == expected
    for image in result.images.values():
        assert image.shape == reference.shape
        assert np.allclose(image.affine, reference.affine)
    assert list(result.region_table.columns) == [c for c in outputs.REGION_COLUMNS if c != "session"]
    assert list(result.tables[outputs.CENTERLINE_CSV].columns) == CENTERLINE_COLUMNS
    labels = np.asarray(result.images[outputs.CORD_LABELS_NII].dataobj)
    cord = np.asarray(result.images[outputs.CORD_MASK_NII].dataobj) > 0
    assert np.all(labels[cord] > 0) and np.all(labels[~cord] == 0)


def test_dorsal_phantom_posterior_columns_not_central(dorsal_result):
    phantom, result = dorsal_result
    table = result.region_table
    assert _involved(table, COLUMNS + "Posterior column", "left")
    assert _involved(table, COLUMNS + "Posterior column", "right")
    for region in CENTRAL_OR_ANTERIOR:
        assert not _involved(table, region), region
    features = result.findings["features"]
    assert features["cord_dorsal"] is True and features["cord_central"] is False
    assert features["axial_dorsal_share"] > 0.6 > features["axial_lateral_share"]
    assert features["longitudinally_extensive"] is phantom.info["longitudinally_extensive"]
    assert features["cord_swelling"] is False
    assert abs(features["cord_symmetry_index"]) < 0.3  # bilateral, symmetric
    row = table[(table.region == COLUMNS + "Posterior column") & (table.side == "both")].iloc[0]
    assert row["lesion_length_mm"] == pytest.approx(phantom.info["lesion_length_mm"], abs=9)
    assert 0.85 < row["csa_ratio"] < load_config().cord.swelling_ratio  # not swollen
    correct, total = _flag_accuracy(table, phantom.truth_regions)
    assert correct == total


def test_central_phantom_longitudinally_extensive_swollen(atlas, config, tmp_path):
    phantom = make_cord_phantom("central", 32, "axial", length_mm=100, supersample_mm=0.8)
    result = process_cord(phantom.images, config, atlas, tmp_path)
    features = result.findings["features"]
    assert features["cord_central"] is True
    assert features["longitudinally_extensive"] is True
    assert features["cord_swelling"] is True
    assert _involved(result.region_table, "Spinal cord > Spinal grey matter")
    lesions = np.asarray(result.images[outputs.LESIONS_NII].dataobj) > 0
    truth = np.asarray(phantom.truth_lesions.dataobj) > 0
    assert 2 * (lesions & truth).sum() / (lesions.sum() + truth.sum()) > 0.7


def test_healthy_phantom_has_no_lesions(atlas, config, tmp_path):
    phantom = make_cord_phantom("healthy", 33, "sagittal", length_mm=70, supersample_mm=0.8)
    result = process_cord(phantom.images, config, atlas, tmp_path)
    assert result.findings["n_lesions"] == 0
    assert not result.region_table["involved"].any()
    assert result.findings["features"]["longitudinally_extensive"] is False
    assert result.warnings == []


def test_no_cord_gives_a_warning_and_unassessable_features(atlas, config, tmp_path):
    rng = np.random.default_rng(1)
    image = nib.Nifti1Image(rng.normal(100, 10, (30, 30, 20)).astype(np.float32), np.eye(4))
    result = process_cord({"T2w": image}, config, atlas, tmp_path)
    assert any("cord not found" in warning for warning in result.warnings)
    assert result.findings["features"]["cord_swelling"] is None
    assert result.tables[outputs.CENTERLINE_CSV].empty
    assert not result.region_table["involved"].any()


def test_column_flags_on_phantoms(atlas, config, tmp_path):
    """Column involvement flags >= 95 % correct; dorsal phantoms never central or anterior."""
    cases = [
        ("dorsal", 41, "sagittal"), ("dorsal_lateral", 42, "axial"), ("lateral", 43, "axial"),
        ("eccentric", 44, "axial"), ("central", 45, "sagittal"), ("dorsal", 46, "axial"),
    ]
    correct = total = 0
    for lesion_type, seed, orientation in cases:
        phantom = make_cord_phantom(lesion_type, seed, orientation, length_mm=90, supersample_mm=0.8)
        result = process_cord(phantom.images, config, atlas, tmp_path)
        hits, count = _flag_accuracy(result.region_table, phantom.truth_regions)
        correct, total = correct + hits, total + count
        if lesion_type == "dorsal":
            for region in CENTRAL_OR_ANTERIOR:
                assert not _involved(result.region_table, region), (seed, region)
            assert result.findings["features"]["cord_central"] is False
    print(f"cord column flags: {correct}/{total} correct")
    assert correct / total >= 0.95


@pytest.mark.slow
def test_stir_phantoms_segment_and_tag_like_t2(atlas, config, tmp_path):
    """STIR (fat nulled, lesions brighter; read as T2w): no real STIR is in the development set, so phantoms.
    A central lesion as bright as 0.76 x CSF over 65 mm loses the cord above it: that is said, not hidden."""
    correct = total = 0
    for lesion_type, seed, orientation in [("dorsal", 41, "sagittal"), ("lateral", 43, "axial"),
                                           ("eccentric", 44, "axial")]:
        phantom = make_cord_phantom(lesion_type, seed, orientation, length_mm=90, supersample_mm=0.8, contrast="STIR")
        result = process_cord(phantom.images, config, atlas, tmp_path)
        cord = np.asarray(result.images[outputs.CORD_MASK_NII].dataobj) > 0
        truth = np.asarray(phantom.truth_cord.dataobj) > 0
        assert 2 * (cord & truth).sum() / (cord.sum() + truth.sum()) >= 0.9, lesion_type
        assert result.warnings == [], lesion_type
        hits, count = _flag_accuracy(result.region_table, phantom.truth_regions)
        correct, total = correct + hits, total + count
    assert correct == total
    central = make_cord_phantom("central", 45, "sagittal", length_mm=90, supersample_mm=0.8, contrast="STIR")
    result = process_cord(central.images, config, atlas, tmp_path)
    assert any(w.startswith("cord stops at slice") and "below the top of the field of view" in w
               for w in result.warnings), result.warnings
    assert result.qc["cord_top_gap"]["gap_mm"] > 50


@pytest.mark.real
def test_real_cord_scan(real_cord_dir, atlas, config, tmp_path):
    image = nib.load(str(real_cord_dir / "t2.nii.gz"))
    result = process_cord({"T2w": image}, config, atlas, tmp_path)
    assert result.warnings == []
    assert result.findings["n_lesions"] == 0  # healthy volunteer scan
    centerline = result.tables[outputs.CENTERLINE_CSV]
    assert centerline["distance_mm"].max() > 45  # cord followed over the whole 55 mm field of view


def _real_or_skip(real_cord_dir, name):
    path = real_cord_dir / f"{name}.nii.gz"
    if not path.is_file():
        pytest.skip(f"{path} is not in ../shared")
    return nib.load(str(path))


@pytest.mark.real
def test_real_axial_ms_scan_csa_in_the_physiological_range(real_cord_dir, atlas, config, tmp_path):
    result = process_cord({"T2w": _real_or_skip(real_cord_dir, "t2_ms_axial")}, config, atlas, tmp_path)
    centerline = result.tables[outputs.CENTERLINE_CSV]
    low, high = config.cord.qc_csa_range_mm2
    print(f"t2_ms_axial: {len(centerline)} cord slices, CSA {centerline['csa_mm2'].min():.0f}-"
          f"{centerline['csa_mm2'].max():.0f} mm2, {result.findings['n_lesions']} lesions, warnings {result.warnings}")
    assert len(centerline) >= 15  # 19 slices of 7.5 mm: the cord is found on (nearly) all of them
    assert centerline["csa_mm2"].between(low, high).all()
    assert all(warning.endswith("check cord_mask.nii.gz") for warning in result.warnings)  # ok or reasoned


@pytest.mark.real
@pytest.mark.slow
def test_real_lumbar_scan_reports_where_the_cord_ends(real_cord_dir, atlas, config, tmp_path):
    image = _real_or_skip(real_cord_dir, "t2_lumbar")
    result = process_cord({"T2w": image}, config, atlas, tmp_path)
    centerline = result.tables[outputs.CENTERLINE_CSV]
    conus = result.qc["conus_end"]
    print(f"t2_lumbar: CSA {centerline['csa_mm2'].min():.0f}-{centerline['csa_mm2'].max():.0f} mm2, end {conus}, "
          f"warnings {result.warnings}")
    assert conus is not None and conus["slice"] > 40  # ends well above the bottom of the field of view
    assert centerline["slice"].min() == conus["slice"]  # no cord invented below its end
    assert centerline["csa_mm2"].between(*config.cord.qc_csa_range_mm2).all()
    assert conus["ends_in_csf"] or any(f"cord ends at slice {conus['slice']}" in w for w in result.warnings)


def _real_t2_with_dorsal_lesion(real_cord_dir):
    """The real ``t2`` (canonical) with a hyperintensity (x 1.7) added to the dorsal third of its manual cord mask
    over 16 slices: (image, cord mask, data with the lesion, lesion truth)."""
    image = nib.as_closest_canonical(_real_or_skip(real_cord_dir, "t2"))
    cord = np.asarray(nib.as_closest_canonical(nib.load(str(real_cord_dir / "t2_seg-manual.nii.gz"))).dataobj) > 0
    data = np.asarray(image.dataobj, dtype=np.float32).copy()
    truth = np.zeros(cord.shape, bool)
    x, y = np.ogrid[: cord.shape[0], : cord.shape[1]]
    for k in range(18, 34):
        ii, jj = np.nonzero(cord[:, :, k])
        u = (x - ii.mean()) / ((ii.max() - ii.min()) / 2)
        v = (y - jj.mean()) / ((jj.max() - jj.min()) / 2)
        truth[:, :, k] = cord[:, :, k] & (v < -0.35) & (np.abs(u) < 0.4)
    data[truth] *= 1.7
    return image, cord, data, truth


@pytest.mark.real
def test_dorsal_column_lesion_on_a_real_cord_is_in_the_posterior_columns(real_cord_dir, atlas, config, tmp_path):
    """A hyperintensity added to the dorsal third of the real cord (manual mask) is tagged posterior columns."""
    image, _, data, truth = _real_t2_with_dorsal_lesion(real_cord_dir)
    result = process_cord({"T2w": nib.Nifti1Image(data, image.affine)}, config, atlas, tmp_path)
    lesions = np.asarray(nib.as_closest_canonical(result.images[outputs.LESIONS_NII]).dataobj) > 0
    dice = 2 * (lesions & truth).sum() / (lesions.sum() + truth.sum())
    print(f"real cord, dorsal lesion: Dice {dice:.2f}, dorsal share {result.findings['features']['axial_dorsal_share']:.2f}")
    assert dice >= 0.6
    assert _involved(result.region_table, COLUMNS + "Posterior column")
    for region in (COLUMNS + "Lateral column", *CENTRAL_OR_ANTERIOR):
        assert not _involved(result.region_table, region), region
    assert result.findings["features"]["cord_dorsal"] is True


@pytest.mark.real
@pytest.mark.slow
def test_oblique_real_cord_area_and_columns_hold_up_to_45_degrees(real_cord_dir, atlas, config, tmp_path):
    """The real T2w with a dorsal-column lesion, tilted 0-45 degrees in the sagittal plane: the area measured
    perpendicular to the centreline stays within 5 % of the manual mask's perpendicular area (volume / centreline
    length; the axial area x cos(tilt) of before was 6 % low at 15 and 30 degrees), the same measurement on the
    tilted manual mask itself within 3 %, and the lesion stays in the posterior columns."""
    image, cord, data, _ = _real_t2_with_dorsal_lesion(real_cord_dir)
    zooms = np.asarray(image.header.get_zooms()[:3], dtype=float)
    slices = [k for k in range(cord.shape[2]) if cord[:, :, k].any()]
    centres = np.array([[*np.argwhere(cord[:, :, k]).mean(axis=0), k] for k in slices]) * zooms
    perpendicular = cord.sum() * zooms.prod() / np.linalg.norm(np.diff(centres, axis=0), axis=1).sum()
    for angle in (0, 15, 30, 45):
        tilted = ndimage.rotate(data, angle, axes=(1, 2), reshape=True, order=1) if angle else data
        manual = (ndimage.rotate(cord.astype(np.float32), angle, axes=(1, 2), reshape=True, order=1) > 0.5) if angle else cord
        manual_centres = [[*np.argwhere(manual[:, :, k]).mean(axis=0), k] for k in range(manual.shape[2])[::-1]
                          if manual[:, :, k].any()]
        manual_line = pd.DataFrame(np.array(manual_centres) * zooms, columns=["x_mm", "y_mm", "z_mm"])
        manual_csa = perpendicular_csa(nib.Nifti1Image(manual.astype(np.uint8), np.diag([*zooms, 1.0])), manual_line)
        assert abs(np.nanmedian(manual_csa) / perpendicular - 1) < 0.03, angle
        result = process_cord({"T2w": nib.Nifti1Image(tilted, np.diag([*zooms, 1.0]))}, config, atlas, tmp_path)
        csa = result.tables[outputs.CENTERLINE_CSV]["csa_mm2"].median()
        features = result.findings["features"]
        print(f"tilt {angle}: median CSA {csa:.1f} mm2 (manual mask {perpendicular:.1f}), "
              f"dorsal share {features['axial_dorsal_share']:.2f}")
        assert abs(csa / perpendicular - 1) < 0.05, angle
        assert features["cord_dorsal"] is True and features["axial_dorsal_share"] > 0.9, angle
        assert _involved(result.region_table, COLUMNS + "Posterior column"), angle
        for region in (COLUMNS + "Lateral column", *CENTRAL_OR_ANTERIOR):
            assert not _involved(result.region_table, region), (angle, region)


_UNTURNED_DETECTION = ("the detection z-map keeps its frames on the scanner's axes (a turn estimated per slice gave "
                       "the real healthy T1w 2 false posterior-column lesions); on this rotated scan the detected "
                       "lesion then reaches dorsal share 0.79 / lateral 0.11 (30/30) and the ventral horn (0/35)")


@pytest.mark.real
@pytest.mark.slow
@pytest.mark.parametrize("sagittal_deg, coronal_deg", [
    (20, 20),
    pytest.param(30, 30, marks=pytest.mark.xfail(reason=_UNTURNED_DETECTION, strict=True)),
    pytest.param(0, 35, marks=pytest.mark.xfail(reason=_UNTURNED_DETECTION, strict=True)),
])
def test_columns_hold_on_a_real_cord_tilted_both_ways(real_cord_dir, atlas, config, tmp_path, sagittal_deg, coronal_deg):
    """The real T2w with a dorsal-column lesion turned in the sagittal and then the coronal plane (a diagonal tilt
    with a turn about the cord's axis): the lesion stays in the posterior columns.  With the columns drawn on the
    axial outline (before the cross-section planes and the cord's own left-right axis) the dorsal share was
    0.94 / 0.60 / 0.79, and 31 % of the lesion was lateral at 30 / 30 degrees."""
    image, _, data, _ = _real_t2_with_dorsal_lesion(real_cord_dir)
    zooms = np.asarray(image.header.get_zooms()[:3], dtype=float)
    tilted = ndimage.rotate(data, sagittal_deg, axes=(1, 2), reshape=True, order=1) if sagittal_deg else data
    tilted = ndimage.rotate(tilted, coronal_deg, axes=(0, 2), reshape=True, order=1)
    result = process_cord({"T2w": nib.Nifti1Image(tilted, np.diag([*zooms, 1.0]))}, config, atlas, tmp_path)
    features = result.findings["features"]
    print(f"sagittal {sagittal_deg} coronal {coronal_deg}: dorsal share {features['axial_dorsal_share']:.2f}, "
          f"lateral share {features['axial_lateral_share']:.2f}")
    assert features["cord_dorsal"] is True and features["axial_dorsal_share"] >= 0.8
    assert features["axial_lateral_share"] <= 0.1
    assert _involved(result.region_table, COLUMNS + "Posterior column")
    for region in CENTRAL_OR_ANTERIOR:
        assert not _involved(result.region_table, region), region
