"""``lwcnn watch``: a hot folder. Each image that arrives is inspected once, recorded in the ledger,
optionally sorted into ``OK/`` and ``NG/`` (``NG/TYPE/`` for a model with types or defect classes),
and sent to the message sinks.

**When is a file ready?** Never while it is being written. Two conventions, both honoured:
- *rename in* (recommended): write ``NAME.part``, ``NAME.tmp``, ``.NAME`` (any hidden name) or
  ``~NAME``, then rename it to its image name. Such names are never read.
- *write in place*: with filesystem events, the file is taken when its writer closes it; when
  polling (or when no close is seen), once its size and modification time have not changed for
  ``settle_s`` (default 0.5 s). A file that fails to decode is reported once and taken again if it
  changes. A writer that closes and reopens a file while writing it must use the rename convention.

**Restarts.** The ledger is the record: an image is known by its station, its path relative to the
folder, and the SHA-256 of its bytes. After a crash or a restart, every image still in the folder
is looked up: one recorded already is not inspected again (only its sorting is finished), one
that is not is inspected. Killed between recording and sorting, nothing is lost or counted twice.

**Back-pressure.** Arrivals are queued (the queue holds paths, so a burst of thousands is
queued, not dropped) and inspected by ``workers`` threads through one model.

Events come from the ``watchdog`` package where it is installed (inotify on Linux), with a full
scan every ``rescan_s`` to catch what events miss; ``poll_s`` (or no ``watchdog``) scans only,
which is what network shares need.
"""

from __future__ import annotations

import logging
import os
import queue
import shutil
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lwcnn.data.images import ImageReadError, decode_image, is_image_file
from lwcnn.errors import ConfigError
from lwcnn.fileio import printable_path
from lwcnn.runtime.engine import Inspector
from lwcnn.station.records import Recorder, file_digest, result_types

log = logging.getLogger("lwcnn.station")
#: Names never read: files being written under the rename convention.
PARTIAL_SUFFIXES = (".part", ".partial", ".tmp", ".crdownload", ".filepart", ".download")
SORT_CHOICES = ("none", "move", "copy")
PROBLEMS_KEPT = 100


def is_partial_name(name: str) -> bool:
    """Whether ``name`` is a file still being written (hidden, ``~`` or a partial suffix)."""
    return name.startswith((".", "~")) or name.lower().endswith(PARTIAL_SUFFIXES)


@dataclass
class WatchCounts:
    """What a watch did: images ``inspected`` (recorded now), ``known`` (recorded before a restart,
    not inspected again), ``unreadable``, ``defective``, ``queued`` (waiting now)."""

    inspected: int = 0
    known: int = 0
    unreadable: int = 0
    defective: int = 0
    queued: int = 0
    #: the last problems (one line each), at most :data:`PROBLEMS_KEPT`: a watch runs for months
    problems: deque[str] = field(default_factory=lambda: deque(maxlen=PROBLEMS_KEPT))

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("inspected", "known", "unreadable", "defective", "queued")}


