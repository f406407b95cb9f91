"""Cohort charts of the batch report (``regiontag.report.charts``): PNG data URIs, empty messages, counts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from regiontag.report import charts
from regiontag.report.charts import pattern_figure, region_figure, region_frequency, volume_figure
from tests.report.fabricate import png_pixels

PUTAMEN, THALAMUS = "Putamen", "Thalamus"


@pytest.fixture()
def figures(monkeypatch):
    """The matplotlib figures the charts draw (to read their texts and bars)."""
    made = []
    original = charts._new_figure

    def keep(**kwargs):
        made.append(original(**kwargs))
        return made[-1]

    monkeypatch.setattr(charts, "_new_figure", keep)
    return made


def texts(figure) -> list[str]:
    return [t.get_text() for t in figure.texts] + [t.get_text() for axes in figure.axes for t in axes.texts]


def bar_widths(figure) -> list[float]:
    return [round(patch.get_width(), 6) for patch in figure.axes[0].patches]


def regions_table() -> pd.DataFrame:
    rows = []
    for session, involved in (("a", {PUTAMEN}), ("b", {PUTAMEN, THALAMUS}), ("c", set()), ("d", {PUTAMEN})):
        for region in (PUTAMEN, THALAMUS):
            rows.append({"session": session, "atlas": "brain", "region": region, "side": "both",
                         "involved": "True" if region in involved else "False"})
            rows.append({"session": session, "atlas": "brain", "region": region, "side": "left",
                         "involved": region in involved})
    rows.append({"session": "e", "atlas": "cord", "region": "Spinal cord", "side": "both", "involved": True})
    return pd.DataFrame(rows)


def test_region_frequency_is_the_share_of_sessions_per_atlas():
    shares = region_frequency(regions_table())
    assert shares.to_dict() == {"Spinal cord": 1.0, PUTAMEN: 0.75, THALAMUS: 0.25}
    assert shares.index.tolist() == ["Spinal cord", PUTAMEN, THALAMUS]  # most frequent first
    assert region_frequency(pd.DataFrame()).empty
    nothing = regions_table().assign(involved=False)
    assert region_frequency(nothing).empty


def test_region_frequency_counts_one_sided_involvement():
    """Issue 19.1: a region involved on one side only is involved, as the scores and the session page say."""
    table = regions_table()
    one_side = (table["session"] == "c") & (table["region"] == THALAMUS) & (table["side"] == "left")
    table.loc[one_side, "involved"] = True  # c: thalamus over threshold on the left, under it for both sides
    assert region_frequency(table).to_dict() == {"Spinal cord": 1.0, PUTAMEN: 0.75, THALAMUS: 0.5}


def test_volume_chart_renders_a_png(figures):
    uri = volume_figure(pd.DataFrame({"lesion_volume_ml": [0.5, 1.0, "2.5", None, np.nan]}))
    assert uri.startswith("data:image/png;base64,")
    pixels = png_pixels(uri)
    assert pixels.shape == (300, 460, 3)  # 4.6 x 3.0 inches at 100 dpi
    assert (pixels >= 250).all(axis=2).mean() > 0.5  # white page (256-colour palette: near white)
    assert "Lesion volume distribution" in texts(figures[0])
    assert sum(patch.get_height() for patch in figures[0].axes[0].patches) == 3  # three finished sessions
    assert figures[0].axes[0].get_xscale() == "linear"


def test_volume_chart_spanning_decades_is_logarithmic(figures):
    volume_figure(pd.DataFrame({"lesion_volume_ml": [0.01, 0.1, 5.0, 30.0]}))
    assert figures[0].axes[0].get_xscale() == "log"


@pytest.mark.parametrize(("draw", "message"), [
    (lambda: volume_figure(pd.DataFrame({"lesion_volume_ml": [None, "n/a"]})), "no finished session"),
    (lambda: region_figure(pd.DataFrame()), "no involved region in any session"),
    (lambda: pattern_figure(pd.DataFrame({"top_pattern": [None, ""]}), pd.DataFrame()), "no scored session"),
    (lambda: pattern_figure(pd.DataFrame({"top_pattern": ["", ""]}),
                            pd.DataFrame({"session": ["a", "a", "b"], "pattern": ["x", "y", "x"], "match": False})),
     "2 scored sessions: no pattern matched"),
])
def test_empty_tables_give_the_empty_message(figures, draw, message):
    uri = draw()
    assert png_pixels(uri).ndim == 3
    assert message in texts(figures[0])
    assert len(figures[0].axes[0].patches) == 0  # no bars
    assert list(figures[0].axes[0].get_xticks()) == [] and list(figures[0].axes[0].get_yticks()) == []


def test_region_chart_bars_are_percentages(figures):
    uri = region_figure(regions_table())
    assert png_pixels(uri).shape[1] == 560
    assert bar_widths(figures[0]) == [100.0, 75.0, 25.0]
    assert {"100%", "75%", "25%"} <= set(texts(figures[0]))
    labels = [t.get_text() for t in figures[0].axes[0].get_yticklabels()]
    assert labels == ["Spinal cord", "Putamen", "Thalamus"]
    assert list(figures[0].axes[0].get_yticks()) == [2, 1, 0]  # most frequent at the top


def test_pattern_chart_counts_first_ranks_and_matches(figures):
    sessions = pd.DataFrame({"top_pattern": ["ms-brain", "ms-brain", "svd", None, ""]})
    scores = pd.DataFrame({"session": ["a", "b", "b", "c"], "pattern": ["ms-brain", "svd", "svd", "nmosd"],
                           "match": ["True", True, True, "False"]})
    pattern_figure(sessions, scores)
    figure = figures[0]
    labels = [t.get_text() for t in figure.axes[0].get_yticklabels()]
    assert labels == ["ms-brain", "svd"]  # nmosd is never first nor a match
    assert list(figure.axes[0].get_yticks()) == [1, 0]  # ms-brain (2 firsts) on top
    first, match = bar_widths(figure)[:2], bar_widths(figure)[2:]
    assert first == [2.0, 1.0] and match == [1.0, 1.0]  # svd matched in one session (b), counted once


def test_volume_chart_keeps_zero_sessions_and_separates_body_parts(figures):
    """Issue 19.2: 0 ml sessions are counted, also on a log axis; brain and cord get their own colours."""
    volumes = pd.DataFrame({"session": list("abcdef"), "body_part": ["brain"] * 4 + ["cord"] * 2,
                            "lesion_volume_ml": [0.0, 0.01, 5.0, 30.0, 0.0, 0.2]})
    volume_figure(volumes)
    axes = figures[0].axes[0]
    assert axes.get_xscale() == "log"
    assert sum(patch.get_height() for patch in axes.patches) == 6  # every session, the two 0 ml ones included
    assert "0 ml" in texts(figures[0])
    assert [t.get_text() for t in axes.get_legend().get_texts()] == ["brain", "cord"]
