"""The results database, on SQLite and on a real PostgreSQL server: what a row holds, the filters
``lwcnn results`` offers, the ledger key that keeps a hot folder from counting an image twice,
reviews, the sinks' outbox, and the schema's migration from an older version."""

from __future__ import annotations

import itertools
import json
import sqlite3
import time

import pytest

from lwcnn.errors import ConfigError, InputError
from lwcnn.station.ledger import SCHEMA_VERSION, Ledger, Review, _migrations, open_ledger
from lwcnn.station.records import Recorder

SAMPLES = "samples/neu"
_names = itertools.count()


@pytest.fixture(params=["sqlite", "postgresql"])
def db(request, tmp_path) -> str:
    if request.param == "sqlite":
        return str(tmp_path / "results.db")
    server = request.getfixturevalue("postgres")
    return server.new_database(f"ledger_{next(_names)}")


def _recorded(db: str, inspector, station: str = "line1", count: int = 4) -> tuple[Ledger, list[dict]]:
    from pathlib import Path

    ledger = open_ledger(db)
    recorder = Recorder(ledger, inspector, station, "watch")
    payloads = []
    for path in sorted(Path(SAMPLES).glob("*.jpg"))[:count]:
        result = inspector.inspect(path)
        payloads.append(recorder.record(result, str(path), "sha-" + path.name, f"{station}\n{path.name}"))
    return ledger, payloads


def test_a_row_holds_what_the_line_needs_and_the_payload_is_the_apis(db, neu_inspector):
    ledger, payloads = _recorded(db, neu_inspector)
    row = ledger.get(payloads[0]["id"])
    assert row["station"] == "line1" and row["source"] == "watch"
    assert row["image"].endswith("crazing_2.jpg") and row["sha256"] == "sha-crazing_2.jpg"
    assert row["model"] == neu_inspector.model_name and row["engine"] == "onnxruntime"
    assert row["precision"] == "fp32" and row["task"] == "cls"
    assert row["verdict"] == "crazing" and row["defective"] is True and row["types"] == ["crazing"]
    assert row["classes"] == neu_inspector.classes and row["ms"] > 0 and row["review"] is None
    assert abs(row["time"] - time.time()) < 120
    api = neu_inspector.inspect(row["image"]).to_dict()
    stored = json.loads(row["payload"])
    assert {k: stored[k] for k in api if k != "ms"} == {k: api[k] for k in api if k != "ms"}
    assert stored["station"] == "line1" and stored["model"] == neu_inspector.model_name
    ledger.close()


def test_filters_select_by_time_verdict_type_model_and_station(db, neu_inspector):
    ledger, payloads = _recorded(db, neu_inspector, count=6)
    Recorder(ledger, neu_inspector, "line2", "serve").record(
        neu_inspector.inspect(f"{SAMPLES}/patches_2.jpg"), "p.jpg"
    )
    assert ledger.count() == 7 and ledger.count("line2") == 1
    assert {r["verdict"] for r in ledger.query(verdict="inclusion")} == {"inclusion"}
    assert len(ledger.query(defect_type="crazing")) == 2
    assert [r["station"] for r in ledger.query(station="line2")] == ["line2"]
    assert ledger.query(model="no such model") == [] and len(ledger.query(model="lw@0.35")) == 7
    assert ledger.query(since=time.time() + 60) == [] and len(ledger.query(until=time.time() + 60)) == 7
    newest = ledger.query(limit=2, newest_first=True)
    assert [r["id"] for r in newest] == sorted((r["id"] for r in newest), reverse=True)
    assert [r["id"] for r in ledger.query(after_id=payloads[3]["id"])] == [
        payloads[4]["id"],
        payloads[5]["id"],
        payloads[5]["id"] + 1,
    ]
    ledger.close()


def test_the_same_image_under_the_same_key_is_recorded_once(db, neu_inspector):
    ledger, payloads = _recorded(db, neu_inspector, count=2)
    recorder = Recorder(ledger, neu_inspector, "line1", "watch")
    again = recorder.record(
        neu_inspector.inspect(f"{SAMPLES}/crazing_2.jpg"), "x", "sha", "line1\ncrazing_2.jpg"
    )
    assert again is None and ledger.count() == 2
    assert ledger.has_key("line1\ncrazing_2.jpg")["id"] == payloads[0]["id"]
    assert ledger.has_key("line1\nnever.jpg") is None
    ledger.close()


def test_reviews_are_stored_replaced_and_checked(db, neu_inspector):
    ledger, payloads = _recorded(db, neu_inspector, count=2)
    first = payloads[0]["id"]
    ledger.review(first, Review("false_alarm", note="scratch on the fixture"))
    ledger.review(first, Review("wrong_type", label="patches", boxes=((1, 2, 30, 40),), reviewer="ana"))
    review = ledger.get(first)["review"]
    assert review["kind"] == "wrong_type" and review["label"] == "patches" and review["reviewer"] == "ana"
    assert review["boxes"] == [[1, 2, 30, 40]] and review["note"] is None
    assert [r["id"] for r in ledger.query(reviewed=True)] == [first]
    assert [r["id"] for r in ledger.query(reviewed=False)] == [payloads[1]["id"]]
    with pytest.raises(InputError, match="review kind"):
        ledger.review(first, Review("maybe"))
    with pytest.raises(InputError, match="no result 999"):
        ledger.review(999, Review("correct"))
    ledger.close()


