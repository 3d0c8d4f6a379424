"""OpenVINO as an engine for the same ONNX files: on Intel CPUs it runs the segmenters faster than
ONNX Runtime, and in bf16 where the CPU has AMX or AVX-512 BF16. Torch-free, like the rest of the
runtime; installed with ``pip install lwcnn[openvino]``.

OpenVINO reads the ONNX file itself (its ``metadata_props`` arrive as the model's ``framework``
runtime information, where the lwcnn card is read from). An image size the compiled model has not
seen is compiled for once (the export's height and width are dynamic; a static shape runs faster
than a dynamic one on the CPU plugin), and the few most recent shapes are kept.
"""

from __future__ import annotations

import json
import sys
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from lwcnn.card import ONNX_METADATA_KEY, ModelCard, card_from_json, check_output_count
from lwcnn.errors import ConfigError, ModelError
from lwcnn.runtime.openvino_graph import split_concat_projections

#: Precisions OpenVINO can be asked to compute in, and its names for them.
PRECISIONS = {"fp32": "f32", "bf16": "bf16"}
#: Compiled shapes kept per model (one per image size in use; a line has one or two).
COMPILED_SHAPES = 4


def openvino_available() -> bool:
    """Whether the ``openvino`` package is installed (the ``openvino`` extra); found, not imported."""
    import importlib.util

    return importlib.util.find_spec("openvino") is not None


