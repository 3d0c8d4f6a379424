"""What `lwcnn inspect` costs a factory PC: time to the first result, total time and peak resident
memory on a folder of 100 generated 512x512 images, and the runtime install's size on disk.

    python benchmarks/inspect_footprint.py --lwcnn /path/to/runtime-venv/bin/lwcnn [--images 100]

`--lwcnn` should be the command of a runtime-only install (`pip install lwcnn[runtime]`, no torch);
this script (run with the training install) writes the images and a lw@0.35 segmenter exported with
random weights and a 512x512 working size, then runs, one after the other: the bundled NEU classifier
and that segmenter. Peak memory is the child's resident high-water mark (VmHWM).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from lwcnn.export import export_onnx
from lwcnn.models import create_model
from lwcnn.tables import format_table


def site_packages_mb(lwcnn_command: Path) -> float:
    env_root = lwcnn_command.resolve().parent.parent
    total = 0
    for folder in env_root.glob("lib/python*/site-packages"):
        for dirpath, _, files in os.walk(folder):
            total += sum(os.path.getsize(os.path.join(dirpath, f)) for f in files)
    return total / 2**20


def run_inspect(command: list[str]) -> dict:
    """Run ``command``; time to its first stdout line and to its end, and its peak resident memory:
    the kernel's high-water mark VmHWM of the process, read from /proc while it runs (getrusage
    would count the memory of this torch-laden parent, which a forked child inherits)."""
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    peak_kb = 0

    def watch() -> None:
        nonlocal peak_kb
        status = Path(f"/proc/{process.pid}/status")
        while process.poll() is None:
            try:
                for line in status.read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        peak_kb = max(peak_kb, int(line.split()[1]))  # a high-water mark: only grows
            except (OSError, ValueError):
                break
            time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    first_line = process.stdout.readline()
    first = time.perf_counter() - start
    rest = process.stdout.read()
    process.wait()
    total = time.perf_counter() - start
    watcher.join()
    if process.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(command)} exited with {process.returncode}")
    lines = 1 + rest.count("\n") if first_line else 0
    return {"first_result_s": first, "total_s": total, "peak_rss_mb": peak_kb / 1024, "lines": lines}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lwcnn", required=True, help="the lwcnn command of a runtime-only install")
    parser.add_argument("--images", type=int, default=100)
    args = parser.parse_args()
    command = Path(args.lwcnn)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "images"
        folder.mkdir()
        rng = np.random.default_rng(0)
        for i in range(args.images):
            Image.fromarray(rng.integers(40, 220, (512, 512), dtype=np.uint8)).save(folder / f"{i:03d}.png")
        torch.manual_seed(0)
        segmenter = create_model("lw@0.35", task="seg", in_channels=1).eval()
        seg_path = Path(tmp) / "seg.onnx"
        preprocessing = {"channels": 1, "size": [512, 512], "mean": [0.5], "std": [0.25]}
        meta = {"task": "seg", "classes": ["background", "defect"], "preprocessing": preprocessing}
        export_onnx(segmenter, seg_path, meta)
        rows = []
        for label, weights in (
            ("neu classifier (bundled)", []),
            ("lw@0.35 segmenter 512", ["--weights", str(seg_path)]),
        ):
            result = run_inspect(
                [str(command), "inspect", str(folder), "--out", str(Path(tmp) / "out"), *weights]
            )
            rows.append({"model": label, "images": result["lines"], **result})
    print(f"runtime install: {site_packages_mb(command):.0f} MB in site-packages ({command})")
    print(f"python {sys.version.split()[0]}, {args.images} images of 512x512, overlays written")
    columns = [("model", "model"), ("images", "images"), ("first_result_s", "first result (s)", ".2f"),
               ("total_s", "total (s)", ".2f"), ("peak_rss_mb", "peak RSS (MB)", ".0f")]  # fmt: skip
    print(format_table(rows, columns))


if __name__ == "__main__":
    main()
