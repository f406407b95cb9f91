"""Brain phantoms (``regiontag.phantoms.brain``): determinism, lesions in the requested regions, pose, voxel grid,
SNR, contrasts, CLI."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from regiontag.phantoms import contrast
from regiontag.phantoms.brain import make_brain_phantom, write_phantom

FAST = {"voxel_size": (2.0, 2.0, 4.0), "sequences": ("FLAIR",)}
PUTAMEN = "Putamen"
PERIVENTRICULAR = "Cerebrum > Cerebral white matter > Periventricular white matter"


@pytest.fixture(scope="module")
def lesion_phantom(anatomy):
    return make_brain_phantom(
        None, 11, regions=f"{PUTAMEN}:left, {PERIVENTRICULAR}", voxel_size=(1.5, 1.5, 3.0),
        sequences=("FLAIR", "T2w", "DWI"), restricted_diffusion=True,
    )


def _data(image: nib.Nifti1Image) -> np.ndarray:
    return np.asarray(image.dataobj)


def test_same_seed_same_phantom_other_seed_differs():
    first = make_brain_phantom(None, 5, regions=f"{PUTAMEN}:right", **FAST)
    again = make_brain_phantom(None, 5, regions=f"{PUTAMEN}:right", **FAST)
    other = make_brain_phantom(None, 6, regions=f"{PUTAMEN}:right", **FAST)
    assert np.array_equal(_data(first.images["FLAIR"]), _data(again.images["FLAIR"]))
    assert np.array_equal(_data(first.truth_lesions), _data(again.truth_lesions))
    assert np.allclose(first.images["FLAIR"].affine, again.images["FLAIR"].affine)
    assert first.params["rotation_deg"] != other.params["rotation_deg"]


def test_truth_lesions_lie_in_the_requested_regions(lesion_phantom, anatomy):
    lesions = _data(lesion_phantom.truth_lesions) > 0
    labels = _data(lesion_phantom.truth_labels)
    allowed = set(anatomy.atlas.region(PUTAMEN).label_values("left")) | set(
        anatomy.atlas.region(PERIVENTRICULAR).label_values("both")
    )
    inside = np.isin(labels[lesions], sorted(allowed)).mean()
    assert lesions.sum() > 50
    assert inside > 0.85, f"only {inside:.0%} of lesion voxels in the requested regions"
    table = lesion_phantom.truth_regions.set_index(["region", "side"])
    assert table.loc[(PUTAMEN, "left"), "involved"] and table.loc[(PUTAMEN, "left"), "targeted"]
    assert table.loc[(PERIVENTRICULAR, "left"), "involved"] and table.loc[(PERIVENTRICULAR, "right"), "involved"]
    assert not table.loc[(PUTAMEN, "right"), "targeted"]
    assert table.loc[(PUTAMEN, "right"), "lesion_volume_ml"] < 0.1 * table.loc[(PUTAMEN, "left"), "lesion_volume_ml"]
    assert list(lesion_phantom.truth_regions.columns)[:4] == ["region", "side", "targeted", "involved"]


def test_healthy_phantom_has_no_lesions():
    phantom = make_brain_phantom("healthy", 2, **FAST)
    assert not _data(phantom.truth_lesions).any()
    assert not phantom.truth_regions["involved"].any()
    assert phantom.params["targets"] == [] and phantom.pattern == "healthy"


def _rigid_fit(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    source_centred = source - source.mean(axis=0)
    target_centred = target - target.mean(axis=0)
    u, _, vt = np.linalg.svd(source_centred.T @ target_centred)
    correction = np.diag([1, 1, np.sign(np.linalg.det(vt.T @ u.T))])
    return vt.T @ correction @ u.T


def test_pose_and_voxel_grid_as_requested(anatomy):
    phantom = make_brain_phantom(
        "healthy", 9, voxel_size=(1.8, 1.8, 2.6), max_rotation_deg=15, max_shift_mm=20, deformation_mm=0.0,
        plane="axial", storage="LPS", sequences=("FLAIR",),
    )
    image = phantom.images["FLAIR"]
    assert np.allclose(image.header.get_zooms()[:3], (1.8, 1.8, 2.6))
    assert nib.aff2axcodes(image.affine) == ("L", "P", "S")
    assert 0 < phantom.params["rotation_deg"] <= 15 and np.linalg.norm(phantom.params["shift_mm"]) <= 20
    # recover the head pose from label centroids: anatomy (MNI) -> scanner
    labels = _data(phantom.truth_labels)
    values = [v for v in np.unique(labels) if v > 0 and (labels == v).sum() > 200]
    scanner = np.array(ndimage.center_of_mass(np.ones_like(labels), labels, values))
    scanner = nib.affines.apply_affine(image.affine, scanner)
    mni = np.array(ndimage.center_of_mass(np.ones_like(anatomy.labels), anatomy.labels, values))
    mni = nib.affines.apply_affine(anatomy.affine, mni)
    rotation = _rigid_fit(mni, scanner)
    angle = np.degrees(np.arccos(np.clip((np.trace(rotation) - 1) / 2, -1, 1)))
    assert abs(angle - phantom.params["rotation_deg"]) < 1.0
    shift = (scanner - mni @ rotation.T).mean(axis=0)
    assert np.allclose(shift, phantom.params["shift_mm"], atol=1.5)


def test_sagittal_and_oblique_grids():
    sagittal = make_brain_phantom("healthy", 4, voxel_size=(2.0, 2.0, 2.0), plane="sagittal",
                                  storage="RAS", sequences=("FLAIR",))
    assert nib.aff2axcodes(sagittal.images["FLAIR"].affine) == ("A", "S", "R")
    oblique = make_brain_phantom("healthy", 4, voxel_size=(2.0, 2.0, 4.0), plane="oblique", sequences=("FLAIR",))
    direction = oblique.images["FLAIR"].affine[:3, 2] / 4.0
    assert 15 < np.degrees(np.arccos(abs(direction[2]))) < 25


def _measured_snr(image: nib.Nifti1Image, labels: np.ndarray, wm_values: tuple[int, ...]) -> float:
    data = _data(image).astype(float)
    white = ndimage.binary_erosion(np.isin(labels, wm_values), iterations=1)
    outside = ~ndimage.binary_dilation(labels > 0, iterations=6)
    return float(data[white].mean() / contrast.background_sigma(data[outside]))


def test_measured_snr_matches_requested(anatomy):
    wm_values = anatomy.atlas.region("Cerebrum > Cerebral white matter").label_values("both")
    for snr in (12.0,):
        phantom = make_brain_phantom("healthy", 21, voxel_size=(2.0, 2.0, 3.0), snr=snr, bias_strength=0.0,
                                     sequences=("FLAIR",))
        measured = _measured_snr(phantom.images["FLAIR"], _data(phantom.truth_labels), wm_values)
        assert measured == pytest.approx(snr, rel=0.15), (snr, measured)


def test_sequence_contrasts(lesion_phantom, anatomy):
    lesions = _data(lesion_phantom.truth_lesions) > 0
    labels = _data(lesion_phantom.truth_labels)
    wm = np.isin(labels, anatomy.atlas.region("Cerebrum > Cerebral white matter").label_values("both")) & ~lesions
    ventricles = np.isin(labels, anatomy.atlas.region("Ventricles").label_values("both")) if any(
        r.path == "Ventricles" for r in anatomy.atlas.regions) else None
    flair, t2 = _data(lesion_phantom.images["FLAIR"]), _data(lesion_phantom.images["T2w"])
    # T2w shares the FLAIR slice geometry (head moved by <= 2 degrees / 2 mm between the scans)
    assert lesion_phantom.images["T2w"].shape == flair.shape
    cores = ndimage.binary_erosion(lesions)
    assert np.median(flair[lesions]) > 1.4 * np.median(flair[wm])
    assert np.median(t2[cores]) > 1.4 * np.median(t2[wm])
    grey = np.isin(labels, anatomy.atlas.region("Cerebrum > Cerebral cortex").label_values("both"))
    assert 1.05 < np.median(flair[grey]) / np.median(flair[wm]) < 1.3
    if ventricles is not None and ventricles.sum() > 100:
        assert np.median(flair[ventricles]) < 0.6 * np.median(flair[wm])
        assert np.median(t2[ventricles]) > 1.5 * np.median(t2[wm])
    dwi = lesion_phantom.images["DWI"]
    assert dwi.header.get_zooms()[2] >= 4.0
    assert lesion_phantom.params["features"]["restricted_diffusion"] is True


def _library():
    from regiontag.patterns.library import load_library

    return load_library()


def test_pattern_from_library_lesions_both_sides(anatomy):
    pattern = next(p for p in _library().patterns if p.body_part == "brain"
                   and any(r.role == "core" and r.laterality == "bilateral" for r in p.regions))
    phantom = make_brain_phantom(pattern.id, 1, **FAST)
    sides = {(t["region"], t["side"]) for t in phantom.params["targets"]}
    bilateral = [r.region for r in pattern.regions if r.role == "core" and r.laterality == "bilateral"
                 and anatomy.atlas.region(r.region).paired
                 and not any(o.region.startswith(r.region + " > ") for o in pattern.regions if o.role == "core")]
    for region in bilateral:
        assert (region, "left") in sides and (region, "right") in sides
    assert _data(phantom.truth_lesions).any()
    with pytest.raises(ValueError, match="cord"):
        cord = next(p for p in _library().patterns if p.body_part == "cord")
        make_brain_phantom(cord.id, 1, **FAST)


def test_unknown_region_and_sequence_errors():
    with pytest.raises(ValueError, match="Putamen"):
        make_brain_phantom(None, 1, regions="Putamn:left", **FAST)
    with pytest.raises(ValueError, match="sequences"):
        make_brain_phantom("healthy", 1, sequences=("PD",))


def test_write_layout_and_cli(tmp_path, lesion_phantom):
    written = write_phantom(lesion_phantom, tmp_path, "ses-a", extra={"condition": "baseline"})
    assert (tmp_path / "inputs" / "ses-a" / "ses-a_FLAIR.nii.gz").is_file()
    assert (tmp_path / "inputs" / "ses-a" / "ses-a_dwi.nii.gz").is_file()
    truth = json.loads((tmp_path / "truth" / "ses-a" / "truth.json").read_text())
    assert truth["body_part"] == "brain" and truth["seed"] == 11 and truth["condition"] == "baseline"
    assert set(pd.read_csv(written["regions"]).columns) >= {"region", "side", "involved", "lesion_volume_ml"}
    assert nib.load(written["atlas_labels"]).shape == lesion_phantom.images["FLAIR"].shape

    from regiontag.cli.main import main

    status = main(["phantom", str(tmp_path / "cli"), "--pattern", "healthy", "--seed", "3", "--count", "2",
                   "--in-plane", "2", "--slice-thickness", "4", "--sequences", "FLAIR"])
    assert status == 0
    assert sorted(p.name for p in (tmp_path / "cli" / "inputs").iterdir()) == [
        "phantom-healthy-s0003", "phantom-healthy-s0004"]
    assert main(["phantom", str(tmp_path / "bad"), "--pattern", "no-such-pattern"]) == 2
    cord = next(p.id for p in _library().patterns if p.body_part == "cord")
    assert main(["phantom", str(tmp_path / "cord"), "--pattern", cord, "--seed", "2"]) == 0
    cord_truth = json.loads((tmp_path / "cord" / "truth" / f"phantom-{cord}-s0002" / "truth.json").read_text())
    assert cord_truth["body_part"] == "cord" and cord_truth["pattern"] == cord


def test_small_vessel_disease_phantom_spares_the_u_fibres():
    # seed 392312834 drew four lesions touching the cortex before the U-fibre band was left free (the suite
    # then ranked the phantom as multiple sclerosis: "juxtacortical lesions")
    from regiontag.atlas.brain import load_brain_atlas
    from regiontag.atlas.lesion_table import lesion_table

    phantom = make_brain_phantom("small-vessel-disease", 392312834, sequences=("FLAIR",))
    table = lesion_table(phantom.truth_lesions, phantom.truth_labels, load_brain_atlas())
    assert len(table) >= 8
    assert not table["location"].isin(["juxtacortical", "cortical"]).any()
    assert (table["cortex_distance_mm"] >= 2.0).all()
