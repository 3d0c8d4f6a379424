"""Timing several ways of doing the same work side by side (stdlib only: the export's int8 choice,
the profiler and the benchmarks all use it, and it needs neither torch nor ONNX Runtime)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping

#: The engines ``lwcnn bench`` times, by name: here, torch-free, so that its parser offers the same
#: names as ``lwcnn.profiling.bench`` (which imports torch) runs.
BENCH_ENGINES = (
    "onnxruntime",
    "onnxruntime-int8",
    "onnxruntime-int8-decoder",
    "openvino",
    "openvino-bf16",
    "torch",
)
#: The engines that inspect whole images (``Inspector``), by bench name: (backend, precision).
END_TO_END_ENGINES = {"onnxruntime": ("onnxruntime", "fp32"), "openvino": ("openvino", "fp32"),
                      "openvino-bf16": ("openvino", "bf16")}  # fmt: skip


def time_alternately(
    runners: Mapping[str, Callable[[], object]], runs: int, warmup: int = 10, slice_runs: int = 10
) -> dict[str, list[float]]:
    """Time several ways of doing the same work side by side: ``warmup`` untimed calls of each,
    then ``slice_runs`` timed calls of each in turn until every one has at least ``runs``, so that
    drifts of the machine hit all alike. Returns milliseconds per call, by name."""
    times: dict[str, list[float]] = {name: [] for name in runners}
    for runner in runners.values():
        for _ in range(warmup):
            runner()
    while min(len(t) for t in times.values()) < runs:
        for name, runner in runners.items():
            for _ in range(slice_runs):
                t0 = time.perf_counter()
                runner()
                times[name].append((time.perf_counter() - t0) * 1000.0)
    return times


def median_ms(run: Callable[[], object], runs: int, warmup: int, budget_s: float) -> tuple[float, int]:
    """Median wall time of ``run`` in milliseconds after ``warmup`` calls, and how many runs were
    timed: ``runs`` of them, or fewer (at least 5) once ``budget_s`` seconds have passed."""
    for _ in range(warmup):
        run()
    times: list[float] = []
    deadline = time.perf_counter() + budget_s
    while len(times) < runs and (len(times) < 5 or time.perf_counter() < deadline):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(times), len(times)
