"""Template contrasts synthesised from tissue maps, and the packaged template files."""

from __future__ import annotations

import nibabel as nib
import numpy as np

from regiontag.brain.templates import TEMPLATE_SPACE, TISSUE_CONTRAST, TissueMaps, asymmetric_t1_path, synthesise_contrast


def _maps() -> TissueMaps:
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    make = lambda values: nib.Nifti1Image(np.asarray(values, np.float32).reshape(2, 1, 1), affine)  # noqa: E731
    return TissueMaps(csf=make([1, 0]), gm=make([0, 0.5]), wm=make([0, 0.5]),
                      brain_mask=make([1, 0]), t1=make([7, 8]))


def test_synthesised_contrast_is_the_tissue_mixture_inside_the_brain():
    maps = _maps()
    flair = synthesise_contrast("FLAIR", maps)
    np.testing.assert_allclose(np.asarray(flair.dataobj).ravel(), [100 * TISSUE_CONTRAST["FLAIR"][0], 0.0])
    mask = maps.brain_mask.get_fdata().astype(bool)
    mask[1] = True
    maps = TissueMaps(maps.csf, maps.gm, maps.wm, nib.Nifti1Image(mask.astype(np.uint8), maps.t1.affine), maps.t1)
    t2 = np.asarray(synthesise_contrast("T2w", maps).dataobj).ravel()
    np.testing.assert_allclose(t2, [260.0, 100 * (0.5 * 1.35 + 0.5 * 1.0)], rtol=1e-6)
    assert np.allclose(synthesise_contrast("T2w", maps).affine, maps.t1.affine)
    assert synthesise_contrast("T1w", maps) is maps.t1  # T1 contrasts use the T1 template itself


def test_template_constants_and_files():
    assert TEMPLATE_SPACE == "MNI152NLin2009aSym"
    assert all(wm == 1.0 for _, _, wm in TISSUE_CONTRAST.values())
    assert asymmetric_t1_path().is_file()
