"""Mask rules of brain.yaml evaluated on small synthetic blocks, and separable resampling."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from scipy import ndimage as ndi

from regiontag.atlas.brain_rules import (
    RuleContext,
    bounding_window,
    evaluate_mask,
    evaluate_term,
    package_file,
    resample_onto,
    side_masks,
)
from regiontag.atlas.brain_schema import MaskSpec, Term

SHAPE = (9, 7, 5)


def _context(**masks) -> RuleContext:
    """1 mm block with x from -4 to 4, y from 0 to 6, z from 10 to 14 (MNI mm)."""
    coords = np.meshgrid(np.arange(-4.0, 5), np.arange(0.0, 7), np.arange(10.0, 15), indexing="ij")
    gm = np.zeros(SHAPE, np.float32)
    gm[:3] = 0.8
    wm = np.zeros(SHAPE, np.float32)
    wm[3:] = 0.6
    spec = SimpleNamespace(midline_tolerance_mm=0.5, tissue=SimpleNamespace(gm="gm", wm="wm"))
    return RuleContext(spec=spec, coords=tuple(coords), probability_images={"gm": gm, "wm": wm},
                       label_images={"aal": np.where(coords[0] < 0, 1, 2)},
                       label_tables={"aal": {"Caudate_L": 1, "Caudate_R": 2}}, masks=dict(masks))


def _term(**value) -> Term:
    return Term.model_validate(value)


def test_resample_onto_axis_aligned_nearest_and_linear():
    data = np.arange(4 * 3 * 2, dtype=np.float32).reshape(4, 3, 2)
    shifted = np.eye(4)
    shifted[0, 3] = 1.0  # grid voxel i sits at data voxel i + 1
    out = resample_onto(data, np.eye(4), shifted, (4, 3, 2), order=0)
    np.testing.assert_array_equal(out[:3], data[1:])
    np.testing.assert_array_equal(out[3], 0)  # outside the data
    half = np.diag([0.5, 1, 1, 1.0])
    linear = resample_onto(data, np.eye(4), half, (7, 3, 2), order=1)
    np.testing.assert_allclose(linear[1], (data[0] + data[1]) / 2)
    np.testing.assert_allclose(linear[::2], data)
    rotated = np.array([[0, 1.0, 0, 0], [1.0, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    general = resample_onto(data, np.eye(4), rotated, (3, 4, 2), order=0)
    np.testing.assert_array_equal(general, data.transpose(1, 0, 2))


def test_bounding_window_and_sides():
    mask = np.zeros(SHAPE, bool)
    mask[4, 2:4, 1] = True
    assert bounding_window(mask, 1) == (slice(3, 6), slice(1, 5), slice(0, 3))
    assert bounding_window(mask, None) == tuple(slice(0, n) for n in SHAPE)
    sides = side_masks(_context())
    assert sides["left"][:4].all() and not sides["left"][4:].any()
    assert sides["midline"][4].all() and sides["midline"].sum() == 7 * 5
    assert sides["right"][5:].all()


def test_geometric_terms():
    context = _context()
    box = evaluate_term(context, _term(box={"abs_x": [1, 2], "z": [12, 12]}), "m")
    assert box.sum() == 4 * 7 and box[[2, 3, 5, 6], :, 2].all()
    half = evaluate_term(context, _term(halfspace={"point": [0, 0, 0], "normal": [1, 0, 0]}), "m")
    np.testing.assert_array_equal(half, context.coords[0] >= 0)
    ellipsoid = evaluate_term(context, _term(ellipsoid={"centre": [3, 3, 12], "radii_mm": [1, 1, 1]}), "m")
    assert ellipsoid.sum() == 2 * 7 and ellipsoid[7, 3, 2] and ellipsoid[1, 3, 2]  # and its mirror at x = -3
    segment = evaluate_term(context, _term(segment={"start": [0, 0, 12], "end": [0, 6, 12], "radius_mm": 0.5}), "m")
    assert segment.sum() == 7 and segment[4, :, 2].all()


def test_tissue_labels_and_distance_terms():
    context = _context()
    np.testing.assert_allclose(context.tissue("csf")[:3], 0.2, rtol=1e-6)
    dominant_gm = evaluate_term(context, _term(dominant="gm"), "m")
    np.testing.assert_array_equal(dominant_gm, np.arange(9)[:, None, None] < 3 * np.ones(SHAPE, bool))
    left = evaluate_term(context, _term(labels={"source": "aal", "names": ["*_L"]}), "m")
    np.testing.assert_array_equal(left, context.coords[0] < 0)
    with pytest.raises(KeyError, match=r"masks\.m: labels \['Putamen\*'\] match no label of source 'aal'"):
        evaluate_term(context, _term(labels={"source": "aal", "names": ["Putamen*"]}), "m")
    seed = np.zeros(SHAPE, bool)
    seed[0, 0, 0] = True
    context.masks["seed"] = seed
    near = evaluate_term(context, _term(within_mm={"mask": "seed", "max": 1.5, "min": 0.5}), "m")
    expected = (ndi.distance_transform_edt(~seed) <= 1.5) & ~seed
    np.testing.assert_array_equal(near, expected)
    block = np.zeros(SHAPE, bool)
    block[1:8, 1:6, :] = True
    context.masks["block"] = block
    deep = evaluate_term(context, _term(depth_mm={"mask": "block", "min": 2}), "m")
    assert deep.sum() == 5 * 3 * 5 and deep[2:7, 2:5].all()


def test_evaluate_mask_combines_any_all_not():
    context = _context()
    mask = MaskSpec.model_validate({
        "any": [{"box": {"x": [-4, -3]}}, {"box": {"x": [3, 4]}}],
        "all": [{"box": {"y": [0, 2]}}],
        "not": [{"box": {"z": [10, 10]}}],
    })
    result = evaluate_mask(context, "m", mask)
    assert result.sum() == 4 * 3 * 4
    assert result[0, 0, 1] and not result[0, 0, 0] and not result[4, 0, 1] and not result[0, 3, 1]


def test_package_file_errors():
    assert package_file("nilearn", "__init__.py").is_file()
    with pytest.raises(FileNotFoundError, match="package 'no_such_pkg_xyz' is not installed"):
        package_file("no_such_pkg_xyz", "a.csv")
    with pytest.raises(FileNotFoundError, match="not found in package 'nilearn'"):
        package_file("nilearn", "missing/file.nii.gz")
