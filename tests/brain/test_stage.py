"""The brain stage end to end: a phantom with known lesions, and the real clinical FLAIR."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from regiontag.brain.stage import brain_atlas, choose_reference, process_brain
from regiontag.config import Config
from regiontag.niimg import to_canonical


def _dice(a: np.ndarray, b: np.ndarray) -> float:
    return 2 * float((a & b).sum()) / max(float(a.sum() + b.sum()), 1.0)


def test_choose_reference_prefers_flair() -> None:
    assert choose_reference(["T2w", "FLAIR", "DWI"], Config()) == "FLAIR"
    assert choose_reference(["DWI", "T2w"], Config()) == "T2w"
    with pytest.raises(ValueError, match="no usable sequence"):
        choose_reference(["unknown"], Config())


@pytest.fixture(scope="module")
def b12_phantom_result(tmp_path_factory: pytest.TempPathFactory):
    from regiontag.phantoms.brain import make_brain_phantom

    phantom = make_brain_phantom("b12-leukoencephalopathy", 11)
    output = process_brain(dict(phantom.images), Config(), tmp_path_factory.mktemp("b12"))
    return phantom, output


@pytest.mark.slow
def test_phantom_lesions_recovered(b12_phantom_result) -> None:
    phantom, output = b12_phantom_result
    found = np.asarray(output.images["lesions.nii.gz"].dataobj) > 0
    truth = np.asarray(phantom.truth_lesions.dataobj) > 0
    assert found.shape == truth.shape  # written back on the input's own grid
    assert _dice(found, truth) >= 0.75
    table = output.region_table.set_index(["region", "side"])
    assert table.loc[("Cerebrum > Cerebral white matter", "both"), "involved"]
    assert not table.loc[("Cerebrum > Cerebral cortex", "both"), "involved"]
    assert output.qc["registration_quality"] > 0.8
    assert output.findings["features"]["symmetric_white_matter"] is True
    assert not output.warnings


@pytest.mark.slow
def test_outputs_keep_input_space(b12_phantom_result) -> None:
    phantom, output = b12_phantom_result
    reference = phantom.images["FLAIR"]
    for name in ("lesions.nii.gz", "hyperintensity_z.nii.gz", "atlas_labels.nii.gz", "brain_mask.nii.gz"):
        assert output.images[name].shape == reference.shape[:3]
        np.testing.assert_allclose(output.images[name].affine, reference.affine, atol=1e-4)
    assert output.images["lesions_space-MNI152.nii.gz"].shape == brain_atlas().labels_img.shape


@pytest.fixture(scope="module")
def real_flair_result(real_brain_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    image = nib.load(str(real_brain_dir / "patient12_study1_FLAIR.nii.gz"))
    return image, process_brain({"FLAIR": image}, Config(), tmp_path_factory.mktemp("real"))


@pytest.mark.slow
@pytest.mark.real
def test_real_flair_ventricles_on_dark_csf(real_flair_result) -> None:
    image, output = real_flair_result
    flair = np.asarray(to_canonical(image).dataobj, dtype=np.float32)
    labels = np.asarray(to_canonical(output.images["atlas_labels.nii.gz"]).dataobj)
    atlas = brain_atlas()
    ventricles = np.isin(labels, atlas.region("Ventricles > Lateral ventricle").label_values())
    white_matter = np.isin(labels, atlas.region("Cerebrum > Cerebral white matter").label_values())
    # FLAIR suppresses CSF: the warped lateral ventricles must sit on dark voxels
    assert np.median(flair[ventricles]) < 0.5 * np.median(flair[white_matter])
    assert output.qc["registration_quality"] > 0.85


@pytest.mark.slow
@pytest.mark.real
def test_real_flair_brain_mask_covers_brain(real_flair_result) -> None:
    image, output = real_flair_result
    flair = np.asarray(to_canonical(image).dataobj, dtype=np.float32)
    mask = np.asarray(to_canonical(output.images["brain_mask.nii.gz"]).dataobj) > 0
    labels = np.asarray(to_canonical(output.images["atlas_labels.nii.gz"]).dataobj)
    assert 1100 <= output.qc["brain_volume_ml"] <= 1800
    # every deep structure of the warped atlas lies inside the brain mask
    assert (mask[labels > 0]).mean() > 0.97
    # and the mask does not reach the bright scalp: its border voxels are darker than brain tissue
    from scipy import ndimage

    border = mask & ~ndimage.binary_erosion(mask)
    assert np.median(flair[border]) < np.median(flair[mask])
    assert not output.warnings


def test_search_mask_takes_the_cortex_border_of_white_matter_only() -> None:
    from regiontag.brain.stage import CEREBRAL_CORTEX, _search_mask
    from regiontag.config import load_config

    atlas = brain_atlas()
    cortex_label = atlas.region(CEREBRAL_CORTEX).label_values()[0]
    wm_label = atlas.region("Cerebrum > Cerebral white matter").label_values()[0]
    labels = np.full((12, 12, 12), cortex_label, dtype=np.int32)
    labels[:, :, :6] = wm_label
    wm = (labels == wm_label).astype(np.float32)
    tissue = {"wm": wm, "gm": 1 - wm, "csf": np.zeros_like(wm)}
    brain = np.ones(labels.shape, bool)
    config = load_config()
    config = config.model_copy(update={"detection": config.detection.model_copy(update={"juxtacortical_search_mm": 1.0})})
    search = _search_mask(labels, brain, tissue, config, zooms=(1.0, 1.0, 1.0))
    assert search[:, :, :6].all()  # white matter
    assert search[:, :, 6].all()  # cortex touching white matter (juxtacortical)
    assert not search[:, :, 8:].any()  # cortex away from white matter
    off = config.model_copy(update={"detection": config.detection.model_copy(update={"juxtacortical_search_mm": 0})})
    assert not _search_mask(labels, brain, tissue, off, zooms=(1.0, 1.0, 1.0))[:, :, 6:].any()


@pytest.mark.slow
def test_only_sequences_whose_intensities_are_read_get_n4(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import regiontag.brain.stage as stage
    from regiontag.phantoms.brain import make_brain_phantom

    phantom = make_brain_phantom("healthy", 3, sequences=("FLAIR", "T2w", "T1w"), voxel_size=(2.0, 2.0, 4.0))
    corrected = []
    original = stage.bias_correct

    def recording_bias_correct(image, mask, config):
        corrected.append(image.shape)
        return original(image, mask, config)

    monkeypatch.setattr(stage, "bias_correct", recording_bias_correct)
    space = stage.register_session(dict(phantom.images), Config(), tmp_path)
    # FLAIR (the reference) and T2w are read for intensities; the T1w is only co-registered (left-right check,
    # outputs: rigid mutual information does not need N4)
    assert len(corrected) == 2
    assert set(space.aligned) == {"FLAIR", "T2w", "T1w"} and set(space.coregistered) == {"T2w", "T1w"}


@pytest.mark.slow
def test_template_centroids_follow_the_registration(b12_phantom_result) -> None:
    """The stage's point mapper puts the lesion centroid where the lesion mask warped to MNI152 lies."""
    _, output = b12_phantom_result
    lesion_img = output.images["lesions.nii.gz"]
    voxels = np.argwhere(np.asarray(lesion_img.dataobj) > 0)
    subject_mm = nib.affines.apply_affine(lesion_img.affine, voxels).mean(axis=0)
    template = output.images["lesions_space-MNI152.nii.gz"]
    warped_mm = nib.affines.apply_affine(template.affine, np.argwhere(np.asarray(template.dataobj) > 0)).mean(axis=0)
    mapped = output.to_template(subject_mm[None, :])[0]
    assert np.linalg.norm(mapped - warped_mm) < 3.0, (mapped, warped_mm)
