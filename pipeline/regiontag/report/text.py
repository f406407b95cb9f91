"""Text on the report's pixel figures: DejaVu Sans via Pillow (no matplotlib import)."""

from __future__ import annotations

from functools import lru_cache
from importlib.util import find_spec
from pathlib import Path

from PIL import ImageDraw, ImageFont


@lru_cache(maxsize=8)
def font(size: int, bold: bool = False) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """DejaVu Sans at ``size`` pixels (the TTF shipped with matplotlib, found without importing it).

    Falls back to Pillow's built-in font.  Keeping matplotlib out of the
    session report saves about a second of import time in every worker.
    """
    spec = find_spec("matplotlib")
    if spec is not None and spec.submodule_search_locations:
        name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
        path = Path(list(spec.submodule_search_locations)[0]) / "mpl-data" / "fonts" / "ttf" / name
        try:
            return ImageFont.truetype(str(path), size)
        except OSError:
            pass
    try:
        return ImageFont.load_default(size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def draw_text(
    draw: ImageDraw.ImageDraw,
    xy: tuple[float, float],
    text: str,
    size: int = 10,
    bold: bool = False,
    color: str = "#c9d1db",
    anchor: str = "ls",
) -> None:
    """Draw one label on a PIL image (anchor as in Pillow: ``ls`` left-baseline, ``ms`` centre-baseline)."""
    draw.text(xy, text, fill=color, font=font(size, bold), anchor=anchor)


__all__ = ["draw_text", "font"]
