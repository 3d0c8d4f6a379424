"""Where ONNX Runtime spends the time of lw@0.35: its own per-operator profile (kernel times only)
of the graph lwcnn trains (the LW pyramid as one grouped 5x5 convolution), of lwcnn's first export
(a ``Tile`` of the input for the six small kernels) and of the export lwcnn writes now.

    python benchmarks/ort_operator_profile.py [--task cls|seg] [--runs 300] [--threads 1]

lw@0.35 with random weights and BN statistics, batch 1, ONNX Runtime fp32 on the CPU, all graph
optimisations (the blocked NCHWc layout included). Prints, per graph, the share of the summed
kernel time of each operator type ("Reorder*" are ONNX Runtime's layout conversions, inserted
around every operator its blocked layout does not support). Profiling adds its own overhead to
every operator, so the shares matter here, not the absolute times: `lwcnn bench` measures those.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import tempfile

import numpy as np
import onnxruntime as ort
import torch
from lw_pyramid_ort import tiled_copy  # a sibling script: run this one as benchmarks/...py

from lwcnn.export import export_onnx
from lwcnn.models import create_model
from lwcnn.tables import format_table


def kernel_times(
    model: bytes, x: np.ndarray, runs: int, threads: int, warmup: int = 10
) -> tuple[dict[str, float], dict[str, float]]:
    """Mean microseconds per run spent in each operator type's kernels, and in each part of the
    model (``backbone``, ``decoder``, the rest: the head, and ONNX Runtime's layout reorders, whose
    names say nothing of where they sit); warm-up runs left out."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    options.enable_profiling = True
    with tempfile.TemporaryDirectory() as folder:
        options.profile_file_prefix = os.path.join(folder, "profile")
        session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        for _ in range(warmup + runs):
            session.run(None, {name: x})
        with open(session.end_profiling()) as handle:
            events = json.load(handle)
    seen: collections.Counter[str] = collections.Counter()
    totals: dict[str, float] = collections.defaultdict(float)
    parts: dict[str, float] = collections.defaultdict(float)
    for event in events:
        if event.get("cat") == "Node" and event["name"].endswith("_kernel_time"):
            seen[event["name"]] += 1
            if seen[event["name"]] > warmup:  # each node's first runs are the warm-up
                op = event["args"]["op_name"]
                totals["Reorder*" if op.startswith("Reorder") else op] += event["dur"]
                part = event["name"].split("/")[1] if event["name"].startswith("/") else ""
                parts[part if part in ("backbone", "decoder") else "head, reorders"] += event["dur"]
    return {op: t / runs for op, t in totals.items()}, {part: t / runs for part, t in parts.items()}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--task", choices=("cls", "seg"), default="cls")
    parser.add_argument("--runs", type=int, default=None, help="profiled runs (default 300 cls, 40 seg)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    shape = (1, 3, 200, 200) if args.task == "cls" else (1, 3, 512, 512)
    runs = args.runs or (300 if args.task == "cls" else 40)
    torch.manual_seed(0)
    model = create_model("lw@0.35", task=args.task, num_classes=6 if args.task == "cls" else 2)
    with torch.no_grad():
        model.train()(torch.randn(2, *shape[1:]))
    model.eval()
    graphs = {
        "fused 5x5": export_onnx(model, None, rewrite=False),
        "first export (Tile)": export_onnx(tiled_copy(model, shape), None, rewrite=False),
        "export (rewritten)": export_onnx(model, None),
    }
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    rows, part_rows = [], []
    for graph, data in graphs.items():
        times, parts = kernel_times(data, x, runs, args.threads)
        total = sum(times.values())
        for part, spent in sorted(parts.items()):
            part_rows.append({"graph": graph, "part": part, "us": spent, "share": 100 * spent / total})
        for op, spent in sorted(times.items(), key=lambda item: -item[1]):
            if spent / total >= 0.005:
                rows.append({"graph": graph, "op": op, "us": spent, "share": 100 * spent / total})
        rows.append({"graph": graph, "op": "(all)", "us": total, "share": 100.0})
    print(f"onnxruntime {ort.__version__}, {args.threads} thread(s), lw@0.35 {args.task} "
          f"{'x'.join(map(str, shape[1:]))}, batch 1, {runs} profiled runs")  # fmt: skip
    columns = [
        ("graph", "graph"),
        ("op", "operator"),
        ("us", "kernel us/run", ".1f"),
        ("share", "share (%)", ".1f"),
    ]
    print(format_table(rows, columns))
    print()
    print(format_table(part_rows, [("graph", "graph"), ("part", "part"), *columns[2:]]))


if __name__ == "__main__":
    main()
