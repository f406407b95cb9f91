"""MR contrast and degradations (``regiontag.phantoms.contrast``): tissue intensities per sequence, bias, noise."""

from __future__ import annotations

import numpy as np
import pytest

from regiontag.phantoms import contrast
from regiontag.phantoms.contrast import (
    CONTRASTS,
    DWI_RESTRICTED_LESION,
    head_layers,
    sequence_signal,
    white_matter_signal,
)

#: Pure CSF, GM, WM voxels and a GM/WM half-mix, tissue fractions (3, 4, 1, 1).
PURE = np.array([[1, 0, 0, 0], [0, 1, 0, 0.5], [0, 0, 1, 0.5]], dtype=np.float32).reshape(3, 4, 1, 1)


def signal(sequence, grade=0.0, restricted=False, head=None):
    lesion_grade = np.full((4, 1, 1), grade, dtype=np.float32)
    return sequence_signal(sequence, PURE, lesion_grade, head, np.ones((4, 1, 1), np.float32), restricted).ravel()


@pytest.mark.parametrize("sequence", sorted(CONTRASTS))
def test_pure_tissue_signal_is_the_contrast_table(sequence):
    values = signal(sequence)
    table = CONTRASTS[sequence]
    np.testing.assert_allclose(values, [1000 * table["csf"], 1000 * table["gm"], 1000 * table["wm"],
                                        500 * (table["gm"] + table["wm"])], rtol=1e-6)
    assert signal(sequence).dtype == np.float32
    assert white_matter_signal(sequence) == pytest.approx(1000 * table["wm"])


def test_relative_tissue_intensities_per_sequence():
    csf, gm, wm, _ = signal("FLAIR")
    assert csf < wm < gm and gm / wm == pytest.approx(0.68 / 0.55) and 1.2 < gm / wm < 1.3
    csf, gm, wm, _ = signal("T2w")
    assert wm < gm < csf and gm / wm == pytest.approx(1.33, abs=0.01)
    csf, gm, wm, _ = signal("T1w")
    assert csf < gm < wm
    csf, gm, wm, _ = signal("DWI")
    assert csf < wm < gm


def test_lesions_bright_on_flair_and_t2_dark_on_t1_and_restricted_on_dwi():
    for sequence, factor in (("FLAIR", 2.0), ("T2w", 2.0)):
        wm_lesion = signal(sequence, grade=1.0)[2]
        assert wm_lesion == pytest.approx(factor * white_matter_signal(sequence), rel=0.01)
    assert signal("T1w", grade=1.0)[2] < white_matter_signal("T1w")
    # lesion grade replaces tissue signal, not CSF
    assert signal("FLAIR", grade=1.0)[0] == pytest.approx(signal("FLAIR")[0])
    half = signal("FLAIR", grade=0.5)[2]
    assert half == pytest.approx(1000 * (0.5 * CONTRASTS["FLAIR"]["wm"] + 0.5 * CONTRASTS["FLAIR"]["lesion"]))
    assert signal("DWI", grade=1.0, restricted=True)[2] == pytest.approx(1000 * DWI_RESTRICTED_LESION)
    assert signal("DWI", grade=1.0, restricted=False)[2] == pytest.approx(1000 * CONTRASTS["DWI"]["lesion"])
    assert signal("FLAIR", grade=1.0, restricted=True)[2] == pytest.approx(signal("FLAIR", grade=1.0)[2])


def test_head_layers_add_bone_and_scalp_signal():
    head = np.zeros((2, 4, 1, 1), dtype=np.float32)
    head[0, 0] = 1.0  # bone over the CSF voxel
    head[1, 1] = 0.5  # half scalp over the GM voxel
    with_head = signal("T1w", head=head)
    np.testing.assert_allclose(with_head - signal("T1w"), [1000 * 0.05, 500 * 1.00, 0, 0], rtol=1e-5, atol=1e-3)


def test_unknown_sequence_is_an_error():
    with pytest.raises(ValueError) as error:
        signal("PD")
    assert str(error.value) == "sequence 'PD' cannot be simulated; choose from ['DWI', 'FLAIR', 'T1w', 'T2w']"


def test_head_layer_shells():
    distance = np.array([0.0, 1.0, 5.0, 11.0, 20.0], dtype=np.float32)
    layers = head_layers(distance, np.random.default_rng(0), np.zeros(5, dtype=np.float32))
    bone, scalp = layers
    np.testing.assert_allclose(bone, [0, 0, 1, 0, 0])
    assert scalp[:3].tolist() == [0, 0, 0] and scalp[4] == 0 and 0.85 <= scalp[3] <= 1.0


def test_degradations():
    rng = np.random.default_rng(0)
    field = contrast.bias_field(np.diag([2.0, 2.0, 3.0, 1.0]), (60, 70, 40), 0.3, rng)
    assert np.log(field).max() <= 0.3 + 1e-3 and np.log(field).min() >= -0.3 - 1e-3 and field.std() > 0.02
    square = np.zeros((64, 64, 4), dtype=np.float32)
    square[24:40, 24:40] = 100
    ghosted = contrast.motion_ghosting(square, 1.0, rng)
    assert ghosted[:, :20].sum() > 100 * square[:, :20].sum() + 50  # energy outside the object along y
    assert contrast.motion_ghosting(square, 0.0, rng) is square
    noisy = contrast.rician_noise(np.zeros((80, 80, 20), np.float32), 7.0, rng)
    assert contrast.background_sigma(noisy) == pytest.approx(7.0, rel=0.03)


def test_no_bias_and_no_noise_leave_the_image():
    rng = np.random.default_rng(0)
    np.testing.assert_array_equal(contrast.bias_field(np.eye(4), (3, 4, 5), 0.0, rng), np.ones((3, 4, 5)))
    image = np.arange(6, dtype=np.float64).reshape(2, 3)
    clean = contrast.rician_noise(image, 0.0, rng)
    assert clean.dtype == np.float32 and np.array_equal(clean, image)
    # ghosting moves signal around along the phase axis but keeps its total (magnitude of a phase ramp)
    square = np.zeros((32, 32, 1), dtype=np.float32)
    square[12:20, 12:20] = 1.0
    ghosted = contrast.motion_ghosting(square, 0.5, np.random.default_rng(1))
    assert (ghosted**2).sum() == pytest.approx((square**2).sum(), rel=1e-4)
