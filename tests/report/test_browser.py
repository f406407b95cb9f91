"""Session and batch reports rendered in headless Chromium (selenium + chromedriver).

Checks from the rendered DOM: every image decoded, tables have the expected
rows, sorting and QC ratings work (localStorage, CSV Blob download), and the
page made no network request (Chrome's network log and the Performance API).
Screenshots go to ``test-artifacts/``.  Needs the Debian packages
``chromium`` and ``chromium-driver`` and the ``selenium`` Python package.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pandas as pd
import pytest
from tests.report.fabricate import PATTERNS, fabricate_batch

from regiontag import outputs

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO_ROOT / "test-artifacts"
CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome")


def _chromium_binaries() -> tuple[str, str] | None:
    browser = next((shutil.which(name) for name in CHROMIUM_CANDIDATES if shutil.which(name)), None)
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium not installed (pip install selenium)")
    binaries = _chromium_binaries()
    if binaries is None:
        pytest.skip("headless Chromium not available: apt-get install chromium chromium-driver")
    from selenium.webdriver.chrome.service import Service

    profile = tmp_path_factory.mktemp("chromium-profile")
    downloads = tmp_path_factory.mktemp("downloads")
    options = webdriver.ChromeOptions()
    options.binary_location = binaries[0]
    for argument in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        "--window-size=1360,900",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    options.add_experimental_option(
        "prefs", {"download.default_directory": str(downloads), "download.prompt_for_download": False}
    )
    driver = webdriver.Chrome(service=Service(executable_path=binaries[1]), options=options)
    driver.set_page_load_timeout(30)
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    driver.downloads = downloads
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def rendered_batch(tmp_path_factory) -> Path:
    from regiontag.report.batch import write_batch_report
    from regiontag.report.session import write_session_report

    output_dir = tmp_path_factory.mktemp("browser") / "out"
    fabricate_batch(output_dir)
    for session in ("sub-01_ses-1", "sub-02_ses-1", "sub-03_ses-1"):
        write_session_report(output_dir / session)
    write_batch_report(output_dir)
    return output_dir


def _open(driver, path: Path) -> list[str]:
    """Load a page, wait for it, return every URL the browser requested (Chrome network log)."""
    driver.get_log("performance")  # drop earlier entries
    driver.get(path.as_uri())
    deadline = time.time() + 20
    while driver.execute_script("return document.readyState") != "complete":
        assert time.time() < deadline, f"{path.name} did not finish loading"
        time.sleep(0.05)
    requested = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            requested.append(message["params"]["request"]["url"])
    return requested


def _assert_offline(driver, requested: list[str], page: Path) -> None:
    foreign = [url for url in requested if not (url.startswith("data:") or url == page.as_uri())]
    assert not foreign, f"{page.name} requested {foreign}"
    resources = driver.execute_script(
        "return performance.getEntriesByType('resource').map(function(e){return e.name;})"
    )
    assert all(name.startswith(("data:", "blob:")) for name in resources), resources


def _assert_images_loaded(driver, expected: int) -> None:
    images = driver.execute_script(
        "return Array.from(document.images).map(function(i){return [i.complete, i.naturalWidth, i.alt];})"
    )
    assert len(images) == expected, images
    broken = [alt for complete, width, alt in images if not complete or width <= 0]
    assert not broken, f"images not decoded: {broken}"


def _screenshot(driver, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1360, min(max(height, 900), 12000))
    driver.execute_script("window.scrollTo(0, 0)")
    path = ARTIFACTS / name
    driver.save_screenshot(str(path))
    driver.set_window_size(1360, 900)
    return path


def _console_errors(driver) -> list[str]:
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def test_session_reports_render_offline(browser, rendered_batch):
    brain_page = rendered_batch / "sub-01_ses-1" / outputs.REPORT_HTML
    requested = _open(browser, brain_page)
    _assert_offline(browser, requested, brain_page)
    _assert_images_loaded(browser, 3)
    notice = browser.find_element("id", "notice")
    assert notice.is_displayed() and "Research use only - not a medical device" in notice.text
    regions = pd.read_csv(rendered_batch / "sub-01_ses-1" / outputs.REGIONS_CSV)
    both = regions[regions["side"] == "both"]
    rows = browser.find_elements("css selector", "#regions-brain tbody tr")
    assert len(rows) == len(both)
    visible = [row for row in rows if row.is_displayed()]
    # shown by default: regions involved on any side (as the scores read them) and regions with
    # lesion voxels below the thresholds; hidden: regions without lesion
    by_region = regions.assign(flag=regions["involved"].astype(str).str.lower() == "true").groupby("region")
    shown = (by_region["flag"].any() | (by_region["lesion_voxels"].max() > 0)).sum()
    assert len(visible) == int(shown) > int(both["involved"].astype(str).str.lower().eq("true").sum())
    browser.find_element("css selector", "input[data-toggle-all=regions-brain]").click()
    assert all(row.is_displayed() for row in rows)
    score_rows = browser.find_elements("css selector", "#scores tbody tr")
    assert len(score_rows) == len(PATTERNS)
    assert score_rows[0].find_element("css selector", "b").text == PATTERNS[1][0]  # best-scoring brain pattern first
    assert not _console_errors(browser)
    assert _screenshot(browser, "report_session_brain.png").stat().st_size > 10_000

    cord_page = rendered_batch / "sub-02_ses-1" / outputs.REPORT_HTML
    requested = _open(browser, cord_page)
    _assert_offline(browser, requested, cord_page)
    _assert_images_loaded(browser, 4)
    assert browser.find_element("id", "cord").is_displayed()
    assert not _console_errors(browser)
    _screenshot(browser, "report_session_cord.png")

    failed_page = rendered_batch / "sub-03_ses-1" / outputs.REPORT_HTML
    requested = _open(browser, failed_page)
    _assert_offline(browser, requested, failed_page)
    _assert_images_loaded(browser, 0)
    assert "InputError" in browser.find_element("id", "summary").text
    assert not _console_errors(browser)


def test_batch_report_renders_sorts_and_exports_qc(browser, rendered_batch):
    page = rendered_batch / outputs.INDEX_HTML
    requested = _open(browser, page)
    _assert_offline(browser, requested, page)
    _assert_images_loaded(browser, 3)
    browser.execute_script("localStorage.clear()")
    rows = browser.find_elements("css selector", "#sessions tbody tr")
    assert len(rows) == 3
    failed = browser.find_element("css selector", "#sessions tbody tr.failed")
    assert "not a NIfTI file" in failed.text

    search = browser.find_element("css selector", "input[data-filter=sessions]")
    search.send_keys("failed")
    assert [row.is_displayed() for row in rows] == [False, False, True]
    assert browser.find_element("id", "sessions-count").text == "1 of 3 shown"
    search.clear()
    search.send_keys(" ")  # an input event with an empty filter shows every row again
    assert all(row.is_displayed() for row in rows)

    header = browser.find_elements("css selector", "#sessions thead th")[4]  # lesion ml
    header.click()
    order = [
        row.find_elements("css selector", "td")[1].text
        for row in browser.find_elements("css selector", "#sessions tbody tr")
    ]
    sessions = pd.read_csv(rendered_batch / outputs.SESSIONS_CSV)
    expected = sessions.sort_values("lesion_volume_ml", na_position="last")["session"].tolist()
    assert [name.split(" ")[0] for name in order] == expected
    header.click()
    assert header.get_attribute("aria-sort") == "descending"

    widget = browser.find_element("css selector", '.qc[data-session="sub-02_ses-1"]')
    widget.find_element("css selector", "input[value=fail]").click()
    widget.find_element("css selector", "input.qc-note").send_keys("cord outline, slice 12")
    browser.find_element("css selector", '.qc[data-session="sub-01_ses-1"] input[value=pass]').click()
    assert "1 pass, 1 fail" in browser.find_element("id", "qc-summary").text

    _open(browser, page)  # ratings survive a reload (localStorage)
    widget = browser.find_element("css selector", '.qc[data-session="sub-02_ses-1"]')
    assert widget.find_element("css selector", "input[value=fail]").is_selected()
    assert widget.find_element("css selector", "input.qc-note").get_attribute("value") == "cord outline, slice 12"

    browser.find_element("id", "qc-export").click()
    target = browser.downloads / "qc_ratings.csv"
    deadline = time.time() + 10
    while not target.exists() and time.time() < deadline:
        time.sleep(0.1)
    assert target.exists(), "CSV export did not download"
    ratings = pd.read_csv(target)
    assert list(ratings.columns) == ["session", "rating", "note", "rated_at"]
    assert ratings.set_index("session").loc["sub-02_ses-1", "note"] == "cord outline, slice 12"
    assert ratings.set_index("session").loc["sub-01_ses-1", "rating"] == "pass"

    link = browser.find_element("link text", "sub-01_ses-1")
    assert link.get_attribute("href") == (rendered_batch / "sub-01_ses-1" / outputs.REPORT_HTML).as_uri()
    assert not _console_errors(browser)
    _screenshot(browser, "report_batch.png")

    # the session page shares the ratings with the batch page (same storage scope)
    _open(browser, rendered_batch / "sub-02_ses-1" / outputs.REPORT_HTML)
    assert browser.find_element("css selector", ".qc input[value=fail]").is_selected()
