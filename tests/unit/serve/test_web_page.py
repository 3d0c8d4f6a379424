"""The web page in a real headless Chromium (Debian's chromium and chromium-driver; .ci/run installs
them): upload an image, see the verdict, the overlay and the history; a wrong file shows an error."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from pathlib import Path

import pytest
import uvicorn

from lwcnn.runtime import Inspector
from lwcnn.serve import create_app

REPO = Path(__file__).resolve().parents[3]
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")

pytestmark = pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="needs Debian's chromium and chromium-driver (.ci/run installs them)",
)


@pytest.fixture(scope="module")
def server_url():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(Inspector("neu", threads=1)), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started, "the service did not start"
    yield f"http://127.0.0.1:{port}/"
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def test_upload_shows_verdict_overlay_and_history(server_url, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as visible
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(browser, 20)
    browser.get(server_url)
    wait.until(lambda b: "lw@0.35" in b.find_element(By.ID, "model").text)
    image = REPO / "samples" / "neu" / "scratches_2.jpg"
    browser.find_element(By.ID, "files").send_keys(str(image))
    wait.until(visible.visibility_of_element_located((By.ID, "overlay")))
    wait.until(lambda b: b.find_element(By.ID, "overlay").get_attribute("src").startswith("data:image/png"))
    wait.until(lambda b: b.execute_script("return document.getElementById('overlay').naturalWidth") > 400)
    assert "scratches_2.jpg: scratches" in browser.find_element(By.ID, "verdict").text
    assert len(browser.find_elements(By.CSS_SELECTOR, "#history li")) == 1
    browser.save_screenshot(str(tmp_path / "page.png"))

    text = tmp_path / "notes.png"
    text.write_text("not an image")
    browser.find_element(By.ID, "files").send_keys(str(text))
    wait.until(visible.visibility_of_element_located((By.ID, "error")))
    assert "notes.png: not a PNG" in browser.find_element(By.ID, "error").text
    assert len(browser.find_elements(By.CSS_SELECTOR, "#history li")) == 1  # the failure is not a result
