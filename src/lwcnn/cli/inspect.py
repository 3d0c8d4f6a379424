"""``lwcnn inspect``: verdicts, scores, defect regions and pictures for files, folders and globs.

Runs on the inference runtime only (ONNX Runtime, NumPy, Pillow): no torch is imported for ONNX
files and bundled models.
"""

from __future__ import annotations

import argparse
import glob
import json
import sys
import time
from pathlib import Path

from lwcnn.errors import ConfigError
from lwcnn.limits import DEFAULT_MAX_PIXELS

#: Exit status when --fail-on-defect is given and some image is defective.
EXIT_DEFECT = 1
#: Exit status when some image could not be read (and none made the run fail otherwise).
EXIT_UNREADABLE = 3
#: Images of the run that ``--backend auto`` times the engines on, per worker.
AUTO_SAMPLE_PER_WORKER = 6


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "inspect",
        help="inspect images: verdict, score, defect regions, overlays",
        description=(
            "Inspect image files, folders (searched recursively) and glob patterns with a trained "
            "model (default: the bundled NEU classifier). Writes results.csv, results.json and overlay "
            "pictures (JPEG; and PNG masks, for segmenters) under --out. A corrupt or unreadable file is "
            "reported and skipped. Exit status: 0, or 1 with --fail-on-defect when an image is "
            "defective, or 3 when an image could not be read."
        ),
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="image files, folders or glob patterns")
    parser.add_argument(
        "--weights",
        default=None,
        help="model: .onnx file, bundled name (default: neu), run folder, .safetensors",
    )
    parser.add_argument("--out", default="inspection", help="output folder (default: ./inspection)")
    parser.add_argument(
        "--pictures", choices=("all", "defective", "none"), default="all",
        help="which images get an overlay (and mask): all (default), defective, none",
    )  # fmt: skip
    parser.add_argument("--no-pictures", action="store_true", help="the same as --pictures none")
    parser.add_argument(
        "--overlay-format", choices=("jpeg", "png"), default="jpeg",
        help="overlays as JPEG (default: fast to write) or PNG (lossless); masks are always PNG",
    )  # fmt: skip
    parser.add_argument("--json", action="store_true", help="print one JSON object (summary and results)")
    parser.add_argument(
        "--workers", type=int, default=None,
        help="images inspected at once, each read and decided in its own thread (default: one per core)",
    )  # fmt: skip
    parser.add_argument(
        "--threads", type=int, default=None,
        help="inference threads per worker (default 1; with one worker, one per core but one, which "
        "reads the next images)",
    )  # fmt: skip
    parser.add_argument("--batch", type=int, default=1, help="images (or tiles) per forward pass (default 1)")
    add_engine_options(parser, with_torch=True)
    parser.add_argument("--threshold", type=float, default=None, help="segmenter pixel threshold (0..1)")
    parser.add_argument(
        "--min-area", type=int, default=None, help="defect pixels that make an image defective"
    )
    parser.add_argument("--tile-overlap", type=int, default=64, help="overlap of tiles on large images (px)")
    parser.add_argument(
        "--max-pixels", type=int, default=DEFAULT_MAX_PIXELS,
        help=f"refuse images with more pixels than this, from their header (default {DEFAULT_MAX_PIXELS:,})",
    )  # fmt: skip
    parser.add_argument(
        "--ok-class", action="append", default=None, metavar="CLASS",
        help="a classifier class that means 'no defect', or a defect type that may pass (repeatable)",
    )  # fmt: skip
    parser.add_argument(
        "--fail-on-defect", action="store_true", help="exit with status 1 when any image is defective"
    )
    from lwcnn.cli.watch import add_ledger_options

    add_ledger_options(parser, keeps=False)
    parser.set_defaults(func=run)


def add_engine_options(parser: argparse.ArgumentParser, with_torch: bool) -> None:
    """``--backend`` and ``--precision``, as ``inspect`` and ``serve`` take them (``torch``: the
    training install's eager engine, for ``inspect`` only)."""
    backends = ("auto", "onnxruntime", "openvino", *(("torch",) if with_torch else ()))
    extra = ", torch (training install)" if with_torch else ""
    parser.add_argument(
        "--backend", choices=backends, default="auto",
        help=(
            "inference engine: auto (default: the fastest measured on this CPU among ONNX Runtime and, "
            f"where installed, OpenVINO; measured once per model and CPU), onnxruntime, openvino{extra}"
        ),
    )  # fmt: skip
    parser.add_argument(
        "--precision", choices=("fp32", "bf16"), default="fp32",
        help=(
            "what --backend openvino computes in: fp32 (default) or bf16 (CPUs with AMX or AVX-512 "
            "BF16); auto takes bf16 only where the model's card holds a bf16 check that agreed with fp32"
        ),
    )  # fmt: skip


