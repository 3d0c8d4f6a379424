"""``lwcnn serve --db``: every upload recorded and kept, the dashboard's API (results, stats, what-if,
reviews, server-sent events), and the dashboard itself in the real headless Chromium: a result
recorded by another writer (a watch) appears live, the plots render, a review is stored."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from lwcnn.runtime import Inspector
from lwcnn.serve import create_app
from lwcnn.station.ledger import open_ledger
from lwcnn.station.outputs import open_outputs
from lwcnn.station.records import Recorder
from tests.services import serving

REPO = Path(__file__).resolve().parents[3]
KOLEKTOR = sorted((REPO / "samples" / "kolektorsdd").glob("*.jpg"))
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")


@pytest.fixture(scope="module")
def inspector() -> Inspector:
    return Inspector("kolektorsdd", threads=1)


@pytest.fixture
def service(tmp_path, inspector):
    outputs = open_outputs(str(tmp_path / "results.db"), inspector, "serve", "line1")
    yield TestClient(create_app(inspector, outputs=outputs)), outputs
    outputs.close()


def _upload(client: TestClient, path: Path) -> dict:
    answer = client.post("/v1/inspect", files={"image": (path.name, path.read_bytes())})
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_every_upload_is_recorded_and_kept_for_review(service):
    client, outputs = service
    bodies = [_upload(client, path) for path in KOLEKTOR]
    assert [b["id"] for b in bodies] == [1, 2, 3] and all(b["station"] == "line1" for b in bodies)
    listed = client.get("/v1/results?limit=2").json()["results"]
    assert [r["id"] for r in listed] == [3, 2]
    image = client.get("/v1/results/1/image")
    assert image.status_code == 200 and image.content == KOLEKTOR[0].read_bytes()
    outputs.recorder.flush()  # overlays are drawn off the answer's path
    defective = [b for b in bodies if b["defective"]]
    assert (
        defective
        and client.get(f"/v1/results/{defective[0]['id']}/overlay").headers["content-type"] == "image/jpeg"
    )
    ok = next(b for b in bodies if not b["defective"])
    assert client.get(f"/v1/results/{ok['id']}/overlay").status_code == 404  # --keep defective
    assert client.get("/v1/results/99").json() == {"error": "no result 99"}
    one = client.get("/v1/results/1").json()
    assert one["payload"]["verdict"] == bodies[0]["verdict"] and one["payload"]["area"] == bodies[0]["area"]


def test_stats_and_what_if_count_the_stored_scores(service):
    client, _ = service
    bodies = [_upload(client, path) for path in KOLEKTOR]
    stats = client.get("/v1/stats?hours=8").json()
    assert stats["total"] == 3 and stats["defective"] == sum(b["defective"] for b in bodies)
    assert sum(b["total"] for b in stats["buckets"]) == 3 and stats["types"] == {"defect": stats["defective"]}
    shifts = client.get("/v1/stats?hours=48&bucket=shift").json()["buckets"]
    assert 6 <= len(shifts) <= 7 and sum(b["total"] for b in shifts) == 3
    scores = sorted(b["score"] for b in bodies)
    between = (scores[0] + scores[1]) / 2  # everything above it is defective at this threshold
    whatif = client.get(f"/v1/whatif?threshold={between:.6f}").json()
    assert whatif["defective_at_threshold"] == 2 and whatif["total"] == 3
    assert whatif["defective_now"] - whatif["newly_ok"] + whatif["newly_defective"] == 2
    assert client.get("/v1/whatif?threshold=1.5").status_code == 422
    assert "threshold" in client.get("/v1/whatif?threshold=1.5").json()["error"]


def test_reviews_are_checked_and_stored(service):
    client, outputs = service
    body = _upload(client, KOLEKTOR[0])
    url = f"/v1/results/{body['id']}/review"
    assert client.post(url, json={"kind": "maybe"}).status_code == 400
    assert "not a class" in client.post(url, json={"kind": "wrong_type", "label": "rust"}).json()["error"]
    assert client.post(url, json={"kind": "escape", "boxes": [[5, 5, 2, 9]]}).status_code == 400
    stored = client.post(url, json={"kind": "escape", "boxes": [[1, 2, 30, 40]], "note": "dent"}).json()
    assert stored["review"]["kind"] == "escape" and stored["review"]["boxes"] == [[1, 2, 30, 40]]
    assert outputs.ledger.get(body["id"])["review"]["note"] == "dent"


@pytest.fixture
def live_server(tmp_path, inspector):
    db = tmp_path / "results.db"
    outputs = open_outputs(str(db), inspector, "serve", "line1")
    with serving(create_app(inspector, outputs=outputs)) as port:
        yield f"http://127.0.0.1:{port}", db
    outputs.close()


def _record_elsewhere(db: Path, inspector, path: Path) -> int:
    """A result written by another writer of the same database (a watch on the same station PC)."""
    from lwcnn.data.images import read_image

    ledger = open_ledger(db)
    try:
        pixels = read_image(path, inspector.preprocessing.channels)
        result = inspector.inspect(pixels, str(path))
        result.pixels = pixels  # for the overlay the watch keeps
        recorder = Recorder(ledger, inspector, "line2", "watch", db.parent / "watch.files")
        recorded = recorder.record(result, str(path))["id"]
        recorder.close()  # its picture drawn
        return recorded
    finally:
        ledger.close()


def test_events_stream_each_new_result_of_any_writer(live_server, inspector):
    url, db = live_server
    with httpx.Client(timeout=30) as client, client.stream("GET", f"{url}/v1/events?after_id=0") as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        recorded = _record_elsewhere(db, inspector, KOLEKTOR[1])
        for line in stream.iter_lines():
            if line.startswith("data: "):
                event = json.loads(line[6:])
                break
    assert (
        event["id"] == recorded and event["station"] == "line2" and event["image"].endswith("kos03_Part2.jpg")
    )


@pytest.mark.skipif(
    not (CHROMIUM and CHROMEDRIVER),
    reason="needs Debian's chromium and chromium-driver (.ci/run installs them)",
)
def test_the_dashboard_shows_live_results_plots_and_stores_a_review(live_server, inspector, tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    url, db = live_server
    first = _record_elsewhere(db, inspector, KOLEKTOR[0])
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1400,1000",
        f"--user-data-dir={tmp_path / 'chromium'}",
    ):
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        wait = WebDriverWait(browser, 30)
        browser.get(f"{url}/dashboard")
        wait.until(lambda b: b.find_element(By.ID, "live-state").text == "live")
        assert browser.find_elements(By.CSS_SELECTOR, f'#live tr[data-id="{first}"]')
        wait.until(lambda b: int(b.find_element(By.ID, "rate-plot").get_attribute("data-bars") or 0) > 0)
        later = _record_elsewhere(db, inspector, KOLEKTOR[2])  # defective: a rejected part too
        row = wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, f'#live tr[data-id="{later}"]'))[0]
        assert "defective" in row.text
        wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, f'#rejected li[data-id="{later}"] img'))
        wait.until(lambda b: "2 inspected" in b.find_element(By.ID, "totals").text)
        wait.until(lambda b: "of 2 defective" in b.find_element(By.ID, "whatif-result").text)
        assert browser.find_element(By.ID, "apply-threshold").is_displayed()  # a segmenter's can be applied
        browser.save_screenshot(str(tmp_path / "dashboard-live.png"))
        row.click()
        wait.until(lambda b: b.find_element(By.ID, "review-section").is_displayed())
        wait.until(lambda b: b.execute_script("return document.getElementById('review-canvas').width") > 400)
        browser.find_element(By.CSS_SELECTOR, 'button[data-kind="false_alarm"]').click()
        wait.until(lambda b: "review stored: false_alarm" in b.find_element(By.ID, "review-status").text)
        ledger = open_ledger(db)
        assert ledger.get(later)["review"]["kind"] == "false_alarm"
        ledger.close()
        # an escape on the first image, with a box dragged where the defect is
        browser.find_element(By.CSS_SELECTOR, f'#live tr[data-id="{first}"]').click()
        wait.until(lambda b: f"#{first} " in b.find_element(By.ID, "review-title").text)
        canvas = browser.find_element(By.ID, "review-canvas")
        wait.until(lambda b: b.execute_script("return document.getElementById('review-canvas').width") > 400)
        ActionChains(browser).move_to_element_with_offset(canvas, -30, -40).click_and_hold().move_by_offset(
            60, 80).release().perform()  # fmt: skip
        browser.find_element(By.CSS_SELECTOR, 'button[data-kind="escape"]').click()
        wait.until(lambda b: "review stored: escape" in b.find_element(By.ID, "review-status").text)
        browser.save_screenshot(str(tmp_path / "dashboard.png"))
    finally:
        browser.quit()
    ledger = open_ledger(db)
    review = ledger.get(first)["review"]
    ledger.close()
    assert review["kind"] == "escape" and len(review["boxes"]) == 1
    x0, y0, x1, y1 = review["boxes"][0]  # in image pixels: the canvas is shown smaller than the image
    assert x1 - x0 > 60 and y1 - y0 > 80 and 0 <= x0 < x1 <= 500 and 0 <= y0 < y1 <= 1270


def test_a_what_if_threshold_is_applied_to_the_services_segmenter_only(tmp_path):
    segmenter = Inspector("kolektorsdd", threads=1)  # its own: the threshold changes
    outputs = open_outputs(str(tmp_path / "seg.db"), segmenter, "serve", "line1")
    client = TestClient(create_app(segmenter, outputs=outputs))
    part = KOLEKTOR[1]  # defective at the model's threshold, with a highest probability of 0.989
    before = _upload(client, part)
    assert before["defective"] and before["score"] < 0.995
    assert client.post("/v1/threshold", json={"threshold": 1.5}).status_code == 400
    for path in ("/v1/threshold", f"/v1/results/{before['id']}/review"):  # what a cross-site form could send
        sent = client.post(
            path, content=b'{"threshold": 0.9, "kind": "correct"}', headers={"Content-Type": "text/plain"}
        )
        assert sent.status_code == 422
    assert segmenter.threshold != 0.9 and outputs.ledger.get(before["id"])["review"] is None
    applied = client.post("/v1/threshold", json={"threshold": 0.995}).json()
    assert applied["threshold"] == 0.995 and applied["previous"] == pytest.approx(
        segmenter.card.threshold or 0.5
    )
    after = _upload(client, part)
    assert not after["defective"] and client.get("/v1/model").json()["threshold"] == 0.995
    assert outputs.ledger.get(after["id"])["threshold"] == 0.995  # the row says what decided
    outputs.close()
    classifier = Inspector("neu", threads=1)
    outputs = open_outputs(str(tmp_path / "cls.db"), classifier, "serve", "line1")
    answer = TestClient(create_app(classifier, outputs=outputs)).post(
        "/v1/threshold", json={"threshold": 0.7}
    )
    assert answer.status_code == 400 and "most probable class" in answer.json()["error"]
    outputs.close()
