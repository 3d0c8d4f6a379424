"""int8 static quantisation of an exported model (ONNX Runtime's QDQ format), calibrated on real
training images, and the measurement that decides whether it is worth shipping.

int8 pays where convolutions are dense matrix products (MobileNetV2's expansions, the decoder's
pointwise layers); the LW block's small depthwise kernels and the quantise/dequantise steps around
them can make a model slower. So :func:`quantize_onnx` returns the int8 bytes (of the whole model,
or of a segmenter's decoder only) and :func:`compare_latency` measures the graphs side by side;
``lwcnn export --int8`` keeps the fastest of fp32 and the int8 variants on this machine (or int8
when told to).
"""

from __future__ import annotations

import statistics
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import onnx

from lwcnn.errors import ModelError
from lwcnn.timing import time_alternately

INPUT_NAME = "image"


class _Batches:
    """ONNX Runtime's calibration reader over preprocessed (C, H, W) float32 images."""

    def __init__(self, images: Iterable[np.ndarray]) -> None:
        self._images: Iterator[np.ndarray] = iter(images)

    def get_next(self) -> dict[str, np.ndarray] | None:
        image = next(self._images, None)
        return None if image is None else {INPUT_NAME: image[None].astype(np.float32)}


#: What to quantise: every operator ONNX Runtime can, or only the segmentation decoder's (mixed
#: precision: int8 for its dense 1x1 convolutions, fp32 for the depthwise-heavy LW backbone).
SCOPES = ("all", "decoder")


def quantize_onnx(model: bytes, calibration: Iterable[np.ndarray], scope: str = "all") -> bytes:
    """int8 weights (per channel) and uint8 activations calibrated (min-max) on ``calibration``,
    preprocessed images as the model takes them, over ``scope`` (:data:`SCOPES`). The metadata of
    ``model`` is kept. Raises ``ValueError`` when the scope names no operator of the model."""
    if scope not in SCOPES:
        raise ValueError(f"int8 scope must be one of {', '.join(SCOPES)}, got {scope!r}")
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    reader = type("Reader", (_Batches, CalibrationDataReader), {})(calibration)
    source = onnx.load_from_string(model)
    with tempfile.TemporaryDirectory() as folder:
        fp32, prepared, int8 = (Path(folder) / f"{n}.onnx" for n in ("fp32", "prepared", "int8"))
        fp32.write_bytes(model)
        quant_pre_process(str(fp32), str(prepared))  # shape inference and graph clean-up first
        nodes = None
        if scope == "decoder":
            graph = onnx.load(str(prepared)).graph
            nodes = [n.name for n in graph.node if n.op_type == "Conv" and n.name.startswith("/decoder/")]
            if not nodes:
                raise ModelError("the model has no segmentation decoder to quantise")
        quantize_static(
            str(prepared),
            str(int8),
            reader,
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            nodes_to_quantize=nodes,
        )
        quantized = onnx.load(str(int8))
    del quantized.metadata_props[:]
    quantized.metadata_props.extend(source.metadata_props)
    return quantized.SerializeToString()


def compare_latency(
    graphs: dict[str, bytes], shape: tuple[int, ...], threads: int = 1, runs: int = 50
) -> dict[str, float]:
    """Median milliseconds of each graph on one input of ``shape``, timed alternately."""
    from lwcnn.runtime.backends import cpu_session

    sessions = {name: cpu_session(data, threads) for name, data in graphs.items()}
    x = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    runners = {name: (lambda s=s: s.run(None, {INPUT_NAME: x})) for name, s in sessions.items()}
    times = time_alternately(runners, runs, warmup=5)
    return {name: statistics.median(values) for name, values in times.items()}


def classification_accuracy(model: bytes, images: Iterable[np.ndarray], labels: Iterable[int]) -> float:
    """Accuracy of an ONNX classifier on preprocessed images (one at a time, ONNX Runtime)."""
    from lwcnn.runtime.backends import OnnxRuntimeBackend

    backend = OnnxRuntimeBackend(model, threads=1)
    hits = [
        int(np.argmax(backend.run(image[None])["logits"][0])) == label
        for image, label in zip(images, labels, strict=True)
    ]
    return float(np.mean(hits)) if hits else float("nan")
