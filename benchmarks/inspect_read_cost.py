"""What reading an image costs `lwcnn inspect` before the network sees it: decoding, scaling by the
model's scale and making the network input, each timed apart, one image at a time.

    python -m benchmarks.inspect_read_cost --images ../shared/datasets/kolektorsdd [--exclude _label]
        [--weights kolektorsdd] [--limit 100] [--json]

The parts are those of ``Inspector._read`` (which the reading thread, or each worker, runs per
image): ``read_image``, ``Preprocessing.rescale`` and the network input (normalising and padding to
the stride); the last row times ``_read`` whole. Medians over the images, in ms. With one worker
this runs on the second core beside the inference of the image before: when it costs more than the
forward pass, reading, not the engine, sets the pace.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from benchmarks.inspect_speed import add_image_arguments, chosen_images
from lwcnn.data.images import read_image
from lwcnn.runtime import Inspector
from lwcnn.tables import format_table


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_image_arguments(parser)
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = parser.parse_args()
    paths = chosen_images(args)
    inspector = Inspector(args.weights, backend="onnxruntime", threads=1)
    preprocessing = inspector.preprocessing
    parts = ("decode (read_image)", "scale", "network input", "_read whole")
    times: dict[str, list[float]] = {part: [] for part in parts}
    for path in paths:
        started = time.perf_counter()
        image = read_image(path, preprocessing.channels)
        decoded = time.perf_counter()
        if inspector.task == "cls":
            preprocessing(image)
            scaled = ready = time.perf_counter()
        else:
            scaled_image = preprocessing.rescale(image)
            scaled = time.perf_counter()
            inspector._network_input(scaled_image)
            ready = time.perf_counter()
        inspector._read(path)
        whole = time.perf_counter() - ready
        spans = (decoded - started, scaled - decoded, ready - scaled, whole)
        for name, seconds in zip(parts, spans, strict=True):
            times[name].append(seconds * 1e3)
    rows = [{"part": name, "ms_median": round(float(np.median(ms)), 3)} for name, ms in times.items()]
    if args.json:
        print(json.dumps({"images": len(paths), "shape": list(image.shape), "rows": rows}))
    else:
        print(f"{len(paths)} images of {args.images} (the last {image.shape[1]} x {image.shape[0]}), "
              f"{args.weights}")  # fmt: skip
        print(format_table(rows, [("part", "part"), ("ms_median", "ms (median)", ".2f")]))


if __name__ == "__main__":
    main()