def expand_paths(specs: list[str]) -> tuple[list[Path], list[str]]:
    """Image files named by files, folders (recursive, sorted) and glob patterns, and one-line
    problems for specs that name nothing. A path that cannot be looked at (a symlink loop, no
    permission) is kept: it is reported and skipped when it is read, like any unreadable image.
    A folder's masks of its own images (a labelled dataset's: ``masks/``, ``x_label.bmp``) are
    left out, with a line that says so; named as files or as their own folder they are inspected."""
    from lwcnn.data.images import find_images
    from lwcnn.data.mask_pairs import label_files
    from lwcnn.fileio import printable_path

    files: list[Path] = []
    problems: list[str] = []
    for spec in specs:
        path = Path(spec).expanduser()
        try:
            is_dir, exists = path.is_dir(), path.exists()
        except OSError:
            is_dir, exists = False, True
        if is_dir:
            found = find_images(path)
            if not found:
                problems.append(f"{printable_path(spec)}: no images in this folder")
            masks = label_files(found)
            if masks:
                example = printable_path(str(min(masks)))
                problems.append(
                    f"{printable_path(spec)}: left out {len(masks)} mask file(s) of the images beside "
                    f"them (such as {example}); name them to inspect them"
                )
                found = [f for f in found if f not in masks]
            files.extend(found)
        elif exists or not glob.has_magic(spec):
            files.append(path)  # a missing file is reported when it is read
        else:
            found = sorted(Path(p) for p in glob.glob(spec, recursive=True) if _is_file(Path(p)))
            if not found:
                problems.append(f"{printable_path(spec)}: no files match this pattern")
            files.extend(found)
    return files, problems


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:
        return False


def run(args: argparse.Namespace) -> int:
    from lwcnn.fileio import printable_path
    from lwcnn.runtime import Inspector
    from lwcnn.runtime.engine import inspection_threads, inspection_workers

    paths, problems = expand_paths(args.paths)
    for problem in problems:
        print(f"lwcnn inspect: {problem}", file=sys.stderr)
    if args.db is None and (args.mqtt or args.webhook):
        raise ConfigError("--mqtt and --webhook send what is recorded: give --db too")
    if not paths:
        raise ConfigError(f"no images to inspect in {printable_path(' '.join(args.paths))}")
    for option, value in (("--threads", args.threads), ("--workers", args.workers)):
        if value is not None and value < 1:
            raise ConfigError(f"{option} must be at least 1, got {value}")
    started = time.perf_counter()
    workers = args.workers if args.workers is not None else min(inspection_workers(), len(paths))
    inspector = Inspector(
        args.weights,
        backend=args.backend,
        workers=workers,
        auto_sample=paths[: AUTO_SAMPLE_PER_WORKER * workers],  # auto measures on the run's own images
        threads=args.threads if args.threads is not None else inspection_threads(workers),
        batch_size=args.batch,
        threshold=args.threshold,
        min_area=args.min_area,
        tile_overlap=args.tile_overlap,
        ok_classes=args.ok_class,
        max_pixels=args.max_pixels,
        precision=args.precision,
    )
    if inspector.engine_choice is not None and inspector.engine_choice.timings and not args.json:
        print(f"lwcnn inspect: {inspector.engine} ({inspector.engine_choice.reason})", file=sys.stderr)
    return _inspect_and_report(args, inspector, paths, started)


def _inspect_and_report(args: argparse.Namespace, inspector, paths: list[Path], started: float) -> int:
    from tqdm import tqdm

    from lwcnn.runtime.results import inspect_to_folder

    bar = tqdm(
        total=len(paths), unit="img", desc="inspect", file=sys.stderr, dynamic_ncols=True, disable=None
    )

    def result_line(row: dict) -> None:
        bar.update(1)
        if not args.json:
            tqdm.write(_line(row), file=sys.stdout)

    def skipped_line(failure) -> None:
        bar.update(1)
        tqdm.write(f"lwcnn inspect: skipped {failure.error}", file=sys.stderr)

    try:
        report = inspect_to_folder(
            inspector, paths, args.out, pictures="none" if args.no_pictures else args.pictures,
            on_result=result_line, on_failure=skipped_line, started=started,
            overlay_format=args.overlay_format,
        )  # fmt: skip
    finally:
        bar.close()
    summary, rows = report["summary"], report["results"]
    if args.db is not None:
        summary["db"] = _record(args, inspector, report)
    for row in rows:
        if "error" in row:  # pictures that could not be written
            print(f"lwcnn inspect: {row['error']}", file=sys.stderr)
    if args.json:
        print(json.dumps(report))
    else:
        where = f"; overlays in {summary['overlays']}/" if summary["overlays"] and rows else ""
        print(
            f"{summary['images']} image(s) inspected with {inspector.model_name} in {inspector.engine}: "
            f"{summary['defective']} defective, "
            f"{summary['ok']} OK, {summary['failed']} unreadable, "
            f"{summary['ms_per_image']:.1f} ms/image; "
            f"results in {summary['results_csv']}{where}",
            file=sys.stderr,
        )
    if args.fail_on_defect and summary["defective"]:
        return EXIT_DEFECT
    return EXIT_UNREADABLE if summary["failed"] else 0


def _record(args: argparse.Namespace, inspector, report: dict) -> str:
    """Record the run's results in the database (``--db``) and send them to its sinks."""
    from lwcnn.station.outputs import open_outputs

    outputs = open_outputs(args.db, inspector, "inspect", args.station, keep="none", mqtt=args.mqtt,
                           webhook=args.webhook, mqtt_prefix=args.mqtt_prefix)  # fmt: skip
    try:
        outputs.recorder.record_rows(report["results"])
    finally:
        outputs.close(flush_s=30.0)
    return outputs.ledger.where


def _line(row: dict) -> str:
    text = f"{row['image']}\t{row['verdict']}\t{row['score']:.4f}"
    if row["task"] == "seg" and row["defective"]:
        text += f"\tarea={row['area']}px\tboxes={row['boxes']}"
        if row.get("region_types"):
            text += f"\ttypes={row['region_types']}"
    return text
