"""Batch HTML report (``regiontag.report.batch``) on fabricated output folders."""

from __future__ import annotations

import json
import re

from regiontag import outputs
from regiontag.report.batch import write_batch_report
from regiontag.report.session import write_session_report
from tests.report.fabricate import fabricate_failed_session, fabricate_session, images_of


def test_batch_report(batch_dir):
    for session in ("sub-01_ses-1", "sub-02_ses-1"):  # finished sessions have their report (as after a batch run)
        write_session_report(batch_dir / session)
    (batch_dir / "sub-03_ses-1" / outputs.REPORT_HTML).unlink(missing_ok=True)
    path = write_batch_report(batch_dir)
    document = path.read_text(encoding="utf-8")
    assert path == batch_dir / outputs.INDEX_HTML
    assert "Research use only - not a medical device" in document
    body = re.search(r'<table class="data sortable" id="sessions">.*?<tbody>(.*?)</tbody>', document, re.S).group(1)
    assert body.count("<tr") == 3
    assert 'href="sub-01_ses-1/report.html"' in document
    assert 'href="sub-03_ses-1/log.txt"' in document  # failed session without report links to its log
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in document and "<script>alert(1)" not in document
    assert len(images_of(document)) == 3  # volume distribution, region frequency, pattern counts
    assert document.count('class="qc" data-session=') == 3


def test_batch_report_without_batch_tables(tmp_path):
    output_dir = tmp_path / "out"
    fabricate_session(output_dir, "only", ("brain",))
    fabricate_failed_session(output_dir, "broken", "cannot read")
    (output_dir / "only" / outputs.REPORT_HTML).write_text("<html></html>", encoding="utf-8")
    document = write_batch_report(output_dir).read_text(encoding="utf-8")
    body = re.search(r'id="sessions">.*?<tbody>(.*?)</tbody>', document, re.S).group(1)
    assert body.count("<tr") == 2
    assert 'href="only/report.html"' in body and 'href="broken/log.txt"' in body
    volume = json.loads((output_dir / "only" / outputs.FINDINGS_JSON).read_text())["lesion_volume_ml"]["brain"]
    assert f'data-sort="{volume!r}"' in body  # rebuilt from findings.json
    assert "no provenance.json" in body


def test_batch_of_one_finished_session_has_no_cohort_charts(tmp_path):
    """One finished session: the cohort section says where its charts are instead of repeating them."""
    output_dir = tmp_path / "out"
    fabricate_session(output_dir, "only", ("brain",))
    fabricate_failed_session(output_dir, "broken", "cannot read")
    document = write_batch_report(output_dir).read_text(encoding="utf-8")
    assert images_of(document) == []
    assert "Cohort charts appear when the batch has 2 or more finished sessions" in document
