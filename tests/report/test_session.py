"""Session HTML report (``regiontag.report.session``) without a browser, on fabricated output folders."""

from __future__ import annotations

import re

import nibabel as nib
import numpy as np
import pandas as pd

from regiontag import outputs
from regiontag.outputs.batch_tables import BatchTables
from regiontag.outputs.session_folder import SessionFolder
from regiontag.patterns.observations import observe
from regiontag.report.batch import write_batch_report
from regiontag.report.session import write_session_report
from tests.report.fabricate import PATTERNS, fabricate_failed_session, fabricate_session, images_of


def test_fabricated_session_follows_contract(batch_dir):
    regions = pd.read_csv(batch_dir / "sub-01_ses-1" / outputs.REGIONS_CSV)
    assert list(regions.columns) == outputs.REGION_COLUMNS
    assert list(pd.read_csv(batch_dir / "sub-02_ses-1" / outputs.SCORES_CSV).columns) == outputs.SCORE_COLUMNS
    assert list(pd.read_csv(batch_dir / outputs.SESSIONS_CSV).columns) == outputs.SESSION_COLUMNS
    cord = pd.read_csv(batch_dir / "sub-02_ses-1" / outputs.REGIONS_CSV)
    posterior = cord[(cord["region"].str.endswith("Posterior column")) & (cord["side"] == "both")].iloc[0]
    anterior = cord[(cord["region"].str.endswith("Anterior column")) & (cord["side"] == "both")].iloc[0]
    assert posterior["involved"] and not anterior["involved"]
    image = nib.load(batch_dir / "sub-02_ses-1" / outputs.CORD_MASK_NII)
    assert nib.aff2axcodes(image.affine) == ("P", "S", "R")


def test_session_report_brain(batch_dir):
    path = write_session_report(batch_dir / "sub-01_ses-1")
    document = path.read_text(encoding="utf-8")
    assert path == batch_dir / "sub-01_ses-1" / outputs.REPORT_HTML
    assert "Research use only - not a medical device" in document
    for anchor in ("summary", "registration", "lesions", "regions", "patterns", "provenance"):
        assert f'id="{anchor}"' in document
    assert 'id="cord"' not in document  # brain-only session: no cord section
    images = images_of(document)
    assert len(images) == 3  # registration + FLAIR + T2w
    assert all(image.startswith(b"\x89PNG") for image in images)
    regions = pd.read_csv(batch_dir / "sub-01_ses-1" / outputs.REGIONS_CSV)
    n_both = int((regions["side"] == "both").sum())
    table = re.search(r'<table class="data sortable" id="regions-brain">(.*?)</table>', document, re.S).group(1)
    assert table.count("<tr class=") == n_both
    observed = observe(regions, {"body_parts_imaged": ["brain"]}).regions  # what the scores read
    assert table.count('<tr class="involved">') == sum(bool(r.involved) for r in observed.values())
    scores = re.search(r'id="scores">(.*?)</table>', document, re.S).group(1)
    assert scores.count("<tr") == len(PATTERNS) + 1
    assert scores.count('class="badge na"') == 2  # the two cord patterns in a brain-only session
    assert "http://" not in document and "https://" not in document
    assert "<script src" not in document and "<link" not in document


def test_session_report_cord(batch_dir):
    document = write_session_report(batch_dir / "sub-02_ses-1").read_text(encoding="utf-8")
    assert 'id="cord"' in document and 'id="registration"' in document
    assert len(images_of(document)) == 4  # registration, T2w lesions, sagittal, axial
    assert 'C3-C5 <span class="chip" title="longitudinally extensive' in document  # levels column of the cord region table
    assert "cord: lesion touches the field-of-view edge" in document
    assert 'id="regions-cord"' in document
    assert "median cord area" in document  # centerline.csv summary


