"""One inspection into the ledger: the row (what the image was, which model decided what, how long
it took), the JSON payload that the HTTP API answers and the message sinks send, and the pictures
kept for the dashboard and for reviews (overlay JPEG, mask PNG, and an uploaded image itself).

Pictures are kept under a store folder by result id (``overlays/ID.jpg``, ``masks/ID.png``,
``images/ID.EXT``), each written atomically; the row names them only once they are on disk.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from lwcnn.fileio import atomic_write_bytes
from lwcnn.runtime.engine import Inspection, Inspector
from lwcnn.station.ledger import Ledger

#: Pictures waiting to be drawn at most (each holds its image and mask in memory).
MAX_PENDING_PICTURES = 8
log = logging.getLogger("lwcnn.station")
#: Which results keep an overlay (and, for segmenters, the mask): the defective ones (default), all,
#: or none.
KEEP_CHOICES = ("defective", "all", "none")


def file_digest(data: bytes) -> str:
    """The SHA-256 of an image's bytes (hex): the same image under another name is the same content."""
    return hashlib.sha256(data).hexdigest()


def defect_score(payload: dict[str, Any], ok_classes: set[str]) -> float:
    """The score a what-if threshold is compared with: a segmenter's highest defect probability
    (the image is defective above the threshold, exactly so with ``min_area`` 1), a classifier's
    probability of any class that is not OK."""
    probabilities = payload.get("probabilities")
    if payload["task"] == "seg" or not probabilities:
        return float(payload["score"])
    return float(1.0 - sum(p for c, p in probabilities.items() if c in ok_classes))


def result_types(payload: dict[str, Any]) -> list[str]:
    """The defect types (typed segmenters) or the defect class (classifiers) an image holds."""
    if not payload["defective"]:
        return []
    if payload["task"] == "cls":
        return [payload["verdict"]]
    return list(payload.get("types_found") or ["defect"])


