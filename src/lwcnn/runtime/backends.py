"""Where a model's outputs come from: ONNX Runtime, the runtime's default engine (no torch). A
backend takes a float32 (N, C, H, W) batch and returns the model's named outputs as NumPy arrays;
OpenVINO (:class:`lwcnn.runtime.openvino_engine.OpenVinoBackend`, the ``openvino`` extra) and the
PyTorch backend for trained-model files (:class:`lwcnn.trained_models.TorchBackend`, the training
install) follow the same :class:`Backend` protocol."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from lwcnn.card import ONNX_METADATA_KEY, ModelCard, card_from_json, check_output_count
from lwcnn.errors import LwcnnError, ModelError

#: The card field of an export cached beside a trained model: :func:`export_fingerprint`.
EXPORTED_FROM_KEY = "exported_from"


class Backend(Protocol):
    """Runs a model: ``card`` (its checked model card), ``metadata`` (the card's fields as written),
    ``precision`` (what it computes in: ``fp32``, ``bf16``, ``int8``) and ``run(batch) -> {name: array}``."""

    name: str
    precision: str
    card: ModelCard
    metadata: dict[str, Any]

    def run(self, batch: np.ndarray) -> dict[str, np.ndarray]: ...


def cpu_session(model: str | bytes, threads: int | None = None):
    """An ONNX Runtime CPU session: all graph optimisations, ``threads`` intra-op threads (None: one
    per core), no inter-op pool, and quiet (its notices about hardware-specific layouts are not for
    users). The one place sessions are configured: the engine and every benchmark use it."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.inter_op_num_threads = 1
    if threads:
        options.intra_op_num_threads = threads
    options.log_severity_level = 3
    return ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])


class OnnxRuntimeBackend:
    """An ONNX file (or its bytes) in an ONNX Runtime CPU session with ``threads`` intra-op threads
    (None: ONNX Runtime's default, one per core)."""

    name = "onnxruntime"

    def __init__(self, model: str | Path | bytes, threads: int | None = None, source: str = "") -> None:
        data = model if isinstance(model, bytes) else str(model)
        source = source or (str(model) if not isinstance(model, bytes) else "model")
        #: The ONNX file (None for a model given as bytes), where another engine can read it too.
        self.path = None if isinstance(model, bytes) else Path(model)
        self.source = source
        try:
            self.session = cpu_session(data, threads)
            self.precision = onnx_precision(data)
        except Exception as error:  # onnxruntime raises its own exception types
            raise ModelError(
                f"{source}: not an ONNX model ONNX Runtime can load ({_first_line(error)})"
            ) from None
        custom = self.session.get_modelmeta().custom_metadata_map
        if ONNX_METADATA_KEY not in custom:
            raise ModelError(f"{source}: an ONNX file without lwcnn metadata (export it with lwcnn export)")
        self.card = card_from_json(custom[ONNX_METADATA_KEY], source)
        self.metadata: dict[str, Any] = self.card.fields
        self.input_name = self.session.get_inputs()[0].name
        outputs = self.session.get_outputs()
        self.output_names = [o.name for o in outputs]
        shape = outputs[0].shape  # (N, classes) or (N, classes, h, w); the class count is fixed
        count = shape[1] if len(shape) > 1 and isinstance(shape[1], int) else None
        check_output_count(self.card, count, source)

    def run(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        outputs = self.session.run(None, {self.input_name: np.ascontiguousarray(batch, dtype=np.float32)})
        return dict(zip(self.output_names, outputs, strict=True))


def onnx_precision(model: str | bytes) -> str:
    """``int8`` for an ONNX file quantised by ``lwcnn export --int8`` (it holds QuantizeLinear
    nodes, whose operator name is stored as plain text), else ``fp32``."""
    data = model if isinstance(model, bytes) else Path(model).read_bytes()
    return "int8" if b"QuantizeLinear" in data else "fp32"


def export_fingerprint(metadata_path: str | Path) -> str:
    """What an export of a trained model was made from: a hash of its ``.json`` card and its
    ``.safetensors`` weights. An export cached beside them (``NAME.onnx``) carries it under
    :data:`EXPORTED_FROM_KEY`, and is used only while the two files are unchanged (``calibrate``
    rewrites the card: the next inspection exports again)."""
    path = Path(metadata_path)
    digest = hashlib.sha256()
    for part in (path, path.with_suffix(".safetensors")):
        digest.update(part.read_bytes())
    return digest.hexdigest()[:32]


def cached_export(
    metadata_path: str | Path, threads: int | None = None, source: str = ""
) -> OnnxRuntimeBackend | None:
    """The ONNX Runtime backend of the export cached beside a trained model, if it was made from
    the model's current files; else None (then the training install exports it again)."""
    onnx_path = Path(metadata_path).with_suffix(".onnx")
    if not onnx_path.is_file():
        return None
    try:
        backend = OnnxRuntimeBackend(onnx_path, threads, source=source or str(onnx_path))
        fresh = backend.metadata.get(EXPORTED_FROM_KEY) == export_fingerprint(metadata_path)
    except (LwcnnError, OSError):  # a torn or foreign file: export again
        return None
    return backend if fresh else None


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
