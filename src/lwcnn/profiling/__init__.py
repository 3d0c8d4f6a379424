"""Model profiling: weights, FLOPs and CPU latency (PyTorch eager)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from lwcnn.errors import ConfigError
from lwcnn.models import create_model
from lwcnn.profiling.flops import count_flops, count_parameters
from lwcnn.profiling.latency import LatencyStats, measure_latency


@dataclass(frozen=True)
class ProfileResult:
    """Sizes and speed of one model configuration."""

    model: str
    task: str
    classes: int
    input: str  # CxHxW
    params_m: float  # trainable weights, millions
    flops_m: float  # 2 x multiply-accumulates, millions
    latency_ms: float | None  # median, batch 1
    latency_p10_ms: float | None
    latency_p90_ms: float | None
    threads: int | None
    runs: int | None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def parse_input_shape(text: str) -> tuple[int, int, int]:
    """Parse ``CxHxW`` (e.g. ``3x200x200``) into a (C, H, W) tuple."""
    parts = text.lower().replace("*", "x").split("x")
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise ConfigError(f"input shape must be CxHxW with positive integers, got {text!r}")
    return shape  # type: ignore[return-value]


def profile_model(
    name: str,
    task: str = "cls",
    num_classes: int | None = None,
    input_shape: tuple[int, int, int] = (3, 224, 224),
    threads: int = 1,
    latency: bool = True,
    warmup: int = 10,
    runs: int = 50,
) -> ProfileResult:
    """Build ``name`` from the factory and measure it on a batch of one ``input_shape`` image."""
    channels, height, width = input_shape
    model = create_model(name, task=task, num_classes=num_classes, in_channels=channels)  # type: ignore[arg-type]
    batch_shape = (1, channels, height, width)
    stats: LatencyStats | None = None
    if latency:
        stats = measure_latency(model, batch_shape, threads=threads, warmup=warmup, runs=runs)
    return ProfileResult(
        model=model.spec.name,
        task=task,
        classes=model.spec.num_classes,
        input=f"{channels}x{height}x{width}",
        params_m=count_parameters(model) / 1e6,
        flops_m=count_flops(model, batch_shape) / 1e6,
        latency_ms=stats.median_ms if stats else None,
        latency_p10_ms=stats.p10_ms if stats else None,
        latency_p90_ms=stats.p90_ms if stats else None,
        threads=threads if stats else None,
        runs=stats.runs if stats else None,
    )


__all__ = [
    "LatencyStats",
    "ProfileResult",
    "count_flops",
    "count_parameters",
    "measure_latency",
    "parse_input_shape",
    "profile_model",
]
