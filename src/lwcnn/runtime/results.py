"""What an inspection run leaves on disk: ``results.csv``, ``results.json`` and the pictures
(``overlays/``, ``masks/``) in one output folder, always a consistent set.

A run takes the folder's lock (a second run on the same folder is refused), writes its pictures
into a staging folder inside it, and only at the end swaps them in and writes the results, so a
results file never points at another run's pictures, and an interrupted run leaves the previous
run's set as it was. Picture names are unique within a run and the same for the same inputs.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import hashlib
import io
import json
import os
import shutil
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from lwcnn.errors import ConfigError, OutputError
from lwcnn.fileio import (
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    printable_path,
    remove_stale_temporaries,
)
from lwcnn.runtime.engine import Inspection, InspectionFailure, Inspector

#: The picture folders of an output folder.
PICTURE_FOLDERS = ("overlays", "masks")
LOCK_NAME = ".lwcnn-inspect.lock"
#: Which images get pictures: every one, only those found defective, or none.
PICTURE_CHOICES = ("all", "defective", "none")
#: How overlays are written, and their file suffixes: JPEG (default; about 15x faster to write
#: than PNG on a KolektorSDD overlay, which kept a line's inspection at a fraction of its speed)
#: or PNG (lossless). Masks are always PNG: they are data.
OVERLAY_FORMATS = {"jpeg": ".jpg", "png": ".png"}
#: Pictures waiting to be written at most (each holds one image and its mask).
MAX_PENDING_PICTURES = 8
STAGING_PREFIX = ".lwcnn-staging-"
#: The columns of results.csv, in order (results.json holds every field).
CSV_COLUMNS = ("image", "verdict", "defective", "score", "area", "area_fraction", "boxes", "height", "width",
               "ms", "overlay", "mask", "error")  # fmt: skip


def picture_names(images: Sequence[str]) -> list[str]:
    """A file name (without ``.png``) for each image's pictures, unique within ``images``: the
    image's stem where no other image has it; the file name with its extension where stems clash
    (``x.jpg`` and ``x.png``); and that name plus a hash of the whole path where even those clash
    (the same name in two folders). The same inputs give the same names."""
    stems = [Path(image).stem or "image" for image in images]
    stem_counts = Counter(stems)
    candidates = [
        stem if stem_counts[stem] == 1 else (Path(image).name or "image")
        for image, stem in zip(images, stems, strict=True)
    ]
    counts = Counter(candidates)
    names: list[str] = []
    used: set[str] = set()
    for image, candidate in zip(images, candidates, strict=True):
        name = candidate
        if counts[candidate] > 1:
            digest = hashlib.sha1(image.encode("utf-8", "surrogateescape")).hexdigest()[:8]
            name = f"{candidate}-{digest}"
        unique, n = name, 2
        while unique in used:  # the same path given twice
            unique, n = f"{name}-{n}", n + 1
        used.add(unique)
        names.append(unique)
    return names


def results_csv(rows: Sequence[dict[str, Any]], failures: Sequence[dict[str, Any]]) -> str:
    """results.csv: one row per inspected image (boxes as JSON), then one per image that failed."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, list(CSV_COLUMNS), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({**row, "boxes": json.dumps(row["boxes"]) if "boxes" in row else ""})
    for failure in failures:
        writer.writerow({"image": failure["image"], "verdict": "unreadable", "error": failure["error"]})
    return buffer.getvalue()