class Recorder:
    """Writes inspections of one model at one station into a ledger.

    ``store``: the folder for kept pictures (None: none kept); ``keep``: one of
    :data:`KEEP_CHOICES`; ``source``: ``watch``, ``inspect`` or ``serve``; ``on_record``: called
    with each new result id (the message sinks' wake-up).
    """

    def __init__(
        self,
        ledger: Ledger,
        inspector: Inspector,
        station: str,
        source: str,
        store: str | Path | None = None,
        keep: str = "defective",
        on_record: Callable[[int], None] | None = None,
    ) -> None:
        if keep not in KEEP_CHOICES:
            raise ValueError(f"keep must be one of {KEEP_CHOICES}, got {keep!r}")
        self.ledger, self.inspector, self.station, self.source = ledger, inspector, station, source
        self.store = None if store is None else Path(store)
        self.keep = keep if store is not None else "none"
        self._lock = threading.Lock()
        # one thread draws the kept pictures (Pillow and NumPy release the GIL: it overlaps the
        # next image's inference); a semaphore bounds what waits for it
        self._pictures = ThreadPoolExecutor(max_workers=1, thread_name_prefix="lwcnn-keep")
        self._pending = threading.BoundedSemaphore(MAX_PENDING_PICTURES)
        self._listeners: list[Callable[[int], None]] = [on_record] if on_record else []

    def add_listener(self, listener: Callable[[int], None]) -> None:
        """Call ``listener(result_id)`` after each result is recorded."""
        with self._lock:
            self._listeners.append(listener)

    def record(
        self,
        result: Inspection,
        image: str,
        sha256: str | None = None,
        ledger_key: str | None = None,
        file_time: float | None = None,
        total_ms: float | None = None,
        image_bytes: tuple[bytes, str] | None = None,
    ) -> dict[str, Any] | None:
        """Record ``result`` for ``image`` (its path, or an upload's name) and keep its pictures; the
        payload with the ledger's fields (``id``, ``station``, ``time``, ...), or None when
        ``ledger_key`` was recorded before. ``image_bytes``: (the file's bytes, its suffix) to keep
        a copy of the image itself (uploads, which exist nowhere else)."""
        payload = self.record_payload(
            result.to_dict(), image, sha256, ledger_key, file_time, total_ms, notify=False
        )
        if payload is None:
            return None
        self._keep_files(payload["id"], result, image_bytes)
        self._notify(payload["id"])
        return payload

    def record_payload(
        self,
        payload: dict[str, Any],
        image: str,
        sha256: str | None = None,
        ledger_key: str | None = None,
        file_time: float | None = None,
        total_ms: float | None = None,
        files: dict[str, str] | None = None,
        notify: bool = True,
    ) -> dict[str, Any] | None:
        """Record a result given as the API's JSON (``payload``; what ``lwcnn inspect`` has);
        ``files``: pictures written already (``overlay``, ``mask``)."""
        inspector = self.inspector
        when = datetime.datetime.now(datetime.timezone.utc)
        payload = {
            **payload,
            "model": inspector.model_name,
            "station": self.station,
            "time": when.isoformat(),
            "sha256": sha256,
            "engine": inspector.backend.name,
            "precision": inspector.backend.precision,
            "model_commit": inspector.metadata.get("commit"),
        }
        if total_ms is not None:
            payload["total_ms"] = round(total_ms, 3)
        seg = payload["task"] == "seg"
        row = {
            "time": when.timestamp(),
            "station": self.station,
            "source": self.source,
            "image": image,
            "sha256": sha256,
            "ledger_key": ledger_key,
            "model": inspector.model_name,
            "model_commit": payload["model_commit"],
            "engine": payload["engine"],
            "precision": payload["precision"],
            "task": payload["task"],
            "classes": list(inspector.classes),
            "verdict": payload["verdict"],
            "defective": payload["defective"],
            "score": float(payload["score"]),
            "defect_score": defect_score(payload, inspector.ok_classes),
            "threshold": inspector.threshold if seg else None,
            "min_area": inspector.min_area if seg else None,
            "types": result_types(payload),
            "regions": {k: payload[k] for k in ("boxes", "region_areas", "region_types") if k in payload},
            "ms": float(payload["ms"]),
            "total_ms": total_ms,
            "file_time": file_time,
            "payload": json.dumps(payload),
            **(files or {}),
        }
        result_id = self.ledger.record(row)
        if result_id is None:
            return None
        payload["id"] = result_id
        if notify:
            self._notify(result_id)
        return payload

    def record_rows(self, rows: list[dict[str, Any]]) -> list[int]:
        """Record the rows of an inspection run (``lwcnn inspect``'s results), each with its image's
        SHA-256 and the pictures the run wrote; their ids."""
        ids = []
        for row in rows:
            try:
                digest = file_digest(Path(row["image"]).read_bytes())
            except OSError:
                digest = None
            payload = {k: v for k, v in row.items() if k not in ("overlay", "mask", "error")}
            files = {k: str(Path(row[k]).resolve()) for k in ("overlay", "mask") if row.get(k)}
            image = str(Path(row["image"]).resolve()) if digest else row["image"]
            recorded = self.record_payload(payload, image, digest, files=files)
            if recorded is not None:
                ids.append(recorded["id"])
        return ids

    def _notify(self, result_id: int) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            listener(result_id)

    def _keep_files(self, result_id: int, result: Inspection, image_bytes: tuple[bytes, str] | None) -> None:
        """Keep an upload's bytes now (a review needs them), and draw the overlay and mask in the
        picture thread: off the verdict's path, so the message goes out before the picture is drawn.
        At most :data:`MAX_PENDING_PICTURES` wait; more make the caller wait (memory stays flat)."""
        if self.store is None:
            return
        if image_bytes is not None:
            data, suffix = image_bytes
            target = self.store / "images" / f"{result_id}{suffix}"
            atomic_write_bytes(target, data)
            self.ledger.set_files(result_id, stored_image=str(target))
        wanted = self.keep == "all" or (self.keep == "defective" and result.defective)
        if not wanted or (result.pixels is None and result.mask is None):
            return
        self._pending.acquire()
        future = self._pictures.submit(self._draw, result_id, result)
        future.add_done_callback(self._drawn)

    def _draw(self, result_id: int, result: Inspection) -> None:
        from lwcnn.runtime.overlay import jpeg_bytes, overlay_image, png_bytes

        assert self.store is not None
        files: dict[str, str] = {}
        if result.pixels is not None:
            overlay = self.store / "overlays" / f"{result_id}.jpg"
            atomic_write_bytes(overlay, jpeg_bytes(overlay_image(result.pixels, result)))
            files["overlay"] = str(overlay)
        if result.mask is not None:
            mask = self.store / "masks" / f"{result_id}.png"
            labels = result.type_mask if result.type_mask is not None else result.mask.astype(np.uint8)
            atomic_write_bytes(mask, png_bytes(np.asarray(labels, np.uint8)))
            files["mask"] = str(mask)
        if files:
            self.ledger.set_files(result_id, **files)

    def _drawn(self, future: Future) -> None:
        self._pending.release()
        error = future.exception()
        if error is not None:  # a full disk: the verdict is recorded, the picture is not
            log.warning("picture not kept: %s", error)

    def flush(self) -> None:
        """Wait until every picture submitted so far is on disk (and named in the database)."""
        for _ in range(MAX_PENDING_PICTURES):
            self._pending.acquire()
        for _ in range(MAX_PENDING_PICTURES):
            self._pending.release()

    def close(self) -> None:
        """Write the pictures still pending, then stop the picture thread."""
        self._pictures.shutdown(wait=True)
