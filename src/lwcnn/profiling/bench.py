"""Inference speed of the deployable models in every engine: ONNX Runtime (the rewritten export,
fp32 and int8), OpenVINO and PyTorch eager, 1 and 2 threads, batch 1 and 8, in interleaved rounds;
and the bundled models from file to verdict. One engine at a time: a PyTorch and an ONNX Runtime
thread pool never run side by side."""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lwcnn.export import export_onnx
from lwcnn.export.quantize import quantize_onnx
from lwcnn.models import create_model
from lwcnn.runtime.backends import cpu_session
from lwcnn.timing import BENCH_ENGINES as ENGINES
from lwcnn.timing import END_TO_END_ENGINES, median_ms

#: The issue's configurations: NEU-size classification and 512x512 segmentation.
BENCH_CASES = (("cls", 6, (3, 200, 200)), ("seg", 2, (3, 512, 512)))
BENCH_MODELS = ("lw@0.35", "mobilenetv2@0.35")
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
    #: ``forward pass``, or an end-to-end row: ``file to verdict, pictures ...`` or a tiled image
    what: str = "forward pass"
    #: End-to-end rows: the time over the forward pass of the same engine in the same rounds
    ratio_to_forward: float | None = None
    #: The tiled large image: megapixels per second
    megapixels_per_s: float | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def trained_like(name: str, task: str, classes: int, shape: tuple[int, int, int]) -> torch.nn.Module:
    """A factory model with random weights but batch-norm statistics from a forward pass, in eval
    mode: the graph and arithmetic of a trained model, which is all that timing depends on."""
    torch.manual_seed(0)
    model = create_model(name, task=task, num_classes=classes, in_channels=shape[0])
    with torch.no_grad():  # realistic BN statistics (folded by the export either way)
        model.train()(torch.randn(2, *shape))
    return model.eval()


def available_engines() -> list[str]:
    """The engines of :data:`ENGINES` that this install and CPU can run (OpenVINO is an extra;
    its bf16 needs AMX or AVX-512 BF16)."""
    from lwcnn.runtime.openvino_engine import openvino_available

    precisions = []
    if openvino_available():  # asked in a child process: OpenVINO stays out of this torch process
        command = [sys.executable, "-m", "lwcnn.runtime.openvino_engine", "precisions"]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        precisions = json.loads(done.stdout) if done.returncode == 0 else []
    wanted = {"openvino": "fp32", "openvino-bf16": "bf16"}  # the precision each OpenVINO row needs
    return [e for e in ENGINES if e not in wanted or wanted[e] in precisions]


def _runner(session: Any, model: torch.nn.Module, x: np.ndarray) -> Callable[[], object]:
    """One forward pass of ``x`` in an ONNX Runtime ``session``, or in PyTorch eager without one."""
    if session is not None:
        return lambda: session.run(None, {"image": x})
    tensor = torch.from_numpy(x).contiguous(memory_format=torch.channels_last)

    def run() -> object:
        with torch.inference_mode():
            return model(tensor)

    return run


