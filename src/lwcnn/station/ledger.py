"""Every verdict in a database: SQLite (a file, WAL: one writer, many readers) or PostgreSQL (a
``postgresql://`` URL, for several stations). The ledger is also what makes a hot folder safe to
restart (an image recorded is never inspected again) and the outbox of the message sinks (a
result not yet delivered to a sink stays pending there until it is).

The schema is versioned (table ``lwcnn_schema``); :data:`MIGRATIONS` brings any older database up
to :data:`SCHEMA_VERSION` when it is opened, in one transaction per step. SQL is written once with
``?`` placeholders; PostgreSQL's driver gets ``%s``.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lwcnn.errors import ConfigError, InputError
from lwcnn.fileio import printable_path

SCHEMA_VERSION = 2
#: The verdicts an operator's review can give: the model was right, a false alarm (it said
#: defective), an escape (it said OK), or the right verdict with the wrong defect type.
REVIEW_KINDS = ("correct", "false_alarm", "escape", "wrong_type")

# Columns of ``results``, in order (``id`` first). ``types`` (the defect types or class found),
# ``classes`` (the model's) and ``regions`` are JSON text;
# ``payload`` is the JSON the HTTP API answers for the image, with the ledger's fields added.
RESULT_COLUMNS = (
    "id",
    "time",
    "station",
    "source",
    "image",
    "sha256",
    "ledger_key",
    "model",
    "model_commit",
    "engine",
    "precision",
    "task",
    "classes",
    "verdict",
    "defective",
    "score",
    "defect_score",
    "threshold",
    "min_area",
    "types",
    "regions",
    "ms",
    "total_ms",
    "file_time",
    "stored_image",
    "overlay",
    "mask",
    "payload",
)


def _migrations(id_column: str) -> list[list[str]]:
    """The schema's steps; step ``n`` brings version ``n`` to ``n + 1``."""
    return [
        [  # 0 -> 1: the results and the delivery outbox
            f"""CREATE TABLE results (
                id {id_column}, time DOUBLE PRECISION NOT NULL, station TEXT NOT NULL,
                source TEXT NOT NULL, image TEXT NOT NULL, sha256 TEXT, ledger_key TEXT UNIQUE,
                model TEXT NOT NULL, model_commit TEXT, engine TEXT, precision TEXT, task TEXT NOT NULL,
                classes TEXT,
                verdict TEXT NOT NULL, defective INTEGER NOT NULL, score DOUBLE PRECISION,
                defect_score DOUBLE PRECISION, threshold DOUBLE PRECISION, min_area INTEGER,
                types TEXT, regions TEXT, ms DOUBLE PRECISION, total_ms DOUBLE PRECISION,
                file_time DOUBLE PRECISION, stored_image TEXT, overlay TEXT, mask TEXT,
                payload TEXT NOT NULL)""",
            "CREATE INDEX results_time ON results (time)",
            "CREATE INDEX results_station_time ON results (station, time)",
            """CREATE TABLE deliveries (result_id BIGINT NOT NULL REFERENCES results (id),
                sink TEXT NOT NULL, time DOUBLE PRECISION NOT NULL, PRIMARY KEY (result_id, sink))""",
            # a sink delivers the results recorded after it was first used, not the whole history
            "CREATE TABLE sinks (name TEXT PRIMARY KEY, start_id BIGINT NOT NULL, created DOUBLE PRECISION)",
        ],
        [  # 1 -> 2: operators' reviews
            """CREATE TABLE reviews (result_id BIGINT PRIMARY KEY REFERENCES results (id),
                time DOUBLE PRECISION NOT NULL, kind TEXT NOT NULL, label TEXT, boxes TEXT,
                note TEXT, reviewer TEXT)""",
        ],
    ]


@dataclass(frozen=True)
class Review:
    """An operator's word on one result: ``kind`` one of :data:`REVIEW_KINDS`; ``label`` the right
    class (classifiers) or defect type (typed segmenters); ``boxes`` where the defect is
    ([x0, y0, x1, y1] in image pixels, end exclusive) for an escape or a corrected segmenter mask."""

    kind: str
    label: str | None = None
    boxes: tuple[tuple[int, int, int, int], ...] = ()
    note: str | None = None
    reviewer: str | None = None


