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


def test_tissue_maps_are_read_from_the_cache_without_nilearn(tmp_path, monkeypatch):
    """Built once from nilearn's files, then read back unchanged from the cache folder."""
    from regiontag.brain import templates

    monkeypatch.setenv("REGIONTAG_CACHE", str(tmp_path))
    monkeypatch.setattr(templates, "cache_dir", lambda: tmp_path)
    templates.tissue_maps.cache_clear()
    try:
        built = templates.tissue_maps()
        paths = templates._tissue_cache_paths()
        assert all(path.is_file() for path in paths.values())
        templates.tissue_maps.cache_clear()
        monkeypatch.setattr(templates, "_tissue_maps_from_nilearn", lambda: (_ for _ in ()).throw(AssertionError))
        cached = templates.tissue_maps()
    finally:
        templates.tissue_maps.cache_clear()
    for name in templates.TISSUE_FIELDS:
        np.testing.assert_array_equal(np.asarray(getattr(cached, name).dataobj), np.asarray(getattr(built, name).dataobj))
        assert np.allclose(getattr(cached, name).affine, getattr(built, name).affine)
    assert np.asarray(cached.brain_mask.dataobj).dtype == np.uint8


def test_asymmetric_template_is_cached_on_disk_and_rebuilt_when_damaged(tmp_path, monkeypatch):
    """The left/right check's template pair: built once, read back unchanged, rebuilt from a damaged file."""
    from regiontag.brain import templates

    monkeypatch.setattr(templates, "cache_dir", lambda: tmp_path)
    templates.asymmetric_template.cache_clear()
    templates._loaded.cache_clear()
    try:
        built, mirrored = templates.asymmetric_template(4.0)
        paths = sorted((tmp_path / "templates").glob(f"tpl-{templates.ASYMMETRIC_SPACE}_res-4mm_*T1w.nii.gz"))
        assert len(paths) == 2
        assert built.shape == templates.load_template("T1w", 4.0).shape
        data, flipped = np.asarray(built.dataobj), np.asarray(mirrored.dataobj)
        assert not np.allclose(data, flipped) and np.allclose(data.sum(), flipped.sum(), rtol=0.02)
        templates.asymmetric_template.cache_clear()
        templates._loaded.cache_clear()
        again, _ = templates.asymmetric_template(4.0)
        np.testing.assert_array_equal(np.asarray(again.dataobj), data)
        paths[0].write_bytes(b"not a nifti")
        templates.asymmetric_template.cache_clear()
        templates._loaded.cache_clear()
        rebuilt, _ = templates.asymmetric_template(4.0)
        np.testing.assert_array_equal(np.asarray(rebuilt.dataobj), data)
    finally:
        templates.asymmetric_template.cache_clear()
        templates._loaded.cache_clear()