def openvino_latency(
    onnx_bytes: bytes, shape: tuple[int, ...], threads: int, precision: str, runs: int, warmup: int,
    budget_s: float,
) -> tuple[float, int]:  # fmt: skip
    """:func:`~lwcnn.timing.median_ms` of the model in OpenVINO, timed in a child process without
    torch: OpenVINO's thread pool (TBB) beside torch's (OpenMP) in one process crashed later torch
    work (a sporadic segmentation fault in the test suite), and one engine at a time is the rule."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.onnx"
        path.write_bytes(onnx_bytes)
        command = [sys.executable, "-m", "lwcnn.runtime.openvino_engine", str(path),
                   ",".join(map(str, shape)), str(threads), precision, str(runs), str(warmup),
                   str(budget_s)]  # fmt: skip
        done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"OpenVINO timing failed: {done.stderr.strip().splitlines()[-1:]}")
    timed = json.loads(done.stdout)
    return timed["latency_ms"], timed["runs"]


#: The bundled models the end-to-end rows inspect, per task (their engines: ``END_TO_END_ENGINES``).
END_TO_END_MODELS = {"cls": "neu", "seg": "kolektorsdd"}


def end_to_end_rows(
    tasks: Iterable[str], engines: Iterable[str], threads: int = 1, images: int = 24, rounds: int = 3,
    large: int = 2048, progress: Callable[[BenchRow], None] | None = None,
) -> list[BenchRow]:  # fmt: skip
    """File on disk to verdict beside the forward pass (:mod:`lwcnn.runtime.speed`) for the bundled
    models on generated images of their size, each engine in a child process of its own (no torch
    there; one engine at a time), ``rounds`` rounds interleaved within it; segmenters also inspect
    one ``large`` x ``large`` image in tiles (megapixels per second)."""
    rows = []
    for task in tasks:
        for engine in engines:
            if engine not in END_TO_END_ENGINES:
                continue
            backend, precision = END_TO_END_ENGINES[engine]
            request = {"weights": END_TO_END_MODELS[task], "backend": backend, "precision": precision,
                       "threads": threads, "images": images, "rounds": rounds, "large": large}  # fmt: skip
            command = [sys.executable, "-m", "lwcnn.runtime.speed", json.dumps(request)]
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise RuntimeError(f"end-to-end timing failed: {done.stderr.strip().splitlines()[-1:]}")
            for found in json.loads(done.stdout):
                row = BenchRow(
                    f"{found['name']} (bundled)", task, f"{found['images']} files", found["engine"], threads,
                    1, found["rounds"], found["ms_per_image"], found["images_per_s"], found["what"],
                    found["ratio_to_forward"], found["megapixels_per_s"],
                )  # fmt: skip
                rows.append(row)
            if progress is not None:
                progress(rows[-1])
    return rows


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
    rounds: int = 1,
) -> list[BenchRow]:
    """Time every combination in ``rounds`` interleaved rounds (each configuration once a round,
    one after the other, so that a machine slowed for a while slows all of them alike); a
    configuration's round stops after ``runs / rounds`` timed runs or ``budget_s / rounds``
    seconds (at least 5 runs), and its row gives the median of its rounds' medians and the runs
    timed in all. One row per configuration, reported to ``progress`` when its last round is done."""
    configurations = list(_configurations(list(models), list(tasks), list(engines), list(threads),
                                          list(batches)))  # fmt: skip
    samples: list[list[float]] = [[] for _ in configurations]
    rows: list[BenchRow] = []
    for round_index in range(rounds):
        for index, (row, timer) in enumerate(configurations):
            latency, count = timer(
                max(1, runs // rounds), warmup if round_index == 0 else 1, budget_s / rounds
            )
            samples[index].extend([latency] * count)  # a round's median stands for its runs
            if round_index == rounds - 1:
                row.runs, row.latency_ms = len(samples[index]), float(np.median(samples[index]))
                row.images_per_s = 1000.0 * row.batch / row.latency_ms
                rows.append(row)
                if progress is not None:
                    progress(row)
    return rows


def _configurations(
    models: list[str], tasks: list[str], engines: list[str], threads: list[int], batches: list[int]
) -> Iterable[tuple[BenchRow, Callable[[int, int, float], tuple[float, int]]]]:
    """Each configuration's row (timings to fill in) and its timer ``(runs, warmup, budget_s) ->
    (median ms, runs timed)``; sessions are made once and kept for every round."""
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
                    session = cpu_session(graphs[engine], thread_count) if engine in graphs else None
                    for batch in batches:
                        x = np.random.default_rng(0).standard_normal((batch, *shape)).astype(np.float32)
                        row = BenchRow(name, task, "x".join(map(str, shape)), engine, thread_count, batch,
                                       0, 0.0, 0.0)  # fmt: skip
                        yield row, _timer(engine, session, model, x, onnx_bytes, thread_count)


def _timer(
    engine: str, session: Any, model: torch.nn.Module, x: np.ndarray, onnx_bytes: bytes, threads: int
) -> Callable[[int, int, float], tuple[float, int]]:
    """``(runs, warmup, budget_s) -> (median ms, runs timed)`` for one configuration."""
    if engine.startswith("openvino"):
        precision = "bf16" if engine.endswith("bf16") else "fp32"
        return lambda runs, warmup, budget_s: openvino_latency(
            onnx_bytes, x.shape, threads, precision, runs, warmup, budget_s
        )
    runner = _runner(session, model, x)

    def timed(runs: int, warmup: int, budget_s: float) -> tuple[float, int]:
        if engine == "torch":
            torch.set_num_threads(threads)  # global: set again before each of its rounds
        return median_ms(runner, runs, warmup, budget_s)

    return timed
