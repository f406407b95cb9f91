"""Table sections of the session report (``regiontag.report.sections``): regions, scores, provenance."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from regiontag.outputs.contract import REGION_COLUMNS, SCORE_COLUMNS
from regiontag.patterns.observations import observe
from regiontag.report.sections import (
    involvement_of,
    provenance_section,
    region_section,
    scores_section,
    split_list,
)

POSTERIOR = "Spinal cord > Spinal white matter > Posterior column"


def regions_table(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows).reindex(columns=REGION_COLUMNS)


def region(path, side="both", involved=False, fraction=0.0, atlas="brain", **extra) -> dict:
    return {"atlas": atlas, "region": path, "name": path.split(" > ")[-1], "depth": path.count(" > "),
            "side": side, "involved": involved, "fraction_involved": fraction, **extra}


def rows_of(document: str, table_id: str) -> list[str]:
    body = re.search(rf'<table class="data sortable" id="{table_id}">.*?<tbody>(.*?)</tbody>', document, re.S)
    return re.findall(r"<tr.*?</tr>", body.group(1), re.S)


@pytest.mark.parametrize(("value", "items"), [
    ("a; b;c", ["a", "b", "c"]), ("a|b", ["a", "b"]), ('["x; y", "z"]', ["x; y", "z"]), ("[not json", ["[not json"]),
    ("", []), (None, []), (float("nan"), []), (3, ["3"]),
])
def test_split_list(value, items):
    assert split_list(value) == items


def test_region_section_without_table():
    assert region_section(pd.DataFrame()) == (
        '<div class="missing">regions.csv not available: no region table for this session.</div>')


def test_region_section_rows_symmetry_and_escaping():
    table = regions_table([
        region("Putamen", involved=True, fraction=0.25, lesion_volume_ml=1.234, laterality_index=1.0),
        region("Putamen", "left", True, 0.5),
        region("Putamen", "right", False, 0.0),
        region("Corpus callosum", involved=False, fraction=0.0, lesion_volume_ml=0.0077),
        region("Odd <name>", involved="False", fraction=np.nan),
    ])
    document = region_section(table)
    assert '<h3>brain atlas <small class="help">(1 of 3 regions involved)</small></h3>' in document
    assert "show all 3 regions" in document
    rows = rows_of(document, "regions-brain")
    assert [r.split('"', 2)[1] for r in rows] == ["involved", "uninvolved", "uninvolved"]
    putamen, callosum, odd = rows
    assert '<td class="num" data-sort="1.234">1.23</td>' in putamen
    assert '<td class="num" data-sort="0.0077">&lt;0.01</td>' in callosum  # a trace, not 7.7e-03
    assert '<span class="bar "><span style="width:25.0%"></span></span> <small>25.0%</small>' in putamen
    assert 'title="left 50.0% / right 0.0%"' in putamen and '<span style="width:100%">' in putamen
    assert "<small>L 50.0% R 0.0% (1.00)</small>" in putamen  # side shares and laterality index
    assert '<span class="badge failed">involved: left only</span>' in putamen
    assert '<small class="help">unpaired</small>' in callosum
    assert "Odd &lt;name&gt;" in odd and "<name>" not in document
    assert "length mm" not in document  # no cord column without cord measurements


DEEP = "Cerebrum > Cerebral white matter > Deep white matter"
PERIVENTRICULAR = "Cerebrum > Cerebral white matter > Periventricular white matter"


def test_region_table_reads_the_sides_as_the_scores_do():
    """A lesion on one side only: under threshold for the whole region, over it on its side (issue 19.1)."""
    table = regions_table([
        region(DEEP, involved=False, fraction=0.012, lesion_voxels=40, n_clusters=2, laterality_index=-1.0),
        region(DEEP, "left", False, 0.0, lesion_voxels=0),
        region(DEEP, "right", True, 0.024, lesion_voxels=40, n_clusters=2),
        region(PERIVENTRICULAR, involved=False, fraction=0.004, lesion_voxels=9, n_clusters=8),
        region(PERIVENTRICULAR, "left", False, 0.005, lesion_voxels=5),
        region(PERIVENTRICULAR, "right", False, 0.003, lesion_voxels=4),
        region("Putamen", involved=False, fraction=0.0, lesion_voxels=0),
    ])
    observed = observe(table, {"body_parts_imaged": ["brain"]}).regions
    assert observed[DEEP].involved and observed[DEEP].sides_text() == "right only"  # what the scores read
    assert not observed[PERIVENTRICULAR].involved
    document = region_section(table, {"min_fraction": 0.02, "min_volume_ml": 0.05})
    deep, periventricular, putamen = rows_of(document, "regions-brain")
    assert deep.startswith('<tr class="involved">')
    assert '<span class="badge failed">involved: right only</span>' in deep  # the same words as the scores
    assert "<small>L 0.0% R 2.4% (-1.00)</small>" in deep
    assert periventricular.startswith('<tr class="below">')  # visible, not hidden with the uninvolved rows
    assert '<span class="badge na">below threshold</span>' in periventricular
    assert 'title="lesion voxels, but less than at least 2% of the region and at least 0.05 ml"' in periventricular
    assert putamen.startswith('<tr class="uninvolved">')
    assert "(1 of 3 regions involved, 1 with lesion below threshold)" in document


@pytest.mark.parametrize(("both", "left", "right", "text"), [
    (True, True, True, "both sides"), (True, False, False, "yes"), (False, True, False, "left only"),
    (False, False, False, ""), ("True", None, None, "yes"),
])
def test_involvement_of(both, left, right, text):
    sides = [None if flag is None else {"involved": flag} for flag in (left, right)]
    assert involvement_of({"involved": both}, *sides) == text


def test_region_section_one_table_per_atlas_with_cord_columns():
    table = regions_table([
        region("Putamen", atlas="brain"),
        region(POSTERIOR, atlas="cord", involved=True, fraction=0.4, lesion_length_mm=42.4, vertebral_levels="C3-C5",
               longitudinally_extensive=True, csa_ratio=1.157),
    ])
    document = region_section(table)
    assert 'id="regions-brain"' in document and 'id="regions-cord"' in document
    assert '<small class="help">(no region involved)</small>' in document
    (cord_row,) = rows_of(document, "regions-cord")
    assert ('<td class="num">42</td><td>C3-C5 <span class="chip" title="longitudinally extensive: 3 or more '
            'vertebral segments">LE</span></td><td class="num">1.16</td>') in cord_row
    assert 'padding-left:28px">Posterior column<' in cord_row  # depth 2 indented
    brain, cord = document.split('id="regions-cord"')
    assert brain.count("<th class=") == 8  # region ... laterality, involved
    assert cord.count("<th class=") == 11 and "<th class=\"\">levels</th>" in cord  # + length, levels, CSA ratio


def scores_table(rows: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(rows).reindex(columns=SCORE_COLUMNS)


def test_scores_section_order_badges_and_chips():
    table = scores_table([
        {"pattern": "brain-only", "disease": "B", "assessable": False, "match": False, "score": np.nan,
         "rank": np.nan, "explanation": "not assessable: brain not imaged"},
        {"pattern": "second", "disease": "S", "assessable": True, "match": "False", "score": 1.0, "rank": 2,
         "missing_core_regions": POSTERIOR, "explanation": "x < y"},
        {"pattern": "first", "disease": "F <d>", "assessable": "True", "match": "True", "score": 3.0, "rank": 1,
         "matched_core_regions": f"{POSTERIOR}; Spinal cord > Spinal white matter > Lateral column"},
    ])
    document = scores_section(table)
    rows = rows_of(document, "scores")
    assert [re.search(r"<b>(.*?)</b>", r).group(1) for r in rows] == ["first", "second", "brain-only"]
    first, second, unassessable = rows
    assert '<span class="badge match">match</span>' in first and "F &lt;d&gt;" in first
    assert '<span class="chip ">Posterior column</span><span class="chip ">Lateral column</span>' in first
    assert 'style="width:100.0%"' in first and "<small>3.00</small>" in first
    assert 'style="width:33.3%"' in second  # bars run from 0 to the highest score
    assert "No pattern matched" not in document
    assert '<span class="chip miss">Posterior column</span>' in second and "x &lt; y" in second
    assert unassessable.startswith('<tr class="na">') and '<span class="badge na">not assessable</span>' in unassessable
    assert 'style="width:0.0%"' in unassessable
    assert scores_section(pd.DataFrame()) == (
        '<div class="missing">scores.csv not available: the session was not scored.</div>')


def test_provenance_section():
    provenance = {
        "regiontag_version": "1.2.3", "session": "s<1>", "status": "ok",
        "warnings": ["<script>x</script>"],
        "inputs": [{"path": "/data/flair.nii.gz", "sequence": "FLAIR", "body_part": "brain",
                    "sha256": "0123456789abcdef", "echo_time": 0.1}, "junk"],
        "reference": {"brain": "/data/flair.nii.gz"},
        "software": {"numpy": "2.0"}, "atlases": {"brain": {"space": "MNI", "sha256": "feedfacecafebeef"}},
        "timings": {"register": 3.0, "tag": 1.0, "note": "x"},
        "qc": {"brain": {"dice": 0.91234}},
        "parameters": {"b": 1, "a": "<x>"},
    }
    document = provenance_section(provenance)
    assert "<dt>regiontag</dt><dd>1.2.3</dd><dt>session</dt><dd>s&lt;1&gt;</dd>" in document
    assert '<h3>Warnings (1)</h3><ul class="warnings"><li>&lt;script&gt;x&lt;/script&gt;</li></ul>' in document
    assert "/data/flair.nii.gz <b>(reference)</b>" in document
    assert '<code title="0123456789abcdef">0123456789ab</code>' in document and "echo_time: 0.1" in document
    assert "<dt>brain</dt><dd>MNI  sha256 feedfacecafe</dd>" in document
    assert '<tr><td><b>total</b></td><td class="num"><b>4.0</b></td><td></td></tr>' in document
    assert 'style="width:75.0%"' in document  # register: 3 of 4 s
    assert '<h4>brain</h4><table class="data qc-numbers"><tbody><tr><td class="key">dice</td><td>0.912</td>' in document
    assert '"a": "&lt;x&gt;",\n  &quot;b&quot;' not in document
    assert "<pre>{\n  &quot;a&quot;: &quot;&lt;x&gt;&quot;,\n  &quot;b&quot;: 1\n}</pre>" in document
    assert "<script>" not in document
    assert provenance_section({}) == (
        '<div class="missing">provenance.json not available: the session did not complete.</div>')
    assert "Timings" not in provenance_section({"session": "s"})
    assert '<p class="help">none recorded</p>' in provenance_section({"session": "s"})


def test_scores_without_a_match_say_so_and_negative_scores_get_no_bar():
    """Issue 19.2: -0.95 must not look nearly full; "no pattern matched" is a result of its own."""
    table = scores_table([
        {"pattern": "near", "disease": "N", "assessable": True, "match": False, "score": 0.5, "rank": 1},
        {"pattern": "against", "disease": "A", "assessable": True, "match": False, "score": -0.95, "rank": 2},
        {"pattern": "far", "disease": "F", "assessable": True, "match": False, "score": -2.35, "rank": 3},
    ])
    document = scores_section(table, match_threshold=2.0)
    assert document.startswith('<p class="verdict"><b>No pattern matched</b> (a match needs a score of at least 2')
    near, against, far = rows_of(document, "scores")
    assert 'style="width:25.0%"' in near  # 0.5 of a scale that reaches the match threshold (2.0)
    assert 'style="width:0.0%"' in against and "<small>-0.95</small>" in against
    assert 'style="width:0.0%"' in far
