"""The web page at ``/`` in a real headless Chromium (Debian's ``chromium`` and
``chromium-driver`` packages, driven by Selenium): pick a user, see history and
explanations, click "like" and see the list change. Saves a screenshot.

In the real tier (``-m real``). Skips with the reason when Selenium, Chromium or its driver is
missing, and fails instead under ``FUSIONREC_REQUIRE_REAL=1`` (as in CI, where ``.ci/run``
installs them). Browser builds are never downloaded at test time: ``apt-get install chromium
chromium-driver`` and ``pip install 'fusionrec[browser]'``.
"""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

import pytest

from real_support import missing_component
from serving_support import API_KEY, trained_run

pytestmark = pytest.mark.real


def _browser_paths() -> tuple[str, str]:
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing_component("selenium is not installed (pip install 'fusionrec[browser]')")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not chromium or not driver:
        missing_component("no Chromium or chromedriver on PATH (apt-get install chromium "
                          "chromium-driver); the browser cannot be downloaded at test time")
    return chromium, driver


@pytest.fixture
def server(tmp_path_factory, tmp_path):
    from test_serving_process import _free_port, _start, _wait_ready

    port = _free_port()
    process = _start(trained_run(tmp_path_factory.getbasetemp()), port, tmp_path / "e.sqlite3")
    try:
        _wait_ready(port, process)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def test_like_changes_the_list(server, tmp_path):
    chromium, driver_path = _browser_paths()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1280,1000", f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        wait = WebDriverWait(browser, 30)
        browser.get(server + "/")
        key = browser.find_element(By.ID, "key")
        key.send_keys(API_KEY)
        user = browser.find_element(By.ID, "user")
        user.clear()
        user.send_keys("u3")
        browser.find_element(By.ID, "load").click()
        wait.until(lambda b: len(b.find_elements(By.CSS_SELECTOR, "#recs li")) == 10)
        # Read the list in one script call: the page replaces it while we poll.
        items = lambda: browser.execute_script(  # noqa: E731
            "return [...document.querySelectorAll('#recs li')].map(li => li.dataset.item)")
        before = items()
        history_before = len(browser.find_elements(By.CSS_SELECTOR, "#history li"))
        assert history_before > 0
        assert browser.find_elements(By.CSS_SELECTOR, "#recs .why")  # explanations shown
        key.send_keys("\t")  # "change" stores the key for the like request
        browser.find_element(By.CSS_SELECTOR, f'#recs li[data-item="{before[0]}"] .like').click()
        wait.until(ec.text_to_be_present_in_element((By.ID, "status"), "recorded"))
        wait.until(lambda b: items() and items()[0] != before[0])
        after = items()
        assert before[0] not in after and after != before
        out = Path(os.environ.get("FUSIONREC_SCREENSHOTS", tmp_path))
        out.mkdir(parents=True, exist_ok=True)
        assert browser.save_screenshot(str(out / "serve_page.png"))
        print(f"screenshot: {out / 'serve_page.png'}")
    finally:
        browser.quit()