class HotFolder:
    """Finds the images of ``root`` (recursively, but not under ``exclude``) that are ready."""

    def __init__(
        self,
        root: Path,
        exclude: list[Path],
        settle_s: float = 0.5,
        poll_s: float | None = None,
        rescan_s: float = 10.0,
    ) -> None:
        # absolute and resolved, as events and scans name their files: a relative root would never
        # match the (resolved) folders left out, and a watch would take its own sorted images again
        self.root = root.resolve()
        self.exclude = [p.resolve() for p in exclude]
        self.settle_s = settle_s
        self.poll_s = poll_s
        self.rescan_s = poll_s if poll_s is not None else rescan_s
        self._seen: dict[Path, tuple[int, int, float]] = {}  # candidate -> (size, mtime_ns, since)
        self._done: dict[Path, tuple[int, int]] = {}  # taken -> (size, mtime_ns) when taken
        self._lock = threading.Lock()
        self._observer: Any = None
        self.events = "polling"
        #: set when a complete file was noted: the watch loop looks at once
        self.arrived = threading.Event()

    def start(self) -> None:
        """Start listening for filesystem events (unless polling)."""
        if self.poll_s is not None:
            return
        try:
            from watchdog.events import FileSystemEventHandler
            from watchdog.observers import Observer
        except ImportError:
            log.info("watchdog is not installed: polling %s every %.1f s", self.root, self.rescan_s)
            return
        folder = self

        class Handler(FileSystemEventHandler):
            def on_any_event(self, event: Any) -> None:
                target = getattr(event, "dest_path", None) or event.src_path
                if not event.is_directory and target:
                    # renamed in, or closed after writing: complete now, no need to wait for it to settle
                    complete = event.event_type in ("moved", "closed")
                    folder.note(Path(os.fsdecode(target)), complete)

        self._observer = Observer()
        self._observer.schedule(Handler(), str(self.root), recursive=True)
        self._observer.start()
        self.events = "filesystem events"

    def stop(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)

    def _wanted(self, path: Path) -> bool:
        if is_partial_name(path.name) or not is_image_file(path):
            return False
        return not any(path.is_relative_to(p) for p in self.exclude)

    def note(self, path: Path, complete: bool = False) -> None:
        """A path an event or a scan named: looked at on the next :meth:`ready` call. ``complete``:
        the event says the file is whole (renamed in, or closed after writing): it is taken at once
        (if it does not change meanwhile) rather than after ``settle_s``."""
        if not self._wanted(path):
            return
        if not complete:
            with self._lock:
                self._seen.setdefault(path, (-1, -1, time.monotonic()))
            return
        try:
            stat = path.stat()
        except OSError:
            return
        with self._lock:
            self._seen[path] = (stat.st_size, stat.st_mtime_ns, time.monotonic() - self.settle_s)
        self.arrived.set()

    def scan(self) -> None:
        """Note every image under the folder, and forget the files taken before that are gone (so
        that what a long watch remembers stays as large as the folder, not as its history)."""
        found: set[Path] = set()
        for folder, dirs, files in os.walk(self.root):
            here = Path(folder)
            dirs[:] = [d for d in dirs if not d.startswith(".") and (here / d).resolve() not in self.exclude]
            for name in files:
                found.add(here / name)
                self.note(here / name)
        with self._lock:
            self._done = {path: state for path, state in self._done.items() if path in found}

    def ready(self) -> list[Path]:
        """The noted files whose size and time have settled, not taken before in that state."""
        now = time.monotonic()
        taken: list[Path] = []
        with self._lock:
            for path, (size, mtime, since) in list(self._seen.items()):
                try:
                    stat = path.stat()
                except OSError:  # gone (moved away, deleted)
                    del self._seen[path]
                    continue
                state = (stat.st_size, stat.st_mtime_ns)
                if self._done.get(path) == state:
                    del self._seen[path]
                    continue
                if state != (size, mtime):
                    self._seen[path] = (*state, now)
                    continue
                if now - since >= self.settle_s and stat.st_size > 0:
                    del self._seen[path]
                    self._done[path] = state
                    taken.append(path)
        return sorted(taken)

    def retry(self, path: Path) -> None:
        """Take ``path`` again when a scan (or an event) notes it next, changed or not."""
        with self._lock:
            self._done.pop(path, None)

    def waiting(self) -> int:
        with self._lock:
            return len(self._seen)


