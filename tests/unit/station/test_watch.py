"""``lwcnn watch``: files written slowly, renamed in, a burst, a corrupt file, polling, sorting, and a
watch killed mid-run and restarted: no image lost, none inspected twice (counted in the database)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from lwcnn.station.ledger import open_ledger
from lwcnn.station.records import Recorder, file_digest
from lwcnn.station.watch import Station, is_partial_name

REPO = Path(__file__).resolve().parents[3]
SAMPLE = REPO / "samples" / "neu" / "crazing_2.jpg"
SAMPLES = sorted((REPO / "samples" / "neu").glob("*.jpg"))


class Running:
    """A Station watching in a thread, stopped at the end of the test."""

    def __init__(self, folder: Path, inspector, db: Path, **options) -> None:
        self.ledger = open_ledger(db)
        self.station = Station(folder, Recorder(self.ledger, inspector, "t", "watch"), **options)
        self.thread = threading.Thread(target=self.station.run, daemon=True)
        self.thread.start()

    def settle(self, timeout_s: float = 60.0) -> None:
        """Wait until the folder is quiet and everything that arrived is recorded."""
        deadline = time.monotonic() + timeout_s
        quiet_since = None
        while time.monotonic() < deadline:
            if self.station.idle():
                quiet_since = quiet_since or time.monotonic()
                if time.monotonic() - quiet_since > 1.5 * self.station.hot.settle_s + 0.3:
                    return
            else:
                quiet_since = None
            time.sleep(0.05)
        raise TimeoutError("the watch did not settle")

    def stop(self) -> None:
        self.station.stop()
        self.thread.join(timeout=30)
        self.ledger.close()


@pytest.fixture
def watching(tmp_path, neu_inspector):
    started: list[Running] = []

    def start(**options) -> Running:
        (tmp_path / "in").mkdir(exist_ok=True)
        running = Running(tmp_path / "in", neu_inspector, tmp_path / "r.db", **options)
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


def test_partial_names_are_the_rename_convention():
    assert all(is_partial_name(n) for n in (".a.png", "a.png.part", "a.png.tmp", "~a.png", "A.PNG.PART"))
    assert not any(is_partial_name(n) for n in ("a.png", "part.png", "a.tmp.png"))


def test_a_file_written_slowly_is_taken_once_when_complete(tmp_path, watching):
    running = watching(settle_s=0.5)
    data = SAMPLE.read_bytes()
    target = tmp_path / "in" / "slow.jpg"
    with open(target, "wb") as handle:  # three pieces, 0.2 s apart: shorter than the settle time
        for piece in (data[:1000], data[1000:3000], data[3000:]):
            handle.write(piece)
            handle.flush()
            time.sleep(0.2)
    running.settle()
    rows = running.ledger.query()
    assert len(rows) == 1 and rows[0]["sha256"] == file_digest(data)
    assert running.station.counts.unreadable == 0


def test_files_being_written_under_a_partial_name_are_never_read(tmp_path, watching):
    running = watching(settle_s=0.2)
    folder = tmp_path / "in"
    (folder / "a.jpg.part").write_bytes(b"half an image")
    (folder / ".b.jpg").write_bytes(b"half an image")
    time.sleep(1.0)
    running.settle()
    assert running.ledger.count() == 0 and running.station.counts.unreadable == 0
    shutil.copyfile(SAMPLE, folder / "a.jpg.part")
    os.replace(folder / "a.jpg.part", folder / "a.jpg")
    running.settle()
    assert [Path(r["image"]).name for r in running.ledger.query()] == ["a.jpg"]


def test_a_burst_is_queued_not_dropped(tmp_path, watching):
    running = watching(settle_s=0.2, workers=2)
    folder = tmp_path / "in" / "camera2"  # a subfolder that appears during the watch
    folder.mkdir()
    for i in range(1000):
        shutil.copyfile(SAMPLES[i % len(SAMPLES)], folder / f"{i:04d}.jpg")
    running.settle(timeout_s=300)
    rows = running.ledger.query()
    assert len(rows) == 1000 and len({r["ledger_key"] for r in rows}) == 1000
    assert running.station.counts.inspected == 1000


def test_a_corrupt_file_is_reported_once_and_taken_again_when_it_changes(tmp_path, watching):
    running = watching(settle_s=0.2)
    running.station.hot.rescan_s = 0.2  # full scans note it again and again: it is not read again
    target = tmp_path / "in" / "bad.jpg"
    target.write_bytes(b"\xff\xd8\xff not really a jpeg")
    running.settle()
    time.sleep(1.0)
    running.settle()
    assert running.station.counts.unreadable == 1 and running.ledger.count() == 0
    assert "bad.jpg" in running.station.counts.problems[0]
    shutil.copyfile(SAMPLE, target)  # the camera finished writing it after all
    running.settle()
    assert running.ledger.count() == 1


def test_polling_finds_files_without_events(tmp_path, watching):
    running = watching(settle_s=0.1, poll_s=0.2)
    assert running.station.hot.events == "polling"
    shutil.copyfile(SAMPLE, tmp_path / "in" / "a.jpg")
    running.settle()
    assert running.ledger.count() == 1


def test_sorting_copies_by_class_and_a_restart_does_not_copy_again(tmp_path, neu_inspector):
    folder = tmp_path / "in"
    folder.mkdir()
    for path in SAMPLES[:4]:
        shutil.copyfile(path, folder / path.name)
    for _ in range(2):  # the second run finds everything recorded and sorted
        ledger = open_ledger(tmp_path / "r.db")
        station = Station(folder, Recorder(ledger, neu_inspector, "t", "watch"), sort="copy", settle_s=0.05)
        counts = station.run(stop_when_idle_s=0.5)
        ledger.close()
    assert counts.inspected == 0 and counts.known == 4
    copies = sorted(p.relative_to(folder).as_posix() for p in (folder / "NG").rglob("*.jpg"))
    assert copies == [f"NG/{p.name.rsplit('_', 1)[0]}/{p.name}" for p in SAMPLES[:4]]
    assert all((folder / p.name).is_file() for p in SAMPLES[:4])  # copied, not moved


def test_a_killed_watch_restarts_without_losing_or_repeating_an_image(tmp_path):
    folder, db = tmp_path / "in", tmp_path / "r.db"
    folder.mkdir()
    command = [
        sys.executable,
        "-m",
        "lwcnn",
        "watch",
        str(folder),
        "--db",
        str(db),
        "--sort",
        "move",
        "--settle",
        "0.1",
        "--station",
        "t",
    ]
    first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    count = 150
    for i in range(count):
        shutil.copyfile(SAMPLES[i % len(SAMPLES)], folder / f".{i:04d}.jpg")
        os.replace(folder / f".{i:04d}.jpg", folder / f"{i:04d}.jpg")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not db.exists() or _count(db) < 30):
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)  # no goodbye: mid-run, between any two steps
    first.wait(timeout=30)
    done_before = _count(db)
    assert 30 <= done_before < count, "the kill should land mid-run"
    second = subprocess.run(
        [*command, "--exit-when-idle", "2", "--json"], capture_output=True, text=True, timeout=300
    )
    assert second.returncode == 0, second.stderr
    summary = json.loads(second.stdout.strip().splitlines()[-1])
    ledger = open_ledger(db)
    rows = ledger.query()
    ledger.close()
    assert len(rows) == count and len({r["ledger_key"] for r in rows}) == count  # none lost, none twice
    assert summary["inspected"] == count - done_before
    left = [p for p in folder.glob("*.jpg")]
    assert left == []  # every image sorted, in one place each
    sorted_files = sorted(p.name for p in (folder / "NG").rglob("*.jpg"))
    assert sorted_files == [f"{i:04d}.jpg" for i in range(count)]
    assert all(Path(r["stored_image"]).is_file() for r in rows)


def _count(db: Path) -> int:
    import sqlite3

    try:
        with sqlite3.connect(db, timeout=5) as connection:
            return connection.execute("SELECT COUNT(*) FROM results").fetchone()[0]
    except sqlite3.OperationalError:  # not created yet
        return 0


def test_two_stations_write_into_one_postgresql_database(tmp_path, neu_inspector, postgres):
    url = postgres.new_database("two_stations")
    stations, ledgers = [], []
    for name, count in (("press-1", 6), ("press-2", 4)):
        folder = tmp_path / name
        folder.mkdir()
        for i in range(count):
            shutil.copyfile(SAMPLES[i % len(SAMPLES)], folder / f"{i}.jpg")
        ledger = open_ledger(url)
        ledgers.append(ledger)
        stations.append(Station(folder, Recorder(ledger, neu_inspector, name, "watch"), settle_s=0.05))
    threads = [threading.Thread(target=s.run, kwargs={"stop_when_idle_s": 1.0}) for s in stations]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    reader = open_ledger(url)
    assert reader.count("press-1") == 6 and reader.count("press-2") == 4
    assert len({r["ledger_key"] for r in reader.query()}) == 10
    reader.close()
    for ledger in ledgers:
        ledger.close()


def test_a_watch_outlives_a_postgresql_restart(tmp_path, neu_inspector, postgres):
    url = postgres.new_database("restarted")
    folder = tmp_path / "in"
    folder.mkdir()
    ledger = open_ledger(url)
    station = Station(folder, Recorder(ledger, neu_inspector, "press-1", "watch"), settle_s=0.05)
    station.hot.rescan_s = 0.5  # what failed while the server was away is taken again at the next scan
    thread = threading.Thread(target=station.run)
    thread.start()
    try:
        for i in range(3):
            shutil.copyfile(SAMPLES[i], folder / f"before-{i}.jpg")
        _wait(lambda: ledger.count() == 3)
        postgres.restart()  # the watch's connection is gone
        for i in range(3):
            shutil.copyfile(SAMPLES[i], folder / f"after-{i}.jpg")
        _wait(lambda: _rows_in(url) == 6)
    finally:
        station.stop()
        thread.join(timeout=30)
        ledger.close()


def _wait(condition, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def _rows_in(url: str) -> int:
    reader = open_ledger(url)
    try:
        return reader.count()
    finally:
        reader.close()


def test_a_relative_folder_never_takes_its_own_sorted_images_again(tmp_path, neu_inspector, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("in").mkdir()
    ledger = open_ledger("r.db")
    station = Station(Path("in"), Recorder(ledger, neu_inspector, "t", "watch"), sort="move", settle_s=0.05)
    thread = threading.Thread(target=station.run, kwargs={"stop_when_idle_s": 1.5})
    thread.start()
    time.sleep(0.5)
    for path in SAMPLES[:4]:
        shutil.copyfile(path, Path("in") / f".{path.name}")
        os.replace(Path("in") / f".{path.name}", Path("in") / path.name)  # renamed in: events
    thread.join(timeout=60)
    assert ledger.count() == 4 and station.counts.known == 0  # the moves into NG/ were not taken
    assert sorted(p.name for p in Path("in/NG").rglob("*.jpg")) == sorted(p.name for p in SAMPLES[:4])
    ledger.close()
