"""From file to verdict: what `lwcnn inspect` costs per image beside the forward pass alone.

    python -m benchmarks.inspect_speed --weights kolektorsdd --images ../shared/datasets/kolektorsdd \
        [--exclude _label] [--limit 100] [--threads 1 [2]] [--rounds 5] \
        [--backend onnxruntime openvino openvino-bf16] [--json]

For each engine (at each thread count) and each round, one after the other (never two thread
pools side by side): the forward pass alone on every image's network input (decoded, scaled,
normalised and padded beforehand, in memory), then ``inspect_to_folder`` (what ``lwcnn inspect``
runs: reading, the forward pass, the decision, regions, results files) with pictures ``none``,
``defective`` and ``all`` (JPEG overlays, the default), and ``all`` with PNG overlays. The table
gives the median over rounds of the time per image and its ratio to the forward pass of the same
engine in the same rounds. A last row per engine (segmenters): one generated ``--large`` x
``--large`` image inspected in tiles, in megapixels per second. The measurement is
:func:`lwcnn.runtime.speed.measure_end_to_end`, as ``lwcnn bench``'s end-to-end rows (which run it
on generated images); here it runs on real ones.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lwcnn.data.images import find_images
from lwcnn.runtime import Inspector
from lwcnn.runtime.speed import measure_end_to_end
from lwcnn.tables import format_table
from lwcnn.timing import END_TO_END_ENGINES


def add_image_arguments(parser: argparse.ArgumentParser) -> None:
    """The model and the images an inspection benchmark runs on (``chosen_images`` reads them)."""
    parser.add_argument("--weights", default="kolektorsdd", help="a model (default: the bundled kolektorsdd)")
    parser.add_argument("--images", required=True, help="a folder of images")
    parser.add_argument("--exclude", default=None, help="leave out images whose name holds this (_label)")
    parser.add_argument("--limit", type=int, default=100, help="images at most (default 100)")


def chosen_images(args: argparse.Namespace) -> list[Path]:
    """The images of ``--images`` without the ``--exclude``d ones, at most ``--limit``."""
    paths = [p for p in find_images(args.images) if not (args.exclude and args.exclude in p.name)]
    if not paths[: args.limit]:
        raise SystemExit(f"{args.images}: no images")
    return paths[: args.limit]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_image_arguments(parser)
    parser.add_argument("--threads", type=int, nargs="+", default=[1], help="inference threads (default 1)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of every measurement (default 5)")
    parser.add_argument(
        "--backend", nargs="+", default=["onnxruntime"], choices=list(END_TO_END_ENGINES),
        help="engines, as lwcnn bench names them (default onnxruntime)",
    )  # fmt: skip
    parser.add_argument("--large", type=int, default=2048, help="side of the tiled image (0: none)")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = parser.parse_args()
    paths = chosen_images(args)
    inspectors = {  # each engine at each thread count, by a name for the table
        f"{name}, {threads} thread(s)": Inspector(
            args.weights,
            backend=END_TO_END_ENGINES[name][0],
            precision=END_TO_END_ENGINES[name][1],
            threads=threads,
        )
        for name in args.backend
        for threads in args.threads
    }
    rows = measure_end_to_end(inspectors, paths, args.rounds, args.large)
    for row in rows:
        row["engine"] = f"{row['engine']}, {row['name'].rsplit(', ', 1)[1]}"
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"{len(paths)} images of {args.images}, {rows[0]['defective']} defective; "
          f"median of {args.rounds} rounds")  # fmt: skip
    print(format_table(rows, [
        ("engine", "engine"), ("what", "what"), ("ms_per_image", "ms/image", ".2f"),
        ("images_per_s", "images/s", ".1f"), ("ratio_to_forward", "x forward", ".2f"),
        ("megapixels_per_s", "Mpixel/s", ".2f"),
    ]))  # fmt: skip


if __name__ == "__main__":
    main()
