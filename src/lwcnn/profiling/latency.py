"""CPU latency: the median of many timed forward passes after warm-up."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import torch
from torch import nn

from lwcnn.errors import ConfigError


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
        raise ConfigError(f"threads must be >= 1, got {threads}")
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
