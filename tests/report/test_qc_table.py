"""QC numbers of the session report (``regiontag.report.qc_table``): hashes, records, explanations."""

from __future__ import annotations

import re

from regiontag.report.qc_table import flatten, qc_section, qc_value
from regiontag.report.sections import provenance_section

SHA = "d27db1dd7e206aa4d6bca5eec9c23bc3d6e24493657aef16788a803b864f4fb6"
QC = {
    "brain": {
        "atlas": {"name": "brain", "sha256": SHA},
        "left_right": [
            {"as_stored": 0.3042447252748677, "method": "asymmetric template", "subject": "FLAIR"},
            {"as_stored": 0.29, "method": "asymmetric template", "subject": "T2w", "extra": True},
        ],
        "registration_quality": 0.9870804550863665,
        "skull_stripped": False,
        "tiny": 0.000123456,
    },
    "cord": {"segment_length_source": "image (18.4 mm: vertebral body/disc periodicity, autocorrelation 0.97)",
             "lesions": []},
}


def test_flatten_keeps_lists_as_leaves():
    pairs = flatten(QC["brain"])
    assert [key for key, _ in pairs] == ["atlas.name", "atlas.sha256", "left_right", "registration_quality",
                                         "skull_stripped", "tiny"]


def test_hash_is_shortened_with_the_full_value_in_the_title():
    assert qc_value(SHA) == f'<code title="{SHA}">d27db1dd7e20&hellip;</code>'
    assert qc_value("abc") == "abc" and qc_value("<b>") == "&lt;b&gt;"


def test_records_become_a_small_table_with_the_union_of_their_keys():
    html = qc_value(QC["brain"]["left_right"])
    assert html.startswith('<table class="mini">')
    assert re.findall(r"<th>(.*?)</th>", html) == ["as_stored", "method", "subject", "extra"]
    rows = re.findall(r"<tr><td>.*?</tr>", html)
    assert len(rows) == 2
    assert "<td>0.304</td><td>asymmetric template</td><td>FLAIR</td>" in rows[0]
    assert rows[0].endswith('<td><span class="help">-</span></td></tr>') and "<td>yes</td>" in rows[1]
    assert "{" not in html and "'" not in html  # no Python repr of a list of dicts
    assert qc_value([]) == '<span class="help">none</span>' and qc_value([1, 2.5]) == "1, 2.500"


def test_numbers_and_booleans():
    assert qc_value(0.9870804550863665) == "0.987" and qc_value(False) == "no" and qc_value(1850) == "1,850"
    assert qc_value(0.000123456) == "0.000123"


def test_qc_section_one_full_width_table_per_body_part():
    html = qc_section(QC)
    assert re.findall(r"<h4>(.*?)</h4>", html) == ["brain", "cord"]
    assert html.count('<table class="data qc-numbers">') == 2
    assert ('<td class="key">segment_length_source</td><td>image (18.4 mm: vertebral body/disc periodicity, '
            "autocorrelation 0.97)</td>") in html
    assert SHA not in re.sub(r'title="[^"]*"', "", html)  # the full digest only in the tooltip
    assert qc_section({}) == '<p class="help">none recorded</p>'


def test_provenance_section_puts_qc_numbers_outside_the_narrow_grid():
    html = provenance_section({"regiontag_version": "0.1", "session": "s", "status": "ok", "qc": QC,
                               "atlases": {"brain": {"space": "MNI", "sha256": SHA}}})
    grid, after = html.split('<h3>QC numbers</h3>')
    assert 'class="grid2"' in grid and "qc-numbers" not in grid and "qc-numbers" in after
