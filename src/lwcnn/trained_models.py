"""Trained models (safetensors + JSON) for the inspection engine: exported once into ONNX and kept
beside them, or run in PyTorch eager. Needs the training install; the runtime, which may not
import torch or the training code, reaches this through :func:`lwcnn.open_trained_model`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lwcnn.card import check_card
from lwcnn.checkpoints import load_model
from lwcnn.export import export_onnx
from lwcnn.fileio import atomic_write_bytes
from lwcnn.runtime.backends import (
    EXPORTED_FROM_KEY,
    Backend,
    OnnxRuntimeBackend,
    export_fingerprint,
)


def open_trained_model(
    metadata_path: str | Path, backend: str = "auto", threads: int | None = None, source: str = ""
) -> Backend:
    """The backend of a trained model: ``torch`` runs it in PyTorch eager; otherwise it is exported
    and the export cached as ``NAME.onnx`` beside ``NAME.json`` (where the folder is writable; else
    kept in memory). :func:`lwcnn.runtime.engine.open_backend` uses a current cached export itself
    (:func:`~lwcnn.runtime.backends.cached_export`, no torch) and comes here only when there is none."""
    path = Path(metadata_path)
    source = source or str(path)
    if backend == "torch":
        return TorchBackend(path, threads)
    fingerprint = export_fingerprint(path)
    model, metadata = load_model(path)
    data = export_onnx(model, None, {**metadata, EXPORTED_FROM_KEY: fingerprint})
    try:
        atomic_write_bytes(path.with_suffix(".onnx"), data)
    except OSError:  # a read-only model folder: the export lives in memory only
        pass
    return OnnxRuntimeBackend(data, threads, source=source)


class TorchBackend:
    """A trained model (safetensors + JSON) in PyTorch eager: needs the training install."""

    name = "torch"
    precision = "fp32"

    def __init__(self, weights: str | Path, threads: int | None = None) -> None:
        import torch

        if threads:
            torch.set_num_threads(threads)
        self._torch = torch
        self.model, self.metadata = load_model(weights)
        self.card = check_card(self.metadata, str(weights))
        self.model.eval()

    @classmethod
    def from_model(cls, model: Any, metadata: dict[str, Any]) -> TorchBackend:
        """A backend over a model in memory (training validates through the engine this way, so
        that validation and inspection share one preprocessing and decision path)."""
        import torch

        backend = cls.__new__(cls)
        backend._torch = torch
        backend.model = model
        backend.metadata = {"model": model.spec.to_dict(), **metadata}  # the spec, as a checkpoint has it
        backend.card = check_card(backend.metadata, f"the {model.spec.name} being trained")
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
