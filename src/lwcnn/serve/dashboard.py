"""The dashboard's API over a results database (``lwcnn serve --db``), and its page at ``/dashboard``.

- ``GET /v1/results``: recorded results, newest first (``after_id``, ``station``, ``defective``,
  ``limit``); ``GET /v1/results/{id}``: one, with its review;
- ``GET /v1/results/{id}/overlay`` and ``/image``: the kept overlay, and the image itself (a
  watched file where it now is, or an upload's kept copy), for the review;
- ``GET /v1/events``: server-sent events, one ``result`` event per new result of any station
  writing into the database (``watch`` in another process included), a comment every 15 s;
- ``GET /v1/stats``: the defect rate per hour or per shift and the count per type, over ``hours``;
- ``GET /v1/whatif?threshold=T``: what threshold ``T`` would have decided on the stored scores
  (nothing changes until it is applied);
- ``POST /v1/threshold`` (``{"threshold": T}``): apply it to this service's segmenter, from its
  next inspection until the service restarts (a watch in another process keeps its own);
- ``POST /v1/results/{id}/review``: an operator's review (``kind``: correct, false_alarm, escape,
  wrong_type; ``label``; ``boxes``; ``note``).

Files are served only where the database names them, so no request names a path.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import logging
from pathlib import Path
from typing import Annotated, Any

import anyio
from fastapi import Body, FastAPI, Query, Request
from fastapi.responses import FileResponse, StreamingResponse

from lwcnn.runtime.engine import Inspector
from lwcnn.serve.app import APIError
from lwcnn.station.ledger import REVIEW_KINDS, Ledger, Review

log = logging.getLogger("lwcnn.serve")

#: Seconds between two looks at the database for new results (the events stream).
EVENT_POLL_S = 0.5
#: Seconds between two keep-alive comments on an idle events stream.
HEARTBEAT_S = 15.0
#: The shifts (start hours, local time) ``/v1/stats?bucket=shift`` groups by: 06-14, 14-22, 22-06.
SHIFT_STARTS = (6, 14, 22)
#: Fields of a result that the dashboard's lists carry (the payload stays out: it can be large).
LIST_FIELDS = (
    "id",
    "time",
    "station",
    "source",
    "image",
    "model",
    "engine",
    "precision",
    "task",
    "verdict",
    "defective",
    "score",
    "defect_score",
    "threshold",
    "types",
    "regions",
    "ms",
    "total_ms",
    "review",
)
Limit = Annotated[int, Query(ge=1, le=1000)]
Hours = Annotated[float, Query(gt=0, le=24 * 366)]
Threshold = Annotated[float, Query(gt=0, lt=1)]
ReviewBody = Annotated[dict[str, Any], Body()]


def summary(row: dict[str, Any]) -> dict[str, Any]:
    """A result as the dashboard lists it, with whether it has pictures."""
    data = {k: row.get(k) for k in LIST_FIELDS}
    data["has_overlay"] = bool(row.get("overlay"))
    data["has_image"] = bool(row.get("stored_image") or row.get("image"))
    return data


def bucket_edges(bucket: str, now: float, hours: float) -> tuple[list[datetime.datetime], float]:
    """The local-time edges of the hour or shift buckets covering the last ``hours``, and the step."""
    start = datetime.datetime.fromtimestamp(now - hours * 3600).astimezone()
    if bucket == "hour":
        first = start.replace(minute=0, second=0, microsecond=0)
        step = datetime.timedelta(hours=1)
    else:
        earlier = [h for h in SHIFT_STARTS if h <= start.hour]
        first = start.replace(
            hour=earlier[-1] if earlier else SHIFT_STARTS[-1], minute=0, second=0, microsecond=0
        )
        if not earlier:  # before the first shift of the day: the night shift began the day before
            first -= datetime.timedelta(days=1)
        step = datetime.timedelta(hours=8)
    edges = [first]
    end = datetime.datetime.fromtimestamp(now).astimezone()
    while edges[-1] + step <= end:
        edges.append(edges[-1] + step)
    return edges, step.total_seconds()


def rate_buckets(ledger: Ledger, bucket: str, now: float, hours: float, station: str | None) -> list[dict]:
    """Results and defective ones per local hour or shift, oldest first, empty buckets included."""
    edges, step_s = bucket_edges(bucket, now, hours)
    buckets = [{"start": edge.isoformat(timespec="minutes"), "total": 0, "defective": 0} for edge in edges]
    for index, total, defective in ledger.rate_counts(
        now - hours * 3600, edges[0].timestamp(), step_s, station
    ):
        item = buckets[max(0, min(len(buckets) - 1, index))]
        item["total"] += total
        item["defective"] += defective
    for item in buckets:
        item["rate"] = item["defective"] / item["total"] if item["total"] else None
    return buckets


def add_dashboard(app: FastAPI, ledger: Ledger, static_dir: Path, inspector: Inspector) -> None:
    """Add the dashboard's routes over ``ledger`` to ``app`` (``inspector``: the service's model, whose
    segmenter threshold the what-if can apply)."""

    async def in_thread(function, *args, **kwargs):
        return await anyio.to_thread.run_sync(lambda: function(*args, **kwargs))

    def found(result_id: int) -> dict[str, Any]:
        row = ledger.get(result_id)
        if row is None:
            raise APIError(404, f"no result {result_id}")
        return row

    @app.get("/dashboard", include_in_schema=False)
    async def dashboard() -> FileResponse:
        return FileResponse(static_dir / "dashboard.html")

    @app.get("/v1/results", summary="recorded results, newest first")
    async def results(
        after_id: int | None = None,
        station: str | None = None,
        defective: bool | None = None,
        limit: Limit = 50,
    ) -> dict[str, Any]:
        rows = await in_thread(
            ledger.query,
            after_id=after_id,
            station=station,
            defective=defective,
            limit=limit,
            newest_first=True,
        )
        return {"results": [summary(row) for row in rows]}

    @app.get("/v1/results/{result_id}", summary="one recorded result with its review")
    async def one(result_id: int) -> dict[str, Any]:
        row = await in_thread(found, result_id)
        return {**summary(row), "payload": json.loads(row["payload"])}

    @app.get("/v1/results/{result_id}/overlay", summary="the kept overlay picture of a result")
    async def overlay(result_id: int) -> FileResponse:
        return _file(await in_thread(found, result_id), ("overlay",))

    @app.get("/v1/results/{result_id}/image", summary="the image of a result")
    async def image(result_id: int) -> FileResponse:
        return _file(await in_thread(found, result_id), ("stored_image", "image"))

    @app.post("/v1/results/{result_id}/review", summary="store an operator's review of a result")
    async def review(result_id: int, body: ReviewBody) -> dict[str, Any]:
        kind = body.get("kind")
        if kind not in REVIEW_KINDS:
            raise APIError(400, f"kind must be one of {', '.join(REVIEW_KINDS)}")
        try:
            boxes = tuple(tuple(int(v) for v in box) for box in body.get("boxes") or ())
        except (TypeError, ValueError):
            raise APIError(400, "boxes must be a list of [x0, y0, x1, y1] in image pixels") from None
        if any(len(box) != 4 or box[2] <= box[0] or box[3] <= box[1] for box in boxes):
            raise APIError(400, "each box is [x0, y0, x1, y1] with x1 > x0 and y1 > y0")
        found_row = await in_thread(found, result_id)
        label = body.get("label") or None
        if label is not None and label not in (found_row.get("classes") or []):
            raise APIError(400, f"label {label!r} is not a class or type of the model {found_row['classes']}")
        entry = Review(kind, label, boxes, body.get("note") or None, body.get("reviewer") or None)
        await in_thread(ledger.review, result_id, entry)
        return {**summary(await in_thread(found, result_id))}

    @app.get("/v1/stats", summary="defect rate per hour or shift, and counts per type")
    async def stats(hours: Hours = 24.0, bucket: str = "hour", station: str | None = None) -> dict:
        if bucket not in ("hour", "shift"):
            raise APIError(400, "bucket must be hour or shift")
        now = datetime.datetime.now(datetime.timezone.utc).timestamp()
        rate = await in_thread(rate_buckets, ledger, bucket, now, hours, station)
        per_type = await in_thread(ledger.type_counts, now - hours * 3600, station)
        total, defective = sum(b["total"] for b in rate), sum(b["defective"] for b in rate)
        return {"hours": hours, "bucket": bucket, "total": total, "defective": defective,
                "rate": defective / total if total else None, "buckets": rate, "types": per_type}  # fmt: skip

    @app.get("/v1/whatif", summary="what another threshold would have decided on the stored scores")
    async def whatif(threshold: Threshold, hours: Hours = 24.0, station: str | None = None) -> dict[str, Any]:
        now = datetime.datetime.now(datetime.timezone.utc).timestamp()
        counts = await in_thread(ledger.what_if, threshold, now - hours * 3600, station)
        return {"threshold": threshold, "hours": hours, **counts}

    @app.post("/v1/threshold", summary="apply another pixel threshold to this service's segmenter")
    async def apply_threshold(body: ReviewBody) -> dict[str, Any]:
        if inspector.task != "seg":
            raise APIError(
                400, "a classifier decides by its most probable class: it has no threshold to apply"
            )
        value = body.get("threshold")
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < 1:
            raise APIError(400, "threshold must be a number between 0 and 1")
        previous, inspector.threshold = inspector.threshold, float(value)
        log.info("threshold %.4f applied (was %.4f) from the dashboard", inspector.threshold, previous)
        return {"threshold": inspector.threshold, "previous": previous}

    @app.get("/v1/events", summary="server-sent events: each new result as it is recorded")
    async def events(request: Request, after_id: int | None = None) -> StreamingResponse:
        last = after_id if after_id is not None else await in_thread(_newest_id, ledger)

        async def stream():
            nonlocal last
            quiet = 0.0
            yield ": lwcnn results\n\n"
            while not await request.is_disconnected():
                rows = await in_thread(ledger.query, after_id=last, limit=100)
                for row in rows:
                    last = row["id"]
                    yield f"id: {row['id']}\nevent: result\ndata: {json.dumps(summary(row))}\n\n"
                quiet = 0.0 if rows else quiet + EVENT_POLL_S
                if quiet >= HEARTBEAT_S:
                    quiet = 0.0
                    yield ": still here\n\n"
                await asyncio.sleep(EVENT_POLL_S)

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )


def _newest_id(ledger: Ledger) -> int:
    rows = ledger.query(limit=1, newest_first=True)
    return rows[0]["id"] if rows else 0


def _file(row: dict[str, Any], columns: tuple[str, ...]) -> FileResponse:
    for column in columns:
        path = row.get(column)
        if path and Path(path).is_file():
            return FileResponse(path)
    raise APIError(404, f"result {row['id']} has no {columns[0].replace('stored_', '')} kept")
