"""Running a classifier over a dataset and scoring it, through the inspection engine (the same
preprocessing, batching and decision as ``lwcnn inspect``): validation during training runs the
live model there (PyTorch), the test and ``lwcnn evaluate`` its export (ONNX Runtime)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lwcnn.data.classification import scan_classification
from lwcnn.data.datasets import ClassificationDataset
from lwcnn.data.splits import Split
from lwcnn.errors import DataError
from lwcnn.evaluation.metrics import classification_metrics
from lwcnn.runtime.engine import Inspector


def predict_probabilities(inspector: Inspector, dataset: ClassificationDataset) -> np.ndarray:
    """Class probabilities (N, classes) for every image of ``dataset``, in order (its images as
    read and resized once, then the engine's normalisation, forward pass and softmax)."""
    return inspector.class_probabilities([dataset.read(i) for i in range(len(dataset))])


def score(probabilities: np.ndarray, dataset: ClassificationDataset) -> dict[str, Any]:
    """Metrics, mean cross-entropy and the misclassified files of a prediction."""
    labels = np.asarray(dataset.images.labels)
    predicted = probabilities.argmax(axis=1)
    metrics = classification_metrics(labels, predicted, dataset.images.classes)
    picked = probabilities[np.arange(len(labels)), labels]
    metrics["loss"] = float(-np.log(np.clip(picked, 1e-12, None)).mean()) if len(labels) else None
    classes = dataset.images.classes
    metrics["misclassified"] = [
        {
            "path": dataset.images.paths[i].as_posix(),
            "true": classes[labels[i]],
            "predicted": classes[predicted[i]],
            "probability": float(probabilities[i, predicted[i]]),
        }
        for i in np.flatnonzero(predicted != labels)
    ]
    return metrics


def evaluate_classifier(
    weights: str | Path, data: str | Path, part: str = "test", skip_bad: bool = False, batch_size: int = 64
) -> tuple[dict[str, Any], list[str]]:
    """Score a trained classifier on ``part`` of its own split of ``data`` (``all``: every image):
    its metrics and the one-line errors of images skipped as unreadable (with ``skip_bad``)."""
    from lwcnn.checkpoints import read_metadata

    meta = read_metadata(weights)  # the training card: split and layout (an export keeps neither)
    inspector = Inspector(weights, batch_size=batch_size)
    images = scan_classification(data, (meta.get("data") or {}).get("layout", "auto"))
    if list(images.classes) != list(inspector.classes):
        raise DataError(
            f"{data}: classes {list(images.classes)} differ from the model's {list(inspector.classes)}"
        )
    if part != "all":
        images = images.subset(Split.from_dict(meta["split"]).indices(images, part))
    dataset = ClassificationDataset(images, inspector.preprocessing)
    skipped = [str(error) for error in dataset.load_all(skip_bad)]
    return score(predict_probabilities(inspector, dataset), dataset), skipped