def cpu_precisions() -> list[str]:
    """The precisions this CPU runs natively in OpenVINO (``fp32``, and ``bf16`` with AMX or
    AVX-512 BF16), from the CPU plugin's optimisation capabilities."""
    import openvino as ov

    capabilities = set(ov.Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"))
    return ["fp32", *(["bf16"] if "BF16" in capabilities else [])]


class OpenVinoBackend:
    """An ONNX file compiled by OpenVINO for the CPU, in ``precision`` (``fp32`` or ``bf16``), with
    ``threads`` inference threads per stream (None: OpenVINO's default, one per core) and
    ``streams`` streams (one: latency, an image at a time as a line inspects; more: that many
    callers run at once, each on its own infer request, for a folder or a busy service)."""

    name = "openvino"

    def __init__(
        self,
        model: str | Path | bytes,
        threads: int | None = None,
        precision: str = "fp32",
        source: str = "",
        streams: int = 1,
    ) -> None:
        if precision not in PRECISIONS:
            raise ConfigError(f"OpenVINO precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        source = source or (str(model) if not isinstance(model, bytes) else "model")
        try:
            import openvino as ov
        except ImportError:
            raise ConfigError(
                "the openvino backend needs OpenVINO: pip install 'lwcnn[openvino]' (or pip install openvino)"
            ) from None
        offered = cpu_precisions() if precision != "fp32" else ["fp32"]
        if precision not in offered:
            raise ConfigError(
                f"this CPU has no native {precision} in OpenVINO (it offers {', '.join(offered)}); "
                "use --precision fp32"
            )
        self.precision = precision
        self._core = ov.Core()
        try:
            self._model = self._core.read_model(model if isinstance(model, bytes) else str(model))
        except Exception as error:  # OpenVINO raises its own exception types
            problem = _first_line(error)
            raise ModelError(f"{source}: not an ONNX model OpenVINO can read ({problem})") from None
        self.card: ModelCard = card_from_json(_card_json(self._model, source), source)
        self.metadata: dict[str, Any] = self.card.fields
        shape = self._model.outputs[0].get_partial_shape()
        count = shape[1].get_length() if shape.rank.get_length() > 1 and shape[1].is_static else None
        check_output_count(self.card, count, source)
        self.output_names = [output.get_any_name() for output in self._model.outputs]
        self._config = cpu_config(threads, precision, streams)
        # per input shape: the compiled model and its idle infer requests (one serves one caller)
        self._compiled: OrderedDict[tuple[int, ...], tuple[Any, list[Any]]] = OrderedDict()
        self._lock = threading.Lock()

    def run(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        batch = np.ascontiguousarray(batch, dtype=np.float32)
        # OpenVINO's Python objects are touched by one thread at a time (concurrent calls into them
        # deadlocked between the GIL and OpenVINO's own locks); only the wait for the result, which
        # releases the GIL, runs beside other callers' inferences (one stream each).
        with self._lock:
            compiled, idle = self._compiled_for(batch.shape)
            request = idle.pop() if idle else compiled.create_infer_request()
            request.get_input_tensor(0).data[:] = batch
            request.start_async()
        try:
            request.wait()
        finally:
            with self._lock:
                outputs = {
                    name: np.array(request.get_output_tensor(index).data, copy=True)
                    for index, name in enumerate(self.output_names)
                }
                idle.append(request)
        return outputs

    def _compiled_for(self, shape: tuple[int, ...]) -> tuple[Any, list[Any]]:
        """The model compiled for this input shape (on first use) and its idle requests."""
        if shape in self._compiled:
            self._compiled.move_to_end(shape)
            return self._compiled[shape]
        entry = (compile_model(self._core, self._model, shape, self._config), [])
        self._compiled[shape] = entry
        while len(self._compiled) > COMPILED_SHAPES:
            self._compiled.popitem(last=False)
        return entry


def cpu_config(threads: int | None, precision: str, streams: int = 1) -> dict[str, str]:
    """The CPU plugin's settings: ``precision``, ``streams`` streams (one: an image at a time) of
    ``threads`` threads each."""
    return {
        "INFERENCE_PRECISION_HINT": PRECISIONS[precision],
        "PERFORMANCE_HINT": "LATENCY",
        "NUM_STREAMS": str(streams),
        **({"INFERENCE_NUM_THREADS": str(threads * streams)} if threads else {}),
    }


def compile_model(core: Any, model: Any, shape: tuple[int, ...], config: dict[str, str]) -> Any:
    """``model`` (an ``openvino.Model``, or ONNX bytes) compiled for the CPU with its input fixed to
    ``shape``, with :mod:`~lwcnn.runtime.openvino_graph`'s rewrites. The one place models are
    compiled: the engine and ``lwcnn bench`` use it."""
    model = core.read_model(model) if isinstance(model, bytes) else model.clone()
    model.reshape({model.inputs[0]: list(shape)})
    split_concat_projections(model)
    return core.compile_model(model, "CPU", config)


def _card_json(model: Any, source: str) -> str:
    if not model.has_rt_info(["framework", ONNX_METADATA_KEY]):
        raise ModelError(f"{source}: an ONNX file without lwcnn metadata (export it with lwcnn export)")
    return model.get_rt_info(["framework", ONNX_METADATA_KEY]).astype(str)


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def _time_file(args: list[str]) -> None:
    """``python -m lwcnn.runtime.openvino_engine MODEL.onnx N,C,H,W THREADS PRECISION RUNS WARMUP
    BUDGET_S``: the median latency of one compiled shape, as JSON (``lwcnn bench`` runs this in a
    child process, away from torch; ``... precisions`` prints :func:`cpu_precisions`)."""
    import openvino as ov

    from lwcnn.timing import median_ms

    path, shape_text, threads, precision, runs, warmup, budget_s = args
    shape = tuple(int(n) for n in shape_text.split(","))
    compiled = compile_model(ov.Core(), Path(path).read_bytes(), shape, cpu_config(int(threads), precision))
    request = compiled.create_infer_request()
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    latency, count = median_ms(lambda: request.infer({0: x}), int(runs), int(warmup), float(budget_s))
    print(json.dumps({"latency_ms": latency, "runs": count}))


if __name__ == "__main__":
    if sys.argv[1:] == ["precisions"]:  # what this CPU offers, asked from a process without torch
        print(json.dumps(cpu_precisions()))
    else:
        _time_file(sys.argv[1:])
