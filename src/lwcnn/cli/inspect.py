"""``lwcnn inspect``: verdicts, scores, defect regions and pictures for files, folders and globs.

Runs on the inference runtime only (ONNX Runtime, NumPy, Pillow): no torch is imported for ONNX
files and bundled models.
"""

from __future__ import annotations

import argparse
import csv
import glob
import io
import json
import sys
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

#: Exit status when --fail-on-defect is given and some image is defective.
EXIT_DEFECT = 1
#: Exit status when some image could not be read (and none made the run fail otherwise).
EXIT_UNREADABLE = 3
#: Pictures waiting to be written at most (each holds one image and its mask).
MAX_PENDING_PICTURES = 8


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "inspect",
        help="inspect images: verdict, score, defect regions, overlays",
        description=(
            "Inspect image files, folders (searched recursively) and glob patterns with a trained "
            "model (default: the bundled NEU classifier). Writes results.csv, results.json and overlay "
            "pictures (and masks, for segmenters) under --out. A corrupt or unreadable file is reported "
            "and skipped. Exit status: 0, or 1 with --fail-on-defect when an image is defective, or 3 "
            "when an image could not be read."
        ),
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="image files, folders or glob patterns")
    parser.add_argument(
        "--weights",
        default=None,
        help="model: .onnx file, bundled name (default: neu), run folder, .safetensors",
    )
    parser.add_argument("--out", default="inspection", help="output folder (default: ./inspection)")
    parser.add_argument("--no-pictures", action="store_true", help="write no overlays or masks")
    parser.add_argument("--json", action="store_true", help="print one JSON object (summary and results)")
    parser.add_argument("--threads", type=int, default=None, help="inference threads (default: one per core)")
    parser.add_argument("--batch", type=int, default=1, help="images (or tiles) per forward pass (default 1)")
    parser.add_argument("--backend", choices=("auto", "onnxruntime", "torch"), default="auto")
    parser.add_argument("--threshold", type=float, default=None, help="segmenter pixel threshold (0..1)")
    parser.add_argument(
        "--min-area", type=int, default=None, help="defect pixels that make an image defective"
    )
    parser.add_argument("--tile-overlap", type=int, default=64, help="overlap of tiles on large images (px)")
    parser.add_argument(
        "--ok-class", action="append", default=None, metavar="CLASS",
        help="a classifier class that means 'no defect' (repeatable)",
    )  # fmt: skip
    parser.add_argument(
        "--fail-on-defect", action="store_true", help="exit with status 1 when any image is defective"
    )
    parser.set_defaults(func=run)


