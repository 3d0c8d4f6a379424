"""Running a classifier over a dataset and scoring it."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from lwcnn.data.datasets import ClassificationDataset
from lwcnn.evaluation.metrics import classification_metrics


@torch.inference_mode()
def predict_probabilities(
    model: nn.Module,
    dataset: ClassificationDataset,
    batch_size: int = 64,
    channels_last: bool = False,
    device: torch.device | str = "cpu",
) -> np.ndarray:
    """Softmax probabilities (N, classes) for every image of ``dataset``, in order, eval mode, with
    the model on ``device``."""
    model.eval()
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=0)
    outputs = []
    for images, _ in loader:
        images = images.to(device)
        if channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        with torch.no_grad():
            outputs.append(F.softmax(model(images).float(), dim=1).cpu().numpy())
    return np.concatenate(outputs) if outputs else np.zeros((0, len(dataset.images.classes)), np.float32)


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