class InspectionOutput:
    """One run's hold on an output folder: :meth:`open` before inspecting (an unusable folder fails
    then, not after the work), :meth:`staged` paths for pictures while inspecting, :meth:`commit`
    at the end, :meth:`close` always (it drops what an unfinished run staged)."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self._lock: Any = None
        self.staging = self.folder / f"{STAGING_PREFIX}{os.getpid()}"

    def open(self) -> InspectionOutput:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise OutputError(f"{self.folder}: cannot create the output folder ({_reason(error)})") from None
        if not self.folder.is_dir():
            raise OutputError(f"{self.folder}: not a folder (--out must name a folder)")
        self._take_lock()
        try:
            self._check_pictures_are_ours()
            # staging folders of killed runs (the lock says that no other run is using them)
            for leftover in self.folder.glob(f"{STAGING_PREFIX}*"):
                shutil.rmtree(leftover, ignore_errors=True)
            for folder in (self.folder, *(self.folder / name for name in PICTURE_FOLDERS)):
                remove_stale_temporaries(folder)
            self.staging.mkdir()
        except OSError as error:
            self.close()
            raise OutputError(f"{self.folder}: cannot write the output folder ({_reason(error)})") from None
        except BaseException:
            self.close()
            raise
        return self

    def __enter__(self) -> InspectionOutput:
        return self.open()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def final(self, kind: str, name: str, suffix: str = ".png") -> Path:
        """Where picture ``name`` of ``kind`` (``overlays`` or ``masks``) is once the run is committed."""
        return self.folder / kind / f"{name}{suffix}"

    def staged(self, kind: str, name: str, suffix: str = ".png") -> Path:
        """Where the run writes it meanwhile."""
        return self.staging / kind / f"{name}{suffix}"

    def commit(self, report: dict[str, Any], csv_text: str) -> None:
        """Swap this run's pictures in (the previous run's out) and write the results."""
        try:
            for kind in PICTURE_FOLDERS:
                final, staged = self.folder / kind, self.staging / kind
                if final.exists():
                    final.rename(self.staging / f"previous-{kind}")
                if staged.exists():
                    staged.rename(final)
            atomic_write_text(self.folder / "results.csv", csv_text)
            atomic_write_json(self.folder / "results.json", report)
        except OSError as error:
            raise OutputError(f"{self.folder}: cannot write the results ({_reason(error)})") from None

    def close(self) -> None:
        """Remove the staging folder (with an unfinished run's pictures) and release the lock."""
        shutil.rmtree(self.staging, ignore_errors=True)
        if self._lock is not None:
            self._lock.close()  # closing the file releases the lock
            self._lock = None

    def _take_lock(self) -> None:
        import fcntl

        path = self.folder / LOCK_NAME
        try:
            handle = open(path, "a+")  # held open for the whole run
        except OSError as error:
            raise OutputError(f"{self.folder}: cannot write the output folder ({_reason(error)})") from None
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            handle.close()
            if error.errno in (errno.EAGAIN, errno.EACCES):
                raise OutputError(
                    f"{self.folder}: in use by another lwcnn inspect run; wait for it or choose another --out"
                ) from None
            raise OutputError(f"{self.folder}: cannot lock the output folder ({_reason(error)})") from None
        self._lock = handle

    def _check_pictures_are_ours(self) -> None:
        """A run replaces the previous run's picture folders; folders of that name that no lwcnn run
        wrote (no results.json beside them) are someone else's and are not touched."""
        if (self.folder / "results.json").is_file():
            return
        for kind in PICTURE_FOLDERS:
            folder = self.folder / kind
            with contextlib.suppress(OSError):
                if folder.is_dir() and any(folder.iterdir()):
                    raise OutputError(
                        f"{folder}: holds files that no lwcnn inspect run wrote here (no results.json); "
                        "choose another --out"
                    )


def _reason(error: OSError) -> str:
    return error.strerror or str(error)


def inspect_to_folder(
    inspector: Inspector, paths: Sequence[str | Path], out: str | Path, pictures: bool | str = "all",
    on_result: Callable[[dict[str, Any]], None] | None = None,
    on_failure: Callable[[InspectionFailure], None] | None = None,
    started: float | None = None, overlay_format: str = "jpeg",
) -> dict[str, Any]:  # fmt: skip
    """Inspect ``paths`` into the output folder ``out`` (what ``lwcnn inspect`` does): results.csv,
    results.json and overlays and masks for the images ``pictures`` names (``all``; ``defective``:
    only those found defective, the line's usual need; ``none``; True/False mean all/none), all
    written as one consistent set at the end (:class:`InspectionOutput`). ``on_result`` gets each
    result's row and ``on_failure`` each image that could not be inspected, as they come;
    ``started`` (``time.perf_counter()``) is when the clock of the summary's ``seconds`` and
    ``first_result_s`` started (default: now; ``lwcnn inspect`` starts it before opening the model);
    ``ms_per_image`` counts the inspection alone. ``overlay_format``: ``jpeg``
    (``overlays/NAME.jpg``, fast) or ``png``. Returns the report written to results.json:
    ``summary``, ``results`` (rows) and ``failures``."""
    began = time.perf_counter()
    started = began if started is None else started
    pictures = {True: "all", False: "none"}.get(pictures, pictures)  # type: ignore[call-overload]
    if pictures not in PICTURE_CHOICES:
        raise ConfigError(f"pictures must be one of {', '.join(PICTURE_CHOICES)}, got {pictures!r}")
    if overlay_format not in OVERLAY_FORMATS:
        raise ConfigError(
            f"overlay format must be one of {', '.join(OVERLAY_FORMATS)}, got {overlay_format!r}"
        )
    with InspectionOutput(out) as output:  # checked and locked before any image is inspected
        rows, failures, first_result_s = _inspect_rows(
            inspector, paths, output, (pictures, overlay_format), on_result, on_failure, started
        )
        ended = time.perf_counter()
        seconds, inspecting = ended - started, ended - began
        defective = sum(1 for r in rows if r["defective"])
        folder = output.folder
        summary = {
            "model": inspector.model_name,
            "task": inspector.task,
            "engine": inspector.backend.name,
            "precision": inspector.backend.precision,
            "engine_choice": None if inspector.engine_choice is None else inspector.engine_choice.to_dict(),
            "workers": inspector.workers,
            "images": len(rows),
            "defective": defective,
            "ok": len(rows) - defective,
            "failed": len(failures),
            "seconds": round(seconds, 3),
            "first_result_s": round(first_result_s, 3) if first_result_s is not None else None,
            "ms_per_image": round(1000.0 * inspecting / max(1, len(rows)), 3),
            "results_csv": str(folder / "results.csv"),
            "results_json": str(folder / "results.json"),
            "overlays": str(folder / "overlays") if pictures != "none" else None,
            "pictures": pictures,
            "overlay_format": overlay_format,
        }
        if any("types_found" in r for r in rows):  # a model with defect types: images per type found
            summary["types"] = {t: sum(t in r.get("types_found", ()) for r in rows) for t in inspector.types}
        report = {"summary": summary, "results": rows, "failures": failures}
        output.commit(report, results_csv(rows, failures))
    return report


def _inspect_rows(
    inspector: Inspector, paths: Sequence[str | Path], output: InspectionOutput, pictures: tuple[str, str],
    on_result: Callable[[dict[str, Any]], None] | None,
    on_failure: Callable[[InspectionFailure], None] | None, started: float,
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], float | None]:  # fmt: skip
    pictures, overlay_format = pictures  # which images, and the overlays' format
    suffix = OVERLAY_FORMATS[overlay_format]
    names = picture_names([printable_path(p) for p in paths])
    rows: list[dict[str, Any]] = []
    failures: list[dict[str, Any]] = []
    first_result_s = None
    # Pictures are drawn and encoded in other threads (Pillow and NumPy release the GIL), one per
    # inspection worker, so that writing them overlaps the next images' inference and keeps up
    # as workers are added.
    writer = ThreadPoolExecutor(max_workers=inspector.workers, thread_name_prefix="lwcnn-pictures")
    writing: list[tuple[Future, dict[str, Any]]] = []
    try:
        keep = pictures != "none"
        for name, result in zip(names, inspector.inspect_paths(paths, keep_pixels=keep), strict=True):
            if isinstance(result, InspectionFailure):
                failures.append({"image": result.image, "error": result.error})
                if on_failure:
                    on_failure(result)
                continue
            if first_result_s is None:
                first_result_s = time.perf_counter() - started
            row = result.to_dict()
            wanted = pictures == "all" or (pictures == "defective" and result.defective)
            if wanted and result.pixels is not None:
                row["overlay"] = str(output.final("overlays", name, suffix))
                targets = {"overlay": output.staged("overlays", name, suffix)}
                if result.mask is not None:
                    row["mask"] = str(output.final("masks", name))
                    targets["mask"] = output.staged("masks", name)
                writing.append((writer.submit(_write_pictures, result, targets), row))
                while len(writing) > MAX_PENDING_PICTURES:  # bounded: memory stays flat on any folder
                    _picture_written(*writing.pop(0))
            rows.append(row)
            if on_result:
                on_result(row)
        for future, row in writing:
            _picture_written(future, row)
    finally:
        writer.shutdown(cancel_futures=True)
    return rows, failures, first_result_s


def _write_pictures(result: Inspection, targets: dict[str, Path]) -> None:
    from lwcnn.runtime.overlay import jpeg_bytes, overlay_image, png_bytes

    overlay = overlay_image(result.pixels, result)
    encode = jpeg_bytes if targets["overlay"].suffix == ".jpg" else png_bytes
    atomic_write_bytes(targets["overlay"], encode(overlay))
    if "mask" in targets:
        atomic_write_bytes(targets["mask"], png_bytes(result.mask))


def _picture_written(future: Future, row: dict[str, Any]) -> None:
    """Wait for one image's pictures; a picture that could not be written (a full disk) is
    reported in its row (``error``) and the run goes on."""
    try:
        future.result()
    except (OSError, ValueError) as error:
        row.pop("overlay", None)
        row.pop("mask", None)
        row["error"] = f"{row['image']}: pictures not written ({getattr(error, 'strerror', None) or error})"
