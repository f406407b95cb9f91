"""PNG encoding for the report images: a minimal true-colour encoder tuned for speed, and data URIs.

Pillow's PNG writer picks a filter per row by trying them all, which makes it
the largest single cost of a cord session's report.  The report's true-colour
images are montages of smooth anatomy and flat overlays, for which the PNG
"Up" filter (every row minus the row above) with fast zlib compression is
both quicker and as small; ``encode_png`` writes such PNGs directly,
standard-conforming and read by every browser.  Palette images go through
Pillow (``encode_palette_png``): it leaves their rows unfiltered, which is as
fast as our writer there (``benchmarks/bench_report.py --png``: our writer
about 2x faster on RGB images, no faster on palette images).
"""

from __future__ import annotations

import base64
import io
import struct
import zlib

import numpy as np
from PIL import Image

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
#: zlib level of the embedded PNGs: 1 is about twice as fast as 3 for files ~10% larger.
PNG_COMPRESS_LEVEL = 1
#: PNG filter type 2 ("Up"): each byte minus the byte above it.
FILTER_UP = 2
#: PNG colour type 2: 8-bit RGB triples.
TRUE_COLOUR = 2


def _chunk(tag: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + tag + payload + struct.pack(">I", zlib.crc32(tag + payload) & 0xFFFFFFFF)


def encode_png(pixels: np.ndarray, level: int = PNG_COMPRESS_LEVEL) -> bytes:
    """Encode 8-bit true-colour pixels as PNG bytes (rows filtered with "Up", one zlib stream).

    Parameters
    ----------
    pixels : numpy.ndarray
        uint8 array of shape (rows, columns, 3).
    level : int
        zlib compression level (0-9).

    Returns
    -------
    bytes
        A complete PNG file.
    """
    pixels = np.ascontiguousarray(pixels, dtype=np.uint8)
    if pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ValueError(f"true-colour PNG needs (rows, columns, 3) pixels, got shape {pixels.shape}")
    rows, columns = pixels.shape[:2]
    row_bytes = pixels.reshape(rows, columns * 3)
    filtered = np.empty((rows, row_bytes.shape[1] + 1), dtype=np.uint8)
    filtered[:, 0] = FILTER_UP
    filtered[0, 1:] = row_bytes[0]
    np.subtract(row_bytes[1:], row_bytes[:-1], out=filtered[1:, 1:])  # uint8 wraps modulo 256, as PNG wants
    compressor = zlib.compressobj(level, zlib.DEFLATED, 15, 9, zlib.Z_DEFAULT_STRATEGY)
    data = compressor.compress(filtered.tobytes()) + compressor.flush()
    header = struct.pack(">IIBBBBB", columns, rows, 8, TRUE_COLOUR, 0, 0, 0)
    return b"".join([PNG_SIGNATURE, _chunk(b"IHDR", header), _chunk(b"IDAT", data), _chunk(b"IEND", b"")])


def encode_palette_png(image: Image.Image, level: int = PNG_COMPRESS_LEVEL) -> bytes:
    """PNG bytes of a Pillow palette ("P") image, written by Pillow at zlib ``level``."""
    if image.mode != "P":
        raise ValueError(f"palette PNG needs a Pillow image of mode 'P', got mode {image.mode!r}")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=level)
    return buffer.getvalue()


def data_uri(png: bytes) -> str:
    """``data:image/png;base64,...`` of PNG bytes."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")
