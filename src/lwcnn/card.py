"""The model card: what a trained model file says about itself (task, classes, preprocessing,
decision), checked in one place wherever a model is loaded.

A card travels as JSON: beside the weights (``NAME.json`` next to ``NAME.safetensors``) and inside
an exported ONNX file (metadata key :data:`ONNX_METADATA_KEY`). Torch-free: the runtime reads it.
:func:`check_card` turns a missing or malformed field into one :class:`~lwcnn.errors.ModelError`
line naming the file, instead of a ``KeyError`` traceback far from the cause.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from lwcnn.data.preprocessing import NETWORK_STRIDE, Preprocessing
from lwcnn.errors import ModelError

#: The ONNX ``metadata_props`` key under which lwcnn stores the card as JSON.
ONNX_METADATA_KEY = "lwcnn"
#: The version of the card's format, written in every checkpoint's ``NAME.json`` (``format``).
CARD_FORMAT = "lwcnn-model/1"
TASKS = ("cls", "seg")
#: Reduced precisions a card can hold a check for (``precisions``): fp32 is what a model is trained,
#: calibrated and exported in, so it needs none.
REDUCED_PRECISIONS = ("bf16", "int8")


@dataclass(frozen=True)
class ModelCard:
    """A checked card. ``fields`` keeps every field of the file as it was (metrics, split, commit...);
    the typed attributes are the ones inference relies on."""

    task: str
    model_name: str
    classes: tuple[str, ...]
    preprocessing: Preprocessing
    threshold: float | None = None
    min_area: int | None = None
    ok_classes: tuple[str, ...] | None = None
    #: The network's total stride: a segmenter sees its input padded to a multiple of it. Files
    #: written before the card said so hold none: every backbone of the factory has 32.
    network_stride: int = NETWORK_STRIDE
    #: Reduced precisions checked against fp32 on the model's own images (``lwcnn calibrate
    #: --precision``): for each, ``agree`` (every decision the same as fp32's), ``n`` (images),
    #: ``differ`` (some that were not), and a segmenter's ``threshold`` calibrated in that precision.
    precisions: dict[str, dict[str, Any]] = field(default_factory=dict, compare=False)
    fields: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def threshold_for(self, precision: str) -> float | None:
        """The segmenter threshold calibrated for ``precision`` (a reduced one's own where it was
        checked, else the card's fp32 threshold)."""
        own = self.precisions.get(precision, {}).get("threshold")
        return float(own) if own is not None else self.threshold

    def precision_verdict(self, precision: str) -> tuple[bool, str]:
        """Whether ``precision`` may be chosen for this model without being asked for, and why: fp32
        always; a reduced precision only where its check found every decision the same as fp32's."""
        if precision == "fp32":
            return True, "fp32 is what the model was calibrated in"
        check = self.precisions.get(precision)
        if check is None:
            return (
                False,
                f"{precision} was never checked against fp32 (lwcnn calibrate --precision {precision})",
            )
        if not check.get("agree"):
            changed = check.get("differ_count", len(check.get("differ") or []))
            return False, (
                f"{precision} changed {changed} of {check.get('n')} decisions "
                f"on the model's {check.get('split', 'validation')} images"
            )
        return (
            True,
            f"{precision} decided all {check.get('n')} {check.get('split', 'validation')} images as fp32",
        )

    @classmethod
    def from_dict(cls, data: Any, source: str = "model card") -> ModelCard:
        """The checked card of a JSON object (:func:`check_card`)."""
        return check_card(data, source)

    def to_dict(self) -> dict[str, Any]:
        """The card as the JSON object it came from (the typed fields written back)."""
        data = dict(self.fields)
        data.update(task=self.task, classes=list(self.classes), preprocessing=self.preprocessing.to_dict())
        for key in ("threshold", "min_area", "ok_classes", "network_stride"):
            value = getattr(self, key)
            if value is not None or key in data:
                data[key] = list(value) if isinstance(value, tuple) else value
        return data


def check_card(data: Any, source: str) -> ModelCard:
    """A :class:`ModelCard` from a card's JSON object, or a :class:`ModelError` naming ``source``
    (the file) and the first field that is missing or wrong."""
    if not isinstance(data, Mapping):
        raise ModelError(f"{source}: model metadata must be a JSON object, got {type(data).__name__}")
    task = data.get("task")
    if task not in TASKS:
        raise ModelError(f"{source}: model metadata 'task' must be one of {', '.join(TASKS)}, got {task!r}")
    model = data.get("model")
    if not isinstance(model, Mapping) or not isinstance(model.get("name"), str):
        raise ModelError(f"{source}: model metadata lacks 'model' (the architecture, with its 'name')")
    if "preprocessing" not in data:
        raise ModelError(f"{source}: model metadata lacks 'preprocessing' (channels, size, mean, std)")
    preprocessing = _preprocessing(data["preprocessing"], source)
    classes = data.get("classes") or []
    if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
        raise ModelError(f"{source}: model metadata 'classes' must be a list of names, got {classes!r}")
    if len(set(classes)) != len(classes):
        raise ModelError(f"{source}: model metadata 'classes' names a class twice: {classes}")
    outputs = model.get("num_classes")
    if isinstance(outputs, int) and classes and len(classes) != outputs:
        raise ModelError(
            f"{source}: model metadata lists {len(classes)} classes but the model has {outputs} outputs"
        )
    threshold = data.get("threshold")
    if threshold is not None and (
        isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0.0 < threshold < 1.0
    ):
        raise ModelError(f"{source}: model metadata 'threshold' must be between 0 and 1, got {threshold!r}")
    min_area = data.get("min_area")
    if min_area is not None and (isinstance(min_area, bool) or not isinstance(min_area, int) or min_area < 1):
        raise ModelError(f"{source}: model metadata 'min_area' must be a whole number >= 1, got {min_area!r}")
    stride = data.get("network_stride", NETWORK_STRIDE)
    if isinstance(stride, bool) or not isinstance(stride, int) or stride < 1:
        raise ModelError(
            f"{source}: model metadata 'network_stride' must be a whole number >= 1, got {stride!r}"
        )
    ok_classes = data.get("ok_classes")
    if ok_classes is not None:
        if not isinstance(ok_classes, list) or not set(ok_classes) <= set(classes):
            raise ModelError(f"{source}: model metadata 'ok_classes' {ok_classes!r} are not among {classes}")
        ok_classes = tuple(ok_classes)
    precisions = _precision_checks(data.get("precisions"), source)
    return ModelCard(
        task=task,
        model_name=model["name"],
        classes=tuple(classes),
        preprocessing=preprocessing,
        threshold=None if threshold is None else float(threshold),
        min_area=min_area,
        ok_classes=ok_classes,
        network_stride=stride,
        precisions=precisions,
        fields=dict(data),
    )


def _precision_checks(data: Any, source: str) -> dict[str, dict[str, Any]]:
    if data is None:
        return {}
    if not isinstance(data, Mapping) or not all(
        name in REDUCED_PRECISIONS and isinstance(check, Mapping) for name, check in data.items()
    ):
        raise ModelError(
            f"{source}: model metadata 'precisions' must map {' or '.join(REDUCED_PRECISIONS)} to a check, "
            f"got {data!r}"
        )
    for name, check in data.items():
        threshold = check.get("threshold")
        if threshold is not None and (
            isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0.0 < threshold < 1.0
        ):
            raise ModelError(f"{source}: model metadata 'precisions.{name}.threshold' must be in (0, 1)")
    return {name: dict(check) for name, check in data.items()}


def card_from_json(text: str | bytes, source: str) -> ModelCard:
    """:func:`check_card` of a JSON text (an ONNX file's metadata, a ``.json`` file)."""
    try:
        data = json.loads(text)
    except ValueError as error:  # cut off or not JSON
        raise ModelError(f"{source}: model metadata is not valid JSON ({error})") from None
    return check_card(data, source)


def check_output_count(card: ModelCard, outputs: int | None, source: str) -> None:
    """The model's class outputs agree with the card's classes (``outputs`` None: unknown)."""
    if outputs is not None and card.classes and len(card.classes) != outputs:
        raise ModelError(
            f"{source}: model metadata lists {len(card.classes)} classes but the model has {outputs} outputs"
        )


def _preprocessing(data: Any, source: str) -> Preprocessing:
    if not isinstance(data, Mapping):
        raise ModelError(f"{source}: model metadata 'preprocessing' must be an object, got {data!r}")
    missing = [key for key in ("channels", "size", "mean", "std") if key not in data]
    if missing:
        raise ModelError(f"{source}: model metadata 'preprocessing' lacks {', '.join(missing)}")
    try:
        return Preprocessing.from_dict(data)
    except (TypeError, ValueError, IndexError) as error:
        raise ModelError(f"{source}: model metadata 'preprocessing' is wrong ({error})") from None
