"""From file to verdict: what `lwcnn inspect` costs per image beside the forward pass alone.

    python -m benchmarks.inspect_speed --weights kolektorsdd --images ../shared/datasets/kolektorsdd \
        [--exclude _label] [--limit 100] [--threads 1 [2]] [--rounds 5] \
        [--backend onnxruntime openvino] [--json]

For each engine (at each thread count) and each round, one after the other (never two thread
pools side by side): the forward pass alone on every image's network input (decoded, scaled,
normalised and padded beforehand, in memory), then ``inspect_to_folder`` (what ``lwcnn inspect``
runs: reading, the forward pass, the decision, regions, results files) with pictures ``none``,
``defective`` and ``all`` (JPEG overlays, the default), and ``all`` with PNG overlays. The table
gives the median over rounds of the time per image and its ratio to the forward pass of the same
engine in the same rounds. A last row per engine (segmenters): one generated ``--large`` x
``--large`` image inspected in tiles, in megapixels per second.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from lwcnn.data.images import find_images, read_image
from lwcnn.data.preprocessing import pad_to_stride
from lwcnn.runtime import Inspector
from lwcnn.runtime.results import inspect_to_folder
from lwcnn.tables import format_table

#: Which pictures, and the overlays' format: what each inspect row writes.
PICTURES = (("none", "jpeg"), ("defective", "jpeg"), ("all", "jpeg"), ("all", "png"))


def network_inputs(inspector: Inspector, paths: list[Path]) -> list:
    """Each image as the network sees it (one pass: images within the working size)."""
    inputs = []
    for path in paths:
        scaled = inspector.preprocessing.rescale(read_image(path, inspector.preprocessing.channels))
        if inspector.task == "cls":
            inputs.append(inspector._batch([scaled]))
        else:
            batch = inspector.preprocessing.normalize(scaled)[None]
            inputs.append(pad_to_stride(batch, axes=(-2, -1), stride=inspector.card.network_stride))
    return inputs


def forward_ms(inspector: Inspector, inputs: list) -> float:
    start = time.perf_counter()
    for batch in inputs:
        inspector.backend.run(batch)
    return 1000.0 * (time.perf_counter() - start) / len(inputs)


def inspect_ms(
    inspector: Inspector, paths: list[Path], out: Path, pictures: str, overlay_format: str = "jpeg"
) -> tuple[float, int]:
    start = time.perf_counter()
    report = inspect_to_folder(inspector, paths, out, pictures=pictures, overlay_format=overlay_format)
    seconds = time.perf_counter() - start
    return 1000.0 * seconds / len(paths), report["summary"]["defective"]


def large_image_ms(inspector: Inspector, side: int) -> float:
    """One generated side x side image (a gray texture with a bright scratch), inspected whole:
    scaled, cut into overlapping tiles of the working size, answered at full size."""
    rng = np.random.default_rng(0)
    image = rng.integers(80, 170, (side, side, inspector.preprocessing.channels), dtype=np.uint8)
    image[side // 2 : side // 2 + 6, side // 4 : side // 2] = 255
    start = time.perf_counter()
    inspector.inspect(image)
    return 1000.0 * (time.perf_counter() - start)


def measure(args: argparse.Namespace, paths: list[Path]) -> list[dict]:
    inspectors = {  # each engine at each thread count, by a name for the table
        f"{name}, {threads} thread(s)": Inspector(args.weights, backend=name, threads=threads)
        for name in args.backend
        for threads in args.threads
    }
    inputs = {name: network_inputs(inspector, paths) for name, inspector in inspectors.items()}
    times: dict[tuple[str, str], list[float]] = {}
    defective = 0
    with tempfile.TemporaryDirectory() as tmp:
        for name, inspector in inspectors.items():  # warm-up: first-call costs out of the figures
            forward_ms(inspector, inputs[name][:3])
            inspect_ms(inspector, paths[:3], Path(tmp) / "warm-up", "all")
        for _ in range(args.rounds):
            for name, inspector in inspectors.items():
                times.setdefault((name, "forward pass"), []).append(forward_ms(inspector, inputs[name]))
                for pictures, overlay_format in PICTURES:
                    ms, defective = inspect_ms(inspector, paths, Path(tmp) / name, pictures, overlay_format)
                    png = ", PNG overlays" if overlay_format == "png" else ""
                    what = f"inspect, pictures {pictures}{png}"
                    times.setdefault((name, what), []).append(ms)
                if inspector.task == "seg" and args.large:
                    large = large_image_ms(inspector, args.large)
                    times.setdefault((name, f"one {args.large}x{args.large} image, tiled"), []).append(large)
    rows = []
    for (name, what), values in times.items():
        median = statistics.median(values)
        forward = statistics.median(times[(name, "forward pass")])
        rows.append({
            "engine": f"{getattr(inspectors[name], 'engine', name)}, {name.rsplit(', ', 1)[1]}",
            "what": what, "ms_per_image": median,
            "images_per_s": 1000.0 / median,
            "ratio_to_forward": median / forward if "tiled" not in what else None,
            "images": len(paths), "defective": defective, "rounds": len(values),
            "megapixels_per_s": args.large**2 / 1e3 / median if "tiled" in what else None,
        })  # fmt: skip
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--weights", default="kolektorsdd", help="a model (default: the bundled kolektorsdd)")
    parser.add_argument("--images", required=True, help="a folder of images")
    parser.add_argument("--exclude", default=None, help="leave out images whose name holds this (_label)")
    parser.add_argument("--limit", type=int, default=100, help="images at most (default 100)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1], help="inference threads (default 1)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of every measurement (default 5)")
    parser.add_argument("--backend", nargs="+", default=["onnxruntime"], help="engines (default onnxruntime)")
    parser.add_argument("--large", type=int, default=2048, help="side of the tiled image (0: none)")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = parser.parse_args()
    paths = [p for p in find_images(args.images) if not (args.exclude and args.exclude in p.name)]
    paths = paths[: args.limit]
    if not paths:
        raise SystemExit(f"{args.images}: no images")
    rows = measure(args, paths)
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