def expand_paths(specs: list[str]) -> tuple[list[Path], list[str]]:
    """Image files named by files, folders (recursive, sorted) and glob patterns, and one-line
    problems for specs that name nothing."""
    from lwcnn.data.images import find_images

    files: list[Path] = []
    problems: list[str] = []
    for spec in specs:
        path = Path(spec).expanduser()
        if path.is_dir():
            found = find_images(path)
            if not found:
                problems.append(f"{spec}: no images in this folder")
            files.extend(found)
        elif path.exists() or not glob.has_magic(spec):
            files.append(path)  # a missing file is reported when it is read
        else:
            found = sorted(Path(p) for p in glob.glob(spec, recursive=True) if Path(p).is_file())
            if not found:
                problems.append(f"{spec}: no files match this pattern")
            files.extend(found)
    return files, problems


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from lwcnn.fileio import atomic_write_json, atomic_write_text
    from lwcnn.runtime import Inspector
    from lwcnn.runtime.engine import InspectionFailure

    paths, problems = expand_paths(args.paths)
    for problem in problems:
        print(f"lwcnn inspect: {problem}", file=sys.stderr)
    if not paths:
        raise ValueError(f"no images to inspect in {' '.join(args.paths)}")
    if args.threads is not None and args.threads < 1:
        raise ValueError(f"--threads must be at least 1, got {args.threads}")
    started = time.perf_counter()
    inspector = Inspector(
        args.weights,
        backend=args.backend,
        threads=args.threads,
        batch_size=args.batch,
        threshold=args.threshold,
        min_area=args.min_area,
        tile_overlap=args.tile_overlap,
        ok_classes=args.ok_class,
    )
    out = Path(args.out)
    pictures = not args.no_pictures
    names = _UniqueNames()
    rows: list[dict] = []
    failures: list[dict] = []
    first_result_s = None
    # Pictures are drawn and encoded in a second thread (Pillow and NumPy release the GIL), so
    # that writing them overlaps the next images' inference.
    writer = ThreadPoolExecutor(max_workers=1)
    writing: list[Future] = []
    bar = tqdm(
        total=len(paths), unit="img", desc="inspect", file=sys.stderr, dynamic_ncols=True, disable=None
    )
    for result in inspector.inspect_paths(paths, keep_pixels=pictures):
        bar.update(1)
        if isinstance(result, InspectionFailure):
            failures.append({"image": result.image, "error": result.error})
            tqdm.write(f"lwcnn inspect: skipped {result.error}", file=sys.stderr)
            continue
        if first_result_s is None:
            first_result_s = time.perf_counter() - started
        row = result.to_dict()
        if pictures and result.pixels is not None:
            name = names.of(result.image)
            row["overlay"] = str(out / "overlays" / f"{name}.png")
            if result.mask is not None:
                row["mask"] = str(out / "masks" / f"{name}.png")
            writing.append(writer.submit(_write_pictures, result, row))
            while len(writing) > MAX_PENDING_PICTURES:  # bounded: memory stays flat on any folder
                writing.pop(0).result()
        rows.append(row)
        if not args.json:
            tqdm.write(_line(row), file=sys.stdout)
    bar.close()
    for future in writing:
        future.result()
    writer.shutdown()
    seconds = time.perf_counter() - started
    defective = sum(1 for r in rows if r["defective"])
    summary = {
        "model": inspector.model_name,
        "task": inspector.task,
        "engine": inspector.backend.name,
        "images": len(rows),
        "defective": defective,
        "ok": len(rows) - defective,
        "failed": len(failures),
        "seconds": round(seconds, 3),
        "first_result_s": round(first_result_s, 3) if first_result_s is not None else None,
        "ms_per_image": round(1000.0 * seconds / max(1, len(rows)), 3),
        "results_csv": str(out / "results.csv"),
        "results_json": str(out / "results.json"),
        "overlays": str(out / "overlays") if pictures else None,
    }
    report = {"summary": summary, "results": rows, "failures": failures}
    atomic_write_text(out / "results.csv", _csv(rows, failures))
    atomic_write_json(out / "results.json", report)
    if args.json:
        print(json.dumps(report))
    else:
        where = f"; overlays in {out / 'overlays'}/" if pictures and rows else ""
        print(
            f"{len(rows)} image(s) inspected with {inspector.model_name}: {defective} defective, "
            f"{len(rows) - defective} OK, {len(failures)} unreadable, "
            f"{summary['ms_per_image']:.1f} ms/image; "
            f"results in {out / 'results.csv'}{where}",
            file=sys.stderr,
        )
    if args.fail_on_defect and defective:
        return EXIT_DEFECT
    return EXIT_UNREADABLE if failures else 0


def _write_pictures(result, row: dict) -> None:
    from lwcnn.fileio import atomic_write_bytes
    from lwcnn.runtime.overlay import overlay_image, png_bytes

    atomic_write_bytes(row["overlay"], png_bytes(overlay_image(result.pixels, result)))
    if result.mask is not None:
        atomic_write_bytes(row["mask"], png_bytes(result.mask))


def _line(row: dict) -> str:
    text = f"{row['image']}\t{row['verdict']}\t{row['score']:.4f}"
    if row["task"] == "seg" and row["defective"]:
        text += f"\tarea={row['area']}px\tboxes={row['boxes']}"
    return text


def _csv(rows: list[dict], failures: list[dict]) -> str:
    columns = ["image", "verdict", "defective", "score", "area", "area_fraction", "boxes", "height",
               "width", "ms", "overlay", "mask", "error"]  # fmt: skip
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({**row, "boxes": json.dumps(row["boxes"]) if "boxes" in row else ""})
    for failure in failures:
        writer.writerow({"image": failure["image"], "verdict": "unreadable", "error": failure["error"]})
    return buffer.getvalue()


class _UniqueNames:
    """File names for pictures: the image's stem, with a counter when two images share a stem."""

    def __init__(self) -> None:
        self.used: dict[str, int] = {}

    def of(self, image: str) -> str:
        stem = Path(image).stem or "image"
        count = self.used.get(stem, 0)
        self.used[stem] = count + 1
        return stem if count == 0 else f"{stem}_{count + 1}"
