"""Where a model's outputs come from: ONNX Runtime (the default; no torch) or PyTorch (a fallback
for trained-model files when ONNX Runtime is not wanted). Both take a float32 (N, C, H, W) batch
and return the model's named outputs as NumPy arrays."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np

from lwcnn.card import ONNX_METADATA_KEY, card_from_json, check_output_count
from lwcnn.errors import ModelError


class Backend(Protocol):
    """Runs a model: ``metadata`` (the model's JSON metadata) and ``run(batch) -> {name: array}``."""

    name: str
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
        try:
            self.session = cpu_session(data, threads)
        except Exception as error:  # onnxruntime raises its own exception types
            raise ValueError(
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


class TorchBackend:
    """A trained model (safetensors + JSON) in PyTorch eager: needs the training install."""

    name = "torch"

    def __init__(self, weights: str | Path, threads: int | None = None) -> None:
        import torch

        from lwcnn.checkpoints import load_model

        if threads:
            torch.set_num_threads(threads)
        self._torch = torch
        self.model, self.metadata = load_model(weights)
        self.model.eval()

    @classmethod
    def from_model(cls, model: Any, metadata: dict[str, Any]) -> TorchBackend:
        """A backend over a model in memory (training validates through the engine this way, so
        that validation and inspection share one preprocessing and decision path)."""
        import torch

        backend = cls.__new__(cls)
        backend._torch = torch
        backend.model, backend.metadata = model, metadata
        return backend

    def run(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        torch = self._torch
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))
            x = x.to(next(self.model.parameters()).device)
            if self.metadata["task"] == "cls":
                logits, maps = self.model.logits_and_class_maps(x)
                return {"logits": logits.cpu().numpy(), "class_maps": maps.cpu().numpy()}
            return {"logits": self.model(x).float().cpu().numpy()}


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__
