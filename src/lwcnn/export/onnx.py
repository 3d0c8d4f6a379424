"""ONNX export: one self-contained file, dynamic batch and image size, with the metadata that
inference needs (task, classes, input channels, preprocessing, threshold) inside it."""

from __future__ import annotations

import io
import json
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import onnx
import torch
from torch import nn

from lwcnn.card import ONNX_METADATA_KEY  # the card's key, defined once (the runtime reads it)
from lwcnn.export.rewrites import for_inference
from lwcnn.fileio import atomic_write_bytes

INPUT_NAME = "image"
OUTPUT_NAME = "logits"
#: A classifier's second output: per-class logit maps at the backbone's last stride, whose spatial
#: mean is the logits (class activation maps; where the evidence for each class lies).
CLASS_MAPS_NAME = "class_maps"
DEFAULT_OPSET = 17

#: What of a trained model's metadata goes into the ONNX file (not the split or the config).
_KEPT = (
    "model", "task", "classes", "preprocessing", "threshold", "min_area", "ok_classes", "calibration",
    "metrics", "commit", "lwcnn_version", "exported_from", "precisions",
)  # fmt: skip


def onnx_metadata(model: nn.Module, metadata: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The metadata stored in the ONNX file: what inference needs, from the trained model's JSON
    (or, for an untrained model, its spec alone)."""
    meta = {key: metadata[key] for key in _KEPT if metadata and key in metadata}
    meta.setdefault("model", model.spec.to_dict())
    meta.setdefault("task", model.spec.task)
    meta["input"] = INPUT_NAME
    meta["output"] = OUTPUT_NAME
    if meta["task"] == "cls":
        meta["class_maps"] = CLASS_MAPS_NAME
    meta["output_stride"] = getattr(model, "output_stride", None)
    backbone = getattr(model, "backbone", None)
    if backbone is not None:  # what the engine pads a segmenter's input to (the card says it)
        meta["network_stride"] = int(backbone.feature_strides[-1])
    return meta


def export_onnx(
    model: nn.Module,
    path: str | Path | None,
    metadata: Mapping[str, Any] | None = None,
    opset: int = DEFAULT_OPSET,
    sample_size: tuple[int, int] = (64, 64),
    rewrite: bool = True,
) -> bytes:
    """Export ``model`` (eval mode) to ONNX with dynamic batch, height and width; write it to
    ``path`` atomically when given; return the file's bytes. Input ``image`` (N, C, H, W) float32,
    normalised as the metadata's ``preprocessing`` says; output ``logits`` ((N, classes) for a
    classifier, (N, classes, H/stride, W/stride) for a segmenter).

    With ``rewrite`` (the default) the graph is that of :func:`~lwcnn.export.rewrites.for_inference`
    (same outputs, faster in ONNX Runtime)."""
    model = model.eval()
    meta = onnx_metadata(model, metadata)
    if rewrite:
        model = for_inference(model)
    outputs = [OUTPUT_NAME]
    if model.spec.task == "cls":
        model, outputs = _WithClassMaps(model), [OUTPUT_NAME, CLASS_MAPS_NAME]
    sample = torch.zeros(1, model.spec.in_channels, *sample_size)
    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript-based exporter's deprecation notices
        torch.onnx.export(
            model,
            (sample,),
            buffer,
            input_names=[INPUT_NAME],
            output_names=outputs,
            dynamic_axes={
                INPUT_NAME: {0: "batch", 2: "height", 3: "width"},
                **{name: {0: "batch"} for name in outputs},
            },
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )
    proto = onnx.load_from_string(buffer.getvalue())
    entry = proto.metadata_props.add()
    entry.key = ONNX_METADATA_KEY
    entry.value = json.dumps(meta)
    proto.producer_name = "lwcnn"
    onnx.checker.check_model(proto)
    data = proto.SerializeToString()
    if path is not None:
        atomic_write_bytes(path, data)
    return data


class _WithClassMaps(nn.Module):
    """A classifier whose forward returns its logits and class activation maps (two ONNX outputs)."""

    def __init__(self, classifier: nn.Module) -> None:
        super().__init__()
        self.classifier, self.spec = classifier, classifier.spec

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.classifier.logits_and_class_maps(x)
