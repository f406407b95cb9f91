"""Tests of regiontag.brain.sanity: plausibility checks that flag silently wrong results."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from regiontag.brain import sanity
from regiontag.config import Config, ConfigError, load_config

GOOD_QC = {"registration_quality": 0.93, "brain_volume_ml": 1350.0, "lesion_burden_fraction": 0.02}


def test_plausible_brain_is_not_flagged() -> None:
    assert sanity.brain_warnings(GOOD_QC, Config()) == []


@pytest.mark.parametrize(
    ("key", "value", "fragment"),
    [
        ("registration_quality", 0.41, "registration quality 0.41 below 0.6"),
        ("registration_quality", float("nan"), "registration quality nan below"),
        ("brain_volume_ml", 310.0, "brain mask volume 310 ml outside the plausible 700-2300 ml"),
        ("brain_volume_ml", 2900.0, "brain mask volume 2900 ml outside"),
        ("lesion_burden_fraction", 0.4, "hyperintensity burden 40% of the brain is implausibly high"),
    ],
)
def test_each_implausible_number_gives_one_line_warning(key: str, value: float, fragment: str) -> None:
    warnings = sanity.brain_warnings({**GOOD_QC, key: value}, Config())
    assert len(warnings) == 1
    assert fragment in warnings[0] and "\n" not in warnings[0]


def test_thresholds_come_from_the_config(tmp_path: Path) -> None:
    user = tmp_path / "strict.yaml"
    user.write_text("registration:\n  min_quality: 0.95\n  brain_volume_range_ml: [1400, 1600]\n"
                    "detection:\n  max_burden_fraction: 0.01\n")
    assert len(sanity.brain_warnings(GOOD_QC, load_config(user))) == 3


@pytest.mark.parametrize(
    "text",
    ["registration:\n  brain_volume_range_ml: [1600, 1400]\n", "registration:\n  brain_volume_range_ml: [0, 1400]\n",
     "registration:\n  flip_margin_template: -0.1\n", "registration:\n  flip_check: maybe\n"],
)
def test_bad_sanity_thresholds_rejected_with_file_and_field(tmp_path: Path, text: str) -> None:
    user = tmp_path / "bad.yaml"
    user.write_text(text)
    with pytest.raises(ConfigError, match=r"bad\.yaml: registration\.(brain_volume_range_ml|flip_)"):
        load_config(user)


def test_mutual_information_properties() -> None:
    rng = np.random.default_rng(0)
    image = rng.normal(size=(30, 30, 30))
    mask = np.ones(image.shape, bool)
    assert sanity.mutual_information(image, image, mask) == pytest.approx(1.0)
    assert sanity.mutual_information(image, 3 * image + 2, mask) == pytest.approx(1.0)
    assert sanity.mutual_information(image, rng.normal(size=image.shape), mask) < 0.05
    assert np.isnan(sanity.mutual_information(image, np.ones_like(image), mask))
    assert np.isnan(sanity.mutual_information(image, image, np.zeros(image.shape, bool)))


def test_mirror_is_an_involution_on_the_left_right_axis() -> None:
    data = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    image = nib.Nifti1Image(data, np.diag([2.0, 2, 2, 1]))
    mirrored = sanity.mirror_canonical(image)
    np.testing.assert_array_equal(np.asarray(mirrored.dataobj)[0], data[1])
    np.testing.assert_array_equal(np.asarray(sanity.mirror_canonical(mirrored).dataobj), data)
    np.testing.assert_array_equal(mirrored.affine, image.affine)


def test_flip_evidence_margin_and_warning_text() -> None:
    config = Config().registration
    clear = sanity.FlipEvidence("co-registration", "T2w vs FLAIR", as_stored=0.20, mirrored=0.30)
    close = sanity.FlipEvidence("co-registration", "T2w vs FLAIR", as_stored=0.20, mirrored=0.21)
    fine = sanity.FlipEvidence("asymmetric template", "FLAIR", as_stored=0.30, mirrored=0.25)
    broken = sanity.FlipEvidence("asymmetric template", "FLAIR", as_stored=float("nan"), mirrored=0.25)
    assert clear.relative_gain == pytest.approx(0.5)
    assert clear.suspicious(config.flip_margin_sequences)
    assert not close.suspicious(config.flip_margin_sequences)
    assert not fine.suspicious(0.0) and not broken.suspicious(0.0)
    warnings = sanity.flip_warnings([clear, close, fine], config)
    assert warnings == [
        (
            "left/right flip suspected: T2w vs FLAIR fits the reference scan 50% better when mirrored "
            "(the two files disagree about left and right; check the headers)"
        )
    ]
    assert clear.to_dict()["relative_gain"] == pytest.approx(0.5)


def test_brain_stage_merges_all_sanity_warnings() -> None:
    from regiontag.brain.stage import _sanity_warnings

    flipped = sanity.FlipEvidence("asymmetric template", "FLAIR", as_stored=0.2, mirrored=0.3)
    warnings = _sanity_warnings({**GOOD_QC, "brain_volume_ml": 100.0}, Config(), [flipped])
    assert len(warnings) == 2
    assert warnings[0].startswith("brain mask volume") and warnings[1].startswith("left/right flip suspected")


# --------------------------------------------------------------------------- left/right on a phantom


def flip_stored_left_right(image: nib.Nifti1Image) -> nib.Nifti1Image:
    """A header-level left/right error: reverse the voxel axis closest to world x, keep the affine."""
    axis = int(np.argmax(np.abs(image.affine[0, :3])))
    return nib.Nifti1Image(np.flip(np.asarray(image.dataobj), axis).copy(), image.affine)


@pytest.fixture(scope="module")
def two_sequence_phantom():
    from regiontag.brain.stage import prepare_reference
    from regiontag.niimg import to_canonical
    from regiontag.phantoms.brain import make_brain_phantom

    config = Config()
    phantom = make_brain_phantom("healthy", 7, sequences=("FLAIR", "T2w"), voxel_size=(1.2, 1.2, 3.0))
    reference, _, _ = prepare_reference(phantom.images["FLAIR"], config)

    def prepared(image: nib.Nifti1Image) -> nib.Nifti1Image:  # no bias correction: MI copes with the bias
        canonical = to_canonical(image)
        return nib.Nifti1Image(np.asarray(canonical.dataobj, np.float32), canonical.affine)

    return phantom, reference, prepared, config


@pytest.mark.slow
def test_mirrored_sequence_is_flagged_and_consistent_one_is_not(two_sequence_phantom) -> None:
    phantom, reference, prepared, config = two_sequence_phantom
    consistent = sanity.sequence_flip_evidence(prepared(phantom.images["T2w"]), reference, "T2w", config.registration)
    mirrored = sanity.sequence_flip_evidence(
        prepared(flip_stored_left_right(phantom.images["T2w"])), reference, "T2w", config.registration
    )
    assert consistent.relative_gain < 0 and not consistent.suspicious(config.registration.flip_margin_sequences)
    assert mirrored.suspicious(config.registration.flip_margin_sequences)
    assert "T2w" in sanity.flip_warnings([mirrored], config.registration)[0]


@pytest.mark.slow
def test_stored_orientation_scored_on_the_stage_co_registration(two_sequence_phantom) -> None:
    """As the stage runs it: the stored orientation scored on its co-registration, the mirror fitted."""
    from regiontag.brain.registration import coregister

    phantom, reference, prepared, config = two_sequence_phantom
    for image, flipped in ((phantom.images["T2w"], False), (flip_stored_left_right(phantom.images["T2w"]), True)):
        moving = prepared(image)
        aligned = coregister(moving, reference, config.registration)
        evidence = sanity.sequence_flip_evidence(moving, reference, "T2w", config.registration, aligned=aligned)
        assert evidence.suspicious(config.registration.flip_margin_sequences) is flipped, evidence


@pytest.mark.slow
def test_mirrored_single_scan_is_flagged_by_the_asymmetric_template(two_sequence_phantom, tmp_path: Path) -> None:
    from regiontag.brain.registration import register_to_template
    from regiontag.brain.templates import load_template

    _, reference, _, config = two_sequence_phantom
    affine_only = config.registration.model_copy(update={"type_of_transform": "Affine", "resolution_mm": 3.0})
    template = load_template("FLAIR", affine_only.resolution_mm)
    mask = nib.Nifti1Image((np.asarray(template.dataobj) > 0).astype(np.float32), template.affine)
    results = {}
    for name, image in (("stored", reference), ("mirrored", sanity.mirror_canonical(reference))):
        registration = register_to_template(image, template, mask, affine_only, tmp_path / name)
        results[name] = sanity.template_flip_evidence(image, registration.forward[-1], affine_only, "FLAIR")
    assert not results["stored"].suspicious(config.registration.flip_margin_template)
    assert results["mirrored"].suspicious(config.registration.flip_margin_template)


# --------------------------------------------------------------------------- silent detection failure


def test_nothing_found_under_a_bright_white_matter_tail_is_flagged() -> None:
    qc = {**GOOD_QC, "lesion_volume_ml": 0.0, "bright_white_matter_tail_ml": {"FLAIR": 14.5, "T2w": 3.0}}
    warnings = sanity.brain_warnings(qc, Config())
    assert len(warnings) == 1
    assert warnings[0].startswith("0.0 ml of lesion found although 14.5 ml of white matter is brighter than the FLAIR")
    found = {**qc, "lesion_volume_ml": 9.0}
    assert sanity.brain_warnings(found, Config()) == []
    small_tail = {**qc, "bright_white_matter_tail_ml": {"FLAIR": 0.5}}
    assert sanity.brain_warnings(small_tail, Config()) == []


def test_white_matter_reference_as_bright_as_grey_matter_is_flagged() -> None:
    stats = {"FLAIR": {"wm_reference_from_gm": 1.0, "wm_gm_ratio": 1.05}, "T2w": {"wm_reference_from_gm": 0.0}}
    warnings = sanity.brain_warnings({**GOOD_QC, "intensity_stats": stats}, Config())
    assert warnings == [
        "FLAIR: the white-matter reference is as bright as grey matter (WM/GM 1.05); normal white matter was "
        "taken as 0.9 x grey matter (diffuse white-matter disease, or tissue priors that do not fit this scan)"]

