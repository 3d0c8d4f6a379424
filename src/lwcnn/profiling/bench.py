"""Inference speed of the deployable models in every engine: ONNX Runtime (the rewritten export,
fp32 and int8) and PyTorch eager, 1 and 2 threads, batch 1 and 8. One engine at a time: a PyTorch and an ONNX
Runtime thread pool never run side by side."""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass

import numpy as np
import torch

from lwcnn.export import export_onnx
from lwcnn.export.quantize import quantize_onnx
from lwcnn.models import create_model
from lwcnn.runtime.backends import cpu_session

#: The issue's configurations: NEU-size classification and 512x512 segmentation.
BENCH_CASES = (("cls", 6, (3, 200, 200)), ("seg", 2, (3, 512, 512)))
BENCH_MODELS = ("lw@0.35", "mobilenetv2@0.35")
ENGINES = ("onnxruntime", "onnxruntime-int8", "onnxruntime-int8-decoder", "torch")
#: Calibration images for the int8 rows: random inputs (speed does not depend on the values; the
#: accuracy of int8 is measured by ``lwcnn export --int8`` on real images, not here).
INT8_CALIBRATION_IMAGES = 8


@dataclass
class BenchRow:
    """One configuration's median latency per forward pass and the throughput it gives."""

    model: str
    task: str
    input: str
    engine: str
    threads: int
    batch: int
    runs: int
    latency_ms: float
    images_per_s: float

    def to_dict(self) -> dict:
        return asdict(self)


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


def trained_like(name: str, task: str, classes: int, shape: tuple[int, int, int]) -> torch.nn.Module:
    """A factory model with random weights but batch-norm statistics from a forward pass, in eval
    mode: the graph and arithmetic of a trained model, which is all that timing depends on."""
    torch.manual_seed(0)
    model = create_model(name, task=task, num_classes=classes, in_channels=shape[0])
    with torch.no_grad():  # realistic BN statistics (folded by the export either way)
        model.train()(torch.randn(2, *shape))
    return model.eval()


def run_bench(
    models: Iterable[str] = BENCH_MODELS,
    tasks: Iterable[str] = ("cls", "seg"),
    engines: Iterable[str] = ENGINES,
    threads: Iterable[int] = (1, 2),
    batches: Iterable[int] = (1, 8),
    runs: int = 30,
    warmup: int = 5,
    budget_s: float = 10.0,
    progress: Callable[[BenchRow], None] | None = None,
) -> list[BenchRow]:
    """Time every combination; each configuration stops after ``runs`` timed runs or ``budget_s``
    seconds (at least 5 runs). Returns one row per configuration."""
    rows = []
    tasks, engines, threads, batches = list(tasks), list(engines), list(threads), list(batches)
    for name in models:
        for task, classes, shape in BENCH_CASES:
            if task not in tasks:
                continue
            model = trained_like(name, task, classes, shape)
            onnx_bytes = export_onnx(model, None, {"preprocessing": {"size": list(shape[1:])}})
            model = model.to(memory_format=torch.channels_last)  # the eager engine's layout
            graphs = {"onnxruntime": onnx_bytes}
            rng = np.random.default_rng(0)
            calibration = [
                rng.standard_normal(shape).astype(np.float32) for _ in range(INT8_CALIBRATION_IMAGES)
            ]
            if "onnxruntime-int8" in engines:
                graphs["onnxruntime-int8"] = quantize_onnx(onnx_bytes, calibration)
            if "onnxruntime-int8-decoder" in engines and task == "seg":  # mixed: int8 decoder only
                graphs["onnxruntime-int8-decoder"] = quantize_onnx(onnx_bytes, calibration, scope="decoder")
            for engine in engines:
                if engine.startswith("onnxruntime") and engine not in graphs:
                    continue  # int8-decoder: segmenters only
                for thread_count in threads:
                    session = None
                    if engine in graphs:
                        session = cpu_session(graphs[engine], thread_count)
                    else:
                        torch.set_num_threads(thread_count)
                    for batch in batches:
                        x = np.random.default_rng(0).standard_normal((batch, *shape)).astype(np.float32)
                        if session is not None:
                            run = lambda s=session, x=x: s.run(None, {"image": x})  # noqa: E731
                        else:
                            tensor = torch.from_numpy(x).contiguous(memory_format=torch.channels_last)

                            def run(m=model, t=tensor):
                                with torch.inference_mode():
                                    return m(t)

                        latency, count = median_ms(run, runs, warmup, budget_s)
                        row = BenchRow(name, task, "x".join(map(str, shape)), engine, thread_count, batch,
                                       count, latency, 1000.0 * batch / latency)  # fmt: skip
                        rows.append(row)
                        if progress is not None:
                            progress(row)
                    del session
                    gc.collect()
    return rows
