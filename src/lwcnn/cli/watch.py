"""``lwcnn watch IN_DIR``: a hot folder. Each image that arrives is inspected once, recorded in the
results database, optionally sorted into OK/ and NG/, and sent to MQTT or a webhook."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading

from lwcnn.cli.inspect import add_engine_options
from lwcnn.errors import ConfigError
from lwcnn.limits import DEFAULT_MAX_PIXELS


def add_ledger_options(parser: argparse.ArgumentParser, required: bool = False, keeps: bool = True) -> None:
    """``--db`` and what goes with it, as ``inspect``, ``watch`` and ``serve`` take them (``keeps``:
    with ``--store`` and ``--keep``; ``inspect`` keeps its pictures in ``--out``)."""
    parser.add_argument(
        "--db",
        default="lwcnn-results.db" if required else None,
        metavar="FILE_OR_URL",
        help=(
            "results database: a SQLite file, or postgresql://user:password@host/name for several "
            "stations" + (" (default: ./lwcnn-results.db)" if required else "; every verdict is recorded")
        ),
    )
    parser.add_argument(
        "--station", default=None, help="this station's name in the database (default: host name)"
    )
    if keeps:
        parser.add_argument(
            "--store",
            default=None,
            metavar="DIR",
            help="where overlays and masks of recorded results are kept (default: beside the SQLite file, "
            "NAME.files/; ./lwcnn-results.files for PostgreSQL)",
        )
        parser.add_argument(
            "--keep",
            choices=("defective", "all", "none"),
            default="defective",
            help="which recorded results keep an overlay (and mask): defective (default), all, none",
        )
    parser.add_argument(
        "--mqtt",
        default=None,
        metavar="URL",
        help="publish each verdict to this MQTT broker (mqtt://host:1883), QoS 1",
    )
    parser.add_argument("--mqtt-prefix", default="lwcnn", help="topic prefix: PREFIX/STATION/result (lwcnn)")
    parser.add_argument("--webhook", default=None, metavar="URL", help="POST each verdict's JSON to this URL")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "watch",
        help="hot folder: inspect each image as it arrives, record it, sort it, send it",
        description=(
            "Watch IN_DIR (and its subfolders) and inspect each image once as it arrives: written in "
            "place (taken when it is closed, or, when polling, once its size has not changed for --settle "
            "seconds) or renamed in from NAME.part, "
            "NAME.tmp or a hidden name (never read before the rename). Every verdict goes into the results "
            "database (--db), which is also the ledger: after a restart, images recorded already are not "
            "inspected again. --sort moves or copies images into OK/ and NG/ (NG/TYPE/ for models with "
            "types). Ctrl-C stops after the images being inspected; the rest wait for the next start."
        ),
    )
    parser.add_argument("folder", metavar="IN_DIR", help="the folder images arrive in")
    parser.add_argument(
        "--weights", default=None, help="model: .onnx file, bundled name (default: neu), run folder"
    )
    add_ledger_options(parser, required=True)
    parser.add_argument(
        "--sort",
        choices=("none", "move", "copy"),
        default="none",
        help="move or copy each image into OK/ or NG/ (default: leave it)",
    )
    parser.add_argument(
        "--sort-to", default=None, metavar="DIR", help="where OK/ and NG/ are (default: IN_DIR)"
    )
    parser.add_argument(
        "--settle", type=float, default=0.5, help="seconds a file's size must stay the same (0.5)"
    )
    parser.add_argument(
        "--poll",
        type=float,
        default=None,
        metavar="SECONDS",
        help="scan the folder every SECONDS instead of filesystem events (network shares)",
    )
    parser.add_argument("--workers", type=int, default=1, help="images inspected at once (default 1)")
    parser.add_argument("--threads", type=int, default=None, help="inference threads per worker")
    add_engine_options(parser, with_torch=False)
    parser.add_argument("--threshold", type=float, default=None, help="segmenter pixel threshold (0..1)")
    parser.add_argument(
        "--ok-class",
        action="append",
        default=None,
        metavar="CLASS",
        help="a class or defect type that means 'no defect' (repeatable)",
    )
    parser.add_argument("--max-pixels", type=int, default=DEFAULT_MAX_PIXELS, help="largest image in pixels")
    parser.add_argument(
        "--exit-when-idle",
        type=float,
        default=None,
        metavar="SECONDS",
        help="stop once nothing has arrived for SECONDS (a batch; default: run until stopped)",
    )
    parser.add_argument("--max-images", type=int, default=None, help="stop after inspecting this many")
    parser.add_argument("--json", action="store_true", help="print the counts as one JSON object at the end")
    parser.set_defaults(func=run)


def open_inspector(args: argparse.Namespace, workers: int = 1):
    from lwcnn.runtime import Inspector
    from lwcnn.runtime.engine import inspection_threads

    return Inspector(
        args.weights,
        backend=args.backend,
        workers=workers,
        precision=args.precision,
        threads=args.threads if args.threads is not None else inspection_threads(workers),
        threshold=getattr(args, "threshold", None),
        ok_classes=getattr(args, "ok_class", None),
        max_pixels=args.max_pixels,
    )


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from lwcnn.station.outputs import open_outputs
    from lwcnn.station.watch import Station

    if args.workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {args.workers}")
    inspector = open_inspector(args, args.workers)
    outputs = open_outputs(
        args.db,
        inspector,
        "watch",
        args.station,
        args.store,
        args.keep,
        args.mqtt,
        args.webhook,
        args.mqtt_prefix,
    )
    bar = tqdm(unit="img", desc="watch", file=sys.stderr, dynamic_ncols=True, disable=None)

    def shown(payload, name: str) -> None:
        bar.update(1)
        if payload is not None and not args.json:
            tqdm.write(f"{name}\t{payload['verdict']}\t{payload['score']:.4f}", file=sys.stdout)

    station = Station(
        args.folder,
        outputs.recorder,
        sort=args.sort,
        sort_to=args.sort_to,
        settle_s=args.settle,
        poll_s=args.poll,
        workers=args.workers,
        on_result=shown,
    )
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, lambda *_: station.stop())
    print(
        f"lwcnn watch: {station.folder} with {inspector.model_name} in {inspector.engine}; results in "
        f"{outputs.ledger.where} (station {outputs.recorder.station}); Ctrl-C stops",
        file=sys.stderr,
    )
    try:
        counts = station.run(args.exit_when_idle, args.max_images)
    except KeyboardInterrupt:
        station.stop()
        counts = station.counts
    finally:
        bar.close()
        outputs.close()
    summary = {
        **counts.to_dict(),
        "db": outputs.ledger.where,
        "station": outputs.recorder.station,
        "engine": inspector.engine,
    }
    if args.json:
        print(json.dumps(summary))
    else:
        print(
            f"lwcnn watch: {counts.inspected} inspected ({counts.defective} defective), {counts.known} "
            f"recorded before, {counts.unreadable} unreadable",
            file=sys.stderr,
        )
    return 0
