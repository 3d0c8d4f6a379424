"""CPU latency: the median of many timed forward passes after warm-up."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class LatencyStats:
    """Per-forward wall-clock times in milliseconds."""

    median_ms: float
    p10_ms: float
    p90_ms: float
    runs: int
    threads: int


def measure_latency(
    model: nn.Module,
    input_shape: tuple[int, ...],
    threads: int = 1,
    warmup: int = 10,
    runs: int = 50,
    min_seconds: float = 0.0,
    channels_last: bool = False,
) -> LatencyStats:
    """Time ``model`` in eval mode on random input of ``input_shape`` with ``threads`` intra-op threads.

    At least ``runs`` timed passes follow ``warmup`` untimed ones; with ``min_seconds`` it keeps timing
    until that much time has passed. The previous thread count is restored afterwards.
    """
    if threads < 1:
        raise ValueError(f"threads must be >= 1, got {threads}")
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        model = model.eval()
        x = torch.randn(input_shape)
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
            x = x.contiguous(memory_format=torch.channels_last)
        times: list[float] = []
        with torch.inference_mode():
            for _ in range(warmup):
                model(x)
            started = time.perf_counter()
            while len(times) < runs or time.perf_counter() - started < min_seconds:
                t0 = time.perf_counter()
                model(x)
                times.append((time.perf_counter() - t0) * 1000.0)
    finally:
        torch.set_num_threads(previous_threads)
    deciles = statistics.quantiles(times, n=10) if len(times) > 1 else [times[0]] * 9
    return LatencyStats(
        median_ms=statistics.median(times),
        p10_ms=deciles[0],
        p90_ms=deciles[-1],
        runs=len(times),
        threads=threads,
    )


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