class Station:
    """Watches ``folder`` and inspects what arrives with ``recorder``'s model (see the module doc).

    ``sort``: ``none``, ``move`` or ``copy`` each image into ``sort_to/OK`` or ``sort_to/NG[/TYPE]``
    (default ``sort_to``: the folder itself; its OK/ and NG/ are not watched); ``workers``: images
    inspected at once; ``on_result``: called with each new payload (and ``None`` for a failure).
    """

    def __init__(
        self,
        folder: str | Path,
        recorder: Recorder,
        sort: str = "none",
        sort_to: str | Path | None = None,
        settle_s: float = 0.5,
        poll_s: float | None = None,
        workers: int = 1,
        on_result: Callable[[dict[str, Any] | None, str], None] | None = None,
        exclude: tuple[Path, ...] = (),
    ) -> None:
        self.folder = Path(folder).expanduser().resolve()
        if not self.folder.is_dir():
            raise ConfigError(f"{printable_path(self.folder)}: no such folder to watch")
        if sort not in SORT_CHOICES:
            raise ConfigError(f"--sort must be one of {', '.join(SORT_CHOICES)}, got {sort!r}")
        if settle_s < 0 or (poll_s is not None and poll_s <= 0) or workers < 1:
            raise ConfigError("--settle must be >= 0, --poll > 0 and --workers >= 1")
        self.recorder = recorder
        self.inspector: Inspector = recorder.inspector
        self.sort = sort
        self.sort_to = Path(sort_to).expanduser().resolve() if sort_to is not None else self.folder
        skip = [self.sort_to / "OK", self.sort_to / "NG", *exclude]
        if recorder.store is not None:
            skip.append(recorder.store)
        self.hot = HotFolder(self.folder, skip, settle_s=settle_s, poll_s=poll_s)
        self.workers = workers
        self.on_result = on_result
        self.counts = WatchCounts()
        self._queue: queue.Queue[Path | None] = queue.Queue()  # unbounded: a burst is queued, not dropped
        self._stop = threading.Event()
        self._busy = 0
        self._lock = threading.Lock()

    # -- one image --------------------------------------------------------------------------------
    def ledger_key(self, path: Path, digest: str) -> str:
        """What the ledger knows an image of this station by: its path in the folder and its content."""
        relative = path.relative_to(self.folder).as_posix() if path.is_relative_to(self.folder) else str(path)
        return f"{self.recorder.station}\n{relative}\n{digest}"

    def handle(self, path: Path) -> None:
        """Inspect, record and sort one ready image (or finish sorting one recorded before)."""
        started = time.perf_counter()
        name = printable_path(path)
        try:
            data, stat = path.read_bytes(), path.stat()
        except OSError as error:
            if path.exists():
                self._failed(name, f"{name}: cannot be read ({error.strerror or error})")
            return  # gone before it was read: someone else took it
        digest = file_digest(data)
        key = self.ledger_key(path, digest)
        known = self.recorder.ledger.has_key(key)
        if known is not None:
            with self._lock:
                self.counts.known += 1
            self._sort(path, known)
            return
        try:
            pixels = decode_image(
                data, self.inspector.preprocessing.channels, name, self.inspector.max_pixels
            )
        except ImageReadError as error:  # taken again only if it changes (it was still being written)
            self._failed(name, str(error))
            return
        result = self.inspector.inspect(pixels, name)
        result.pixels = pixels
        total_ms = (time.perf_counter() - started) * 1000.0
        payload = self.recorder.record(result, name, digest, key, stat.st_mtime, total_ms)
        if payload is None:  # another worker or station recorded it meanwhile
            return
        with self._lock:
            self.counts.inspected += 1
            self.counts.defective += int(result.defective)
        # what sorting reads of the row, from the payload just written (no second look at the database)
        self._sort(
            path, {"id": payload["id"], "defective": payload["defective"], "types": result_types(payload)}
        )
        if self.on_result is not None:
            self.on_result(payload, name)

    def _failed(self, name: str, problem: str) -> None:
        log.warning("skipped %s", problem)
        with self._lock:
            self.counts.unreadable += 1
            self.counts.problems.append(problem)
        if self.on_result is not None:
            self.on_result(None, problem)

    def _sort(self, path: Path, row: dict[str, Any]) -> None:
        if self.sort == "none" or not row:
            return
        kept = row.get("stored_image")
        if kept and Path(kept).exists() and (self.sort == "copy" or not path.exists()):
            return  # sorted before
        folder = self.sort_to / ("NG" if row["defective"] else "OK")
        if row["defective"] and row.get("types") and row["types"] != ["defect"]:
            folder = folder / _safe_folder(row["types"][0])
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / path.name
        if target.exists():
            target = folder / f"{path.stem}-{row['id']}{path.suffix}"
        if self.sort == "move":
            self.recorder.ledger.set_files(row["id"], stored_image=str(target))  # where it will be
            try:
                os.replace(path, target)
            except OSError:  # another file system
                shutil.move(str(path), target)
        else:
            temporary = target.with_name(f".{target.name}.part")
            shutil.copy2(path, temporary)
            os.replace(temporary, target)
            self.recorder.ledger.set_files(row["id"], stored_image=str(target))

    # -- the loop ---------------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            path = self._queue.get()
            if path is None:
                return
            with self._lock:
                self._busy += 1
            try:
                self.handle(path)
            except Exception as error:  # one bad image (or a database gone for a while) never ends the watch
                log.exception("inspecting %s", path)
                self._failed(printable_path(path), f"{printable_path(path)}: inspection failed ({error}); "
                             "taken again at the next scan")  # fmt: skip
                self.hot.retry(path)
            finally:
                with self._lock:
                    self._busy -= 1

    def idle(self) -> bool:
        """Nothing queued, nothing being inspected, nothing settling."""
        with self._lock:
            busy = self._busy
        return busy == 0 and self._queue.empty() and self.hot.waiting() == 0

    def run(self, stop_when_idle_s: float | None = None, max_images: int | None = None) -> WatchCounts:
        """Watch until :meth:`stop` (or Ctrl-C), or until nothing has arrived for ``stop_when_idle_s``,
        or ``max_images`` were inspected; the counts."""
        self.hot.start()
        threads = [
            threading.Thread(target=self._work, name=f"watch {i}", daemon=True) for i in range(self.workers)
        ]
        for thread in threads:
            thread.start()
        last_scan, idle_since = 0.0, time.monotonic()
        try:
            while not self._stop.is_set():
                now = time.monotonic()
                if now - last_scan >= self.hot.rescan_s:
                    self.hot.scan()
                    last_scan = now
                for path in self.hot.ready():
                    self._queue.put(path)
                self.counts.queued = self._queue.qsize()
                if not self.idle():
                    idle_since = now
                elif stop_when_idle_s is not None and now - idle_since >= stop_when_idle_s:
                    break
                if max_images is not None and self.counts.inspected >= max_images:
                    break
                self.hot.arrived.wait(min(0.1, max(0.02, self.hot.settle_s / 4)))
                self.hot.arrived.clear()
        finally:
            for _ in threads:
                self._queue.put(None)
            for thread in threads:
                thread.join()
            self.hot.stop()
            self.recorder.flush()  # the kept pictures of what was inspected are on disk
        self.counts.queued = 0
        return self.counts

    def stop(self) -> None:
        """End :meth:`run` after the images being inspected (those queued wait for the next start)."""
        while True:  # drop what is queued: it is still in the folder, and taken after a restart
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        self._stop.set()
        self.hot.arrived.set()


def _safe_folder(name: str) -> str:
    """A type or class name as one folder name."""
    cleaned = "".join(c if c.isalnum() or c in "-_. " else "_" for c in name).strip(" .")
    return cleaned or "defect"