def test_session_report_brain_and_cord(tmp_path):
    # both body parts in one session: lesions.nii.gz on the brain grid, cord_lesions.nii.gz on the cord grid
    session_dir = fabricate_session(tmp_path / "out", "both", ("brain", "cord"))
    document = write_session_report(session_dir).read_text(encoding="utf-8")
    registration = re.search(r'id="registration">(.*?)</section>', document, re.S).group(1)
    assert "<h3>brain</h3>" in registration and "<h3>cord</h3>" in registration
    assert "not available on this grid" not in document
    assert 'id="regions-brain"' in document and 'id="regions-cord"' in document
    # brain: registration + FLAIR + T2w; cord: registration + T2w + sagittal + axial
    assert len(images_of(document)) == 7
    assert "batch report</a>" not in document  # no batch files beside this session

    # without the cord lesion mask the cord falls back to lesions.nii.gz, which is on the brain grid
    (session_dir / outputs.CORD_LESIONS_NII).unlink()
    document = write_session_report(session_dir).read_text(encoding="utf-8")
    lesions = re.search(r'id="lesions">(.*?)</section>', document, re.S).group(1)
    assert lesions.count("not available on this grid") == 1
    assert lesions.index("<h3>cord</h3>") < lesions.index("not available on this grid")
    assert len(images_of(document)) == 7


def test_session_report_failed_session(batch_dir):
    document = write_session_report(batch_dir / "sub-03_ses-1").read_text(encoding="utf-8")
    assert '<span class="badge failed">failed</span>' in document
    assert "InputError" in document  # the log tail is shown
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in document and "<script>alert(1)" not in document
    assert "provenance.json not available" in document
    assert not images_of(document)
    assert 'href="../index.html"' in document  # back to the batch page


def test_session_report_without_inputs_falls_back_to_zmap(tmp_path):
    session_dir = fabricate_session(tmp_path / "out", "moved", ("brain",))
    for scan in (tmp_path / "inputs").iterdir():
        scan.unlink()
    document = write_session_report(session_dir).read_text(encoding="utf-8")
    assert "hyperintensity z-map (input scan not found)" in document
    assert "FLAIR: input scan not found" in document
    assert len(images_of(document)) == 1  # registration check drawn on the z-map


def test_report_command_regenerates_all(batch_dir, capsys):
    from regiontag.cli.main import main

    for session in ("sub-01_ses-1", "sub-02_ses-1", "sub-03_ses-1"):
        (batch_dir / session / outputs.REPORT_HTML).unlink(missing_ok=True)
    assert main(["report", str(batch_dir), "--sessions", "sub-03_ses-1"]) == 0
    assert (batch_dir / "sub-03_ses-1" / outputs.REPORT_HTML).exists()
    assert not (batch_dir / "sub-01_ses-1" / outputs.REPORT_HTML).exists()
    assert main(["report", str(batch_dir), "--jobs", "2"]) == 0
    for session in ("sub-01_ses-1", "sub-02_ses-1", "sub-03_ses-1"):
        assert (batch_dir / session / outputs.REPORT_HTML).exists()
    assert "index.html" in capsys.readouterr().out
    assert main(["report", str(batch_dir / "missing")]) == 2


def test_png_sizes_are_reasonable(batch_dir):
    document = write_session_report(batch_dir / "sub-01_ses-1").read_text(encoding="utf-8")
    for image in images_of(document):
        width, height = np.frombuffer(image[16:24], dtype=">u4")
        assert 300 <= width <= 2400 and 100 <= height <= 2400
    assert len(document) < 4_000_000


def test_hostile_session_name_is_escaped(tmp_path):
    from regiontag.report.batch import write_batch_report
    name = 'sub-"x"<b>&#1'
    fabricate_failed_session(tmp_path / "out", name, "boom")
    session_page = write_session_report(tmp_path / "out" / name).read_text(encoding="utf-8")
    batch_page = write_batch_report(tmp_path / "out").read_text(encoding="utf-8")
    for document in (session_page, batch_page):
        assert "<b>&#1" not in document and "&lt;b&gt;&amp;#1" in document
    assert 'href="sub-%22x%22%3Cb%3E%26%231/report.html"' in batch_page