def test_a_sink_delivers_what_is_recorded_after_it_started_in_order_once(db, neu_inspector):
    ledger, _ = _recorded(db, neu_inspector, count=2)
    assert ledger.pending("mqtt:a") == []  # the history before the sink is not sent
    recorder = Recorder(ledger, neu_inspector, "line1", "watch")
    later = [
        recorder.record(neu_inspector.inspect(f"{SAMPLES}/patches_2.jpg"), f"p{i}.jpg") for i in range(3)
    ]
    pending = ledger.pending("mqtt:a")
    assert [p["id"] for p in pending] == [p["id"] for p in later]
    assert json.loads(pending[0]["payload"])["id"] == later[0]["id"]  # the payload carries the ledger's id
    ledger.delivered("mqtt:a", [later[0]["id"]])
    ledger.delivered("mqtt:a", [later[0]["id"]])  # twice is once
    assert [p["id"] for p in ledger.pending("mqtt:a")] == [later[1]["id"], later[2]["id"]]
    assert ledger.pending("mqtt:a", station="elsewhere") == []
    assert set(ledger.delivery_times("mqtt:a")) == {later[0]["id"]}
    ledger.close()


def test_an_older_database_is_migrated_and_keeps_its_rows(tmp_path):
    path = tmp_path / "old.db"
    connection = sqlite3.connect(path)
    connection.execute("CREATE TABLE lwcnn_schema (version INTEGER NOT NULL)")
    connection.execute("INSERT INTO lwcnn_schema (version) VALUES (1)")
    for statement in _migrations("INTEGER PRIMARY KEY AUTOINCREMENT")[0]:  # version 1: no reviews yet
        connection.execute(statement)
    connection.execute(
        "INSERT INTO results (time, station, source, image, model, task, verdict, defective, payload) "
        "VALUES (1.0, 's', 'watch', 'a.png', 'm', 'cls', 'OK', 0, '{}')"
    )
    connection.commit()
    connection.close()
    ledger = open_ledger(path)
    assert ledger.version() == SCHEMA_VERSION
    assert [r["image"] for r in ledger.query()] == ["a.png"]
    ledger.review(1, Review("escape", boxes=((0, 0, 2, 2),)))  # the new table works
    assert ledger.get(1)["review"]["kind"] == "escape"
    ledger.close()


def test_a_newer_database_or_a_folder_is_refused_with_one_line(tmp_path):
    path = tmp_path / "new.db"
    open_ledger(path).close()
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE lwcnn_schema SET version = 99")
    with pytest.raises(ConfigError, match="schema version 99, newer"):
        open_ledger(path)
    with pytest.raises(ConfigError, match="is a folder"):
        open_ledger(tmp_path)
    (tmp_path / "junk.db").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(ConfigError, match=r"junk\.db: not a usable SQLite database"):
        open_ledger(tmp_path / "junk.db")


def test_an_unreachable_postgresql_server_is_one_line_without_the_password():
    pytest.importorskip("psycopg")
    with pytest.raises(ConfigError, match=r"postgresql://me:\*\*\*@127.0.0.1:9/x: cannot connect"):
        open_ledger("postgresql://me:secret@127.0.0.1:9/x")


def test_the_dashboards_counts_are_made_in_the_database(db, neu_inspector, seg_inspector):
    from pathlib import Path

    ledger, payloads = _recorded(db, neu_inspector, count=6)
    recorder = Recorder(ledger, seg_inspector, "line1", "watch")
    scores = []
    for path in sorted(Path("samples/kolektorsdd").glob("*.jpg")):
        scores.append(recorder.record(seg_inspector.inspect(path), str(path))["score"])
    since = time.time() - 3600
    buckets = ledger.rate_counts(since, since, 600.0)  # all nine were recorded in the sixth 10 minutes
    assert buckets == [(5, 9, 6 + sum(s > seg_inspector.threshold for s in scores))]
    verdicts = [p["verdict"] for p in payloads]
    expected = {v: verdicts.count(v) for v in verdicts}
    assert ledger.type_counts(since) == {**expected, "defect": 2}
    assert ledger.type_counts(since, station="elsewhere") == {}
    low, middle, high = sorted(scores)
    counts = ledger.what_if((middle + high) / 2, since, station="line1")
    # NEU has no OK class: its six are defective at any threshold; of the three segmented, one stays
    assert counts == {"total": 9, "defective_now": 8, "defective_at_threshold": 7, "newly_defective": 0,
                      "newly_ok": 1}  # fmt: skip
    assert ledger.what_if(low / 2, since)["newly_defective"] == 1
    ledger.close()


def test_old_results_are_pruned_with_their_pictures_but_reviews_are_kept(db, seg_inspector, tmp_path):
    from pathlib import Path

    from lwcnn.data.images import read_image

    ledger = open_ledger(db)
    recorder = Recorder(ledger, seg_inspector, "line1", "serve", tmp_path / "store", keep="all")
    ids = []
    for path in sorted(Path("samples/kolektorsdd").glob("*.jpg")):
        pixels = read_image(path, 1)
        result = seg_inspector.inspect(pixels, path.name)
        result.pixels = pixels
        ids.append(recorder.record(result, path.name, image_bytes=(path.read_bytes(), ".jpg"))["id"])
    recorder.flush()
    ledger.review(ids[0], Review("correct"))
    ledger.start_sink("mqtt:a")
    ledger.delivered("mqtt:a", [ids[1]])  # its delivery goes with it
    deleted, files = ledger.prune(time.time() + 1)
    assert deleted == 2 and [r["id"] for r in ledger.query()] == [ids[0]]  # the reviewed one stays
    assert len(files) == 6 and all(Path(f).is_file() for f in files)  # overlay, mask, upload of each
    assert ledger.prune(time.time() + 1, include_reviewed=True)[0] == 1 and ledger.count() == 0
    recorder.close()
    ledger.close()
