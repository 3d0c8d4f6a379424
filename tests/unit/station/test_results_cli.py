"""``lwcnn inspect --db``, ``lwcnn results`` (filters, table, CSV, JSON) and ``lwcnn watch`` on a
runtime-only install (torch blocked), as a user runs them."""

from __future__ import annotations

import csv
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lwcnn.cli import main
from lwcnn.cli.results import parse_time
from lwcnn.errors import ConfigError

REPO = Path(__file__).resolve().parents[3]
NEU = REPO / "samples" / "neu"


@pytest.fixture
def recorded(tmp_path, capsys) -> Path:
    db = tmp_path / "results.db"
    assert (
        main(
            [
                "inspect",
                str(NEU),
                "--out",
                str(tmp_path / "out"),
                "--db",
                str(db),
                "--station",
                "s1",
                "--pictures",
                "defective",
                "--json",
            ]
        )
        == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert report["summary"]["db"] == str(db)
    return db


def test_inspect_records_every_result_with_its_pictures(recorded, capsys):
    assert main(["results", "--db", str(recorded), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["results"]
    assert len(rows) == len(list(NEU.glob("*.jpg"))) and {r["station"] for r in rows} == {"s1"}
    assert all(r["source"] == "inspect" and r["sha256"] and Path(r["overlay"]).is_file() for r in rows)
    assert all(r["payload"]["class"] == r["verdict"] for r in rows)


def test_results_filter_and_print_csv_and_a_table(recorded, capsys):
    assert main(["results", "--db", str(recorded), "--type", "scratches", "--format", "csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert len(rows) == 2 and {r["verdict"] for r in rows} == {"scratches"}
    assert main(["results", "--db", str(recorded), "--limit", "3", "--since", "1h"]) == 0
    table = capsys.readouterr().out
    assert table.strip().endswith("3 result(s)") and "scratches_4.jpg" in table
    assert main(["results", "--db", str(recorded), "--until", "2000-01-01", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["count"] == 0


def test_time_options_take_dates_and_spans():
    assert parse_time("2026-12-01T06:00+00:00", "--since") == 1796104800.0
    assert parse_time("8h", "--since") == pytest.approx(parse_time("480m", "--since"), abs=1)
    with pytest.raises(ConfigError, match="--since: expected a date"):
        parse_time("yesterday", "--since")


def test_messages_need_a_database_and_a_missing_database_is_one_line(tmp_path, capsys):
    assert main(["inspect", str(NEU), "--out", str(tmp_path / "o"), "--mqtt", "mqtt://127.0.0.1"]) == 2
    assert "give --db too" in capsys.readouterr().err
    assert main(["results", "--db", str(tmp_path / "none.db")]) == 2
    assert "no such results database" in capsys.readouterr().err


def test_watch_runs_without_torch(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for path in sorted(NEU.glob("*.jpg"))[:3]:
        shutil.copyfile(path, folder / path.name)
    script = f"""
import sys
class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "albumentations", "matplotlib", "safetensors"):
            raise ImportError("blocked: " + name)
sys.meta_path.insert(0, NoTorch())
from lwcnn.cli import main
status = main(["watch", {str(folder)!r}, "--db", {str(tmp_path / "r.db")!r}, "--sort", "move",
               "--exit-when-idle", "1", "--settle", "0.1", "--json"])
assert "torch" not in sys.modules
sys.exit(status)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1])["inspected"] == 3
    assert len(list((folder / "NG").rglob("*.jpg"))) == 3


def test_results_prune_deletes_what_is_older(recorded, capsys):
    assert main(["results", "prune", "--db", str(recorded), "--before", "2000-01-01", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"deleted": 0, "files_removed": 0}
    assert main(["results", "prune", "--db", str(recorded), "--before", "2100-01-01", "--json"]) == 0
    pruned = json.loads(capsys.readouterr().out)
    assert pruned == {"deleted": len(list(NEU.glob("*.jpg"))), "files_removed": 0}  # inspect's are the user's
    assert main(["results", "--db", str(recorded), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["count"] == 0
