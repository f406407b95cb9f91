"""Extra sections of the batch report (``regiontag.report.extra``): escaping, ids, figures, validation."""

from __future__ import annotations

import io
import re

import pytest
from PIL import Image

from regiontag.report.extra import ExtraSection, as_extra_sections, sections_page
from tests.report.fabricate import png_pixels


def png_bytes(width: int = 6, height: int = 4) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (10, 200, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def test_title_and_caption_are_escaped_html_is_not():
    section = ExtraSection("A <b> & 'c'", '<p class="x">kept</p>', [(png_bytes(), 'cap <i>"')])
    rendered = section.render()
    assert rendered.startswith('<section class="card" id="x-a-b-c"><h2>A &lt;b&gt; &amp; &#x27;c&#x27;</h2>')
    assert '<p class="x">kept</p>' in rendered
    assert "<figcaption>cap &lt;i&gt;&quot;</figcaption>" in rendered and 'alt="cap &lt;i&gt;&quot;"' in rendered
    assert "<b>" not in rendered and "<i>" not in rendered
    assert rendered.endswith("</div></section>") and '<div class="grid2"><figure class="chart">' in rendered


def test_element_id():
    assert ExtraSection("Accuracy: by pattern (2024)").element_id == "x-accuracy-by-pattern-2024"
    assert ExtraSection("!!!").element_id == "x-section"
    assert ExtraSection("Anything", anchor="result").element_id == "result"
    assert 'id="a&quot;b"' in ExtraSection("t", anchor='a"b').render()


def test_figures_from_bytes_and_files_are_embedded(tmp_path):
    path = tmp_path / "chart.png"
    path.write_bytes(png_bytes(8, 3))
    rendered = ExtraSection("Plots", figures=[(path, "file"), (str(path), "str"), (png_bytes(), "bytes")]).render()
    uris = re.findall(r'src="(data:image/png;base64,[^"]+)"', rendered)
    assert [png_pixels(uri).shape for uri in uris] == [(3, 8, 3), (3, 8, 3), (4, 6, 3)]
    assert png_pixels(uris[2])[0, 0].tolist() == [10, 200, 30]
    assert "grid2" not in ExtraSection("No figures", "<p>x</p>").render()


def test_invalid_sections(tmp_path):
    with pytest.raises(ValueError) as error:
        ExtraSection("Notes", position="middle")
    assert str(error.value) == "ExtraSection 'Notes': position must be 'start' or 'end', got 'middle'"
    not_png = tmp_path / "chart.png"
    not_png.write_bytes(b"GIF89a")
    with pytest.raises(ValueError, match=f"extra section figure is not a PNG: {re.escape(str(not_png))}"):
        ExtraSection("x", figures=[(not_png, "c")]).render()
    with pytest.raises(ValueError, match="not a PNG: bytes"):
        ExtraSection("x", figures=[(b"JFIF", "c")]).render()
    with pytest.raises(TypeError, match=r"extra section must be ExtraSection or \(title, html\), got \('a', 1\)"):
        as_extra_sections([("a", 1)])
    with pytest.raises(TypeError):
        as_extra_sections(["just a title"])


def test_as_extra_sections_normalises():
    kept = ExtraSection("Kept", position="start")
    normalised = as_extra_sections([kept, ("Pair", "<p>p</p>")])
    assert normalised[0] is kept
    assert normalised[1] == ExtraSection("Pair", "<p>p</p>")
    assert as_extra_sections(None) == [] and as_extra_sections(()) == []


def test_sections_page():
    document = sections_page("Val <idation>", "meta & more", [("One", "<p>1</p>"), ExtraSection("Two", anchor="two")],
                             "scope-1")
    assert document.startswith("<!DOCTYPE html>")
    assert "<title>Val &lt;idation&gt;</title>" in document
    assert '<span class="meta">meta &amp; more</span>' in document
    assert '<a href="#x-one">One</a><a href="#two">Two</a>' in document
    assert document.index('id="x-one"') < document.index('id="two"')
    assert 'data-qc-scope="scope-1"' in document
    assert "<idation>" not in document
