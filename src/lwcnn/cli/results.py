"""``lwcnn results``: what the results database holds (a time range, a verdict, a type, a model), as a
table, CSV or JSON; ``lwcnn results export --reviewed OUT``: the reviewed images with their
corrected labels, in lwcnn's own layout, to fine-tune on."""

from __future__ import annotations

import argparse
import csv
import datetime
import io
import json
import re
import sys

from lwcnn.errors import ConfigError

#: The columns ``lwcnn results`` prints (CSV and the table); JSON has every field.
COLUMNS = (
    "id",
    "time",
    "station",
    "image",
    "verdict",
    "score",
    "types",
    "model",
    "engine",
    "precision",
    "ms",
    "review",
)
_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_time(text: str | None, option: str) -> float | None:
    """``2026-12-01``, ``2026-12-01T06:00`` (local time unless it names a zone), or a span back from
    now (``30m``, ``8h``, ``7d``) as a UNIX time."""
    if text is None:
        return None
    found = _RELATIVE.match(text.strip().lower())
    if found:
        return datetime.datetime.now(datetime.timezone.utc).timestamp() - float(found[1]) * _SECONDS[found[2]]
    try:
        moment = datetime.datetime.fromisoformat(text.strip())
    except ValueError:
        raise ConfigError(
            f"{option}: expected a date, a date and time (ISO 8601) or a span such as 8h, got {text!r}"
        ) from None
    return moment.astimezone().timestamp() if moment.tzinfo is None else moment.timestamp()


def _add_db(parser: argparse.ArgumentParser, default) -> None:
    parser.add_argument(
        "--db",
        default=default,
        metavar="FILE_OR_URL",
        help="results database: SQLite file or postgresql:// URL (default ./lwcnn-results.db)",
    )


def _add_filters(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--since", default=None, help="from this time: 2026-12-01T06:00, or back from now: 8h, 7d"
    )
    parser.add_argument("--until", default=None, help="before this time (same forms)")
    parser.add_argument("--verdict", default=None, help="only this verdict (OK, defective, or a class)")
    parser.add_argument("--defective", action="store_true", default=None, help="only defective results")
    parser.add_argument("--type", default=None, dest="defect_type", help="only results with this defect type")
    parser.add_argument("--model", default=None, help="only results of models whose name contains this")
    parser.add_argument("--station", default=None, help="only this station's results")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "results",
        help="query the results database; export reviewed images for training",
        description=(
            "Results recorded by inspect/watch/serve --db, oldest first, as a table (default), "
            "CSV or JSON. 'lwcnn results export --reviewed OUT' writes the images operators "
            "reviewed with their corrected labels, for 'lwcnn train OUT --init-from MODEL'."
        ),
    )
    _add_db(parser, "lwcnn-results.db")
    _add_filters(parser)
    parser.add_argument("--reviewed", action="store_true", default=None, help="only reviewed results")
    parser.add_argument("--limit", type=int, default=None, help="at most this many (the newest)")
    parser.add_argument("--format", choices=("table", "csv", "json"), default="table", help="output format")
    parser.add_argument("--json", action="store_true", help="the same as --format json")
    parser.add_argument("--out", default=None, metavar="FILE", help="write to FILE instead of the screen")
    parser.set_defaults(func=run)
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    export = actions.add_parser("export", help="write reviewed images with their corrected labels")
    _add_db(export, argparse.SUPPRESS)
    export.add_argument("--reviewed", required=True, metavar="OUT", help="a new folder for the images")
    _add_filters(export)
    export.add_argument("--json", action="store_true", help="print what was written as one JSON object")
    export.set_defaults(func=run_export)
    prune = actions.add_parser("prune", help="delete old results and their pictures (retention)")
    _add_db(prune, argparse.SUPPRESS)
    prune.add_argument(
        "--before", required=True, help="delete what was recorded before: 90d, 2026-06-01, ..."
    )
    prune.add_argument("--include-reviewed", action="store_true",
                       help="also reviewed results (kept by default: they are training data)")  # fmt: skip
    prune.add_argument("--json", action="store_true", help="print what was deleted as one JSON object")
    prune.set_defaults(func=run_prune)


