"""Where OpenVINO's CPU plugin spends the time of a segmenter: its own per-node profile
(``PERF_COUNT``), summed by node type and kernel, of lwcnn's export compiled as the engine compiles
it, and of the same graph without the engine's rewrite (``runtime/openvino_graph.py``).

    python -m benchmarks.openvino_operator_profile [--models lw@0.35 mobilenetv2@0.35]
        [--precision bf16] [--size 512] [--runs 50]

Random weights with BN statistics (as ``lwcnn bench``), batch 1, one thread. The export is made
here (torch); OpenVINO runs in a child process without torch, as everywhere in lwcnn. Profiling
adds its own overhead to every node: the shares and the kernels named matter, ``lwcnn bench``
measures the latency.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

#: Rows printed per graph, the largest first.
TOP = 10


def profile(path: str, precision: str, size: int, runs: int) -> list[dict]:
    """For the graph without and with the engine's rewrite, compiled in this (torch-free) process
    and run alternately (so that a drifting machine weighs on both alike): mean microseconds per run
    by (node type, kernel), the total and the number of concatenations rewritten."""
    import numpy as np
    import openvino as ov

    from lwcnn.runtime.openvino_engine import cpu_config
    from lwcnn.runtime.openvino_graph import split_concat_projections

    core, shape = ov.Core(), [1, 3, size, size]
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    requests, rewritten = [], []
    for rewrite in (False, True):
        model = core.read_model(path)
        model.reshape({model.inputs[0]: shape})
        rewritten.append(split_concat_projections(model) if rewrite else 0)
        config = {**cpu_config(1, precision), "PERF_COUNT": "YES"}
        requests.append(core.compile_model(model, "CPU", config).create_infer_request())
    for request in requests:
        for _ in range(20):
            request.infer({0: x})
    by_kind: list[dict[str, float]] = [defaultdict(float), defaultdict(float)]
    for _ in range(runs):
        for request, kinds in zip(requests, by_kind, strict=True):
            request.infer({0: x})
            for node in request.profiling_info:
                if node.status == node.Status.EXECUTED:
                    us = node.real_time.total_seconds() * 1e6
                    kinds[f"{node.node_type} ({node.exec_type})"] += us / runs
    return [
        {"rewritten": count, "total_us": sum(kinds.values()), "by_kind": dict(kinds)}
        for count, kinds in zip(rewritten, by_kind, strict=True)
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["lw@0.35", "mobilenetv2@0.35"])
    parser.add_argument("--precision", default="bf16", choices=["fp32", "bf16"])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args(argv)

    from lwcnn.export import export_onnx
    from lwcnn.profiling.bench import trained_like

    with tempfile.TemporaryDirectory() as folder:
        for name in args.models:
            path = Path(folder) / "model.onnx"
            model = trained_like(name, "seg", 2, (3, args.size, args.size))
            export_onnx(model, path, {"preprocessing": {"size": [args.size, args.size]}})
            code = (
                "import json, sys; from benchmarks.openvino_operator_profile import profile; "
                "print(json.dumps(profile(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))))"
            )
            done = subprocess.run(
                [sys.executable, "-c", code, str(path), args.precision, str(args.size), str(args.runs)],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            results = json.loads(done.stdout.strip().splitlines()[-1])
            labels = ("without the engine's rewrite", "as the engine compiles it")
            for label, result in zip(labels, results, strict=True):
                total = result["total_us"]
                print(f"\n{name} seg {args.size}x{args.size}, OpenVINO {args.precision}, {label} "
                      f"({result['rewritten']} concatenations rewritten): "
                      f"{total / 1000:.2f} ms of kernels")  # fmt: skip
                ranked = sorted(result["by_kind"].items(), key=lambda item: -item[1])[:TOP]
                for kind, us in ranked:
                    print(f"  {us / 1000:6.3f} ms  {100 * us / total:5.1f}%  {kind}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
