"""The report's PNG writers (``regiontag.report.png``): lossless, standard PNGs that Pillow decodes."""

from __future__ import annotations

import base64
import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from regiontag.report.png import PNG_SIGNATURE, data_uri, encode_palette_png, encode_png


def _decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def _pillow_png(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def test_png_encoder_round_trips_through_pillow():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (37, 53, 3), dtype=np.uint8)
    decoded = np.asarray(Image.open(io.BytesIO(encode_png(rgb))).convert("RGB"))
    np.testing.assert_array_equal(decoded, rgb)
    with pytest.raises(ValueError, match="true-colour PNG"):
        encode_png(rgb[..., 0])


def test_rgb_png_decodes_to_the_same_pixels_as_pillows_png():
    """Smooth anatomy, flat overlay colours and wrap-around row differences (0 under 255)."""
    rows, columns = np.mgrid[0:64, 0:96]
    rgb = np.stack([(rows * 4) % 256, (columns * 3) % 256, ((rows + columns) * 7) % 256], axis=-1).astype(np.uint8)
    rgb[10:20, 30:60] = (255, 59, 48)
    rgb[21] = 0
    rgb[22] = 255
    ours = encode_png(rgb)
    np.testing.assert_array_equal(_decode(ours), _decode(_pillow_png(Image.fromarray(rgb, mode="RGB"))))
    np.testing.assert_array_equal(_decode(ours), rgb)


def test_rgb_png_structure_and_level():
    rgb = np.zeros((3, 5, 3), np.uint8)
    rgb[1, 2] = (10, 20, 30)
    data = encode_png(rgb, level=9)
    assert data.startswith(PNG_SIGNATURE)
    length, tag = struct.unpack(">I4s", data[8:16])
    assert (length, tag) == (13, b"IHDR")
    width, height, depth, colour_type = struct.unpack(">IIBB", data[16:26])
    assert (width, height, depth, colour_type) == (5, 3, 8, 2)
    idat = data.index(b"IDAT")
    (idat_length,) = struct.unpack(">I", data[idat - 4 : idat])
    raw = zlib.decompress(data[idat + 4 : idat + 4 + idat_length])
    assert len(raw) == 3 * (1 + 5 * 3)
    assert [raw[row * 16] for row in range(3)] == [2, 2, 2]  # every row "Up"-filtered
    assert raw[16 + 1 + 2 * 3 : 16 + 1 + 3 * 3] == bytes((10, 20, 30))  # row 1 minus the zero row 0
    assert raw[32 + 1 + 2 * 3 : 32 + 1 + 3 * 3] == bytes((246, 236, 226))  # row 2 minus row 1, modulo 256
    assert data.endswith(b"IEND\xaeB`\x82")


def test_palette_png_keeps_indices_and_palette():
    rng = np.random.default_rng(1)
    palette = rng.integers(0, 256, (40, 3), dtype=np.uint8)
    indices = rng.integers(0, 40, (21, 17), dtype=np.uint8)
    image = Image.fromarray(indices)
    image.putpalette(palette.reshape(-1).tolist())
    decoded = Image.open(io.BytesIO(encode_palette_png(image)))
    assert decoded.mode == "P"
    np.testing.assert_array_equal(np.asarray(decoded), indices)
    np.testing.assert_array_equal(np.asarray(decoded.convert("RGB")), palette[indices])
    with pytest.raises(ValueError, match="mode 'P', got mode 'RGB'"):
        encode_palette_png(Image.new("RGB", (2, 2)))


def test_data_uri_is_base64_of_the_bytes():
    png = encode_png(np.full((2, 2, 3), 7, np.uint8))
    uri = data_uri(png)
    assert uri.startswith("data:image/png;base64,")
    assert base64.b64decode(uri.split(",", 1)[1]) == png