def _filters(args: argparse.Namespace) -> dict:
    return {
        "since": parse_time(args.since, "--since"),
        "until": parse_time(args.until, "--until"),
        "verdict": args.verdict,
        "defective": args.defective,
        "defect_type": args.defect_type,
        "model": args.model,
        "station": args.station,
    }


def _open(db: str):
    from pathlib import Path

    from lwcnn.station.ledger import open_ledger

    if not db.startswith(("postgresql://", "postgres://")) and not Path(db).expanduser().is_file():
        raise ConfigError(f"{db}: no such results database (inspect, watch or serve with --db write one)")
    return open_ledger(db)


def run(args: argparse.Namespace) -> int:
    from lwcnn.fileio import atomic_write_text

    ledger = _open(args.db)
    try:
        rows = ledger.query(
            **_filters(args), reviewed=args.reviewed, limit=args.limit, newest_first=args.limit is not None
        )
    finally:
        ledger.close()
    rows.sort(key=lambda row: row["id"])
    fmt = "json" if args.json else args.format
    if fmt == "json":
        for row in rows:
            row["payload"] = json.loads(row["payload"])
        text = json.dumps({"count": len(rows), "results": rows}) + "\n"
    else:
        flat = [_flat(row) for row in rows]
        text = _csv(flat) if fmt == "csv" else _table(flat)
    if args.out:
        atomic_write_text(args.out, text)
        print(f"lwcnn results: {len(rows)} result(s) in {args.out}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def _flat(row: dict) -> dict:
    when = datetime.datetime.fromtimestamp(row["time"]).astimezone().isoformat(timespec="seconds")
    review = row["review"]
    return {
        **{c: row.get(c) for c in COLUMNS},
        "time": when,
        "types": " ".join(row["types"]),
        "score": f"{row['score']:.4f}",
        "ms": f"{row['ms']:.1f}",
        "review": ""
        if review is None
        else (review["kind"] + (f":{review['label']}" if review["label"] else "")),
    }


def _csv(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def _table(rows: list[dict]) -> str:
    from lwcnn.tables import format_table

    shown = ("id", "time", "station", "image", "verdict", "score", "types", "review")
    return format_table(rows, [(c, c) for c in shown]) + f"\n{len(rows)} result(s)\n"


def run_export(args: argparse.Namespace) -> int:
    from lwcnn.station.reviewed import export_reviewed

    ledger = _open(getattr(args, "db", "lwcnn-results.db"))
    try:
        report = export_reviewed(ledger, args.reviewed, **_filters(args))
    finally:
        ledger.close()
    if args.json:
        print(json.dumps(report.to_dict()))
    else:
        print(
            f"lwcnn results: {report.exported} reviewed image(s) exported to {report.out} ({report.layout} "
            f"layout), {report.skipped} not (see reviews.csv); fine-tune with: lwcnn train {report.out} "
            f"--init-from MODEL",
            file=sys.stderr,
        )
    return 0


def run_prune(args: argparse.Namespace) -> int:
    from pathlib import Path

    before = parse_time(args.before, "--before")
    ledger = _open(getattr(args, "db", "lwcnn-results.db"))
    try:
        deleted, files = ledger.prune(before, include_reviewed=args.include_reviewed)
    finally:
        ledger.close()
    removed = 0
    for name in files:
        try:
            Path(name).unlink()
            removed += 1
        except FileNotFoundError:
            pass
    if args.json:
        print(json.dumps({"deleted": deleted, "files_removed": removed}))
    else:
        when = datetime.datetime.fromtimestamp(before).astimezone().isoformat(timespec="minutes")
        print(f"lwcnn results: {deleted} result(s) recorded before {when} deleted, {removed} picture(s) "
              "removed", file=sys.stderr)  # fmt: skip
    return 0