class Ledger:
    """One database of results. Thread-safe (one connection behind a lock); open one per process.

    >>> ledger = open_ledger("results.db")             # doctest: +SKIP
    >>> ledger.record(row)                             # doctest: +SKIP
    """

    def __init__(
        self, connection: Any, dialect: str, where: str, reconnect: Callable[[], Any] | None = None
    ) -> None:
        self._db = connection
        self._reconnect = reconnect
        self.dialect = dialect
        self.where = where
        self._lock = threading.RLock()
        self._migrate()

    # -- plumbing ---------------------------------------------------------------------------------
    def _sql(self, text: str) -> str:
        return text.replace("?", "%s") if self.dialect == "postgresql" else text

    @contextmanager
    def _transaction(self) -> Iterator[Any]:
        with self._lock:
            if self._reconnect is not None and (self._db.closed or self._db.broken):
                # the server restarted or the network dropped: the operation that saw it failed (its
                # caller retries), this one opens a new connection
                self._db = self._reconnect()
            cursor = self._db.cursor()
            try:
                yield cursor
                self._db.commit()
            except BaseException:
                with suppress(Exception):  # a broken connection cannot roll back: it is replaced
                    self._db.rollback()
                raise
            finally:
                with suppress(Exception):
                    cursor.close()

    def _rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        with self._transaction() as cursor:
            cursor.execute(self._sql(sql), tuple(params))
            return list(cursor.fetchall())

    def version(self) -> int:
        """The schema version the database is at."""
        with self._transaction() as cursor:
            return self._version(cursor)

    def _version(self, cursor: Any) -> int:
        if self.dialect == "sqlite":
            cursor.execute("SELECT name FROM sqlite_master WHERE type='table' AND name='lwcnn_schema'")
        else:
            cursor.execute("SELECT to_regclass('lwcnn_schema')")
        found = cursor.fetchone()
        if not found or found[0] is None:
            return 0
        cursor.execute("SELECT version FROM lwcnn_schema")
        row = cursor.fetchone()
        return int(row[0]) if row else 0

    def _migrate(self, target: int = SCHEMA_VERSION) -> None:
        id_column = (
            "INTEGER PRIMARY KEY AUTOINCREMENT" if self.dialect == "sqlite" else "BIGSERIAL PRIMARY KEY"
        )
        steps = _migrations(id_column)
        with self._transaction() as cursor:
            if self.dialect == "postgresql":  # two stations starting at once migrate one after the other
                cursor.execute("SELECT pg_advisory_xact_lock(7355608)")
            version = self._version(cursor)
            if version > SCHEMA_VERSION:
                raise ConfigError(
                    f"{self.where}: the results database is at schema version {version}, newer than this "
                    f"lwcnn's ({SCHEMA_VERSION}): upgrade lwcnn"
                )
            if version == 0:
                cursor.execute("CREATE TABLE lwcnn_schema (version INTEGER NOT NULL)")
                cursor.execute("INSERT INTO lwcnn_schema (version) VALUES (0)")
            for step in range(version, target):
                for statement in steps[step]:
                    cursor.execute(statement)
                cursor.execute(self._sql("UPDATE lwcnn_schema SET version = ?"), (step + 1,))

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # -- writing ----------------------------------------------------------------------------------
    def record(self, row: dict[str, Any]) -> int | None:
        """Store one result (a mapping of :data:`RESULT_COLUMNS` but ``id``; missing ones are NULL);
        its id, or None when a result with the same ``ledger_key`` is there already."""
        columns = [c for c in RESULT_COLUMNS[1:] if c in row]
        values = [_column_value(c, row[c]) for c in columns]
        placeholders = ", ".join("?" for _ in columns)
        sql = f"INSERT INTO results ({', '.join(columns)}) VALUES ({placeholders}) ON CONFLICT DO NOTHING"
        with self._transaction() as cursor:
            if self.dialect == "postgresql":
                cursor.execute(self._sql(sql + " RETURNING id"), values)
                found = cursor.fetchone()
                return None if found is None else int(found[0])
            cursor.execute(sql, values)
            return int(cursor.lastrowid) if cursor.rowcount == 1 else None

    def set_files(self, result_id: int, **paths: str | None) -> None:
        """Record where a result's image, overlay or mask were kept (after they were written)."""
        allowed = {"stored_image", "overlay", "mask"}
        if not paths or set(paths) - allowed:
            raise ValueError(f"set_files takes {sorted(allowed)}")
        assignments = ", ".join(f"{name} = ?" for name in paths)
        with self._transaction() as cursor:
            cursor.execute(
                self._sql(f"UPDATE results SET {assignments} WHERE id = ?"), (*paths.values(), result_id)
            )

    def has_key(self, ledger_key: str) -> dict[str, Any] | None:
        """The result recorded under ``ledger_key`` (a hot folder's image and content), or None."""
        rows = self.query(ledger_key=ledger_key, limit=1)
        return rows[0] if rows else None

    def review(self, result_id: int, review: Review) -> None:
        """Store (or replace) an operator's review of a result."""
        if review.kind not in REVIEW_KINDS:
            raise InputError(f"review kind must be one of {', '.join(REVIEW_KINDS)}, got {review.kind!r}")
        if not self.get(result_id):
            raise InputError(f"no result {result_id} in {self.where}")
        boxes = json.dumps([list(map(int, box)) for box in review.boxes])
        values = (result_id, time.time(), review.kind, review.label, boxes, review.note, review.reviewer)
        with self._transaction() as cursor:
            cursor.execute(self._sql("DELETE FROM reviews WHERE result_id = ?"), (result_id,))
            cursor.execute(
                self._sql(
                    "INSERT INTO reviews (result_id, time, kind, label, boxes, note, reviewer) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)"
                ),
                values,
            )

    def prune(
        self, before: float, include_reviewed: bool = False, batch: int = 1000
    ) -> tuple[int, list[str]]:
        """Delete the results recorded before ``before`` (UNIX time; reviewed ones only with
        ``include_reviewed``: they are training data) and their deliveries and reviews; the number
        deleted and the files that were theirs to delete (the overlays and masks a watch or the
        service kept, kept uploads; never an image a watch sorted into OK/ or NG/, nor what
        ``lwcnn inspect`` wrote into its output folder), for the caller to remove."""
        keep = "" if include_reviewed else " AND id NOT IN (SELECT result_id FROM reviews)"
        deleted, files = 0, []
        while True:
            with self._transaction() as cursor:
                sql = f"SELECT id, source, stored_image, overlay, mask FROM results WHERE time < ?{keep}"
                cursor.execute(self._sql(sql + " ORDER BY id LIMIT ?"), (before, batch))
                rows = cursor.fetchall()
                if not rows:
                    return deleted, files
                ids = [int(r[0]) for r in rows]
                marks = ", ".join("?" for _ in ids)
                for table, column in (
                    ("deliveries", "result_id"),
                    ("reviews", "result_id"),
                    ("results", "id"),
                ):
                    cursor.execute(self._sql(f"DELETE FROM {table} WHERE {column} IN ({marks})"), ids)
            for _, source, stored, overlay, mask in rows:
                if source == "inspect":  # its pictures are the inspection's output folder: the user's
                    continue
                files += [f for f in (overlay, mask, stored if source == "serve" else None) if f]
            deleted += len(rows)

    # -- the outbox -------------------------------------------------------------------------------
    def start_sink(self, name: str) -> int:
        """Register a sink (first use: it delivers what is recorded from now on); its start id."""
        with self._transaction() as cursor:
            cursor.execute(self._sql("SELECT start_id FROM sinks WHERE name = ?"), (name,))
            found = cursor.fetchone()
            if found:
                return int(found[0])
            cursor.execute("SELECT COALESCE(MAX(id), 0) FROM results")
            start = int(cursor.fetchone()[0])
            cursor.execute(
                self._sql(
                    "INSERT INTO sinks (name, start_id, created) VALUES (?, ?, ?) ON CONFLICT DO NOTHING"
                ),
                (name, start, time.time()),
            )
            return start

    def pending(self, sink: str, station: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Results not yet delivered to ``sink`` (oldest first), of one station or all."""
        start = self.start_sink(sink)
        where = "r.id > ? AND d.result_id IS NULL" + (" AND r.station = ?" if station is not None else "")
        params: list[Any] = [sink, start, *([station] if station is not None else []), int(limit)]
        rows = self._rows(
            f"SELECT r.id, r.payload FROM results r LEFT JOIN deliveries d ON d.result_id = r.id AND "
            f"d.sink = ? WHERE {where} ORDER BY r.id LIMIT ?",
            params,
        )
        # the id is the ledger's, known only after the row was written: it joins the payload here
        return [
            {"id": int(i), "payload": json.dumps({"id": int(i), **json.loads(payload)})}
            for i, payload in rows
        ]

    def delivered(self, sink: str, result_ids: Sequence[int]) -> None:
        """Mark results as delivered to ``sink``. Deliveries go in order (a sink acknowledges the
        oldest pending first), so the sink's watermark (``sinks.start_id``) moves up to the newest
        of them: a look for what is pending then reads only newer rows, however long the history."""
        if not result_ids:
            return
        now = time.time()
        newest = max(int(i) for i in result_ids)
        with self._transaction() as cursor:
            cursor.execute(self._sql("UPDATE sinks SET start_id = ? WHERE name = ? AND start_id < ?"),
                           (newest, sink, newest))  # fmt: skip
            for result_id in result_ids:
                cursor.execute(
                    self._sql(
                        "INSERT INTO deliveries (result_id, sink, time) VALUES (?, ?, ?) "
                        "ON CONFLICT DO NOTHING"
                    ),
                    (int(result_id), sink, now),
                )

    def delivery_times(self, sink: str) -> dict[int, float]:
        """When each result was delivered to ``sink`` (for latency figures)."""
        return {
            int(i): float(t)
            for i, t in self._rows("SELECT result_id, time FROM deliveries WHERE sink = ?", (sink,))
        }

    # -- reading ----------------------------------------------------------------------------------
    def get(self, result_id: int) -> dict[str, Any] | None:
        """One result with its review, or None."""
        rows = self.query(result_id=result_id, limit=1)
        return rows[0] if rows else None

    def query(
        self,
        since: float | None = None,
        until: float | None = None,
        verdict: str | None = None,
        defective: bool | None = None,
        defect_type: str | None = None,
        model: str | None = None,
        station: str | None = None,
        reviewed: bool | None = None,
        after_id: int | None = None,
        result_id: int | None = None,
        ledger_key: str | None = None,
        limit: int | None = None,
        newest_first: bool = False,
    ) -> list[dict[str, Any]]:
        """Results (each a dict of :data:`RESULT_COLUMNS`, ``types``/``regions`` parsed, and
        ``review``: None or the review's fields), filtered; oldest first unless ``newest_first``.
        ``since``/``until``: UNIX times; ``model``: a substring of the model's name."""
        clauses: list[str] = []
        params: list[Any] = []
        for column, op, value in (
            ("r.time", ">=", since),
            ("r.time", "<", until),
            ("r.verdict", "=", verdict),
            ("r.station", "=", station),
            ("r.id", ">", after_id),
            ("r.id", "=", result_id),
            ("r.ledger_key", "=", ledger_key),
        ):
            if value is not None:
                clauses.append(f"{column} {op} ?")
                params.append(value)
        if defective is not None:
            clauses.append("r.defective = ?")
            params.append(int(defective))
        if model is not None:
            clauses.append("r.model LIKE ?")
            params.append(f"%{model}%")
        if defect_type is not None:  # types is a JSON list of names: match the quoted name
            clauses.append("r.types LIKE ?")
            params.append(f'%"{defect_type}"%')
        if reviewed is not None:
            clauses.append("v.result_id IS " + ("NOT NULL" if reviewed else "NULL"))
        sql = (
            f"SELECT {', '.join('r.' + c for c in RESULT_COLUMNS)}, v.time, v.kind, v.label, v.boxes, "
            "v.note, v.reviewer FROM results r LEFT JOIN reviews v ON v.result_id = r.id"
        )
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY r.id" + (" DESC" if newest_first else "")
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        return [_result(row) for row in self._rows(sql, params)]

    def count(self, station: str | None = None) -> int:
        """How many results are recorded (of one station, or all)."""
        if station is None:
            return int(self._rows("SELECT COUNT(*) FROM results")[0][0])
        return int(self._rows("SELECT COUNT(*) FROM results WHERE station = ?", (station,))[0][0])

    def _period(self, since: float, station: str | None) -> tuple[str, list[Any]]:
        where, params = "time >= ?", [since]
        if station is not None:
            where, params = where + " AND station = ?", [*params, station]
        return where, params

    def rate_counts(
        self, since: float, first_edge: float, step_s: float, station: str | None = None
    ) -> list[tuple[int, int, int]]:
        """(bucket, results, defective) per time bucket of ``step_s`` seconds from ``first_edge``,
        counted in the database (a day at 20 images/s is 1.7 M rows: never read them one by one)."""
        where, params = self._period(since, station)
        offset = "(time - ?) / ?"
        bucket = f"FLOOR({offset})" if self.dialect == "postgresql" else f"CAST({offset} AS INTEGER)"
        rows = self._rows(
            f"SELECT {bucket} AS b, COUNT(*), SUM(defective) FROM results WHERE {where} "
            "GROUP BY b ORDER BY b",
            [first_edge, step_s, *params],
        )
        return [(int(b), int(n), int(d or 0)) for b, n, d in rows]

    def type_counts(self, since: float, station: str | None = None) -> dict[str, int]:
        """How many results hold each defect type (or defect class) in the period."""
        where, params = self._period(since, station)
        counts: dict[str, int] = {}
        for types, count in self._rows(
            f"SELECT types, COUNT(*) FROM results WHERE {where} GROUP BY types", params
        ):
            for name in json.loads(types or "[]"):
                counts[name] = counts.get(name, 0) + int(count)
        return counts

    def what_if(self, threshold: float, since: float, station: str | None = None) -> dict[str, int]:
        """What ``threshold`` on the stored defect scores would have decided in the period, counted in
        the database: results, defective now, defective at the threshold, and the changes."""
        where, params = self._period(since, station)
        above = "defect_score > ?"
        row = self._rows(
            f"SELECT COUNT(*), SUM(defective), SUM(CASE WHEN {above} THEN 1 ELSE 0 END), "
            f"SUM(CASE WHEN {above} AND defective = 0 THEN 1 ELSE 0 END), "
            f"SUM(CASE WHEN defective = 1 AND NOT ({above}) THEN 1 ELSE 0 END) FROM results WHERE {where}",
            [threshold, threshold, threshold, *params],
        )[0]
        total, now, at, up, down = (int(v or 0) for v in row)
        return {"total": total, "defective_now": now, "defective_at_threshold": at, "newly_defective": up,
                "newly_ok": down}  # fmt: skip


def _column_value(column: str, value: Any) -> Any:
    if column in ("types", "regions", "classes") and value is not None and not isinstance(value, str):
        return json.dumps(value)
    if column == "defective":
        return int(bool(value))
    return value


def _result(row: Sequence[Any]) -> dict[str, Any]:
    result = dict(zip(RESULT_COLUMNS, row[: len(RESULT_COLUMNS)], strict=True))
    result["defective"] = bool(result["defective"])
    for column, empty in (("types", []), ("regions", {}), ("classes", [])):
        result[column] = json.loads(result[column]) if result[column] else empty
    review_time, kind, label, boxes, note, reviewer = row[len(RESULT_COLUMNS) :]
    result["review"] = (
        None
        if kind is None
        else {
            "time": review_time,
            "kind": kind,
            "label": label,
            "boxes": json.loads(boxes or "[]"),
            "note": note,
            "reviewer": reviewer,
        }
    )
    return result


def open_ledger(where: str | Path) -> Ledger:
    """The results database at ``where``: a SQLite file (created with its folder if needed) or a
    ``postgresql://user:password@host:port/name`` URL (needs the ``line`` extra's psycopg)."""
    text = str(where)
    if text.startswith(("postgresql://", "postgres://")):
        try:
            import psycopg
        except ImportError:
            raise ConfigError(
                "a PostgreSQL results database needs psycopg: pip install 'lwcnn[line]'"
            ) from None

        def connect() -> Any:
            try:
                return psycopg.connect(text, connect_timeout=10)
            except psycopg.Error as error:
                raise ConfigError(
                    f"{_without_password(text)}: cannot connect ({str(error).strip()})"
                ) from None

        return Ledger(connect(), "postgresql", _without_password(text), reconnect=connect)
    path = Path(text).expanduser()
    if path.is_dir():
        raise ConfigError(f"{printable_path(path)}: is a folder; --db takes a database file or a URL")
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        connection = sqlite3.connect(str(path), timeout=30.0, check_same_thread=False)
        connection.execute("PRAGMA journal_mode=WAL")  # readers (the dashboard) never block the writer
        connection.execute("PRAGMA foreign_keys=ON")
    except sqlite3.DatabaseError as error:
        raise ConfigError(f"{printable_path(path)}: not a usable SQLite database ({error})") from None
    return Ledger(connection, "sqlite", printable_path(path))


def _without_password(url: str) -> str:
    head, sep, tail = url.partition("@")
    if not sep or ":" not in head.split("//", 1)[-1]:
        return url
    scheme, _, credentials = head.partition("//")
    return f"{scheme}//{credentials.split(':', 1)[0]}:***@{tail}"