def test_session_report_does_not_import_matplotlib(batch_dir):
    """The session report runs in every worker after each session: it must not pay matplotlib's import."""
    import subprocess
    import sys

    code = (
        "import sys; from regiontag.report.session import write_session_report; "
        f"write_session_report({str(batch_dir / 'sub-02_ses-1')!r}); "
        "print('matplotlib' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert result.stdout.strip() == "False"


def _no_match(session_dir):
    """Make every pattern of a fabricated session a non-match with a negative score (a healthy scan)."""
    scores = pd.read_csv(session_dir / outputs.SCORES_CSV)
    scores["match"] = False
    scores["score"] = -2.35 - scores.index.to_numpy() * 0.1
    outputs.write_csv(scores, session_dir / outputs.SCORES_CSV, outputs.SCORE_COLUMNS)


def test_no_pattern_matched_is_the_same_result_on_page_csv_and_index(tmp_path):
    """Issue 19.2: no "top pattern" when nothing matched -- summary card, sessions.csv and index.html agree."""
    output_dir = tmp_path / "out"
    healthy = fabricate_session(output_dir, "healthy", ("brain",))
    _no_match(healthy)
    matched = fabricate_session(output_dir, "lesions", ("brain",), seed=1)
    best = pd.read_csv(matched / outputs.SCORES_CSV).query("match").sort_values("rank")["pattern"].iloc[0]
    tables = BatchTables(output_dir)
    for session, top in (("healthy", ""), ("lesions", best)):  # what run_session records (the best match)
        SessionFolder(output_dir / session).write_status(
            {"status": "ok", "error": "", "seconds": 3.0, "body_parts": ["brain"], "lesion_volume_ml": 0.0,
             "top_pattern": top})
    tables.load()
    tables.write_all()
    sessions = pd.read_csv(output_dir / outputs.SESSIONS_CSV, keep_default_na=False).set_index("session")
    assert sessions.loc["healthy", "top_pattern"] == "" and sessions.loc["lesions", "top_pattern"] == best

    page = write_session_report(healthy).read_text(encoding="utf-8")
    summary = re.search(r'id="summary">(.*?)</section>', page, re.S).group(1)
    assert "top pattern" not in summary and "no pattern matched" in summary
    assert "highest score -2.35; a match needs a score of at least 2 and an involved core region" in summary
    assert '<p class="verdict"><b>No pattern matched</b>' in page
    matched_page = write_session_report(matched).read_text(encoding="utf-8")
    card = re.search(r'<b>([^<]*) <span class="badge match">match</span>', matched_page).group(1)
    assert card == best and "<span>top pattern</span>" in matched_page

    index = write_batch_report(output_dir).read_text(encoding="utf-8")
    rows = dict(re.findall(r'data-sort="(healthy|lesions)">.*?</td>.*?<td>.*?</td><td class="num".*?</td><td>(.*?)</td>',
                           index, re.S))
    assert rows == {"healthy": '<span class="help">no pattern matched</span>', "lesions": best}
    assert "1 of 2</b><span>finished sessions with a pattern match" in index


def test_cord_caption_names_lesion_levels_only_when_there_are_lesions(tmp_path):
    """Issue 19.2: a lesion-free cord page does not caption "cross-sections at the lesion levels"."""
    session_dir = fabricate_session(tmp_path / "out", "cord", ("cord",))
    with_lesion = write_session_report(session_dir).read_text(encoding="utf-8")
    assert "Axial cross-sections at the lesion levels" in with_lesion
    for name in (outputs.LESIONS_NII, outputs.CORD_LESIONS_NII):
        image = nib.load(session_dir / name)
        outputs.write_nifti(nib.Nifti1Image(np.zeros(image.shape, np.uint8), image.affine), session_dir / name)
    _no_match(session_dir)
    document = write_session_report(session_dir).read_text(encoding="utf-8")
    assert "lesion levels" not in document
    assert "No cord lesion detected: axial cross-sections spread over the cord" in document
    assert "(yellow: cord outline; no cord lesion detected)" in document and "projected across" not in document
