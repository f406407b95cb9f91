"""Text on the report's pixel figures (``regiontag.report.text``): the font and one drawn label."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from regiontag.report import text
from regiontag.report.text import draw_text, font


def test_font_is_dejavu_sans_at_the_size_asked():
    regular, bold = font(12), font(12, bold=True)
    assert isinstance(regular, ImageFont.FreeTypeFont)
    assert regular.size == 12 and bold.size == 12
    assert regular.getname() == ("DejaVu Sans", "Book") and bold.getname() == ("DejaVu Sans", "Bold")
    assert font(12) is regular  # cached
    assert font(20).getbbox("A")[3] > regular.getbbox("A")[3]


def test_font_does_not_import_matplotlib():
    code = ("import sys; from regiontag.report.text import font; f = font(12); "
            "print(f.getname()[0], 'matplotlib' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "DejaVu Sans False"


def test_font_falls_back_to_the_builtin_font(monkeypatch):
    monkeypatch.setattr(text, "find_spec", lambda name: None)
    font.cache_clear()
    try:
        fallback = font(11)
        assert not (isinstance(fallback, ImageFont.FreeTypeFont) and fallback.getname()[0] == "DejaVu Sans")
    finally:
        font.cache_clear()


def draw(label: str, anchor: str, xy=(50, 30), color="#ff0000", size=16, bold=False) -> np.ndarray:
    picture = Image.new("RGB", (200, 60), "black")
    draw_text(ImageDraw.Draw(picture), xy, label, size, bold, color, anchor)
    return np.asarray(picture)


def test_draw_text_colour_and_anchor():
    pixels = draw("Hello", "ls")
    ink = np.argwhere(pixels.any(axis=2))
    assert len(ink) > 20
    assert set(map(tuple, pixels[pixels.any(axis=2)][:, 1:])) == {(0, 0)}  # only shades of the red asked for
    assert pixels[pixels.any(axis=2)][:, 0].max() == 255
    # left-baseline: ink starts at x = 50 and sits on the baseline y = 30 (no descender in "Hello")
    assert 49 <= ink[:, 1].min() <= 52 and ink[:, 0].max() <= 30
    centred = np.argwhere(draw("Hello", "ms").any(axis=2))
    assert abs((centred[:, 1].min() + centred[:, 1].max()) / 2 - 50) <= 2
    right = np.argwhere(draw("Hello", "rs").any(axis=2))
    assert 47 <= right[:, 1].max() <= 50


def test_bold_text_has_more_ink():
    regular = draw("Hello", "ls").any(axis=2).sum()
    bold = draw("Hello", "ls", bold=True).any(axis=2).sum()
    assert bold > 1.1 * regular
    assert draw("", "ls").sum() == 0
