"""The operators' word back into training: ``lwcnn results export --reviewed OUT`` writes lwcnn's own
layouts (class folders; images + masks) with the corrected labels, and the export trains."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lwcnn.cli import main
from lwcnn.errors import ConfigError
from lwcnn.station.ledger import Review, open_ledger
from lwcnn.station.records import Recorder
from lwcnn.station.reviewed import export_reviewed
from lwcnn.station.watch import Station
from tests.synthetic import make_class_folders

KOLEKTOR = sorted(Path("samples/kolektorsdd").glob("*.jpg"))


def _watched(tmp_path: Path, inspector, images: list[Path], keep: str = "all"):
    folder = tmp_path / "in"
    folder.mkdir()
    for path in images:  # named by class and file: the same file name may be in two classes
        shutil.copyfile(path, folder / f"{path.parent.name}-{path.name}")
    ledger = open_ledger(tmp_path / "r.db")
    recorder = Recorder(ledger, inspector, "t", "watch", tmp_path / "store", keep)
    Station(folder, recorder, settle_s=0.05).run(stop_when_idle_s=0.5)
    return ledger, {Path(r["image"]).name: r for r in ledger.query()}


def test_segmenter_reviews_become_masks_with_the_models_own_beside_them(tmp_path, seg_inspector):
    ledger, rows = _watched(tmp_path, seg_inspector, KOLEKTOR)
    ok, bad = rows["kolektorsdd-kos03_Part0.jpg"], rows["kolektorsdd-kos04_Part3.jpg"]
    assert not ok["defective"] and bad["defective"]
    ledger.review(ok["id"], Review("escape", boxes=((10, 20, 40, 60),)))
    ledger.review(bad["id"], Review("false_alarm"))
    ledger.review(rows["kolektorsdd-kos03_Part2.jpg"]["id"], Review("escape"))  # no box: cannot be a mask
    out = tmp_path / "reviewed"
    report = export_reviewed(ledger, out)
    assert (report.layout, report.exported, report.skipped) == ("masks", 2, 1)
    escape = np.asarray(Image.open(out / "masks" / f"{ok['id']}-kolektorsdd-kos03_Part0.png"))
    ok_payload, bad_payload = json.loads(ok["payload"]), json.loads(bad["payload"])
    assert escape.shape == (ok_payload["height"], ok_payload["width"])
    assert escape[20:60, 10:40].min() == 255 and escape.sum() == 255 * 30 * 40
    assert not (
        out / "masks" / f"{bad['id']}-kolektorsdd-kos04_Part3.png"
    ).exists()  # a false alarm: defect-free
    model_mask = np.asarray(Image.open(out / "model" / "masks" / f"{bad['id']}-kolektorsdd-kos04_Part3.png"))
    assert (model_mask > 0).sum() == bad_payload["area"]
    assert "needs a box" in next(r["note"] for r in csv.DictReader(open(out / "reviews.csv")) if r["note"])
    from lwcnn.data.masked_images import scan_segmentation

    scanned = scan_segmentation(out)
    assert scanned.layout == "masks" and len(scanned.samples) == 2
    with pytest.raises(ConfigError, match="not empty"):
        export_reviewed(ledger, out)
    ledger.close()


def test_classifier_reviews_become_class_folders_that_fine_tune(tmp_path):
    data = make_class_folders(tmp_path / "parts", per_class=8, size=32)
    run = tmp_path / "run"
    assert (
        main(
            [
                "train",
                str(data),
                "--out",
                str(run),
                "model.name=lw@0.25",
                "train.epochs=1",
                "train.low_res=0",
                "--json",
            ]
        )
        == 0
    )
    from lwcnn.runtime import Inspector

    inspector = Inspector(str(run), threads=1)
    images = sorted((data / "vertical").glob("*.png")) + sorted((data / "checker").glob("*.png"))
    ledger, rows = _watched(tmp_path, inspector, images)
    for path in images:
        row = rows[f"{path.parent.name}-{path.name}"]
        right = path.parent.name
        kind = "correct" if row["verdict"] == right else "wrong_type"
        ledger.review(row["id"], Review(kind, label=right))
    db = tmp_path / "r.db"
    ledger.close()
    out = tmp_path / "reviewed"
    assert main(["results", "export", "--db", str(db), "--reviewed", str(out), "--json"]) == 0
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["checker", "vertical"]
    assert len(list((out / "vertical").glob("*.png"))) == 8
    tuned = tmp_path / "tuned"
    assert (
        main(
            [
                "train",
                str(out),
                "--out",
                str(tuned),
                "--init-from",
                str(run),
                "model.name=lw@0.25",
                "train.epochs=1",
                "train.low_res=0",
                "--json",
            ]
        )
        == 0
    )
    card = json.loads((tuned / "best.json").read_text())
    assert card["classes"] == ["checker", "vertical"]
