"""From file to verdict beside the forward pass: the timing behind ``lwcnn bench``'s end-to-end rows
and ``benchmarks/inspect_speed.py``. Torch-free, so that it runs where the engines run (``lwcnn
bench`` starts it in a child process per engine: ``python -m lwcnn.runtime.speed REQUEST``).

Per round, for each inspector one after the other (never two thread pools side by side): the
forward pass alone on every image's network input (decoded, scaled, normalised and padded
beforehand, in memory), then :func:`~lwcnn.runtime.results.inspect_to_folder` (what ``lwcnn
inspect`` runs) with pictures ``none``, ``defective`` and ``all`` (JPEG overlays) and ``all`` with
PNG overlays, and for segmenters one generated large image inspected in tiles. A row's figure is
the median over rounds, its ratio taken to the forward pass of the same inspector in the same rounds.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from lwcnn.data.images import read_image
from lwcnn.data.preprocessing import Preprocessing, pad_to_stride
from lwcnn.runtime.engine import Inspector
from lwcnn.runtime.results import inspect_to_folder

#: Which pictures, and the overlays' format: what each inspect row writes.
PICTURES = (("none", "jpeg"), ("defective", "jpeg"), ("all", "jpeg"), ("all", "png"))
FORWARD = "forward pass"


def network_inputs(inspector: Inspector, paths: list[Path]) -> list[np.ndarray]:
    """Each image as the network sees it (one pass: images within the working size)."""
    inputs = []
    for path in paths:
        scaled = inspector.preprocessing.rescale(read_image(path, inspector.preprocessing.channels))
        if inspector.task == "cls":
            inputs.append(inspector.preprocessing(scaled)[None])
        else:
            batch = inspector.preprocessing.normalize(scaled)[None]
            inputs.append(pad_to_stride(batch, axes=(-2, -1), stride=inspector.card.network_stride))
    return inputs


def forward_ms(inspector: Inspector, inputs: list[np.ndarray]) -> float:
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


def generated_images(prep: Preprocessing, folder: Path, count: int) -> list[Path]:
    """``count`` JPEG files of the size a model's images have before scaling (the working size of
    its preprocessing ``prep`` over its scale): a smooth surface texture with mild noise (as a
    photographed part compresses; pixel noise alone would make decoding the whole cost), every
    third with a bright scratch."""
    height, width = (round(side / prep.scale) for side in prep.size)
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    paths = []
    for index in range(count):
        surface = 128 + 30 * np.sin(xs / (5 + index % 4)) + 20 * np.cos(ys / (9 + index % 3))
        noisy = surface[:, :, None] + rng.normal(0, 3, (height, width, prep.channels))
        image = np.clip(noisy, 0, 255).astype(np.uint8)
        if index % 3 == 0:
            top = int(rng.integers(height // 4, 3 * height // 4))
            image[top : top + max(2, height // 100), width // 4 : 3 * width // 4] = 250
        path = folder / f"image{index:03d}.jpg"
        Image.fromarray(image[:, :, 0] if prep.channels == 1 else image).save(path, quality=95)
        paths.append(path)
    return paths


def measure_end_to_end(
    inspectors: dict[str, Inspector], paths: list[Path], rounds: int = 5, large: int = 2048
) -> list[dict[str, Any]]:
    """The rows described above, per named inspector: ``name``, ``engine``, ``what``,
    ``ms_per_image``, ``images_per_s``, ``ratio_to_forward``, ``megapixels_per_s`` (tiled rows),
    ``images``, ``defective``, ``rounds``."""
    inputs = {name: network_inputs(inspector, paths) for name, inspector in inspectors.items()}
    times: dict[tuple[str, str], list[float]] = {}
    defective = 0
    tiled = f"one {large}x{large} image, tiled"
    with tempfile.TemporaryDirectory() as tmp:
        for name, inspector in inspectors.items():  # warm-up: first-call costs out of the figures
            forward_ms(inspector, inputs[name][:3])
            inspect_ms(inspector, paths[:3], Path(tmp) / "warm-up", "all")
        for _ in range(rounds):
            for name, inspector in inspectors.items():
                times.setdefault((name, FORWARD), []).append(forward_ms(inspector, inputs[name]))
                for pictures, overlay_format in PICTURES:
                    ms, defective = inspect_ms(inspector, paths, Path(tmp) / "out", pictures, overlay_format)
                    png = ", PNG overlays" if overlay_format == "png" else ""
                    times.setdefault((name, f"file to verdict, pictures {pictures}{png}"), []).append(ms)
                if inspector.task == "seg" and large:
                    times.setdefault((name, tiled), []).append(large_image_ms(inspector, large))
    rows = []
    for (name, what), values in times.items():
        median = statistics.median(values)
        forward = statistics.median(times[(name, FORWARD)])
        rows.append({
            "name": name, "engine": inspectors[name].engine, "what": what, "ms_per_image": median,
            "images_per_s": 1000.0 / median,
            "ratio_to_forward": median / forward if what != tiled else None,
            "megapixels_per_s": large**2 / 1e3 / median if what == tiled else None,
            "images": len(paths), "defective": defective, "rounds": len(values),
        })  # fmt: skip
    return rows


def _child(request: dict[str, Any]) -> list[dict[str, Any]]:
    """``lwcnn bench``'s end-to-end rows of one model in one engine, in this process."""
    inspector = Inspector(request["weights"], backend=request["backend"], threads=request["threads"],
                          precision=request["precision"])  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        paths = generated_images(inspector.preprocessing, Path(tmp) / "images", request["images"])
        return measure_end_to_end({request["weights"]: inspector}, paths, request["rounds"], request["large"])


if __name__ == "__main__":
    print(json.dumps(_child(json.loads(sys.argv[1]))))
