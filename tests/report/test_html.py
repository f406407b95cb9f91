"""HTML building blocks of the reports (``regiontag.report.html``): escaping and number formatting."""

from __future__ import annotations

import math

from regiontag.report.html import CSP, NOTICE, badge, bar, esc, figure, number, page, qc_widget, sort_value, table

HOSTILE = '<script>alert("x")</script>&\''


def test_esc_escapes_markup_quotes_and_blanks_missing_values():
    assert esc(HOSTILE) == "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&#x27;"
    assert esc(None) == "" and esc(math.nan) == "" and esc(3) == "3"


def test_number_and_sort_value():
    assert number(1234.5678) == "1,234.57"
    assert number(0.0004, 2) == "4.0e-04" and number(0, 2) == "0.00"
    assert number(math.inf) == "" and number(None) == "" and number("<b>") == "&lt;b&gt;"
    assert sort_value("2.5") == "2.5" and sort_value(math.nan) == "" and sort_value("a<b") == "a&lt;b"


def test_elements_escape_their_text_but_not_given_html():
    assert badge(HOSTILE, "ok").startswith('<span class="badge ok">&lt;script&gt;')
    assert bar(1.7) == '<span class="bar "><span style="width:100.0%"></span></span>'
    assert 'width:0.0%' in bar("nan") and 'width:25.0%' in bar(0.25)
    rendered = figure("data:image/png;base64,AA", "<b>caption</b>", HOSTILE, "chart")
    assert '<figure class="chart"><img src="data:image/png;base64,AA" alt="&lt;script&gt;' in rendered
    assert "<figcaption><b>caption</b></figcaption>" in rendered  # captions are HTML by contract
    assert table([("a<b", "num")], ["<tr><td>1</td></tr>"], "t1") == (
        '<table class="data sortable" id="t1"><thead><tr><th class="num">a&lt;b</th></tr></thead>'
        "<tbody><tr><td>1</td></tr></tbody></table>"
    )
    widget = qc_widget('s"1')
    assert 'data-session="s&quot;1"' in widget and 'name="qc-s&quot;1"' in widget


def test_page_is_offline_and_escapes_title():
    document = page(HOSTILE, "meta", [("a", "A<")], "<p>body</p>", "scope")
    assert f'content="{CSP}"' in document and "default-src 'none'" in CSP
    assert "<title>&lt;script&gt;" in document and '<a href="#a">A&lt;</a>' in document
    assert document.count(esc(NOTICE)) == 2  # on top and in the footer
    assert "<main><p>body</p></main>" in document and "http://" not in document and "https://" not in document
