"""Slice montages of the session report (``regiontag.report.figures``)."""

from __future__ import annotations

import nibabel as nib
import numpy as np

from regiontag import outputs
from regiontag.report.figures import (
    BACKGROUND,
    LESION_COLOR,
    Overlay,
    bounding_box,
    choose_cuts,
    display_window,
    hex_rgb,
    montage,
    orient_slice,
    palette,
    pixel_size,
    png_data_uri,
    render_panel,
    to_uint8,
)
from tests.report.fabricate import png_image


def test_lesion_cuts_show_lesions(batch_dir):

    lesion = np.asarray(nib.as_closest_canonical(nib.load(batch_dir / "sub-01_ses-1" / outputs.LESIONS_NII)).dataobj)
    for axis in (0, 1, 2):
        cuts = choose_cuts(lesion, np.ones_like(lesion), axis, 5)
        assert 3 <= len(cuts) <= 5
        other = tuple(a for a in range(3) if a != axis)
        per_slice = (lesion > 0).sum(axis=other)
        assert all(per_slice[cut] > 0 for cut in cuts)
        assert int(np.argmax(per_slice)) in cuts


def test_choose_cuts_without_lesions_spread_over_the_extent():
    extent = np.zeros((5, 5, 21), np.uint8)
    extent[:, :, 1:20] = 1  # slices 1..19
    assert choose_cuts(None, extent, 2, 5) == [3, 6, 10, 14, 17]
    lesion = np.zeros_like(extent)
    lesion[2, 2, [4, 5]] = 1
    lesion[1:4, 1:4, 12] = 1
    assert choose_cuts(lesion, extent, 2, 2, min_gap=3) == [4, 12]  # largest first, then the next apart
    assert choose_cuts(lesion, extent, 2, 3, min_gap=3) == [4, 5, 12]  # spacing relaxed to fill the count


def test_orientation_and_pixel_size_of_the_views():
    volume = np.arange(2 * 3 * 4).reshape(2, 3, 4)  # x (right), y (anterior), z (superior)
    axial = orient_slice(volume, 2, 1)
    assert axial.shape == (3, 2)
    assert axial[0, 0] == volume[0, 2, 1]  # top row: most anterior; left column: x = 0 (subject's right)
    coronal = orient_slice(volume, 1, 0)
    assert coronal.shape == (4, 2) and coronal[0, 1] == volume[1, 0, 3]  # top row: most superior
    sagittal = orient_slice(volume, 0, 1)
    assert sagittal.shape == (4, 3) and sagittal[0, 0] == volume[1, 2, 3]  # anterior on the left
    zooms = (0.5, 0.8, 3.0)
    assert pixel_size(zooms, 2) == (0.8, 0.5)
    assert pixel_size(zooms, 1) == (3.0, 0.5)
    assert pixel_size(zooms, 0) == (3.0, 0.8)


def test_bounding_box_window_and_colour_helpers():
    mask = np.zeros((10, 12, 8), np.uint8)
    mask[4:6, 3, 2:7] = 1
    assert bounding_box(mask, margin=2) == (slice(2, 8), slice(1, 6), slice(0, 8))
    assert bounding_box(np.zeros((3, 4, 5)), margin=2) == (slice(0, 3), slice(0, 4), slice(0, 5))
    volume = np.zeros(mask.shape, np.float32)
    volume[mask > 0] = 7.0
    assert display_window(volume, mask) == (7.0, 8.0)  # flat inside the mask: a window one unit wide
    ramp = np.arange(1, 1001, dtype=np.float32)
    assert display_window(ramp) == tuple(np.percentile(ramp, [0.5, 99.5]))
    np.testing.assert_array_equal(to_uint8(np.array([-0.5, 0.0, 0.5, 1.0, 2.0], np.float32)), [0, 0, 128, 255, 255])
    np.testing.assert_allclose(hex_rgb("#ff8000"), [1.0, 128 / 255, 0.0])
    assert palette([3, 15]) == {3: palette([3])[3], 15: palette([15])[15]}
    assert palette([0])[0] != palette([1])[1]


def test_render_panel_keeps_aspect_and_outlines_the_mask():
    background = np.tile(np.linspace(0, 1, 20, dtype=np.float32), (10, 1))  # 10 rows, 20 columns
    mask = np.zeros((10, 20), np.uint8)
    mask[3:7, 5:15] = 1
    panel = render_panel((background, [mask]), [Overlay(mask, kind="outline")], (2.0, 1.0), (100, 100), (0.0, 1.0))
    assert panel.shape == (100, 100, 3)  # 20 mm x 20 mm fitted into 100 px
    red = np.all(np.isclose(panel, LESION_COLOR, atol=1e-6), axis=-1)
    assert red[30, 50] and red[50, 25]  # top and left edges of the mask
    assert not red[50, 50] and not red[5, 5]  # inside and outside are grey
    np.testing.assert_allclose(panel[5, 5], panel[5, 5, 0])


def test_png_data_uri_is_lossless_in_rgb_and_uses_the_grey_palette():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (20, 30, 3), dtype=np.uint8)
    np.testing.assert_array_equal(np.asarray(png_image(png_data_uri(rgb)).convert("RGB")), rgb)
    rgba = np.concatenate([rgb, np.zeros((20, 30, 1), np.uint8)], axis=-1)
    np.testing.assert_array_equal(np.asarray(png_image(png_data_uri(rgba)).convert("RGB")), rgb)
    grey = np.repeat(np.linspace(0, 255, 30).astype(np.uint8)[None, :, None], 20, 0).repeat(3, -1)
    grey[5:10, 5:10] = np.rint(np.asarray(LESION_COLOR) * 255)
    image = png_image(png_data_uri(grey, colors="grey"))
    assert image.mode == "P"
    decoded = np.asarray(image.convert("RGB")).astype(int)
    assert np.abs(decoded - grey).max() <= 4  # Pillow matches palette entries approximately; no visible loss
    np.testing.assert_array_equal(decoded[5:10, 5:10], grey[5:10, 5:10])
    float_image = np.zeros((4, 4, 3), np.float32)
    float_image[0, 0] = 1.0
    assert np.asarray(png_image(png_data_uri(float_image)).convert("RGB"))[0, 0].tolist() == [255, 255, 255]


def test_montage_layout_and_background():
    volume = np.zeros((30, 30, 30), np.float32)
    volume[5:25, 5:25, 5:25] = 1.0
    lesion = np.zeros(volume.shape, np.uint8)
    lesion[14:17, 14:17, 14:17] = 1
    cuts = {2: [15, 16], 1: [15]}
    uri = montage(volume, (1.0, 1.0, 1.0), np.eye(4), [Overlay(lesion)], cuts, crop=volume > 0, panel_px=100)
    image = np.asarray(png_image(uri).convert("RGB"))
    assert image.shape == (2 * 100 + 2 * 18 + 4, 2 * 100 + 3 * 4, 3)  # two rows (axial, coronal), two columns
    assert image[-1, -1].tolist() == np.rint(hex_rgb(BACKGROUND) * 255).astype(int).tolist()
